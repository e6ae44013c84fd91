#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (what .ci/run calls):
#   1. the normal build and every test (unit, component, end to end with
#      real QEMU guests, load-balancer tests in network namespaces);
#   2. the same suite built with AddressSanitizer/UBSan (skip with ASAN=0);
#   3. the libFuzzer targets, a bounded run each (skip with FUZZ=0; docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/setup.sh
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600

if [[ ${ASAN:-1} != 0 ]]; then
  BUILD_DIR=build-asan ASAN=1 tools/setup.sh
  # detect_leaks stays on: a leak fails the run like any other finding.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900
fi
if [[ ${FUZZ:-1} != 0 ]]; then
  tools/fuzz.sh
fi
echo "test.sh: all tests passed"
