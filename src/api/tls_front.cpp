#include "api/tls_front.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <stdexcept>
#include <thread>

#include "api/listener.h"
#include "api/throttle.h"

namespace vmstack::api {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t kRelayBuffer = 64u << 10;  // per direction: a side is read only while its buffer has room
constexpr std::size_t kPumpBudget = 256u << 10;  // bytes per relay per turn: one fast client cannot hold the thread
constexpr auto kFinishLinger = std::chrono::seconds(2);  // reading what a finished client still sends
constexpr auto kOutOfFdsPause = std::chrono::milliseconds(100);
constexpr uint64_t kListenTag = 1, kWakeTag = 2;

std::string ssl_error_text() {
  unsigned long e = ::ERR_get_error();
  char buf[256];
  ::ERR_error_string_n(e, buf, sizeof buf);
  return e ? buf : "unknown TLS error";
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { ::SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { ::SSL_free(s); }
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// One TLS connection: the client's socket with its TLS session, and once the
// handshake is done the relay's end of the socketpair the server adopted.
struct Relay {
  UniqueFd tcp;
  std::unique_ptr<SSL, SslFree> ssl;
  UniqueFd inner;
  std::string peer;    // "ip:port"
  std::string source;  // per-source key (throttle_source)
  clock::time_point deadline;  // the handshake's; then of a stalled write or the finishing linger
  bool handshaken = false;
  bool closed = false;   // deleted at the end of the event batch
  bool fatal = false;    // a TLS error: no close_notify may be sent
  bool tls_eof = false;  // the client sent close_notify (or its half-close)
  bool inner_eof = false, inner_shut = false;
  bool discard = false;  // the server stopped reading: the client's bytes are dropped
  bool finishing = false;  // answered and closed for writing: draining the client's input
  uint32_t tcp_mask = 0, inner_mask = 0;  // what epoll watches now (0: not in the set)
  std::string to_inner, to_tls;  // bytes read from one side, not yet written to the other
  std::list<Relay*>::iterator pos;
};

}  // namespace

struct TlsFront::Impl {
  TlsConfig cfg;
  Server& server;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  detail::Listener listener;
  UniqueFd epoll, wake;
  std::thread thread;
  bool started = false;
  bool listening = true;            // false while paused for want of fds
  clock::time_point resume_at{};
  std::list<Relay*> relays;         // owned; only the event thread touches them
  std::vector<Relay*> dead;         // closed in this batch, deleted after it
  std::map<std::string, std::size_t> handshaking, per_source;  // unfinished handshakes, all relays

  Impl(TlsConfig c, Server& s) : cfg(std::move(c)), server(s) {}
  ~Impl() { delete_all(); }

  void run();
  void accept_all(clock::time_point now);
  // `events`: what epoll reported, for the client's socket or (`inner`) the relay's end.
  void pump(Relay* r, uint32_t events, bool inner = false);
  void close(Relay* r);
  void set_mask(int fd, uint32_t& current, uint32_t wanted, uint64_t tag);
  void rearm(Relay* r);
  void sweep(clock::time_point now);
  void delete_all() {
    for (Relay* r : relays) delete r;
    relays.clear();
    for (Relay* r : dead) delete r;
    dead.clear();
    handshaking.clear();
    per_source.clear();
  }
};

// Adds, changes or removes `fd` in the epoll set. An fd with nothing to wait
// for leaves the set: level-triggered, its hang-up would fire for ever.
void TlsFront::Impl::set_mask(int fd, uint32_t& current, uint32_t wanted, uint64_t tag) {
  if (wanted == current) return;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.u64 = tag;
  int op = current == 0 ? EPOLL_CTL_ADD : wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  ::epoll_ctl(epoll.get(), op, fd, &ev);
  current = wanted;
}

// Interest follows the buffers: a side is read only while the buffer toward
// the other side has room (or its input is being discarded), and watched
// for writing only while bytes wait for it.
void TlsFront::Impl::rearm(Relay* r) {
  const auto tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r));
  uint32_t tcp_ev = 0;
  if (!r->tls_eof && (r->discard || r->finishing || r->to_inner.size() < kRelayBuffer)) tcp_ev |= EPOLLIN | EPOLLRDHUP;
  if (!r->to_tls.empty()) tcp_ev |= EPOLLOUT;
  set_mask(r->tcp.get(), r->tcp_mask, tcp_ev, tag);
  if (r->inner) {
    uint32_t in_ev = 0;
    if (!r->inner_eof && r->to_tls.size() < kRelayBuffer) in_ev |= EPOLLIN | EPOLLRDHUP;
    if (!r->to_inner.empty()) in_ev |= EPOLLOUT;
    set_mask(r->inner.get(), r->inner_mask, in_ev, tag | 1);
  }
}

