#include "core/names.h"

#include <cctype>

namespace vmstack {

bool valid_mac(std::string_view m) {
  if (m.size() != 17) return false;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i % 3 == 2 ? m[i] != ':' : !std::isxdigit(static_cast<unsigned char>(m[i]))) return false;
  }
  return true;
}

bool valid_ifname(std::string_view n) {
  if (n.empty() || n.size() > 15) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace vmstack
