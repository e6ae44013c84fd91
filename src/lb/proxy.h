// vmstack-lb data plane: NAT-mode forwarding done as a user-space TCP/UDP
// proxy (there is no kernel IPVS here).
//
// A few worker threads, each with its own epoll set (edge-triggered) and its
// own SO_REUSEPORT listening socket per virtual service, so the kernel
// spreads new connections and UDP flows over the workers and a flow never
// changes thread. TCP data is moved with read/write through a per-worker
// scratch buffer, or with splice(2) through pooled pipes once a direction
// carries bulk data (SpliceMode::Auto). A direction stops reading while the
// other side cannot take more (back-pressure); an EOF on one side becomes a
// shutdown(SHUT_WR) on the other (half-close). Idle entries expire after the
// ipvsadm --set timeouts (tcp, tcpfin, udp).
//
// The proxy follows the ServiceTable: rule changes open/close listeners, the
// forwarding gate (VRRP backup) closes them all, and it registers itself as
// the table's connection source (ipvsadm -L -c, connection sync).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lb/service_table.h"

namespace vmstack::lb {

enum class SpliceMode { Auto, Always, Never };

struct ProxyOptions {
  int workers = 0;  // 0: one per CPU, at most 4
  SpliceMode splice = SpliceMode::Auto;
  int listen_backlog = 4096;
  // Upper bound on the connect phase (SYN_SENT), capped by the tcp timeout.
  uint32_t connect_timeout_s = 120;
};

// Data-plane totals (all workers), for /metrics.
struct ProxyStats {
  uint64_t tcp_active = 0, udp_active = 0;
  uint64_t accepted = 0;          // TCP connections accepted + UDP flows created
  uint64_t no_dest = 0;           // refused: no real server available
  uint64_t connect_failed = 0;    // real server refused / unreachable
  uint64_t expired = 0;           // closed by a --set timeout
  uint64_t reset = 0;             // aborted by an error on either side
  uint64_t udp_dropped = 0;       // datagrams that could not be forwarded
  uint64_t accept_errors = 0;     // e.g. EMFILE
  uint64_t pipes_in_use = 0;      // splice pipes currently holding data
  uint64_t spliced_bytes = 0;     // bytes moved by splice(2)
  uint64_t listeners = 0;
};

namespace detail {
struct ProxyShared;
}

class Proxy {
 public:
  explicit Proxy(ServiceTable& table, ProxyOptions opts = {});
  ~Proxy();  // stop()
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Starts the workers and opens listeners for the table's services.
  void start();
  // Closes listeners and every proxied connection; idempotent.
  void stop();

  // Waits (bounded) until every worker has opened/closed listeners for the
  // current rules. Rule changes already do this before returning.
  void sync();

  std::vector<ConnEntry> connections() const;
  ProxyStats stats() const;
  // Services whose listener could not be opened ("bind 1.2.3.4:80: ...").
  // The proxy retries them every few hundred milliseconds.
  std::map<ServiceKey, std::string> listener_errors() const;
  int worker_count() const;

 private:
  std::shared_ptr<detail::ProxyShared> sh_;
  std::vector<int> subs_;
  bool started_ = false;
};

// Raises RLIMIT_NOFILE as far as allowed (up to `want`); returns the new soft
// limit. Each proxied TCP connection needs two descriptors.
uint64_t raise_nofile_limit(uint64_t want = 1048576);

}  // namespace vmstack::lb
