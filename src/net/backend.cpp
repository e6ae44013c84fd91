#include "net/backend.h"

#include <cctype>

namespace vmstack::net {

std::string tap_name(const std::string& vm_uuid, const std::string& device) {
  std::string hex;
  for (char c : vm_uuid)
    if (std::isxdigit(static_cast<unsigned char>(c)) && hex.size() < 8) hex += c;
  std::string dev;
  for (char c : device)
    if (std::isalnum(static_cast<unsigned char>(c)) && dev.size() < 3) dev += c;
  return "vif" + hex + "." + (dev.empty() ? "0" : dev);
}

}  // namespace vmstack::net
