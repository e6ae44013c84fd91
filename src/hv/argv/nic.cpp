// Network interfaces: a tap backend the network backend made, and a virtio NIC.
#include <stdexcept>

#include "core/names.h"
#include "hv/argv/common.h"
#include "hv/qemu_argv.h"

namespace vmstack::hv::argv {

void nic(Args& a, const DomainSpec& s, size_t index) {
  const NicSpec& n = s.nics.at(index);
  if (n.id.empty()) throw std::invalid_argument("NicSpec: no device id");
  if (!valid_mac(n.mac)) throw std::invalid_argument("NicSpec " + n.id + ": bad MAC '" + n.mac + "'");
  if (!detail::plain_word(n.model)) throw std::invalid_argument("NicSpec " + n.id + ": bad model '" + n.model + "'");
  if (!valid_ifname(n.tap))
    throw std::invalid_argument("NicSpec " + n.id + ": bad tap device name '" + n.tap + "'");
  // The tap exists already (persistent, made and enslaved by the network
  // backend): QEMU only opens it (or, deprivileged, is handed it open), and
  // runs no scripts.
  if (s.uid >= 0)
    a.insert(a.end(), {"-netdev", "tap,id=net-" + n.id + ",fd=" + std::to_string(kFirstNicFd + static_cast<int>(index))});
  else
    a.insert(a.end(), {"-netdev", "tap,id=net-" + n.id + ",ifname=" + n.tap + ",script=no,downscript=no"});
  std::string dev = n.model + ",id=" + n.id + ",netdev=net-" + n.id + ",mac=" + n.mac;
  if (n.mtu > 0) dev += ",host_mtu=" + std::to_string(n.mtu);
  if (!n.port.empty()) dev += ",bus=" + n.port;
  a.insert(a.end(), {"-device", dev});
}

}  // namespace vmstack::hv::argv
