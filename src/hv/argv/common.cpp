#include "hv/argv/common.h"

#include <cctype>

namespace vmstack::hv::argv::detail {

std::string esc(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == ',') out += ",,";
    else out += c;
  }
  return out;
}

bool plain_word(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::string id_fragment(const std::string& device) {
  std::string f;
  for (char c : device)
    if (std::isalnum(static_cast<unsigned char>(c))) f += c;
  return f;
}

}  // namespace vmstack::hv::argv::detail
