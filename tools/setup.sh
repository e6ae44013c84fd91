#!/usr/bin/env bash
# Installs what vmstack needs on Debian 12 (only what is missing), builds it
# into build/ (or $BUILD_DIR) and prepares the demo/test guest.
#
#   tools/setup.sh            # deps + build + guest fixture
#   ASAN=1 tools/setup.sh     # same, AddressSanitizer/UBSan build
#   tools/setup.sh --deps-only  # only install what is missing (tools/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  googletest libgtest-dev libgmock-dev
  nlohmann-json3-dev libpugixml-dev libcli11-dev libboost-dev libsqlite3-dev
  libfmt-dev libspdlog-dev libssl-dev libcrypt-dev libnl-route-3-dev
  qemu-system-x86 qemu-utils busybox-static cpio zstd xz-utils binutils kmod
  iproute2 nftables procps python3 socat haproxy wrk hyperfine
  dnsmasq-base   # DHCP and DNS of NAT and internal networks (the binary only: no system service)
  # guest-fixture.sh checks that busybox is static with file(1); the API
  # interop test talks to the unix socket as another user with curl.
  # tools/fresh-check.sh finds what is missing here.
  file curl openssl
  ccache   # compiles made once are reused: rebuilds, and the fresh-root check (tools/fresh-check.sh)
  clang-14 libclang-rt-14-dev llvm-14   # tools/fuzz.sh: libFuzzer, sanitizers, llvm-symbolizer
)

# Xen Orchestra's client test (tests/e2e/xo_test.cpp) runs node and npm; a
# machine with a Node.js of its own (NodeSource's includes npm) keeps it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

[[ ${1:-} == --deps-only ]] && exit 0

BUILD_DIR=${BUILD_DIR:-build}
args=(-S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
[[ ${ASAN:-0} == 1 ]] && args+=(-DVMSTACK_ASAN=ON)
# Through ccache, with paths relative to the checkout and the compiler
# known by its contents: another clone of the same sources (CI's clean
# clone, the fresh root's /root/vmstack) finds what this one compiled.
# The settings go in the launcher, so a plain `ninja` later uses them too.
if command -v ccache >/dev/null; then
  launcher="env;CCACHE_BASEDIR=$PWD;CCACHE_NOHASHDIR=true;CCACHE_COMPILERCHECK=content;ccache"
  args+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher" "-DCMAKE_C_COMPILER_LAUNCHER=$launcher")
fi
cmake "${args[@]}" >&2
cmake --build "$BUILD_DIR" -j"$(nproc)" >&2

# The demo/test guest: a Debian kernel + busybox initramfs, cached in
# ~/.cache/vmstack/guest (downloaded once with apt-get download).
tools/guest-fixture.sh >/dev/null