void TlsFront::Impl::close(Relay* r) {
  if (r->closed) return;
  r->closed = true;
  if (!r->handshaken) {
    auto it = handshaking.find(r->source);
    if (it != handshaking.end() && --it->second == 0) handshaking.erase(it);
  } else if (r->ssl && !r->fatal && !r->finishing) {
    ::SSL_shutdown(r->ssl.get());  // best effort: a close_notify if the socket takes it
  }
  if (auto it = per_source.find(r->source); it != per_source.end() && --it->second == 0) per_source.erase(it);
  relays.erase(r->pos);
  // Out of epoll now, deleted after the batch (a later event may name it).
  set_mask(r->tcp.get(), r->tcp_mask, 0, 0);
  if (r->inner) set_mask(r->inner.get(), r->inner_mask, 0, 0);
  dead.push_back(r);
}

void TlsFront::Impl::accept_all(clock::time_point now) {
  for (;;) {
    int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of fds: stop watching the listener for a moment instead of
        // spinning on it; sweep() resumes it.
        epoll_event ev{};
        ev.data.u64 = kListenTag;
        ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listener.fd(), &ev);
        listening = false;
        resume_at = now + kOutOfFdsPause;
      }
      return;  // EAGAIN: drained
    }
    UniqueFd tcp(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto peer = detail::identify_peer(fd, true);
    if (peer.address.empty()) continue;  // gone already
    std::string source = throttle_source(peer.address, -1);
    // Caps before any TLS work: all relays, and per client address both
    // its unfinished handshakes and all its relays (the server's own
    // per-source cap counts only connections it still holds).
    auto count = [](const std::map<std::string, std::size_t>& m, const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? std::size_t{0} : it->second;
    };
    if (relays.size() >= cfg.max_connections || count(handshaking, source) >= cfg.max_handshakes_per_source ||
        count(per_source, source) >= cfg.max_connections_per_source)
      continue;  // closed: nothing is said before TLS is up
    auto r = std::make_unique<Relay>();
    r->ssl.reset(::SSL_new(ctx.get()));
    if (!r->ssl || ::SSL_set_fd(r->ssl.get(), fd) != 1) continue;
    r->tcp = std::move(tcp);
    r->peer = std::move(peer.address);
    r->source = std::move(source);
    r->deadline = now + cfg.handshake_timeout;
    ++handshaking[r->source];
    ++per_source[r->source];
    Relay* raw = r.release();
    relays.push_back(raw);
    raw->pos = std::prev(relays.end());
    pump(raw, EPOLLIN);
  }
}

