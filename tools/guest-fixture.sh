#!/usr/bin/env bash
# Builds (once) and caches the vmstack test/demo guest: a Debian kernel
# (compressed vmlinuz + uncompressed PVH-bootable vmlinux) and a busybox
# initramfs whose /init prints a marker, honours the ACPI power button and
# answers poweroff/reboot. Idempotent; prints the cache directory as the LAST
# stdout line, everything else goes to stderr.
#
#   tools/guest-fixture.sh            # build if needed, print cache dir
#   tools/guest-fixture.sh --rebuild  # force a rebuild
#
# Cache: ${VMSTACK_CACHE:-$HOME/.cache/vmstack}/guest
#   vmlinuz      kernel as shipped (bzImage)
#   vmlinux      uncompressed ELF with the Xen PVH entry note (preferred)
#   initrd.img   newc cpio initramfs (busybox-static, acpid, button+evdev+virtio modules)
#   cmdline      recommended kernel command line additions
#   manifest     key=value: format, kernel version, package, sha256s
# See docs/guest-fixture.md.
set -euo pipefail

FORMAT=5                       # bump when the build output changes
MARKER='vmstack-guest: init reached'
# button+evdev: ACPI power button -> acpid. virtio_*: the guest sees the
# balloon, disks (/dev/vd*) and NICs (eth*) vmstack gives it. Dependencies
# (virtio, virtio_ring, failover...) are resolved from the modules' modinfo.
MODULES=(button evdev virtio_pci virtio_balloon virtio_blk virtio_net)

