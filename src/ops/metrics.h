// The objects beside hosts and VMs that clients read for their figures:
// host_metrics and a host_cpu per CPU, the control domain's VM record
// (Domain-0: the host itself, as xapi shows it), a VM_metrics per VM and one
// SM per SR driver. Made at start and kept in step with the records they
// describe; a crash between a VM and its metrics is mended at the next start.
#pragma once

#include <string>
#include <vector>

#include "core/value.h"
#include "model/store.h"

namespace vmstack::ops {

// host_metrics (memory figures now, live) and one host_cpu per CPU of
// /proc/cpuinfo, linked from the host; refreshed at every start.
void ensure_host_metrics(model::Store& store, const std::string& host);
// host_metrics.memory_free and host.memory_free read again (at start and at
// every VM power or memory change).
void refresh_host_memory(model::Store& store, const std::string& host);

// The control domain's record: "Control domain on host: <hostname>",
// is_control_domain, Running, resident on the host, the host's memory and
// CPUs. Lifecycle verbs refuse it (model/lifecycle.cpp).
std::string ensure_control_domain(model::Store& store, const std::string& host);

// One SM record per SR driver type.
void ensure_sm_records(model::Store& store, const std::vector<std::string>& types);

// A new VM's VM_metrics (install_time now), linked from VM.metrics.
void create_vm_metrics(model::Store& store, const std::string& vm);
// The VM's metrics follow its record as it is now (power state, memory,
// VCPUs, start), and the host's free memory is read again. Never throws: a
// VM destroyed meanwhile has no metrics to follow.
void sync_vm_metrics(model::Store& store, const std::string& vm);
// Destroys the metrics a VM's record links to (the VM is being destroyed).
void destroy_vm_metrics(model::Store& store, const Struct& vm_record);
// At start: every VM has its metrics and no metrics are left without a VM.
void reconcile_vm_metrics(model::Store& store);

}  // namespace vmstack::ops
