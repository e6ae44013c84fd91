// Internal to the data plane (proxy*.cpp): worker threads, connection
// objects, listeners. Not part of the library's interface.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/fd.h"
#include "lb/proxy.h"

namespace vmstack::lb::detail {

using Millis = int64_t;
Millis now_ms();  // CLOCK_MONOTONIC_COARSE: cheap, ~4 ms resolution

enum class ConnState : uint8_t { SynSent, Established, FinWait, Udp };
const char* state_name(ConnState s);

// What an epoll registration points at.
struct Handle {
  enum Kind : uint8_t { kWake, kListener, kTcpClient, kTcpBackend, kUdpBackend };
  Kind kind;
  void* owner;
};

struct Listener {
  ServiceKey key;
  ServicePtr svc;
  UniqueFd fd;
  Handle h{Handle::kListener, this};
  bool retry_accept = false;  // accept hit EMFILE & co: retry on the next tick
};

// A proxied TCP connection or UDP flow. Linked into its worker's list; the
// fields other threads read (-L -c) are immutable or atomic.
struct Conn {
  virtual ~Conn() = default;
  Conn* prev = nullptr;
  Conn* next = nullptr;
  Proto proto = Proto::TCP;
  ServicePtr svc;
  DestPtr dest;
  Endpoint client, vip;
  bool persistent = false;
  bool dead = false;
  bool active = true;  // counted as ActiveConn on the destination
  std::atomic<ConnState> state{ConnState::SynSent};
  std::atomic<Millis> last_active{0};
};

struct Pipe {
  UniqueFd r, w;
  size_t bytes = 0;  // data sitting in the pipe
};

// One direction of a TCP connection (client->backend or backend->client).
struct Dir {
  std::unique_ptr<Pipe> pipe;        // splice mode: unsent data in a pipe
  std::unique_ptr<char[]> buf;       // copy mode: unsent data
  uint32_t off = 0, len = 0;
  bool eof = false;                  // the source sent FIN
  bool shut = false;                 // FIN passed on (shutdown(SHUT_WR))
  bool splice = false;
  bool pending() const { return (pipe && pipe->bytes) || len > off; }
};

struct TcpConn : Conn {
  UniqueFd cfd, bfd;
  Handle ch{Handle::kTcpClient, this};
  Handle bh{Handle::kTcpBackend, this};
  // Edge-triggered readiness cache: set by events, cleared on EAGAIN.
  bool c_rd = false, c_wr = true, b_rd = false, b_wr = false;
  bool connected = false;
  Dir c2b, b2c;
};

struct UdpFlow : Conn {
  UniqueFd bfd;  // connected to the real server
  Listener* listener = nullptr;
  sockaddr_storage client_sa{};
  socklen_t client_len = 0;
  Handle bh{Handle::kUdpBackend, this};
};

struct UdpKey {
  const Listener* l;
  Endpoint client;
  bool operator==(const UdpKey& o) const { return l == o.l && client == o.client; }
};
struct UdpKeyHash {
  size_t operator()(const UdpKey& k) const;
};

class Worker;

// State shared by the Proxy, its workers and the callbacks registered on the
// ServiceTable (which may outlive a stopped Proxy by a call in flight).
struct ProxyShared {
  ProxyShared(ServiceTable& t, ProxyOptions o) : table(t), opts(std::move(o)) {}
  ServiceTable& table;
  ProxyOptions opts;
  std::vector<std::unique_ptr<Worker>> workers;

  // Desired listener set, versioned; workers apply it and report back.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t gen = 0;
  std::vector<ServicePtr> services;  // empty while forwarding is off
  std::map<ServiceKey, std::string> errors;
  bool stopping = false;

  // Totals.
  std::atomic<uint64_t> tcp_active{0}, udp_active{0}, accepted{0}, no_dest{0},
      connect_failed{0}, expired{0}, reset{0}, udp_dropped{0}, accept_errors{0}, pipes_in_use{0},
      spliced_bytes{0};

  // Recomputes the desired set from the table; true when it changed.
  bool refresh();
  // Wakes the workers and waits until all applied generation `g`.
  void wait_applied(uint64_t g);
};

class Worker {
 public:
  Worker(ProxyShared& sh, int index);
  ~Worker();
  void start();
  void stop();  // joins
  void wake();
  uint64_t applied_gen() const { return applied_gen_.load(); }
  size_t listener_count() const { return nlisteners_.load(); }
  // Snapshot for -L -c (any thread).
  void list_connections(std::vector<ConnEntry>* out, const Timeouts& t, Millis now) const;

 private:
  void run();
  void reconcile(bool retry_only);
  bool open_listener(const ServicePtr& svc, std::string* err);
  void close_listener(const ServiceKey& key);
  void on_listener(Listener* l);
  void sweep();

  // TCP (proxy_tcp.cpp)
  void accept_tcp(Listener* l);
  void new_tcp(Listener* l, UniqueFd cfd, const sockaddr_storage& sa);
  void on_tcp(TcpConn* c, bool client_side, uint32_t ev);
  void pump_conn(TcpConn* c);
  enum class Pump { Ok, Fatal };
  Pump pump(TcpConn* c, Dir& d, int from, int to, bool& from_rd, bool& to_wr, bool inbound);
  Pump flush(Dir& d, int to, bool& to_wr);
  void on_fin(TcpConn* c);
  void account(Conn* c, bool inbound, size_t bytes);

  // UDP (proxy_udp.cpp)
  void read_udp_listener(Listener* l);
  UdpFlow* new_udp_flow(Listener* l, const sockaddr_storage& sa, socklen_t len);
  void on_udp_backend(UdpFlow* f);

  // Shared by both
  // The start of every new flow: a real server picked for the client and a
  // non-blocking socket of `type` connected (for TCP: connecting) to it.
  // No dest when none could be had (already counted, persistence released).
  struct Placement {
    DestPtr dest;
    UniqueFd fd;
    bool persistent = false;
  };
  Placement place(const ServicePtr& svc, const Endpoint& client, int type);
  // Records what every flow carries, counts it as opened and links it.
  void adopt(Conn* c, const Listener* l, const Endpoint& client, const Placement& p);
  void link(Conn* c);
  void close_conn(Conn* c, bool rst);
  ConnEntry entry_of(const Conn* c, const Timeouts& t, Millis now) const;
  void notify_sync(const Conn* c);  // new connection / state change -> sync master
  std::unique_ptr<Pipe> get_pipe();
  void put_pipe(std::unique_ptr<Pipe> p);
  bool epoll_add(int fd, uint32_t events, Handle* h);

  ProxyShared& sh_;
  int index_;
  UniqueFd ep_, wake_;
  Handle wake_h_{Handle::kWake, nullptr};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> applied_gen_{0};
  std::atomic<size_t> nlisteners_{0};
  Millis now_ = 0, last_sweep_ = 0;

  std::map<ServiceKey, std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Listener>> dead_listeners_;  // freed after each epoll batch
  std::unordered_map<UdpKey, UdpFlow*, UdpKeyHash> udp_flows_;
  mutable std::mutex list_mu_;  // guards the conn list links (not the conns' own data)
  Conn* head_ = nullptr;
  std::vector<std::unique_ptr<Conn>> graveyard_;  // freed after each epoll batch
  std::vector<std::unique_ptr<Pipe>> pipe_pool_;
  std::unique_ptr<char[]> scratch_;
};

constexpr size_t kScratchSize = 64 * 1024;
constexpr size_t kSpliceChunk = 64 * 1024;
constexpr size_t kPipePoolMax = 256;

}  // namespace vmstack::lb::detail
