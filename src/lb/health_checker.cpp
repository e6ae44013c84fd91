#include "lb/health_checker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/strings.h"

namespace vmstack::lb::ha {

const char* to_string(RealStatus s) {
  switch (s) {
    case RealStatus::Unknown: return "unknown";
    case RealStatus::Up: return "up";
    case RealStatus::Down: return "down";
  }
  return "?";
}

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

socklen_t to_sockaddr(const HostPort& ep, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (ep.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(ep.port);
    inet_pton(AF_INET6, ep.addr.c_str(), &s6->sin6_addr);
    return sizeof *s6;
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(ep.port);
  inet_pton(AF_INET, ep.addr.c_str(), &s4->sin_addr);
  return sizeof *s4;
}

// What one probe does; built from the virtual/real config.
struct ProbeSpec {
  HostPort ep;
  double timeout = 5;
  std::string request;   // bytes to send after connect (empty: none)
  std::string receive;   // substring required in the response (empty: none)
  bool http = false;     // response must start with a 2xx/3xx status line
  bool read = false;     // wait for a response at all
};

// A non-blocking probe state machine: Connecting -> Sending -> Receiving.
struct ProbeIo {
  enum Phase { Connecting, Sending, Receiving };
  UniqueFd fd;
  Phase phase = Connecting;
  double deadline = 0;
  ProbeSpec spec;
  size_t sent = 0;
  std::string in;

  void close_fd() { fd.reset(); }
  short events() const { return phase == Receiving ? POLLIN : POLLOUT; }
};

bool http_status_ok(const std::string& in, bool* complete) {
  auto eol = in.find("\r\n");
  if (eol == std::string::npos) eol = in.find('\n');
  *complete = eol != std::string::npos;
  if (!*complete) return false;
  // "HTTP/1.1 200 OK"
  if (!starts_with(in, "HTTP/")) return false;
  auto sp = in.find(' ');
  if (sp == std::string::npos || sp + 4 > in.size()) return false;
  char c = in[sp + 1];
  return (c == '2' || c == '3') && isdigit(static_cast<unsigned char>(in[sp + 2])) &&
         isdigit(static_cast<unsigned char>(in[sp + 3]));
}

// Evaluate the response so far. Returns a result when decided.
std::optional<CheckResult> evaluate(const ProbeSpec& s, const std::string& in, bool eof) {
  if (s.http) {
    bool complete = false;
    bool ok = http_status_ok(in, &complete);
    if (complete && !ok) {
      auto eol = in.find_first_of("\r\n");
      return CheckResult{false, "bad HTTP status: " + in.substr(0, std::min<size_t>(eol, 80))};
    }
    if (complete && ok && (s.receive.empty() || in.find(s.receive) != std::string::npos))
      return CheckResult{true, "HTTP ok"};
    if (eof) {
      if (!complete) return CheckResult{false, "no HTTP status line"};
      return CheckResult{false, "response does not contain \"" + s.receive + "\""};
    }
    return std::nullopt;
  }
  if (!s.receive.empty() && in.find(s.receive) != std::string::npos) return CheckResult{true, "received"};
  if (eof) return CheckResult{false, "response does not contain \"" + s.receive + "\""};
  return std::nullopt;
}

constexpr size_t kMaxResponse = 64 * 1024;

// Start: returns a result when decided immediately (error).
std::optional<CheckResult> probe_start(ProbeIo& p, const ProbeSpec& spec, double now) {
  p.spec = spec;
  p.deadline = now + spec.timeout;
  p.fd.reset(::socket(spec.ep.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!p.fd) return CheckResult{false, std::string("socket: ") + std::strerror(errno)};
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(spec.ep, &ss);
  int rc = ::connect(p.fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    p.close_fd();
    return CheckResult{false, std::strerror(e)};
  }
  p.phase = ProbeIo::Connecting;
  return std::nullopt;
}

// Advance after poll() said the fd is ready (or errored).
std::optional<CheckResult> probe_step(ProbeIo& p, short revents) {
  if (p.phase == ProbeIo::Connecting) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(p.fd.get(), SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
    if (err != 0) return CheckResult{false, std::strerror(err)};
    if (!(revents & POLLOUT)) return CheckResult{false, "connect failed"};
    if (p.spec.request.empty()) {
      if (!p.spec.read) return CheckResult{true, "connected"};
      p.phase = ProbeIo::Receiving;
      return std::nullopt;
    }
    p.phase = ProbeIo::Sending;
  }
  if (p.phase == ProbeIo::Sending) {
    while (p.sent < p.spec.request.size()) {
      ssize_t n = ::send(p.fd.get(), p.spec.request.data() + p.sent, p.spec.request.size() - p.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        return CheckResult{false, std::string("send: ") + std::strerror(errno)};
      }
      p.sent += static_cast<size_t>(n);
    }
    if (!p.spec.read) return CheckResult{true, "sent"};
    p.phase = ProbeIo::Receiving;
    return std::nullopt;  // wait for POLLIN
  }
  // Receiving
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(p.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      p.in.append(buf, static_cast<size_t>(n));
      if (auto r = evaluate(p.spec, p.in, false)) return r;
      if (p.in.size() > kMaxResponse) return evaluate(p.spec, p.in, true);
      continue;
    }
    if (n == 0) return evaluate(p.spec, p.in, true);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    if (errno == EINTR) continue;
    return CheckResult{false, std::string("recv: ") + std::strerror(errno)};
  }
}

CheckResult run_blocking(const ProbeSpec& spec) {
  ProbeIo p;
  double now = now_s();
  if (auto r = probe_start(p, spec, now)) return *r;
  for (;;) {
    now = now_s();
    if (now >= p.deadline) return CheckResult{false, "timeout"};
    pollfd pfd{p.fd.get(), p.events(), 0};
    int ms = static_cast<int>((p.deadline - now) * 1000) + 1;
    int rc = ::poll(&pfd, 1, ms);
    if (rc < 0 && errno != EINTR) return CheckResult{false, std::string("poll: ") + std::strerror(errno)};
    if (rc > 0)
      if (auto r = probe_step(p, pfd.revents)) return *r;
  }
}

std::string http_request(const std::string& method, std::string path, const std::string& host) {
  if (starts_with(path, "http://")) {  // full URL: keep the path part
    auto slash = path.find('/', 7);
    path = slash == std::string::npos ? "/" : path.substr(slash);
  }
  if (path.empty() || path[0] != '/') path = "/" + path;
  return method + " " + path + " HTTP/1.0\r\nHost: " + host +
         "\r\nUser-Agent: vmstack-lb-health/1\r\nConnection: close\r\n\r\n";
}

std::string host_header(const VirtualService& vs, const HostPort& ep) {
  if (!vs.virtualhost.empty()) return vs.virtualhost;
  std::string h = ep.v6 ? "[" + ep.addr + "]" : ep.addr;
  if (ep.port != 80) h += ":" + std::to_string(ep.port);
  return h;
}

ProbeSpec make_spec(const VirtualService& vs, const RealServer& r) {
  ProbeSpec s;
  s.ep = r.ep;
  if (vs.checkport) s.ep.port = *vs.checkport;
  if (vs.checktype == CheckType::Connect) {
    s.timeout = vs.checktimeout;
    return s;
  }
  s.timeout = vs.negotiatetimeout;
  std::string request = r.request.value_or(vs.request);
  std::string receive = r.receive.value_or(vs.receive);
  if (vs.service == ServiceKind::Http) {
    s.http = true;
    s.read = true;
    s.request = http_request(vs.httpmethod, request, host_header(vs, s.ep));
    s.receive = receive;
  } else {
    // service=tcp: optional raw request, optional expected substring.
    s.request = (request == "/" && !r.request) ? std::string() : request;
    s.receive = receive;
    s.read = !receive.empty();
  }
  return s;
}

}  // namespace

CheckResult check_connect(const HostPort& ep, double timeout_s) {
  ProbeSpec s;
  s.ep = ep;
  s.timeout = timeout_s;
  return run_blocking(s);
}

CheckResult check_http(const HostPort& ep, const std::string& host, const std::string& method,
                       const std::string& path, const std::string& receive, double timeout_s) {
  ProbeSpec s;
  s.ep = ep;
  s.timeout = timeout_s;
  s.http = true;
  s.read = true;
  s.request = http_request(method, path, host);
  s.receive = receive;
  return run_blocking(s);
}

// ---------------------------------------------------------------------------

struct HealthChecker::RealState {
  RealServer cfg;
  RealStatus status = RealStatus::Unknown;
  unsigned fails = 0;
  bool probing = false;
  double next_due = 0;
  std::string detail;
};

struct HealthChecker::VirtState {
  struct Applied {
    int weight = 0;
    bool quiesced = false;
  };
  VirtualService cfg;
  std::vector<std::unique_ptr<RealState>> reals;
  std::map<HostPort, Applied> applied;
  bool created = false;
  bool fallback_on = false;
};

struct HealthChecker::Probe {
  ProbeIo io;
  VirtState* v = nullptr;
  RealState* r = nullptr;
};

HealthChecker::HealthChecker(LdirectordConfig cfg, HealthTarget& target, Options opts)
    : target_(target), opts_(std::move(opts)), cfg_(std::move(cfg)) {
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) throw std::runtime_error(std::string("health: eventfd: ") + std::strerror(errno));
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void HealthChecker::start() {
  if (running_.exchange(true)) return;
  {
    std::lock_guard lk(mu_);
    for (const auto& w : cfg_.warnings) spdlog::warn("health: {}", w);
    if (!opts_.config_path.empty()) {
      struct stat st{};
      if (::stat(opts_.config_path.c_str(), &st) == 0) {
        last_mtime_ns_ = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        last_size_ = st.st_size;
        std::ifstream f(opts_.config_path, std::ios::binary);
        std::ostringstream ss;
        ss << f.rdbuf();
        last_text_ = ss.str();
      }
    }
    next_reload_poll_ = now_s() + opts_.reload_poll_s;
    LdirectordConfig c = cfg_;
    apply_config(std::move(c));
  }
  thread_ = std::thread([this] { loop(); });
}

void HealthChecker::stop() {
  if (!running_.exchange(false)) return;
  wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lk(mu_);
  probes_.clear();
  if (opts_.remove_on_stop) {
    for (auto& v : virts_) {
      if (!v->created) continue;
      try {
        target_.remove_virtual(v->cfg);
      } catch (const std::exception& e) {
        spdlog::warn("health: remove {}: {}", v->cfg.key(), e.what());
      }
    }
    virts_.clear();
  }
}

void HealthChecker::reload(LdirectordConfig cfg) {
  {
    std::lock_guard lk(mu_);
    pending_ = std::make_unique<LdirectordConfig>(std::move(cfg));
  }
  wake();
}

bool HealthChecker::reload_from_file() {
  if (opts_.config_path.empty()) return false;
  try {
    auto cfg = load_ldirectord_config(opts_.config_path);
    for (const auto& w : cfg.warnings) spdlog::warn("health: {}", w);
    spdlog::info("health: configuration reloaded from {}", opts_.config_path);
    reload(std::move(cfg));
    return true;
  } catch (const ConfigError& e) {
    spdlog::error("health: reload failed, keeping the old configuration: {}", e.what());
    return false;
  }
}

LdirectordConfig HealthChecker::config() const {
  std::lock_guard lk(mu_);
  return cfg_;
}

std::vector<HealthChecker::RealReport> HealthChecker::status() const {
  std::lock_guard lk(mu_);
  std::vector<RealReport> out;
  for (const auto& v : virts_) {
    for (const auto& r : v->reals) {
      RealReport rr;
      rr.virtual_key = v->cfg.key();
      rr.real = r->cfg.ep;
      rr.status = r->status;
      rr.last_detail = r->detail;
      auto it = v->applied.find(r->cfg.ep);
      if (it != v->applied.end()) {
        rr.present = true;
        rr.quiesced = it->second.quiesced;
        rr.weight = it->second.weight;
      }
      out.push_back(std::move(rr));
    }
    if (v->cfg.fallback) {
      RealReport rr;
      rr.virtual_key = v->cfg.key();
      rr.real = *v->cfg.fallback;
      rr.fallback = true;
      rr.status = v->fallback_on ? RealStatus::Up : RealStatus::Unknown;
      auto it = v->applied.find(*v->cfg.fallback);
      if (it != v->applied.end() && v->fallback_on) {
        rr.present = true;
        rr.weight = it->second.weight;
      }
      out.push_back(std::move(rr));
    }
  }
  return out;
}

void HealthChecker::apply_config(LdirectordConfig cfg) {
  probes_.clear();  // in-flight probes refer to the old state
  std::vector<std::unique_ptr<VirtState>> next;
  std::set<std::string> keep;
  for (const auto& vs : cfg.virtuals) keep.insert(vs.key());
  for (auto& v : virts_) {
    if (keep.count(v->cfg.key())) continue;
    if (v->created) {
      try {
        target_.remove_virtual(v->cfg);
        spdlog::info("health: removed virtual service {}", v->cfg.key());
      } catch (const std::exception& e) {
        spdlog::warn("health: remove {}: {}", v->cfg.key(), e.what());
      }
    }
  }
  for (const auto& vs : cfg.virtuals) {
    std::unique_ptr<VirtState> st;
    for (auto& v : virts_)
      if (v && v->cfg.key() == vs.key()) st = std::move(v);
    if (!st) st = std::make_unique<VirtState>();
    std::vector<std::unique_ptr<RealState>> reals;
    for (const auto& r : vs.reals) {
      std::unique_ptr<RealState> rs;
      for (auto& o : st->reals)
        if (o && o->cfg.ep == r.ep) rs = std::move(o);
      if (!rs) rs = std::make_unique<RealState>();
      rs->cfg = r;
      rs->probing = false;
      rs->next_due = 0;
      if (vs.checktype == CheckType::On) rs->status = RealStatus::Up;
      if (vs.checktype == CheckType::Off) rs->status = RealStatus::Unknown;
      reals.push_back(std::move(rs));
    }
    bool changed = st->created && (st->cfg.scheduler != vs.scheduler || st->cfg.persistent != vs.persistent);
    st->cfg = vs;
    st->reals = std::move(reals);
    if (!st->created || changed) {
      try {
        target_.ensure_virtual(st->cfg);
        if (!st->created) {
          spdlog::info("health: virtual service {} ({})", vs.key(), vs.scheduler);
          adopt(*st);
        }
        st->created = true;
      } catch (const std::exception& e) {
        spdlog::warn("health: add virtual {}: {}", vs.key(), e.what());
      }
    }
    reconcile(*st);
    next.push_back(std::move(st));
  }
  virts_ = std::move(next);
  cfg_ = std::move(cfg);
}

void HealthChecker::adopt(VirtState& v) {
  for (const auto& r : v.reals) {
    if (v.applied.count(r->cfg.ep)) continue;
    try {
      if (auto p = target_.find_real(v.cfg, r->cfg.ep)) v.applied[r->cfg.ep] = {p->weight, p->quiesced};
    } catch (const std::exception& e) {
      spdlog::warn("health: look up real {} in {}: {}", r->cfg.ep.str(), v.cfg.key(), e.what());
    }
  }
}

void HealthChecker::reconcile(VirtState& v) {
  if (!v.created) {
    try {
      target_.ensure_virtual(v.cfg);
      adopt(v);
      v.created = true;
    } catch (const std::exception& e) {
      spdlog::warn("health: add virtual {}: {}", v.cfg.key(), e.what());
      return;
    }
  }
  std::map<HostPort, VirtState::Applied> want;
  bool all_down = true;
  for (const auto& r : v.reals) {
    if (r->status != RealStatus::Down) all_down = false;
    if (v.cfg.checktype == CheckType::Off) continue;
    if (r->status == RealStatus::Up) want[r->cfg.ep] = {r->cfg.weight, false};
    else if (r->status == RealStatus::Down && v.cfg.quiescent) want[r->cfg.ep] = {r->cfg.weight, true};
    else if (r->status == RealStatus::Unknown && v.applied.count(r->cfg.ep))
      want[r->cfg.ep] = v.applied[r->cfg.ep];  // adopted, not checked yet: leave it be
  }
  bool fallback = v.cfg.fallback && v.cfg.checktype != CheckType::Off && all_down;
  if (fallback && !want.count(*v.cfg.fallback)) want[*v.cfg.fallback] = {v.cfg.fallback_weight, false};
  else fallback = false;

  // Remove what should not be there.
  for (auto it = v.applied.begin(); it != v.applied.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    try {
      target_.remove_real(v.cfg, it->first);
    } catch (const std::exception& e) {
      spdlog::warn("health: remove real {} from {}: {}", it->first.str(), v.cfg.key(), e.what());
    }
    it = v.applied.erase(it);
  }
  for (const auto& [ep, a] : want) {
    auto it = v.applied.find(ep);
    if (it != v.applied.end() && it->second.weight == a.weight && it->second.quiesced == a.quiesced) continue;
    try {
      target_.set_real(v.cfg, ep, a.weight, a.quiesced);
      v.applied[ep] = a;
    } catch (const std::exception& e) {
      spdlog::warn("health: set real {} in {}: {}", ep.str(), v.cfg.key(), e.what());
    }
  }
  if (fallback != v.fallback_on) {
    v.fallback_on = fallback;
    if (fallback)
      spdlog::warn("health: all real servers down, fallback {} added to {}", v.cfg.fallback->str(), v.cfg.key());
    else
      spdlog::info("health: real server back, fallback {} removed from {}", v.cfg.fallback->str(), v.cfg.key());
    if (opts_.on_event) opts_.on_event(HealthEvent{v.cfg.key(), *v.cfg.fallback, fallback, true, ""});
  }
}

void HealthChecker::finish_probe(Probe& p, bool ok, std::string detail) {
  auto& r = *p.r;
  r.probing = false;
  r.detail = detail;
  probes_done_.fetch_add(1);
  RealStatus before = r.status;
  if (ok) {
    r.fails = 0;
    r.status = RealStatus::Up;
  } else {
    ++r.fails;
    if (r.fails >= p.v->cfg.failurecount || r.status == RealStatus::Unknown) r.status = RealStatus::Down;
  }
  if (r.status == before) return;
  if (ok)
    spdlog::info("health: real server {} of {} is {}", r.cfg.ep.str(), p.v->cfg.key(), to_string(r.status));
  else
    spdlog::warn("health: real server {} of {} is {} ({})", r.cfg.ep.str(), p.v->cfg.key(), to_string(r.status),
                 detail);
  reconcile(*p.v);
  if (opts_.on_event) opts_.on_event(HealthEvent{p.v->cfg.key(), r.cfg.ep, ok, false, detail});
}

void HealthChecker::maybe_autoreload() {
  if (opts_.config_path.empty()) return;
  double now = now_s();
  {
    std::lock_guard lk(mu_);
    if (!cfg_.autoreload || now < next_reload_poll_) return;
    next_reload_poll_ = now + opts_.reload_poll_s;
  }
  struct stat st{};
  if (::stat(opts_.config_path.c_str(), &st) != 0) return;
  int64_t mt = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mt == last_mtime_ns_ && st.st_size == last_size_) return;
  last_mtime_ns_ = mt;
  last_size_ = st.st_size;
  std::ifstream f(opts_.config_path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (ss.str() == last_text_) return;
  last_text_ = ss.str();
  spdlog::info("health: configuration file {} changed", opts_.config_path);
  reload_from_file();
}

void HealthChecker::loop() {
  std::vector<pollfd> pfds;
  while (running_.load()) {
    maybe_autoreload();
    double timeout_at;
    {
      std::lock_guard lk(mu_);
      if (pending_) {
        auto c = std::move(*pending_);
        pending_.reset();
        apply_config(std::move(c));
      }
      double now = now_s();
      timeout_at = now + std::max(0.05, std::min(1.0, opts_.reload_poll_s));
      for (auto& v : virts_) {
        if (v->cfg.checktype == CheckType::On || v->cfg.checktype == CheckType::Off) continue;
        for (auto& r : v->reals) {
          if (r->probing) continue;
          if (r->next_due <= now) {
            r->next_due = now + v->cfg.checkinterval;
            auto p = std::make_unique<Probe>();
            p->v = v.get();
            p->r = r.get();
            r->probing = true;
            if (auto res = probe_start(p->io, make_spec(v->cfg, r->cfg), now))
              finish_probe(*p, res->ok, res->detail);
            else
              probes_.push_back(std::move(p));
          }
          timeout_at = std::min(timeout_at, r->next_due);
        }
      }
      pfds.clear();
      pfds.push_back({wake_fd_.get(), POLLIN, 0});
      for (auto& p : probes_) {
        pfds.push_back({p->io.fd.get(), p->io.events(), 0});
        timeout_at = std::min(timeout_at, p->io.deadline);
      }
    }
    int ms = std::max(0, static_cast<int>((timeout_at - now_s()) * 1000) + 1);
    int rc = ::poll(pfds.data(), pfds.size(), ms);
    if (rc < 0 && errno != EINTR) {
      spdlog::error("health: poll: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pfds[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto n = ::read(wake_fd_.get(), &v, sizeof v);
    }
    std::lock_guard lk(mu_);
    if (pending_) continue;  // probes refer to state about to be replaced
    double now = now_s();
    std::vector<std::unique_ptr<Probe>> still;
    for (size_t i = 0; i < probes_.size(); ++i) {
      auto& p = probes_[i];
      short rev = (i + 1 < pfds.size() && pfds[i + 1].fd == p->io.fd.get()) ? pfds[i + 1].revents : 0;
      std::optional<CheckResult> res;
      if (rev) res = probe_step(p->io, rev);
      if (!res && now >= p->io.deadline) res = CheckResult{false, "timeout"};
      if (res) {
        p->io.close_fd();
        finish_probe(*p, res->ok, res->detail);
      } else {
        still.push_back(std::move(p));
      }
    }
    probes_ = std::move(still);
  }
}

}  // namespace vmstack::lb::ha
