#include "hostile_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace vmstack::test {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kBlockIdle = 1, kBlockSlow = 2, kBlockBodies = 3, kBlockLogins = 4, kBlockPolls = 5;

void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool send_everything(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::string read_to_eof(int fd, std::chrono::milliseconds timeout, const std::atomic<bool>* stop = nullptr) {
  std::string out;
  auto until = clock::now() + timeout;
  char buf[8192];
  while (clock::now() < until && !(stop && *stop)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string xml_call(const std::string& method, const std::vector<std::string>& params) {
  std::string b = "<?xml version=\"1.0\"?><methodCall><methodName>" + method + "</methodName><params>";
  for (const auto& p : params) b += "<param><value>" + p + "</value></param>";
  return b + "</params></methodCall>";
}

// The value of a struct member in an XML-RPC response ("" when absent).
std::string member(const std::string& resp, const std::string& name) {
  auto at = resp.find("<name>" + name + "</name><value>");
  if (at == std::string::npos) return "";
  at += name.size() + 20;
  return resp.substr(at, resp.find('<', at) - at);
}

std::string default_slow_payload() {
  std::string s = "POST / HTTP/1.1\r\nHost: vmstack\r\nContent-Type: text/xml\r\n";
  for (int i = 0; i < 200; ++i) s += "X-Slow-" + std::to_string(i) + ": the rest of this header comes later\r\n";
  return s;
}

}  // namespace

UniqueFd connect_from(const std::string& source, unsigned short port, bool nonblocking) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) return fd;
  // The port is picked at connect time, per destination: thousands of
  // connections from one address do not exhaust it.
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  if (::inet_pton(AF_INET, source.c_str(), &src.sin_addr) != 1 ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
    return {};
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) return {};
  return fd;
}

UniqueFd connect_unix_path(const std::string& path, bool nonblocking) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  // A unix socket connects at once or not at all (EAGAIN: the listener's
  // backlog is full).
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  return fd;
}

std::string raw_xmlrpc(int fd, const std::string& body, std::chrono::milliseconds timeout,
                       const std::atomic<bool>* stop) {
  std::string req = "POST / HTTP/1.1\r\nHost: vmstack\r\nContent-Type: text/xml\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!send_everything(fd, req.data(), req.size())) return {};
  return read_to_eof(fd, timeout, stop);
}

long raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur == RLIM_INFINITY ? 1 << 30 : static_cast<long>(rl.rlim_cur);
}

Attack::Attack(AttackPlan plan) : plan_(std::move(plan)) {
  if (plan_.slow_payload.empty()) plan_.slow_payload = default_slow_payload();
}

Attack::~Attack() { stop(); }

std::string Attack::source(int block, int index) const {
  int group = index / std::max(1, block == kBlockLogins ? 1 : plan_.per_source);
  return "127." + std::to_string(block) + "." + std::to_string(group / 250) + "." + std::to_string(group % 250 + 1);
}

UniqueFd Attack::connect(const std::string& src, bool nonblocking) const {
  return plan_.tcp_port ? connect_from(src, plan_.tcp_port, nonblocking) : connect_unix_path(plan_.unix_path, nonblocking);
}

void Attack::start() {
  if (plan_.idle + plan_.slowloris > 0) threads_.emplace_back([this] { run_connections(); });
  for (int i = 0; i < plan_.big_bodies; ++i) threads_.emplace_back([this, i] { run_big_body(i); });
  for (int i = 0; i < plan_.wrong_logins; ++i) threads_.emplace_back([this, i] { run_login(i); });
  for (int i = 0; i < plan_.long_polls; ++i) threads_.emplace_back([this, i] { run_poll(i); });
}