// Moves bytes as far as they go without blocking (up to kPumpBudget), then
// re-arms or closes.
void TlsFront::Impl::pump(Relay* r, uint32_t events, bool inner) {
  if (r->closed) return;
  // An error on the client's socket ends it. One on the relay's end (the
  // server closed with the client's bytes unread: ECONNRESET) does not yet:
  // what the server said before is still queued and read below.
  if ((events & EPOLLERR) && !inner) {
    r->fatal = true;
    return close(r);
  }
  SSL* ssl = r->ssl.get();
  const auto tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r));
  if (!r->handshaken) {
    ERR_clear_error();
    int rc = ::SSL_accept(ssl);
    if (rc != 1) {
      int e = ::SSL_get_error(ssl, rc);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && !(events & EPOLLHUP)) {
        set_mask(r->tcp.get(), r->tcp_mask, EPOLLRDHUP | (e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT), tag);
        return;
      }
      r->fatal = true;
      return close(r);  // not TLS, a failed handshake, or the client left
    }
    // The plain side: the server adopts one end as a TCP client.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return close(r);
    UniqueFd theirs(sv[1]);
    r->inner.reset(sv[0]);
    set_nonblocking(sv[0]);
    r->handshaken = true;
    auto it = handshaking.find(r->source);
    if (it != handshaking.end() && --it->second == 0) handshaking.erase(it);
    r->deadline = clock::time_point::max();
    server.adopt(std::move(theirs), r->peer);
  }

  char buf[16u << 10];
  std::size_t moved = 0;
  for (bool progress = true; progress && moved < kPumpBudget;) {
    progress = false;
    // TLS -> inner (or nowhere, once the server stopped reading)
    while (!r->tls_eof && (r->discard || r->finishing || r->to_inner.size() < kRelayBuffer) && moved < kPumpBudget) {
      ERR_clear_error();
      std::size_t room = r->discard || r->finishing ? sizeof buf : std::min(sizeof buf, kRelayBuffer - r->to_inner.size());
      int n = ::SSL_read(ssl, buf, static_cast<int>(room));
      if (n > 0) {
        if (!r->discard && !r->finishing) r->to_inner.append(buf, static_cast<std::size_t>(n));
        moved += static_cast<std::size_t>(n);
        progress = true;
        continue;
      }
      int e = ::SSL_get_error(ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN) {
        r->tls_eof = true;  // close_notify: the client is done sending
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        r->fatal = true;  // reset, truncation, a bad record: nobody to answer
        return close(r);
      }
      break;
    }
    if (r->finishing) {
      if (r->tls_eof) return close(r);
      break;
    }
    while (!r->to_inner.empty()) {
      ssize_t n = ::send(r->inner.get(), r->to_inner.data(), r->to_inner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        r->to_inner.erase(0, static_cast<std::size_t>(n));
        progress = true;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
      // The server stopped reading (it answered, e.g. 503 or 413, and
      // closed): what it said still goes to the client, the rest is dropped.
      r->discard = true;
      std::string().swap(r->to_inner);
      break;
    }
    if (r->tls_eof && r->to_inner.empty() && !r->inner_shut) {
      ::shutdown(r->inner.get(), SHUT_WR);  // the server sees the client's EOF
      r->inner_shut = true;
    }
    // inner -> TLS
    while (!r->inner_eof && r->to_tls.size() < kRelayBuffer && moved < kPumpBudget) {
      ssize_t n = ::recv(r->inner.get(), buf, std::min(sizeof buf, kRelayBuffer - r->to_tls.size()), MSG_DONTWAIT);
      if (n > 0) {
        r->to_tls.append(buf, static_cast<std::size_t>(n));
        moved += static_cast<std::size_t>(n);
        progress = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) r->inner_eof = true;
      break;
    }
    while (!r->to_tls.empty()) {
      ERR_clear_error();
      int n = ::SSL_write(ssl, r->to_tls.data(), static_cast<int>(r->to_tls.size()));
      if (n > 0) {
        r->to_tls.erase(0, static_cast<std::size_t>(n));
        if (r->to_tls.empty()) std::string().swap(r->to_tls);  // a burst's buffer is not kept
        if (r->inner_eof) r->deadline = clock::now() + cfg.send_timeout;
        progress = true;
        continue;
      }
      int e = ::SSL_get_error(ssl, n);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        r->fatal = true;
        return close(r);  // the client is gone
      }
      break;
    }
  }
  if (r->to_inner.empty() && r->to_inner.capacity() > kRelayBuffer) std::string().swap(r->to_inner);
  if (r->finishing) return rearm(r);
  if (r->inner_eof && r->to_tls.empty()) {
    // The server has said all it will. Close for writing (close_notify and
    // FIN), then read and drop what the client still sends for a moment:
    // closing with its unread bytes in the socket would send a reset that
    // can destroy the answer before the client reads it.
    if (r->inner) {
      set_mask(r->inner.get(), r->inner_mask, 0, 0);
      r->inner.reset();
    }
    if (r->tls_eof || r->fatal) return close(r);
    ::SSL_shutdown(ssl);
    ::shutdown(r->tcp.get(), SHUT_WR);
    r->finishing = true;
    r->deadline = clock::now() + kFinishLinger;
    return rearm(r);
  }
  if (r->inner_eof && r->deadline == clock::time_point::max()) r->deadline = clock::now() + cfg.send_timeout;
  if ((events & EPOLLHUP) && !inner && r->to_tls.empty()) {
    r->fatal = true;  // the client hung up: nobody to write to
    return close(r);
  }
  rearm(r);
}

