#include <chrono>

#include <gtest/gtest.h>

#include "guest.h"
#include "hv/qemu_hypervisor.h"

using namespace vmstack::hv;
using namespace std::chrono_literals;

// On this host /dev/kvm exists but cannot run a stock kernel (nested PVM):
// the probe must notice and answer tcg, within its deadline. On a host with
// working KVM it answers kvm; both are checked for consistency.
TEST(AccelProbe, AnswersWithinDeadline) {
  REQUIRE_GUEST();
  const auto& g = hvtest::guest();
  auto start = std::chrono::steady_clock::now();
  auto p = probe_accelerator(g.vmlinux, g.initrd, 8s);
  auto took = std::chrono::steady_clock::now() - start;
  std::cerr << "[ info ] probe: " << to_string(p.accel) << " (" << p.detail << ") in "
            << std::chrono::duration<double>(took).count() << " s\n";
  EXPECT_LT(took, 8s + 7s);  // deadline plus QEMU start/teardown
  EXPECT_FALSE(p.detail.empty());
  if (p.accel == Accel::kvm) {
    EXPECT_NE(p.detail.find("reached init"), std::string::npos) << p.detail;
  } else {
    EXPECT_NE(p.detail.find("using tcg"), std::string::npos) << p.detail;
  }
}

TEST(AccelProbe, NoKernelMeansTcgAtOnce) {
  auto start = std::chrono::steady_clock::now();
  auto p = probe_accelerator("/nonexistent/vmlinux", "", 8s);
  EXPECT_EQ(p.accel, Accel::tcg);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_NE(p.detail.find("using tcg"), std::string::npos) << p.detail;
}

// The probe's machinery, driven with TCG so it runs anywhere: success, the
// deadline, and a guest that crashes (no initramfs: the kernel panics and
// resets) ending the check early instead of at the deadline.
TEST(BootCheck, TcgReachesInit) {
  REQUIRE_GUEST();
  const auto& g = hvtest::guest();
  auto r = boot_check(Accel::tcg, g.vmlinux, g.initrd, 90s);
  EXPECT_TRUE(r.reached) << r.detail;
  EXPECT_GT(r.took.count(), 0);
}

TEST(BootCheck, GivesUpAtDeadline) {
  REQUIRE_GUEST();
  const auto& g = hvtest::guest();
  auto r = boot_check(Accel::tcg, g.vmlinux, g.initrd, 300ms);
  EXPECT_FALSE(r.reached);
  EXPECT_NE(r.detail.find("did not reach init"), std::string::npos) << r.detail;
  EXPECT_LT(r.took, 5s);  // QEMU startup gets a 1 s floor; slack for a loaded host
}

TEST(BootCheck, CrashingGuestEndsEarly) {
  REQUIRE_GUEST();
  const auto& g = hvtest::guest();
  auto r = boot_check(Accel::tcg, g.vmlinux, "", 120s);
  EXPECT_FALSE(r.reached);
  EXPECT_LT(r.took, 100s) << r.detail;
  EXPECT_TRUE(r.detail.find("stopped early") != std::string::npos ||
              r.detail.find("QEMU exited") != std::string::npos)
      << r.detail;
}
