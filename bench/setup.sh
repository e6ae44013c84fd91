#!/usr/bin/env bash
# Installs what the toolstack benchmark (build/bin/toolstack_bench) needs on
# Debian 12 to measure its peer, libvirt, in the same run. Installs only what
# is missing; safe to run again. Needs root (apt-get, useradd).
#
#   bench/setup.sh
#
# What it installs:
#   libvirt-daemon + libvirt-daemon-driver-qemu  libvirtd with the QEMU driver
#   libvirt-clients                              virsh
#   qemu-system-x86                              (the guests' emulator; vmstack needs it too)
#   util-linux                                   setpriv (starts libvirtd as the bench user)
# --no-install-recommends: no libvirt-daemon-system, so no init scripts, no
# host libvirtd is started and nothing is configured under /etc/libvirt. The
# benchmark starts its own private libvirtd (session mode, run as the
# unprivileged user below, with every dir under its temp dir) and stops it at
# the end; see bench/README.md for why a session daemon.
#
# It also creates the system user the private libvirtd runs as
# (vmstack-bench, no login, no home) and builds the guest fixture
# (tools/guest-fixture.sh) if it is not cached yet.
set -euo pipefail

BENCH_USER=${VMSTACK_BENCH_USER:-vmstack-bench}
log() { printf 'bench/setup: %s\n' "$*" >&2; }

(( EUID == 0 )) || { log "run as root (apt-get install, useradd)"; exit 1; }

pkgs=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing: ${missing[*]}"
  apt-get update -qq
  # policy-rc.d-free: these packages carry no services to start.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  log "packages already installed: ${pkgs[*]}"
fi

for t in libvirtd virsh qemu-system-x86_64 setpriv; do
  command -v "$t" >/dev/null || { log "missing after install: $t"; exit 1; }
done

if ! getent passwd "$BENCH_USER" >/dev/null; then
  log "creating system user $BENCH_USER (runs the benchmark's private libvirtd)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BENCH_USER"
fi

here=$(cd "$(dirname "$0")/.." && pwd)
guest=$("$here/tools/guest-fixture.sh" | tail -n1)
log "guest fixture: $guest"
log "libvirt: $(libvirtd --version 2>/dev/null | head -n1); $(qemu-system-x86_64 --version | head -n1)"
log "ready: build the benchmark (cmake --build build --target toolstack_bench) and run build/bin/toolstack_bench [--quick]"
