#include "guest_guard.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/process.h"

namespace vmstack::test {

namespace fs = std::filesystem;

std::string guest_dir() {
  static const std::string dir = [] {
    auto r = run_command({std::string(VMSTACK_SOURCE_DIR) + "/tools/guest-fixture.sh"}, std::chrono::minutes(10));
    if (!r.ok()) return std::string();
    auto out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    auto nl = out.rfind('\n');  // the dir is the last line
    return nl == std::string::npos ? out : out.substr(nl + 1);
  }();
  return dir;
}

void kill_guests_under(const std::string& dir) {
  std::error_code ec;
  const auto root = fs::weakly_canonical(dir, ec).string();
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.path().filename() != "qemu.pid") continue;
    std::ifstream in(e.path());
    pid_t pid = 0;
    if (!(in >> pid) || pid <= 0) continue;
    // vmstack's QEMUs run in their guest dirs, below their run dirs and so
    // below `dir` (a recycled pid does not).
    auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).string();
    if (!ec && cwd.rfind(root, 0) == 0) ::kill(pid, SIGKILL);
  }
}

}  // namespace vmstack::test
