#!/usr/bin/env bash
# Measures candidate QEMU boot paths for PV-style direct kernel boot of the
# test guest (tools/guest-fixture.sh) and checks each one works for what
# vmstackd needs: marker reached, serial console answers, QMP stop/cont,
# save to file + restore (-incoming), ACPI power button -> guest powers off.
# It is our record for the choice in docs/guest-fixture.md.
#
#   tools/boot-paths.sh                 # all candidates, RUNS (5) boots each
#   tools/boot-paths.sh b d             # only some candidates
#   RUNS=20 tools/boot-paths.sh e       # hunt for rare hangs
#   tools/boot-paths.sh kvm             # what -accel kvm does with this kernel
#
# Env: RUNS, QEMU (binary), BOOT_DEADLINE (s, default 30), KEEP=1 keeps logs.
# Candidates (all: -accel tcg, 256 MiB, 1 vCPU, -nodefaults, serial on a unix
# socket chardev with logfile, QMP on a unix socket, -no-shutdown):
#   a  q35 + vmlinuz (bzImage, linuxboot option ROM)
#   b  q35 + vmlinux (ELF, PVH entry)
#   c  pc  + vmlinux (PVH)
#   d  microvm,acpi=on,pcie=on,rtc=on + vmlinux + tsc_early_khz=<host kHz>
#      (what build_qemu_argv() produces for PV guests)
#   e  microvm + vmlinux
#   f  q35 + vmlinux, tuned (no hpet/sata/smbus/usb, extra cmdline)
#   g  q35 + vmlinux, tuned + tsc_early_khz
#   h  q35 + vmlinux + tsc_early_khz (untuned machine)
#   i  f with a gzip initrd (needs initrd.img.gz next to initrd.img)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
guest=$("$here/guest-fixture.sh" | tail -n1)
mhz=$(awk -F': *' '/^cpu MHz/ { printf "%d", $2; exit }' /proc/cpuinfo)
export GUEST_DIR=$guest HOST_KHZ=$((mhz * 1000))
exec python3 - "$@" <<'PY'
import json, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time

G = os.environ["GUEST_DIR"]
KHZ = os.environ["HOST_KHZ"]
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
RUNS = int(os.environ.get("RUNS", "5"))
DEADLINE = float(os.environ.get("BOOT_DEADLINE", "30"))
MARKER = b"vmstack-guest: init reached"
BASE_CMDLINE = "console=ttyS0 quiet panic=-1"
TUNE_CMDLINE = "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
TUNE_Q35 = "q35,hpet=off,sata=off,smbus=off,usb=off,vmport=off"

CAND = {
  "a": ("q35 + vmlinuz", "q35", "vmlinuz", "", "initrd.img"),
  "b": ("q35 + vmlinux (PVH)", "q35", "vmlinux", "", "initrd.img"),
  "c": ("pc + vmlinux (PVH)", "pc", "vmlinux", "", "initrd.img"),
  "d": ("microvm + vmlinux + tsc_early_khz (vmstack's PV path)", "microvm,acpi=on,pcie=on,rtc=on", "vmlinux", f"tsc_early_khz={KHZ}", "initrd.img"),
  "e": ("microvm + vmlinux", "microvm", "vmlinux", "", "initrd.img"),
  "f": ("q35 tuned + vmlinux", TUNE_Q35, "vmlinux", TUNE_CMDLINE, "initrd.img"),
  "g": ("q35 tuned + vmlinux + tsc_early_khz", TUNE_Q35, "vmlinux", f"{TUNE_CMDLINE} tsc_early_khz={KHZ}", "initrd.img"),
  "h": ("q35 + vmlinux + tsc_early_khz", "q35", "vmlinux", f"tsc_early_khz={KHZ}", "initrd.img"),
  "i": ("q35 tuned + vmlinux, gzip initrd", TUNE_Q35, "vmlinux", TUNE_CMDLINE, "initrd.img.gz"),
}

def log(*a):
    print(*a, file=sys.stderr, flush=True)

class Qmp:
    def __init__(self, path, timeout=10):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.01)
        self.f = self.s.makefile("rwb")
        self.events = []
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP closed")
            r = json.loads(line)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r.get("return")

    def status(self):
        return self.cmd("query-status")["status"]

