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

}  // namespace vmstack::ops
