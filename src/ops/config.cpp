#include "ops/config.h"

#include <cstdlib>
#include <filesystem>

namespace vmstack::ops {

void Config::finalize() {
  namespace fs = std::filesystem;
  state_dir = fs::absolute(state_dir).lexically_normal().string();
  if (run_dir.empty()) run_dir = state_dir + "/run";
  if (db_path.empty()) db_path = state_dir + "/vmstack.db";
  if (unix_socket.empty()) unix_socket = state_dir + "/xapi.sock";
  if (guest_dir.empty()) {
    // Where tools/guest-fixture.sh caches the demo guest.
    if (const char* c = std::getenv("VMSTACK_CACHE"); c && *c)
      guest_dir = std::string(c) + "/guest";
    else if (const char* h = std::getenv("HOME"); h && *h)
      guest_dir = std::string(h) + "/.cache/vmstack/guest";
  }
  if (boot_dirs.empty()) {
    boot_dirs.push_back(state_dir + "/boot");
    if (!guest_dir.empty()) boot_dirs.push_back(guest_dir);
  }
  if (api_threads == 0) api_threads = 1;
  if (task_threads == 0) task_threads = 1;
}

std::string Config::console_base_url(const std::string& hostname) const {
  auto url = [&](const char* scheme, const std::string& addr, unsigned short port, unsigned short standard) {
    std::string host = addr;
    if (host.empty() || host == "0.0.0.0" || host == "::") host = hostname;
    else if (host.find(':') != std::string::npos) host = "[" + host + "]";  // an IPv6 literal
    std::string out = std::string(scheme) + "://" + host;
    if (port != standard) out += ":" + std::to_string(port);
    return out;
  };
  if (!tls_address.empty()) return url("https", tls_address, tls_port, 443);
  if (!tcp_address.empty()) return url("http", tcp_address, tcp_port, 80);
  return {};
}

}  // namespace vmstack::ops
