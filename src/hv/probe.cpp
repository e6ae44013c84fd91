// probe_accelerator: can KVM here actually run a standard guest?
//
// Opening /dev/kvm is not enough (nested or paravirtualized KVM may accept
// ioctls yet fail to run a stock kernel), so we boot the tiny fixture guest
// with -accel kvm and wait for its init marker on the serial console.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/uuid.h"
#include "hv/qemu_hypervisor.h"
#include "hv/qmp.h"

namespace vmstack::hv {

namespace {
constexpr const char* kMarker = "vmstack-guest: init reached";

std::string secs(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

bool file_contains(const std::string& path, const char* needle) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  return data.find(needle) != std::string::npos;
}

std::string first_line(const std::string& s) {
  // The interesting part of a QEMU failure is usually its last line.
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}
}  // namespace

int64_t host_tsc_khz() {
#if defined(__x86_64__) || defined(__i386__)
  // Under TCG the guest's rdtsc is the host's rdtsc (QEMU reads the host
  // counter), under KVM it runs at the host rate too. /proc/cpuinfo's
  // "cpu MHz" is the current core clock on hosts with frequency scaling, not
  // the TSC rate, so measure: TSC ticks over ~20 ms of CLOCK_MONOTONIC_RAW.
  static const int64_t khz = [] {
    // One (tsc, ns) pair; a pair whose bracketing rdtscs are far apart was
    // preempted in between and is retried, so load cannot skew the result.
    auto sample = [](uint64_t& tsc, int64_t& ns) {
      for (int i = 0; i < 100; ++i) {
        uint64_t a = __rdtsc();
        struct timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
        uint64_t b = __rdtsc();
        if (b > a && b - a < 100000) {
          tsc = a + (b - a) / 2;
          ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
          return true;
        }
      }
      return false;
    };
    std::vector<int64_t> tries;
    for (int i = 0; i < 3; ++i) {
      uint64_t c0, c1;
      int64_t t0, t1;
      if (!sample(c0, t0)) continue;
      struct timespec d{0, 20 * 1000 * 1000};
      ::nanosleep(&d, nullptr);
      if (!sample(c1, t1) || t1 <= t0 || c1 <= c0) continue;
      tries.push_back(static_cast<int64_t>(static_cast<double>(c1 - c0) * 1e6 / static_cast<double>(t1 - t0)));
    }
    if (tries.empty()) return int64_t{0};
    std::sort(tries.begin(), tries.end());
    return tries[tries.size() / 2];
  }();
  return khz;
#else
  return 0;
#endif
}

BootCheck boot_check(Accel accel, const std::string& kernel, const std::string& ramdisk,
                     std::chrono::milliseconds deadline) {
  using Clock = std::chrono::steady_clock;
  using namespace std::chrono_literals;
  const auto start = Clock::now();
  const auto end = start + deadline;
  auto result = [&](bool reached, std::string why) {
    return BootCheck{reached, std::move(why), std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
  };

  char tmpl[] = "/tmp/vmstack-boot-check-XXXXXX";
  if (!::mkdtemp(tmpl)) return result(false, std::string("mkdtemp failed: ") + std::strerror(errno));
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  DomainSpec spec;
  spec.uuid = make_uuid();
  spec.name = std::string("vmstack-boot-check-") + to_string(accel);
  spec.run_dir = dir;
  spec.accel = accel;
  spec.memory_static_max = spec.memory_target = 256LL << 20;
  spec.kernel = kernel;
  spec.ramdisk = ramdisk;
  spec.cmdline = "console=ttyS0 quiet panic=-1";
  // A guest reset (triple fault, panic=-1) ends the check instead of looping:
  // with -no-shutdown QEMU then sits in "shutdown", which the loop notices.
  spec.extra_args = {"-no-reboot"};

  std::unique_ptr<QemuDomain> dom;
  try {
    QemuHypervisor qemu;
    dom = qemu.launch_qemu(spec, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()), 1000ms));
  } catch (const std::exception& e) {
    return result(false, "QEMU could not start (" + first_line(e.what()) + ")");
  }

  std::string why;
  bool reached = false;
  auto next_status = Clock::now();
  while (Clock::now() < end) {
    if (file_contains(dom->state().console_log, kMarker)) {
      reached = true;
      break;
    }
    if (!dom->alive()) {
      why = "QEMU exited: " + first_line(dom->log_tail());
      break;
    }
    if (Clock::now() >= next_status) {
      // A guest that crashed (KVM internal error, reset by a triple fault or
      // a panic) won't get anywhere: fail now rather than at the deadline.
      try {
        auto r = dom->qmp().execute("query-status", nullptr, 1s);
        std::string s = r.value("status", "");
        if (s == "internal-error" || s == "shutdown" || s == "guest-panicked") {
          why = "guest stopped early (" + s + ")";
          break;
        }
      } catch (const std::exception&) {
      }
      next_status = Clock::now() + 200ms;
    }
    std::this_thread::sleep_for(25ms);
  }
  auto r = result(reached, reached ? std::string() : why);
  if (!reached && why.empty()) r.detail = "guest did not reach init within " + secs(deadline);
  dom->stop();
  return r;
}

AccelProbe probe_accelerator(const std::string& kernel, const std::string& ramdisk,
                             std::chrono::milliseconds deadline) {
  {
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm) return {Accel::tcg, std::string("kvm: cannot open /dev/kvm: ") + std::strerror(errno) + "; using tcg"};
    int api = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION)
      return {Accel::tcg, "kvm: /dev/kvm API version " + std::to_string(api) + " unsupported; using tcg"};
  }
  struct stat st{};
  if (kernel.empty() || ::stat(kernel.c_str(), &st) != 0)
    return {Accel::tcg, "kvm: no probe kernel (" + (kernel.empty() ? std::string("none given") : kernel) +
                            "); cannot verify KVM, using tcg"};
  auto r = boot_check(Accel::kvm, kernel, ramdisk, deadline);
  if (r.reached) return {Accel::kvm, "kvm: probe guest reached init in " + secs(r.took)};
  return {Accel::tcg, "kvm: " + r.detail + "; using tcg"};
}

}  // namespace vmstack::hv
