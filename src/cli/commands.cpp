#include "cli/commands.h"

#include <charconv>

#include "cli/xe_errors.h"

namespace vmstack::cli {

const CommandTable& command_table() {
  static const CommandTable table = [] {
    CommandTable t;
    add_generic_commands(t);
    add_vm_commands(t);
    add_misc_commands(t);
    add_transfer_commands(t);
    add_network_commands(t);
    return t;
  }();
  return table;
}

std::vector<Filter> filters_from(const Args& a, const std::vector<std::string>& own) {
  std::vector<Filter> out;
  for (const auto& [k, v] : a.params) {
    if (is_std_param(k)) continue;
    if (std::find(own.begin(), own.end(), k) != own.end()) continue;
    out.push_back({k, v});
  }
  return out;
}

int64_t parse_size(const std::string& param, const std::string& text) {
  int64_t n = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [p, ec] = std::from_chars(b, e, n);
  if (ec != std::errc() || p == b || n < 0)
    throw failure("Failed to parse parameter '" + param + "': expecting an integer (possibly with suffix)");
  std::string suffix(p, e);
  while (!suffix.empty() && suffix.front() == ' ') suffix.erase(suffix.begin());
  int shift = 0;
  if (suffix.empty() || suffix == "bytes" || suffix == "B") shift = 0;
  else if (suffix == "KiB") shift = 10;
  else if (suffix == "MiB") shift = 20;
  else if (suffix == "GiB") shift = 30;
  else if (suffix == "TiB") shift = 40;
  else
    throw failure("Failed to parse parameter '" + param + "': unknown suffix '" + suffix +
                  "' (use bytes, KiB, MiB, GiB or TiB)");
  if (shift && n > (INT64_MAX >> shift)) throw failure("Failed to parse parameter '" + param + "': value too large");
  return n << shift;
}

}  // namespace vmstack::cli
