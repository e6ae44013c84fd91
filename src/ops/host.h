// Host bootstrap: the objects every vmstack host has (pool, host, default SR,
// built-in templates) and the accelerator decision.
#pragma once

#include <string>

#include "hv/domain.h"

namespace vmstack::ops {

class Xapi;

// KVM only if it really runs a standard guest (probe once, cached in the
// settings table); the config may force kvm or tcg.
hv::AccelProbe choose_accelerator(Xapi& x);
// Creates the pool and this host on first start; refreshes host facts.
std::string bootstrap_host(Xapi& x, const hv::AccelProbe& accel);
// Creates or refreshes the built-in (default) templates.
void ensure_templates(Xapi& x);

}  // namespace vmstack::ops
