// Checks for names the toolstack hands to the kernel and to QEMU: a value
// that passes cannot carry an option (',') or a path ('/').
#pragma once

#include <string_view>

namespace vmstack {

// "aa:bb:cc:dd:ee:ff": six hex octets separated by ':'.
bool valid_mac(std::string_view mac);
// A Linux interface name: 1 to 15 of letters, digits, '-', '_', '.'.
bool valid_ifname(std::string_view name);

}  // namespace vmstack