class Vm:
    def __init__(self, key, run_dir, incoming=None, accel="tcg"):
        desc, machine, kernel, extra, initrd = CAND[key]
        self.dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.log = os.path.join(run_dir, "console.log")
        self.sock = os.path.join(run_dir, "console.sock")
        self.qmp_path = os.path.join(run_dir, "qmp.sock")
        cmdline = " ".join(x for x in (BASE_CMDLINE, extra) if x)
        argv = [QEMU, "-accel", accel, "-machine", machine, "-m", "256", "-smp", "1",
                "-no-user-config", "-nodefaults", "-display", "none",
                "-chardev", f"socket,id=con0,path={self.sock},server=on,wait=off,logfile={self.log}",
                "-serial", "chardev:con0",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-no-shutdown",
                "-kernel", os.path.join(G, kernel), "-initrd", os.path.join(G, initrd),
                "-append", cmdline]
        if incoming:
            argv += ["-incoming", f"exec:cat {incoming}"]
        self.argv = argv
        self.err = open(os.path.join(run_dir, "qemu.stderr"), "wb")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        self.qmp = None

    def console(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def wait_marker(self, deadline):
        end = self.t0 + deadline
        while time.monotonic() < end:
            if MARKER in self.console():
                return time.monotonic() - self.t0
            if self.p.poll() is not None:
                return None
            time.sleep(0.005)
        return None

    def connect(self):
        self.qmp = Qmp(self.qmp_path)
        return self.qmp

    def ping(self, timeout=8):
        """Types a command on the serial console; True if its output came back."""
        n = random.randint(10000, 99999)
        want = str(n + 1).encode()
        c = socket.socket(socket.AF_UNIX)
        c.connect(self.sock)
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                c.sendall(f"echo $(({n}+1))\n".encode())
                t = time.monotonic() + 1
                while time.monotonic() < t:
                    if any(l.strip() == want for l in self.console().splitlines()):
                        return True
                    time.sleep(0.02)
            return False
        finally:
            c.close()

    def stop(self):
        if self.p.poll() is None:
            try:
                (self.qmp or self.connect()).cmd("quit")
            except Exception:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()

def powerdown(vm, timeout=10):
    q = vm.qmp
    t = time.monotonic()
    q.cmd("system_powerdown")
    while time.monotonic() - t < timeout:
        if vm.p.poll() is not None:
            return time.monotonic() - t, "exited"
        st = q.status()
        if st == "shutdown":
            ev = [e for e in q.events if e["event"] == "SHUTDOWN"]
            why = ev[-1]["data"].get("reason") if ev else "?"
            return time.monotonic() - t, f"shutdown/{why}"
        time.sleep(0.02)
    return None, q.status()

def stop_cont(q):
    q.cmd("stop")
    a = q.status()
    q.cmd("cont")
    b = q.status()
    return a == "paused" and b == "running"

def type_line(vm, text):
    """One line on the serial console (the socket chardev takes one client at a time)."""
    c = socket.socket(socket.AF_UNIX)
    c.connect(vm.sock)
    c.sendall(text.encode() + b"\n")
    time.sleep(0.05)
    c.close()

def guest_cmds(vm, timeout=20):
    """Types reboot (expect a RESET and the marker again), then poweroff."""
    q = vm.qmp
    t = time.monotonic()
    type_line(vm, "reboot")
    while vm.console().count(MARKER) < 2:
        if time.monotonic() - t > timeout:
            return False, "reboot: marker not seen again"
        time.sleep(0.01)
    rb = time.monotonic() - t
    q.cmd("query-status")  # collect events
    reset = any(e["event"] == "RESET" for e in q.events)
    if not vm.ping():
        return False, "serial dead after reboot"
    t = time.monotonic()
    type_line(vm, "poweroff")
    while q.status() != "shutdown":
        if time.monotonic() - t > 10:
            return False, "poweroff: no shutdown"
        time.sleep(0.02)
    return True, (f"reboot -> marker again {rb:.2f}s (RESET event: {reset}), "
                  f"poweroff -> shutdown {time.monotonic() - t:.2f}s")

def save_restore(key, vm, base):
    """stop + migrate to exec:cat > file, quit, restore with -incoming, cont, ping."""
    q = vm.qmp
    state = os.path.join(base, "state.bin")
    t = time.monotonic()
    q.cmd("stop")
    q.cmd("migrate", uri=f"exec:cat > {state}")
    while True:
        m = q.cmd("query-migrate")
        if m.get("status") in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() - t > 60:
            return None, "save timeout"
        time.sleep(0.02)
    if m["status"] != "completed":
        return None, f"save {m['status']}"
    save_s = time.monotonic() - t
    size = os.path.getsize(state)
    vm.stop()
    t = time.monotonic()
    vm2 = Vm(key, os.path.join(base, "restored"), incoming=state)
    try:
        q2 = vm2.connect()
        while True:
            st = q2.status()
            if st not in ("inmigrate", "prelaunch"):
                break
            if time.monotonic() - t > 30:
                return None, f"restore stuck in {st}"
            time.sleep(0.02)
        if st == "paused" or st == "postmigrate":
            q2.cmd("cont")
        restore_s = time.monotonic() - t
        st2 = q2.status()
        ok = st2 == "running" and vm2.ping()
        pd, how = powerdown(vm2)
        detail = (f"save {save_s:.2f}s ({size >> 20} MiB), restore {restore_s:.2f}s "
                  f"(status after load: {st}), serial after restore: {'ok' if ok else 'FAIL'}, "
                  f"powerdown after restore: {f'{pd:.2f}s' if pd else 'FAIL'}")
        return ok and pd is not None, detail
    finally:
        vm2.stop()

def measure(key):
    desc = CAND[key][0]
    log(f"== {key}: {desc}")
    times, pds, fails = [], [], []
    sc_ok, ping_ok, sr, cmds_ok = True, True, None, None
    for i in range(RUNS):
        base = tempfile.mkdtemp(prefix=f"bootpath-{key}{i}-")
        vm = Vm(key, base)
        try:
            t = vm.wait_marker(DEADLINE)
            if t is None:
                tail = vm.console()[-300:].decode(errors="replace")
                fails.append(i)
                log(f"  run {i}: NO MARKER within {DEADLINE}s (exit={vm.p.poll()}); console tail: {tail!r}")
                continue
            times.append(t)
            q = vm.connect()
            p = vm.ping()
            ping_ok &= p
            s = stop_cont(q)
            sc_ok &= s
            if i == 0:
                sr = save_restore(key, vm, base)
                log(f"  run {i}: marker {t:.2f}s, serial {'ok' if p else 'FAIL'}, stop/cont {'ok' if s else 'FAIL'}; {sr[1]}")
                continue
            if i == 1:
                ok, d = guest_cmds(vm)
                cmds_ok = ok
                log(f"  run {i}: marker {t:.2f}s, serial {'ok' if p else 'FAIL'}, stop/cont {'ok' if s else 'FAIL'}; {d}")
                continue
            pd, how = powerdown(vm)
            if pd is not None:
                pds.append(pd)
            log(f"  run {i}: marker {t:.2f}s, serial {'ok' if p else 'FAIL'}, stop/cont {'ok' if s else 'FAIL'}, "
                f"powerdown {f'{pd:.2f}s ({how})' if pd is not None else 'FAIL (' + how + ')'}")
        finally:
            vm.stop()
            if not os.environ.get("KEEP"):
                shutil.rmtree(base, ignore_errors=True)
    row = {"key": key, "desc": desc, "runs": RUNS, "fails": len(fails), "times": times,
           "powerdown": pds, "serial": ping_ok, "stop_cont": sc_ok,
           "save_restore": sr[0] if sr else None, "cmds": cmds_ok}
    return row

def kvm_probe(deadline=15):
    out = []
    for key in ("b", "d"):
        base = tempfile.mkdtemp(prefix=f"bootpath-kvm-{key}-")
        vm = Vm(key, base, accel="kvm")
        try:
            t = vm.wait_marker(deadline)
            con = vm.console()
            err = open(os.path.join(base, "qemu.stderr"), "rb").read().decode(errors="replace")
            st = None
            if vm.p.poll() is None:
                try:
                    st = vm.connect().status()
                    regs = vm.qmp.cmd("human-monitor-command", **{"command-line": "info registers"})
                    rip = [l for l in regs.splitlines() if l.startswith("RIP")]
                except Exception as e:
                    rip = [repr(e)]
            else:
                rip = []
            out.append((key, t, vm.p.poll(), st, len(con), con[-400:].decode(errors="replace"), err[-400:], rip))
        finally:
            vm.stop()
            if not os.environ.get("KEEP"):
                shutil.rmtree(base, ignore_errors=True)
    for key, t, rc, st, n, con, err, rip in out:
        log(f"== kvm {key} ({CAND[key][0]}): marker {'%.2fs' % t if t else 'NOT reached'} in {deadline}s; "
            f"qemu exit={rc}; status={st}; console bytes={n}; {rip}")
        log(f"   console tail: {con!r}")
        log(f"   stderr tail: {err!r}")

def main():
    args = sys.argv[1:]
    if args == ["kvm"]:
        return kvm_probe()
    keys = args or ["a", "b", "c", "d", "e"]
    if "i" in keys and not os.path.exists(os.path.join(G, "initrd.img.gz")):
        subprocess.run(f"gzip -9n < {G}/initrd.img > {G}/initrd.img.gz", shell=True, check=True)
    rows = [measure(k) for k in keys]
    print(f"machine: {os.cpu_count()} host CPUs, {QEMU} -accel tcg, 256 MiB, 1 vCPU, {RUNS} runs")
    print("| path | marker s: median (min-max) | hangs | serial | stop/cont | save/restore | reboot+poweroff cmds | powerdown s (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ts = r["times"]
        tm = f"{statistics.median(ts):.2f} ({min(ts):.2f}-{max(ts):.2f})" if ts else "-"
        pd = f"{statistics.median(r['powerdown']):.2f}" if r["powerdown"] else "-"
        yn = lambda b: "-" if b is None else ("ok" if b else "FAIL")
        print(f"| {r['key']}: {r['desc']} | {tm} | {r['fails']}/{r['runs']} | {yn(r['serial'])} | "
              f"{yn(r['stop_cont'])} | {yn(r['save_restore'])} | {yn(r['cmds'])} | {pd} |")

main()
PY
