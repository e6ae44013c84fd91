// Host bootstrap: the objects every vmstack host has (pool, host, built-in
// templates), the host facts refreshed at every start, the accelerator
// decision, and the host.* messages.
#pragma once

#include <string>

#include "hv/qemu_hypervisor.h"
#include "model/store.h"
#include "ops/config.h"

namespace vmstack::ops {

class Dispatcher;

// KVM only if it really runs a standard guest (probe once, cached in the
// settings); the config may force kvm or tcg.
hv::AccelProbe choose_accelerator(model::Store& store, const Config& cfg);
// Creates the pool and this host on first start; refreshes host facts.
std::string bootstrap_host(model::Store& store, const hv::AccelProbe& accel);
// Creates or refreshes the built-in (default) templates.
void ensure_templates(model::Store& store, const Config& cfg);

void bind_host(Dispatcher& d, model::Store& store);

}  // namespace vmstack::ops
