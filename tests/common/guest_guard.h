// Helpers for tests that run guests: where the guest fixture is, and a leak
// guard (vmstack's QEMUs outlive the daemon by design, so a test that fails
// half-way would leave them running).
#pragma once

#include <string>

namespace vmstack::test {

// tools/guest-fixture.sh's cache dir, built on first use; empty if it can't be.
std::string guest_dir();

// SIGKILLs every QEMU whose run dir (its qemu.pid; its working directory,
// the guest dir inside) is under `dir`.
void kill_guests_under(const std::string& dir);

}  // namespace vmstack::test