void Attack::stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Attack::run_connections() {
  struct Slot {
    UniqueFd fd;
    bool slow = false;
    int index = 0;
    std::size_t sent = 0;
    clock::time_point next_byte, retry_at;
    bool ever = false;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(plan_.idle + plan_.slowloris));
  std::mt19937 rng(42);
  for (int i = 0; i < static_cast<int>(slots.size()); ++i) {
    slots[i].slow = i >= plan_.idle;
    slots[i].index = slots[i].slow ? i - plan_.idle : i;
  }
  std::vector<pollfd> pfds;
  std::vector<Slot*> owners;
  char buf[4096];
  while (!stop_) {
    auto now = clock::now();
    int budget = 1000;  // connects per round: a burst, not a storm
    for (auto& s : slots) {
      if (s.fd || s.retry_at > now || budget <= 0) continue;
      --budget;
      s.fd = connect(source(s.slow ? kBlockSlow : kBlockIdle, s.index), true);
      if (!s.fd) {
        s.retry_at = now + 1s;
        continue;
      }
      ++(s.ever ? counts_.reopened : counts_.opened);
      s.ever = true;
      s.sent = 0;
      // Spread the trickles over the interval instead of sending in waves.
      s.next_byte = now + std::chrono::milliseconds(rng() % (plan_.trickle_every.count() + 1));
    }
    for (auto& s : slots) {
      if (!s.fd || !s.slow || s.next_byte > now) continue;
      char b = plan_.slow_payload[s.sent % plan_.slow_payload.size()];
      ssize_t n = ::send(s.fd.get(), &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == 1) {
        ++s.sent;
        ++counts_.trickled;
      } else if (errno != EAGAIN && errno != ENOTCONN) {
        s.fd.reset();
        s.retry_at = now + 1s;
        continue;
      }
      s.next_byte = now + plan_.trickle_every;
    }
    pfds.clear();
    owners.clear();
    for (auto& s : slots) {
      if (!s.fd) continue;
      pfds.push_back({s.fd.get(), POLLIN | POLLRDHUP, 0});
      owners.push_back(&s);
    }
    open_now_ = static_cast<long>(pfds.size());
    if (::poll(pfds.data(), pfds.size(), 100) <= 0) continue;
    now = clock::now();
    for (std::size_t i = 0; i < pfds.size(); ++i) {
      if (!pfds[i].revents) continue;
      Slot& s = *owners[i];
      ssize_t n = ::recv(s.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      // Closed, or an answer (408, 503): the server is done with it.
      if (n > 0 && std::strncmp(buf, "HTTP/1.1 503", 12) == 0) ++counts_.refused;
      s.fd.reset();
      s.retry_at = now + 1s;
    }
  }
}

void Attack::run_big_body(int index) {
  const std::string prefix =
      "<?xml version=\"1.0\"?><methodCall><methodName>VM.set_name_description</methodName><params>"
      "<param><value>OpaqueRef:forged-" +
      std::to_string(index) + "</value></param><param><value>OpaqueRef:x</value></param><param><value>";
  const std::string suffix = "</value></param></params></methodCall>";
  const std::size_t total = std::max(plan_.big_body_bytes, prefix.size() + suffix.size());
  const std::string header = "POST / HTTP/1.1\r\nHost: vmstack\r\nContent-Type: text/xml\r\nConnection: close\r\n"
                             "Content-Length: " + std::to_string(total) + "\r\n\r\n";
  const std::string chunk(64u << 10, 'x');
  while (!stop_) {
    UniqueFd fd = connect(source(kBlockBodies, index), false);
    if (!fd) {
      std::this_thread::sleep_for(100ms);
      continue;
    }
    set_timeouts(fd.get(), 10s);
    ++counts_.bodies_sent;
    std::string first = header + prefix;
    bool ok = send_everything(fd.get(), first.data(), first.size());
    std::size_t left = total - prefix.size() - suffix.size();
    while (ok && left > 0 && !stop_) {
      std::size_t n = std::min(left, chunk.size());
      ok = send_everything(fd.get(), chunk.data(), n);
      left -= n;
    }
    if (ok) send_everything(fd.get(), suffix.data(), suffix.size());
    std::string resp = read_to_eof(fd.get(), 10s, &stop_);
    if (resp.find("SESSION_INVALID") != std::string::npos || resp.rfind("HTTP/1.1 413", 0) == 0) ++counts_.bodies_refused;
  }
}

void Attack::run_login(int index) {
  const std::string body = xml_call("session.login_with_password", {"root", "wrong-" + std::to_string(index), "1.0", "attack"});
  while (!stop_) {
    UniqueFd fd = connect(source(kBlockLogins, index), false);
    if (fd) {
      set_timeouts(fd.get(), 10s);
      std::string resp = raw_xmlrpc(fd.get(), body, 10s, &stop_);
      ++counts_.logins;
      if (resp.find("SESSION_AUTHENTICATION_FAILED") != std::string::npos) ++counts_.logins_refused;
    }
    std::this_thread::sleep_for(100ms);  // a burst per thread, then steady pressure
  }
}

void Attack::run_poll(int index) {
  std::string token;
  while (!stop_) {
    UniqueFd fd = connect(source(kBlockPolls, index), false);
    if (!fd) {
      std::this_thread::sleep_for(100ms);
      continue;
    }
    set_timeouts(fd.get(), 20s);
    std::string resp;
    if (token.empty()) {
      resp = raw_xmlrpc(fd.get(), xml_call("event.from", {plan_.session, "<array><data><value>VM</value></data></array>", "", "<double>0</double>"}), 10s, &stop_);
    } else {
      ++counts_.polls;
      resp = raw_xmlrpc(fd.get(), xml_call("event.from", {plan_.session, "<array><data><value>VM</value></data></array>", token, "<double>10</double>"}), 20s, &stop_);
    }
    std::string t = member(resp, "token");
    if (t.empty()) {
      std::this_thread::sleep_for(100ms);
      continue;
    }
    if (!token.empty()) ++counts_.polls_answered;
    token = t;
  }
}

}  // namespace vmstack::test
