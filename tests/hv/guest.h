// Test helpers: the fixture guest (tools/guest-fixture.sh, built once per
// process) and small utilities shared by the hv tests.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace hvtest {

struct Guest {
  bool ok = false;
  std::string why;  // when !ok: why it could not be built
  std::string dir, vmlinux, vmlinuz, initrd, cmdline;
};
const Guest& guest();

// A fresh temporary directory, removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
};

// Test hygiene: ~Domain deliberately leaves the guest running, so a test that
// stops early (a failed ASSERT) would leak its QEMU for good (own session,
// orphaned to PID 1). Each test tracks the QEMUs it starts here; whatever is
// still alive when the tracker goes out of scope is SIGKILLed via its pidfd
// (never a recycled pid). Reaping stays with the Domain / reaper.
class QemuTracker {
 public:
  QemuTracker() = default;
  QemuTracker(const QemuTracker&) = delete;
  QemuTracker& operator=(const QemuTracker&) = delete;
  ~QemuTracker();
  void track(int pid);

 private:
  std::vector<int> pidfds_;
};

std::string read_file(const std::string& path);
// Polls until file contains needle or timeout.
bool wait_for_text(const std::string& path, const std::string& needle, std::chrono::milliseconds timeout);

// Connects to a unix stream socket (retrying briefly); -1 on failure.
int connect_unix(const std::string& path, std::chrono::milliseconds timeout);
// Sends `line` repeatedly (every resend interval) until `expect` is read back
// from fd or timeout passes.
bool console_roundtrip(int fd, const std::string& line, const std::string& expect, std::chrono::milliseconds timeout);

}  // namespace hvtest

#define REQUIRE_GUEST()                                                        \
  do {                                                                         \
    if (!::hvtest::guest().ok) GTEST_SKIP() << "fixture guest unavailable: " << ::hvtest::guest().why; \
  } while (0)
