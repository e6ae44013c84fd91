#include "lb/sync.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace vmstack::lb::ha {

namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 12;
const char* const kStates[] = {"NONE",      "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT",
                               "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",
                               "SYNACK",    "UDP"};
constexpr size_t kNumStates = sizeof kStates / sizeof kStates[0];

uint8_t state_code(const std::string& s) {
  for (size_t i = 0; i < kNumStates; ++i)
    if (s == kStates[i]) return static_cast<uint8_t>(i);
  return 0;
}

size_t entry_size(const ConnEntry& e) { return e.client.addr.family == AF_INET6 ? 8 + 3 * 18 : 8 + 3 * 6; }

void put_ep(std::vector<uint8_t>& b, const Endpoint& ep, bool v6) {
  b.insert(b.end(), ep.addr.bytes.begin(), ep.addr.bytes.begin() + (v6 ? 16 : 4));
  b.push_back(static_cast<uint8_t>(ep.port >> 8));
  b.push_back(static_cast<uint8_t>(ep.port & 0xff));
}

Endpoint get_ep(const uint8_t*& p, bool v6) {
  Endpoint ep;
  ep.addr.family = v6 ? AF_INET6 : AF_INET;
  std::memcpy(ep.addr.bytes.data(), p, v6 ? 16 : 4);
  p += v6 ? 16 : 4;
  ep.port = static_cast<uint16_t>((p[0] << 8) | p[1]);
  p += 2;
  return ep;
}

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
uint32_t get32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::pair<uint32_t, uint16_t> parse_peer(const std::string& s, uint16_t default_port) {
  std::string ip = s;
  unsigned long port = default_port;
  auto colon = s.find(':');
  if (colon != std::string::npos) {
    ip = s.substr(0, colon);
    std::string p = s.substr(colon + 1);
    char* end = nullptr;
    port = p.empty() ? 0 : std::strtoul(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || port == 0 || port > 65535)
      throw std::runtime_error("sync: invalid port in peer address " + s);
  }
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) throw std::runtime_error("sync: invalid peer address " + s);
  return {a.s_addr, htons(static_cast<uint16_t>(port))};
}

void wake(int fd) {
  uint64_t one = 1;
  if (fd >= 0) {
    [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
  }
}

}  // namespace

std::vector<std::vector<uint8_t>> encode_sync(uint8_t sync_id, uint32_t& seq,
                                              const std::vector<ConnEntry>& entries, size_t mtu) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> cur;
  uint16_t count = 0;
  auto flush = [&] {
    if (count == 0) return;
    cur[6] = static_cast<uint8_t>(count >> 8);
    cur[7] = static_cast<uint8_t>(count & 0xff);
    out.push_back(std::move(cur));
    cur.clear();
    count = 0;
  };
  for (const auto& e : entries) {
    bool v6 = e.client.addr.family == AF_INET6;
    if (!cur.empty() && (cur.size() + entry_size(e) > mtu || count == 0xffff)) flush();
    if (cur.empty()) {
      cur = {'V', 'L', 'B', 'S', kVersion, sync_id, 0, 0};
      put32(cur, seq++);
    }
    cur.push_back(static_cast<uint8_t>((e.is_template ? 1 : 0) | (v6 ? 2 : 0)));
    cur.push_back(static_cast<uint8_t>(e.proto));
    cur.push_back(state_code(e.state));
    cur.push_back(0);
    put32(cur, e.expires_ms);
    put_ep(cur, e.client, v6);
    put_ep(cur, e.vip, v6);
    put_ep(cur, e.dest, v6);
    ++count;
  }
  flush();
  return out;
}

std::optional<SyncPacket> decode_sync(const uint8_t* d, size_t len) {
  if (len < kHeader || std::memcmp(d, "VLBS", 4) != 0 || d[4] != kVersion) return std::nullopt;
  SyncPacket p;
  p.sync_id = d[5];
  size_t count = (size_t(d[6]) << 8) | d[7];
  p.seq = get32(d + 8);
  const uint8_t* q = d + kHeader;
  const uint8_t* end = d + len;
  for (size_t i = 0; i < count; ++i) {
    if (end - q < 8) return std::nullopt;
    uint8_t flags = q[0];
    bool v6 = flags & 2;
    size_t need = 8 + 3 * (v6 ? 18 : 6);
    if (size_t(end - q) < need) return std::nullopt;
    if (q[1] > 1 || q[2] >= kNumStates) return std::nullopt;
    ConnEntry e;
    e.is_template = flags & 1;
    e.proto = static_cast<Proto>(q[1]);
    e.state = kStates[q[2]];
    e.expires_ms = get32(q + 4);
    q += 8;
    e.client = get_ep(q, v6);
    e.vip = get_ep(q, v6);
    e.dest = get_ep(q, v6);
    e.synced = true;
    p.entries.push_back(std::move(e));
  }
  if (q != end) return std::nullopt;
  return p;
}

// ---------------------------------------------------------------------------

SyncMaster::SyncMaster(SyncConfig cfg, std::function<std::vector<ConnEntry>()> snapshot)
    : cfg_(std::move(cfg)), snapshot_(std::move(snapshot)) {}

SyncMaster::~SyncMaster() { stop(); }

