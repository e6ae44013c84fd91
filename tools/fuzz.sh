#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/ and
# runs each for a bounded time (what tools/test.sh runs last; docs/fuzzing.md):
#
#   tools/fuzz.sh [seconds-per-target]        # default 20 s each
#   FUZZ_TARGETS="http ipvsadm" tools/fuzz.sh 300   # only some targets
#
# Fails on any crash, leak, UBSan finding, timeout or out-of-memory, and
# prints the input that caused it with the command that reproduces it. The
# checked-in seeds (tests/fuzz/corpus/<target>/) are only read, so runs never
# change git: new interesting inputs land in build-fuzz/fuzz-new/<target>/,
# and a developer merges them with -merge=1 (printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: tools/fuzz.sh [seconds-per-target]" >&2
  exit 2
fi
build=${FUZZ_BUILD_DIR:-build-fuzz}

tools/setup.sh --deps-only  # clang-14, its fuzzer runtime and llvm-symbolizer
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
  -DVMSTACK_FUZZ=ON >&2
cmake --build "$build" -j"$(nproc)" --target fuzz_all >&2

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets <"$build/fuzz-targets.txt"
fi

# Leaks fail a run like crashes; UBSan already aborts (-fno-sanitize-recover).
export ASAN_OPTIONS=detect_leaks=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-14/bin/llvm-symbolizer}

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/bin/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  new="$build/fuzz-new/$t"
  out="$build/fuzz-artifacts/$t"
  if [[ ! -x $bin || ! -d $seeds ]]; then
    echo "fuzz: no target '$t' (see $build/fuzz-targets.txt)" >&2
    failed+=("$t")
    continue
  fi
  rm -rf "$new" "$out"
  mkdir -p "$new" "$out"
  dict=()
  [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  echo "fuzz: $t for ${secs}s" >&2
  # The first directory receives new inputs; the seeds are only read.
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/" "${dict[@]}" "$new" "$seeds" >"$out/fuzz.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
    summary+=("$(printf '%-12s %9s runs, %3d new inputs' "$t" "${runs:-?}" "$(find "$new" -type f | wc -l)")")
  else
    failed+=("$t")
    input=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
      -o -name 'oom-*' -o -name 'slow-unit-*' \) | head -n 1)
    echo "----- fuzz_$t failed; end of $out/fuzz.log:" >&2
    tail -n 60 "$out/fuzz.log" >&2
    echo "-----" >&2
    echo "fuzz: $t FAILED; input: ${input:-(none saved, see the log)}" >&2
    echo "fuzz:   $(grep -m1 -o 'Seed: [0-9]*' "$out/fuzz.log" || true)" >&2
    [[ -n $input ]] && echo "fuzz:   reproduce: $bin $input" >&2
  fi
done

printf '%s\n' "${summary[@]}" >&2
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (crash inputs and logs in $build/fuzz-artifacts/; fix, and add a" \
    "regression test to the normal suite)" >&2
  exit 1
fi
echo "fuzz.sh: no findings in ${#targets[@]} targets x ${secs}s. To keep new inputs that add coverage:" >&2
echo "  $build/bin/fuzz_<target> -merge=1 tests/fuzz/corpus/<target> $build/fuzz-new/<target>" >&2
