// A test hook for the crash-point test (tests/e2e/crash_test.cpp): with
// VMSTACK_CRASH_AT=<name> in the daemon's environment, reaching
// crash_point("<name>") kills the process with SIGKILL, as a crash or kill -9
// would, at exactly that step of a verb. Without the variable it does nothing.
#pragma once

namespace vmstack {

void crash_point(const char* name);

}  // namespace vmstack