void SyncMaster::start() {
  if (running_.load()) return;
  dests_.clear();
  if (cfg_.peers.empty()) dests_.push_back(parse_peer(cfg_.mcast_group, cfg_.port));
  else
    for (const auto& p : cfg_.peers) dests_.push_back(parse_peer(p, cfg_.port));
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error(std::string("sync: socket: ") + std::strerror(errno));
  if (cfg_.peers.empty()) {
    int ttl = 1;
    setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    if (!cfg_.interface.empty()) {
      ip_mreqn m{};
      m.imr_ifindex = static_cast<int>(if_nametoindex(cfg_.interface.c_str()));
      if (m.imr_ifindex == 0) throw std::runtime_error("sync: no such interface: " + cfg_.interface);
      setsockopt(fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
    }
  }
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) throw std::runtime_error(std::string("sync: eventfd: ") + std::strerror(errno));
  fd_ = std::move(fd);
  wake_fd_ = std::move(wake);
  running_ = true;
  full_now_ = true;
  thread_ = std::thread([this] { loop(); });
}

void SyncMaster::stop() {
  if (!running_.exchange(false)) return;
  wake(wake_fd_.get());
  if (thread_.joinable()) thread_.join();
  fd_.reset();
  wake_fd_.reset();
}

void SyncMaster::push(const ConnEntry& e) {
  if (e.synced && !e.is_template) return;
  std::lock_guard lk(mu_);
  if (queue_.size() >= cfg_.max_queue) queue_.pop_front();
  queue_.push_back(e);
}

void SyncMaster::sync_now() {
  full_now_ = true;
  wake(wake_fd_.get());
}

void SyncMaster::send_entries(const std::vector<ConnEntry>& v) {
  for (const auto& pkt : encode_sync(cfg_.sync_id, seq_, v, cfg_.mtu)) {
    for (const auto& [addr, port] : dests_) {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = addr;
      sa.sin_port = port;
      if (::sendto(fd_.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) >= 0)
        sent_packets_.fetch_add(1);
    }
  }
  sent_entries_.fetch_add(v.size());
}

void SyncMaster::loop() {
  double next_full = now_s() + cfg_.full_sync_interval_s;
  while (running_.load()) {
    pollfd pfd{wake_fd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(cfg_.flush_interval_s * 1000) + 1);
    if (pfd.revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto n = ::read(wake_fd_.get(), &v, sizeof v);
    }
    std::vector<ConnEntry> batch;
    {
      std::lock_guard lk(mu_);
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    double now = now_s();
    if (full_now_.exchange(false) || (cfg_.full_sync_interval_s > 0 && now >= next_full)) {
      next_full = now + cfg_.full_sync_interval_s;
      if (snapshot_) {
        for (auto& e : snapshot_())
          if (e.is_template || !e.synced) batch.push_back(std::move(e));
      }
    }
    if (!batch.empty()) send_entries(batch);
  }
}

// ---------------------------------------------------------------------------

SyncBackup::SyncBackup(SyncConfig cfg, std::function<size_t(const std::vector<ConnEntry>&)> import)
    : cfg_(std::move(cfg)), import_(std::move(import)) {}

SyncBackup::~SyncBackup() { stop(); }

void SyncBackup::start() {
  if (running_.load()) return;
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error(std::string("sync: socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(cfg_.port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (!cfg_.bind_addr.empty() && inet_pton(AF_INET, cfg_.bind_addr.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("sync: invalid bind address " + cfg_.bind_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    throw std::runtime_error("sync: bind port " + std::to_string(cfg_.port) + ": " + std::strerror(errno));
  if (cfg_.peers.empty()) {
    ip_mreqn mr{};
    if (inet_pton(AF_INET, cfg_.mcast_group.c_str(), &mr.imr_multiaddr) != 1)
      throw std::runtime_error("sync: invalid multicast group " + cfg_.mcast_group);
    if (!cfg_.interface.empty()) mr.imr_ifindex = static_cast<int>(if_nametoindex(cfg_.interface.c_str()));
    if (setsockopt(fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
      throw std::runtime_error("sync: join " + cfg_.mcast_group + ": " + std::strerror(errno));
  }
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) throw std::runtime_error(std::string("sync: eventfd: ") + std::strerror(errno));
  fd_ = std::move(fd);
  wake_fd_ = std::move(wake);
  running_ = true;
  thread_ = std::thread([this] { loop(); });
}

void SyncBackup::stop() {
  if (!running_.exchange(false)) return;
  wake(wake_fd_.get());
  if (thread_.joinable()) thread_.join();
  fd_.reset();
  wake_fd_.reset();
}

void SyncBackup::loop() {
  std::vector<uint8_t> buf(65536);
  while (running_.load()) {
    pollfd pfd[2] = {{fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(pfd, 2, 1000) <= 0) continue;
    if (!(pfd[0].revents & POLLIN)) continue;
    for (int i = 0; i < 256; ++i) {
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n < 0) break;
      auto p = decode_sync(buf.data(), static_cast<size_t>(n));
      if (!p || p->sync_id != cfg_.sync_id) {
        dropped_.fetch_add(1);
        continue;
      }
      recv_entries_.fetch_add(p->entries.size());
      if (import_ && !p->entries.empty()) accepted_.fetch_add(import_(p->entries));
    }
  }
}

}  // namespace vmstack::lb::ha
