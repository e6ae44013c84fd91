#!/usr/bin/env bash
# vmstack-lb benchmark: vmstack-lbd vs HAProxy (Debian's haproxy, TCP mode)
# with the same three HTTP real servers and the same client, in one run,
# inside a private network namespace (loopback only).
#
#   bench/lb/run.sh [BUILD_DIR]        (default: ./build)
#   env: DURATION=10 (s per round)  CONCURRENCY=50  ROUNDS=3  IDLE=9000
#
# Build first:  cmake --build BUILD_DIR --target lb_bench
#
# Measures
#   * connections/s and p50/p90/p99 latency: closed loop, CONCURRENCY clients,
#     one HTTP request per new TCP connection (connect + request + response +
#     close timed together); rounds interleave the targets, the median round
#     (by conns/s) is shown. "direct" is a client talking to one real server
#     with no balancer, for reference.
#   * memory per 10k idle connections: RSS of the balancer process before and
#     after IDLE idle client connections (each also holds a connection to a
#     real server), scaled to 10,000. IDLE defaults to 9000 because the
#     hard RLIMIT_NOFILE here is 20000 and a proxy needs 2 descriptors per
#     connection.
set -euo pipefail

BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)/bin
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-50}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-9000}

for b in vmstack-lbd vmstack-ipvsadm lb_test_httpd lb_loadgen; do
  [[ -x $BIN/$b ]] || { echo "missing $BIN/$b: cmake --build $BUILD --target lb_bench" >&2; exit 2; }
done
command -v haproxy >/dev/null || { echo "haproxy not installed (apt-get install haproxy)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root (network namespace)" >&2; exit 2; }

NS=vmstack-lb-bench-$$
TMP=$(mktemp -d /tmp/vmstack-lb-bench-XXXXXX)
PIDS=()
cleanup() {
  exec 9>&- 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
inns() { ip netns exec "$NS" "$@"; }
# Background processes are started with a plain `ip netns exec` (which
# execs), so $! is the program itself and cleanup can signal it.

ip netns add "$NS"
ip -n "$NS" link set lo up
RS=(127.0.1.1 127.0.1.2 127.0.1.3)
LB_VIP=127.0.2.1
HA_VIP=127.0.2.2

wait_port() {  # addr port
  for _ in $(seq 100); do
    inns bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  exit 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Real servers.
for i in 0 1 2; do
  ip netns exec "$NS" "$BIN/lb_test_httpd" --listen "${RS[$i]}:80" --name "rs$((i + 1))" &
  PIDS+=($!)
done
for a in "${RS[@]}"; do wait_port "$a" 80; done

# vmstack-lbd: rr over the three, NAT (the only mode), 2 workers.
export VMSTACK_LB_SOCKET=$TMP/ctl.sock
ip netns exec "$NS" "$BIN/vmstack-lbd" --state-dir "$TMP/state" --workers 2 2>"$TMP/lbd.log" &
LBD=$!
PIDS+=($LBD)
for _ in $(seq 100); do "$BIN/vmstack-ipvsadm" -L -n >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/vmstack-ipvsadm" -A -t $LB_VIP:80 -s rr
for a in "${RS[@]}"; do "$BIN/vmstack-ipvsadm" -a -t $LB_VIP:80 -r "$a:80" -m; done
wait_port $LB_VIP 80

# HAProxy: the same balancing in TCP mode, 2 threads.
cat >"$TMP/haproxy.cfg" <<EOF
global
  maxconn 9800
  nbthread 2
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind $HA_VIP:80
  default_backend be
backend be
  balance roundrobin
  server rs1 ${RS[0]}:80
  server rs2 ${RS[1]}:80
  server rs3 ${RS[2]}:80
EOF
ip netns exec "$NS" haproxy -f "$TMP/haproxy.cfg" -db 2>"$TMP/haproxy.log" &
HAP=$!
PIDS+=($HAP)
wait_port $HA_VIP 80

declare -A TARGET=([direct]=${RS[0]}:80 [vmstack-lb]=$LB_VIP:80 [haproxy]=$HA_VIP:80)
ORDER=(direct vmstack-lb haproxy)
echo "vmstack-lb benchmark: $ROUNDS rounds x ${DURATION}s, $CONCURRENCY concurrent clients," \
     "1 request per connection; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$ROUNDS"); do
  for t in "${ORDER[@]}"; do
    out=$(inns "$BIN/lb_loadgen" rate --target "${TARGET[$t]}" --concurrency "$CONCURRENCY" \
          --duration "$DURATION" --warmup 1)
    echo "$t $out" >>"$TMP/rate.txt"
    echo "  round $r $t: $out" >&2
  done
done

# Memory per idle connection.
idle_mem() {  # pid target -> "rss_before_kb rss_after_kb established_sockets"
  local pid=$1 target=$2 before after est
  before=$(rss_kb "$pid")
  rm -f "$TMP/hold" "$TMP/idle.out"
  mkfifo "$TMP/hold"
  ip netns exec "$NS" "$BIN/lb_loadgen" idle --target "$target" --count "$IDLE" <"$TMP/hold" >"$TMP/idle.out" &
  local gen=$!
  exec 9>"$TMP/hold"
  for _ in $(seq 600); do grep -q '^ready' "$TMP/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 2
  after=$(rss_kb "$pid")
  est=$(inns ss -Htn state established | wc -l)
  exec 9>&-
  wait "$gen" || true
  sleep 1
  echo "$before $after $est $(cat "$TMP/idle.out")"
}
LBMEM=$(idle_mem $LBD $LB_VIP:80)
HAMEM=$(idle_mem $HAP $HA_VIP:80)

python3 - "$TMP/rate.txt" "$IDLE" "$LBMEM" "$HAMEM" <<'EOF'
import json, sys, statistics
rate_file, idle = sys.argv[1], int(sys.argv[2])
runs = {}
for line in open(rate_file):
    name, js = line.split(" ", 1)
    runs.setdefault(name, []).append(json.loads(js))
print()
print(f"{'target':<12} {'conns/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}   (median of {len(next(iter(runs.values())))} rounds)")
for name in ("direct", "vmstack-lb", "haproxy"):
    rs = sorted(runs[name], key=lambda r: r["conns_per_s"])
    m = rs[len(rs) // 2]
    print(f"{name:<12} {m['conns_per_s']:>9.0f} {m['p50_ms']:>8.3f} {m['p90_ms']:>8.3f} {m['p99_ms']:>8.3f} {sum(r['errors'] for r in rs):>7}")
print()
print(f"{'balancer':<12} {'RSS idle':>10} {'RSS +conns':>11} {'per 10k conns':>14}   ({idle} idle client connections)")
for name, mem in (("vmstack-lb", sys.argv[3]), ("haproxy", sys.argv[4])):
    f = mem.split()
    before, after, est = int(f[0]), int(f[1]), int(f[2])
    ready = int(f[4]) if len(f) > 4 else 0
    per10k = (after - before) * 10000 / max(ready, 1) / 1024
    note = "" if ready == idle else f"  (only {ready} connected)"
    print(f"{name:<12} {before/1024:>8.1f} MiB {after/1024:>8.1f} MiB {per10k:>10.1f} MiB{note}   [{est} established sockets in the namespace]")
EOF
