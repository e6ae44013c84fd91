// build_qemu_argv: the builders in order.
#include <stdexcept>

#include "hv/qemu_argv.h"

namespace vmstack::hv {

std::vector<std::string> build_qemu_argv(const DomainSpec& spec_in, const std::string& qemu_binary) {
  if (spec_in.run_dir.empty()) throw std::invalid_argument("DomainSpec.run_dir is empty");
  DomainSpec spec = spec_in;
  assign_device_ids(spec);
  const auto m = argv::machine_of(spec);
  argv::Args a{qemu_binary};
  argv::identity(a, spec);
  argv::sandbox(a, spec);
  argv::machine(a, spec, m);
  argv::cpu_memory(a, spec);
  argv::control(a, spec);
  argv::console(a);
  argv::display(a, spec, m);
  argv::balloon(a);
  argv::hotplug_ports(a, spec, m);
  argv::boot(a, spec, m);
  size_t cd_index = 0;
  for (size_t i = 0; i < spec.disks.size(); ++i) argv::disk(a, spec, i, m, cd_index);
  for (size_t i = 0; i < spec.nics.size(); ++i) argv::nic(a, spec, i);
  argv::incoming(a, spec);
  a.insert(a.end(), spec.extra_args.begin(), spec.extra_args.end());
  return a;
}

}  // namespace vmstack::hv