log() { printf 'guest-fixture: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

rebuild=0
[[ ${1:-} == --rebuild ]] && rebuild=1

cache_root=${VMSTACK_CACHE:-$HOME/.cache/vmstack}
out=$cache_root/guest
mkdir -p "$cache_root"

exec 9>"$cache_root/guest.lock"
flock -x 9

cache_ok() {
  [[ -f $out/manifest ]] || return 1
  grep -qx "format=$FORMAT" "$out/manifest" || return 1
  local f
  for f in vmlinuz vmlinux initrd.img cmdline; do [[ -s $out/$f ]] || return 1; done
}

if (( ! rebuild )) && cache_ok; then
  printf '%s\n' "$out"
  exit 0
fi

for t in apt-cache apt-get dpkg-deb readelf cpio gzip sha256sum od dd; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox not found (apt-get install busybox-static)"
[[ $(file -L "$busybox" 2>/dev/null) == *'statically linked'* ]] \
  || die "$busybox is not static (apt-get install busybox-static)"

work=$(mktemp -d "$cache_root/guest.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1. kernel package -------------------------------------------------------
resolve_pkg() {
  apt-cache depends --no-recommends --no-suggests linux-image-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ && !p { p = $2 } END { print p }'
}
pkg=$(resolve_pkg || true)
if [[ -z $pkg ]]; then
  log "apt-cache knows no linux-image-amd64; running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
  pkg=$(resolve_pkg || true)
fi
[[ -n $pkg ]] || die "cannot resolve linux-image-amd64 to a kernel package"
pkgver=$(apt-cache policy "$pkg" | awk '/Candidate:/ && !v { v = $2 } END { print v }')
log "kernel package: $pkg $pkgver"

apt_opts=()
(( EUID == 0 )) && apt_opts+=(-o APT::Sandbox::User=root)
( cd "$work" && apt-get download -q "${apt_opts[@]}" "$pkg" >&2 ) \
  || die "apt-get download $pkg failed"
deb=$(ls "$work"/*.deb)

# Extract only boot/ and lib/modules (the whole package is ~400 MB unpacked).
mkdir "$work/pkg"
dpkg-deb --fsys-tarfile "$deb" \
  | tar -x -C "$work/pkg" --wildcards './boot/vmlinuz-*' './lib/modules/*' \
  || die "extracting $deb failed"
vmlinuz=$(ls "$work"/pkg/boot/vmlinuz-* | head -n1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$work/pkg/lib/modules/$kver
[[ -d $moddir ]] || die "no modules dir for $kver"
log "kernel version: $kver"

# --- 2. vmlinux from vmlinuz ---------------------------------------------------
u8()  { od -An -t u1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -t u4 -j "$2" -N4 "$1" | tr -d ' '; }
hexat() { od -An -t x1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

# decompressor for the magic at an offset, or nothing
decomp_for() {
  local m; m=$(hexat "$1" "$2" 6)
  case $m in
    fd377a585a00*) echo "xz -dc --single-stream" ;;
    28b52ffd*)     echo "zstd -dcq" ;;
    1f8b08*)       echo "gzip -dc" ;;
    02214c18*)     echo "lz4 -dcq" ;;
    425a68*)       echo "bzip2 -dc" ;;
    5d0000*)       echo "xz -dc --format=lzma" ;;
    894c5a4f*)     echo "lzop -dc" ;;
  esac
}

# Writes vmlinux from a bzImage. Primary: boot protocol header (>= 2.08)
# gives payload_offset/length; fallback: scan for a compression magic.
extract_vmlinux() {
  local img=$1 dst=$2 setup off len cmd
  if [[ $(hexat "$img" $((0x202)) 4) == 48647253 ]]; then   # "HdrS"
    setup=$(u8 "$img" $((0x1f1))); (( setup == 0 )) && setup=4
    off=$(( (setup + 1) * 512 + $(u32 "$img" $((0x248))) ))
    len=$(u32 "$img" $((0x24c)))
    cmd=$(decomp_for "$img" "$off")
    if [[ -n $cmd ]]; then
      # All but gzip carry a 4-byte little-endian size after the stream.
      local body=$len; [[ $cmd != gzip* ]] && body=$((len - 4))
      dd if="$img" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$body" \
         status=none | $cmd > "$dst" 2>/dev/null || true
      if [[ $(hexat "$dst" 0 4) == 7f454c46 ]]; then
        local want; want=$(u32 "$img" $((off + len - 4)))
        local have; have=$(stat -c %s "$dst")
        (( want == have % 4294967296 )) && return 0
        log "size mismatch after header-based extraction ($have != $want)"
      fi
    fi
  fi
  log "header-based extraction failed; scanning for compression magic"
  local magic
  for magic in 'fd377a585a00' '28b52ffd' '1f8b0800' '02214c18' '425a6839' '5d000000'; do
    local pat; pat=$(sed 's/../\\x&/g' <<<"$magic")
    local o
    for o in $(LC_ALL=C grep -obUaP "$pat" "$img" | cut -d: -f1 | head -n 8); do
      cmd=$(decomp_for "$img" "$o"); [[ -n $cmd ]] || continue
      tail -c +$((o + 1)) "$img" | $cmd > "$dst" 2>/dev/null || true
      [[ $(hexat "$dst" 0 4) == 7f454c46 ]] && return 0
    done
  done
  return 1
}

extract_vmlinux "$vmlinuz" "$work/vmlinux" || die "could not extract vmlinux from $vmlinuz"
readelf -h "$work/vmlinux" >/dev/null 2>&1 || die "extracted vmlinux is not an ELF"
# XEN_ELFNOTE_PHYS32_ENTRY (18 = 0x12) in a "Xen" note: QEMU boots it via PVH.
notes=$(readelf -n "$work/vmlinux")
grep -Eq '^[[:space:]]+Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*\(0x00000012\)' <<<"$notes" \
  || die "vmlinux has no Xen PHYS32_ENTRY (PVH) note"
cp "$vmlinuz" "$work/vmlinuz"
log "vmlinux: $(stat -c %s "$work/vmlinux") bytes, PVH note present"

# --- 3. initramfs ----------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,root,etc/acpi/PWRF,lib/modules/"$kver"}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
  [[ $a == busybox || -e $root/bin/$a ]] || ln -s busybox "$root/bin/$a"
done
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

# Module dependencies: modules.dep if the package has one (it usually does
# not: depmod runs at install time), else the "depends=" in each .modinfo.
declare -A modpath=()
while IFS= read -r -d '' f; do
  n=${f##*/}; n=${n%%.ko*}; modpath[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko*' -print0)
mod_deps() {
  local name=$1 f=${modpath[$1]}
  if [[ -f $moddir/modules.dep ]]; then
    local rel=${f#"$moddir"/}
    awk -F': *' -v m="$rel" '$1 == m { print $2 }' "$moddir/modules.dep" \
      | tr ' ' '\n' | sed -n 's#.*/\([^/]*\)\.ko.*#\1#p' | tr - _
  else
    local tmp; tmp=$(mktemp -p "$work")
    ko_plain "$f" "$tmp"
    readelf -p .modinfo "$tmp" 2>/dev/null \
      | sed -n 's/.*depends=\(.*\)$/\1/p' | tr ',' '\n' | sed '/^ *$/d' | tr - _
    rm -f "$tmp"
  fi
}
ko_plain() {   # decompress .ko.xz/.ko.zst/.ko.gz to a plain .ko
  case $1 in
    *.ko.xz)  xz -dc "$1" > "$2" ;;
    *.ko.zst) zstd -dcq "$1" > "$2" ;;
    *.ko.gz)  gzip -dc "$1" > "$2" ;;
    *.ko)     cp "$1" "$2" ;;
  esac
}
load_order=()
declare -A seen=()
visit() {
  local m=${1//-/_}
  [[ -n ${seen[$m]:-} ]] && return 0
  seen[$m]=1
  [[ -n ${modpath[$m]:-} ]] || {
    grep -q "/${1}.ko" "$moddir/modules.builtin" 2>/dev/null && return 0
    die "module $1 not found in $pkg"; }
  local d
  for d in $(mod_deps "$m"); do visit "$d"; done
  load_order+=("$m")
}
for m in "${MODULES[@]}"; do visit "$m"; done
for m in "${load_order[@]}"; do
  ko_plain "${modpath[$m]}" "$root/lib/modules/$kver/$m.ko"
done
log "modules (load order): ${load_order[*]}"

{
  echo '#!/bin/sh'
  echo '# vmstack test guest init (generated by tools/guest-fixture.sh)'
  echo 'export PATH=/bin:/sbin HOME=/root TERM=vt100'
  echo 'mount -t proc proc /proc'
  echo 'mount -t sysfs sysfs /sys'
  echo 'mount -t devtmpfs devtmpfs /dev 2>/dev/null'
  echo 'mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null'
  for m in "${load_order[@]}"; do
    echo "insmod /lib/modules/$kver/$m.ko 2>/dev/null"
  done
  cat <<'EOF'
# busybox poweroff/reboot/halt signal PID 1 (USR2/TERM/USR1): act on them.
trap 'sync; poweroff -f' USR2
trap 'sync; reboot -f' TERM
trap 'sync; halt -f' USR1
# Power button (evdev KEY_POWER) -> /etc/acpi/PWRF/00000080. evdev only
# delivers to readers that have the device open, so a button press before
# acpid opened /dev/input/event* is lost: print the marker (what vmstack and
# the tests wait for) only once acpid holds them.
# The button's input device may register after insmod returns and acpid scans
# /dev/input only at start: wait for the device first (bounded).
n=0
while [ $n -lt 200 ] && ! ls /dev/input/event* >/dev/null 2>&1; do usleep 10000; n=$((n + 1)); done
acpid -f -c /etc/acpi -l /dev/null &
acpid_pid=$!
n=0
while [ $n -lt 200 ] && ! ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q /dev/input/event; do
  usleep 10000; n=$((n + 1))
done
hostname vmstack-guest
echo 'vmstack-guest: init reached' > /dev/console
# Every NIC up and asking for DHCP in the background (a guest without one,
# or on a network without DHCP, boots exactly as before); the address each
# gets is printed on the console (/etc/udhcpc.script).
for nic in /sys/class/net/eth*; do
  [ -e "$nic" ] || continue
  ip link set "${nic##*/}" up
  udhcpc -i "${nic##*/}" -s /etc/udhcpc.script >/dev/null 2>&1 &
done
# A shell on the console, forever; PID 1 waits (reaping orphans) in between.
( while :; do setsid cttyhack sh -l; sleep 1; done ) </dev/console >/dev/console 2>&1 &
while :; do wait; sleep 1; done
EOF
} > "$root/init"
chmod 755 "$root/init"
grep -qF "$MARKER" "$root/init" || die "marker missing from init"

printf '#!/bin/sh\nsync\npoweroff -f\n' > "$root/etc/acpi/PWRF/00000080"
chmod 755 "$root/etc/acpi/PWRF/00000080"
cat > "$root/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# busybox udhcpc's hook: the lease's address and default route on the NIC.
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "vmstack-guest: $interface $ip" > /dev/console ;;
esac
SCRIPT
chmod 755 "$root/etc/udhcpc.script"
printf 'PS1="# "\n' > "$root/etc/profile"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

# Uncompressed newc: measured to boot no slower than gzip (see docs), and it
# skips decompression in the guest. Set VMSTACK_INITRD_GZIP=1 to compress.
( cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio -o -H newc --owner=0:0 --quiet ) > "$work/initrd.cpio"
if [[ ${VMSTACK_INITRD_GZIP:-0} == 1 ]]; then
  gzip -9n < "$work/initrd.cpio" > "$work/initrd.img"; rm "$work/initrd.cpio"
  initrd_fmt=newc+gzip
else
  mv "$work/initrd.cpio" "$work/initrd.img"; initrd_fmt=newc
fi

mhz=$(awk -F': *' '/^cpu MHz/ { printf "%d", $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo "console=ttyS0 quiet panic=-1" > "$work/cmdline"

# --- 4. publish ------------------------------------------------------------------
stage=$work/out
mkdir "$stage"
mv "$work/vmlinuz" "$work/vmlinux" "$work/initrd.img" "$work/cmdline" "$stage/"
{
  echo "format=$FORMAT"
  echo "kernel_version=$kver"
  echo "package=$pkg"
  echo "package_version=$pkgver"
  echo "deb_sha256=$(sha256sum "$deb" | cut -d' ' -f1)"
  echo "marker=$MARKER"
  echo "modules=${load_order[*]}"
  echo "initrd_format=$initrd_fmt"
  echo "busybox=$("$busybox" 2>&1 | head -n1)"
  echo "host_mhz=${mhz:-unknown}"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for f in vmlinuz vmlinux initrd.img cmdline; do
    echo "sha256_$f=$(sha256sum "$stage/$f" | cut -d' ' -f1)"
  done
} > "$stage/manifest.tmp"
mv "$stage/manifest.tmp" "$stage/manifest"

rm -rf "$out.old"
[[ -e $out ]] && mv "$out" "$out.old"
mv "$stage" "$out"
rm -rf "$out.old"
log "built $out"
printf '%s\n' "$out"