void TlsFront::Impl::sweep(clock::time_point now) {
  if (!listening && now >= resume_at) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listener.fd(), &ev);
    listening = true;
  }
  for (auto it = relays.begin(); it != relays.end();) {
    Relay* r = *it++;
    // A silent or slow handshake; a client that stopped reading its answer
    // after the server closed; the end of a finished relay's linger.
    if (now >= r->deadline) close(r);
  }
}

void TlsFront::Impl::run() {
  epoll_event evs[128];
  auto last_sweep = clock::now();
  for (;;) {
    int n = ::epoll_wait(epoll.get(), evs, 128, 100);
    if (n < 0 && errno != EINTR) return;
    const auto now = clock::now();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = evs[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag == kListenTag) {
        accept_all(now);
        continue;
      }
      // No-op once closed in this batch (deleted after it).
      pump(reinterpret_cast<Relay*>(static_cast<uintptr_t>(tag & ~uint64_t{1})), evs[i].events, (tag & 1) != 0);
    }
    if (now - last_sweep >= std::chrono::milliseconds(100)) {
      last_sweep = now;
      sweep(now);
    }
    for (Relay* r : dead) delete r;
    dead.clear();
  }
}

TlsFront::TlsFront(TlsConfig cfg, Server& server) : impl_(std::make_unique<Impl>(std::move(cfg), server)) {
  auto& I = *impl_;
  I.ctx.reset(::SSL_CTX_new(::TLS_server_method()));
  if (!I.ctx) throw std::runtime_error("TLS: " + ssl_error_text());
  ::SSL_CTX_set_min_proto_version(I.ctx.get(), TLS1_2_VERSION);
  ::SSL_CTX_set_mode(I.ctx.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  ::SSL_CTX_set_options(I.ctx.get(), SSL_OP_NO_RENEGOTIATION);
  if (::SSL_CTX_use_certificate_chain_file(I.ctx.get(), I.cfg.cert_file.c_str()) != 1)
    throw std::runtime_error("TLS certificate " + I.cfg.cert_file + ": " + ssl_error_text());
  if (::SSL_CTX_use_PrivateKey_file(I.ctx.get(), I.cfg.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS key " + I.cfg.key_file + ": " + ssl_error_text());
  if (::SSL_CTX_check_private_key(I.ctx.get()) != 1)
    throw std::runtime_error("TLS key " + I.cfg.key_file + " does not match " + I.cfg.cert_file);
  I.listener = detail::Listener::tcp(I.cfg.address, I.cfg.port);
  set_nonblocking(I.listener.fd());
}

TlsFront::~TlsFront() { stop(); }

void TlsFront::start() {
  auto& I = *impl_;
  if (I.started) return;
  I.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  I.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!I.epoll || !I.wake) throw std::runtime_error(std::string("TLS front: ") + std::strerror(errno));
  for (auto [fd, tag] : {std::pair{I.listener.fd(), kListenTag}, std::pair{I.wake.get(), kWakeTag}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    ::epoll_ctl(I.epoll.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  I.thread = std::thread([&I] { I.run(); });
  I.started = true;
}

void TlsFront::stop() {
  auto& I = *impl_;
  if (!I.started) return;
  uint64_t one = 1;
  (void)!::write(I.wake.get(), &one, sizeof one);
  I.thread.join();
  I.started = false;
  I.listener.close();
  I.delete_all();  // every client connection and relay end closes now
}

unsigned short TlsFront::port() const { return impl_->listener.port(); }

}  // namespace vmstack::api
