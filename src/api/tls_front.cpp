#include "api/tls_front.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

constexpr std::size_t kRelayBuffer = 64u << 10;  // per direction: beyond it, that side is not read
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
  clock::time_point deadline;  // the handshake's
  bool handshaken = false;
  bool closed = false;  // deleted at the end of the event batch
  bool tls_eof = false, inner_eof = false, inner_shut = false;
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
  std::list<Relay*> relays;  // owned; only the event thread touches them
  std::vector<Relay*> dead;   // closed in this batch, deleted after it
  std::map<std::string, std::size_t> handshaking;  // per source

  Impl(TlsConfig c, Server& s) : cfg(std::move(c)), server(s) {}
  ~Impl() {
    for (Relay* r : relays) delete r;
    for (Relay* r : dead) delete r;
  }

  void run();
  void accept_all(clock::time_point now);
  void pump(Relay* r);
  void close(Relay* r);
  void watch(int fd, uint32_t events, uint64_t tag, bool add);
  void rearm(Relay* r);
};

void TlsFront::Impl::watch(int fd, uint32_t events, uint64_t tag, bool add) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  ::epoll_ctl(epoll.get(), add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

// Interest follows the buffers: a side is read only while the buffer toward
// the other side has room, and watched for writing only while it has bytes
// waiting for it.
void TlsFront::Impl::rearm(Relay* r) {
  const auto tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r));
  // A side at EOF is no longer watched for reading (level-triggered, it
  // would fire for ever); hang-ups and errors are reported regardless.
  uint32_t tcp_ev = 0;
  if (!r->tls_eof && (!r->handshaken || r->to_inner.size() < kRelayBuffer)) tcp_ev |= EPOLLIN | EPOLLRDHUP;
  if (!r->to_tls.empty()) tcp_ev |= EPOLLOUT;
  watch(r->tcp.get(), tcp_ev, tag, false);
  if (r->inner) {
    uint32_t in_ev = 0;
    if (!r->inner_eof && r->to_tls.size() < kRelayBuffer) in_ev |= EPOLLIN | EPOLLRDHUP;
    if (!r->to_inner.empty()) in_ev |= EPOLLOUT;
    watch(r->inner.get(), in_ev, tag | 1, false);
  }
}

void TlsFront::Impl::close(Relay* r) {
  if (r->closed) return;
  r->closed = true;
  if (!r->handshaken) {
    auto it = handshaking.find(r->source);
    if (it != handshaking.end() && --it->second == 0) handshaking.erase(it);
  } else if (r->ssl) {
    ::SSL_shutdown(r->ssl.get());  // best effort: a close_notify if the socket takes it
  }
  relays.erase(r->pos);
  // Out of epoll now, deleted after the batch (a later event may name it).
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, r->tcp.get(), nullptr);
  if (r->inner) ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, r->inner.get(), nullptr);
  dead.push_back(r);
}

void TlsFront::Impl::accept_all(clock::time_point now) {
  for (;;) {
    int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN, or out of fds: the next event retries
    UniqueFd tcp(fd);
    auto peer = detail::identify_peer(fd, true);
    std::string source = throttle_source(peer.address, -1);
    if (relays.size() >= cfg.max_connections || handshaking[source] >= cfg.max_handshakes_per_source) {
      if (handshaking[source] == 0) handshaking.erase(source);
      continue;  // closed: nothing is said before TLS is up
    }
    auto r = std::make_unique<Relay>();
    r->ssl.reset(::SSL_new(ctx.get()));
    if (!r->ssl || ::SSL_set_fd(r->ssl.get(), fd) != 1) continue;
    r->tcp = std::move(tcp);
    r->peer = std::move(peer.address);
    r->source = std::move(source);
    r->deadline = now + cfg.handshake_timeout;
    ++handshaking[r->source];
    Relay* raw = r.release();
    relays.push_back(raw);
    raw->pos = std::prev(relays.end());
    const auto tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(raw));
    watch(raw->tcp.get(), EPOLLIN | EPOLLRDHUP, tag, true);
    pump(raw);
  }
}

// Moves bytes as far as they go without blocking, then re-arms or closes.
void TlsFront::Impl::pump(Relay* r) {
  if (r->closed) return;
  SSL* ssl = r->ssl.get();
  if (!r->handshaken) {
    ERR_clear_error();
    int rc = ::SSL_accept(ssl);
    if (rc != 1) {
      int e = ::SSL_get_error(ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        watch(r->tcp.get(), EPOLLRDHUP | (e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT),
              static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r)), false);
        return;
      }
      return close(r);  // not TLS, or a failed handshake
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
    watch(r->inner.get(), EPOLLIN | EPOLLRDHUP, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r)) | 1, true);
    server.adopt(std::move(theirs), r->peer);
  }

  char buf[16u << 10];
  for (bool progress = true; progress;) {
    progress = false;
    // TLS -> inner
    while (!r->tls_eof && r->to_inner.size() < kRelayBuffer) {
      ERR_clear_error();
      int n = ::SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        r->to_inner.append(buf, static_cast<std::size_t>(n));
        progress = true;
        continue;
      }
      int e = ::SSL_get_error(ssl, n);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) r->tls_eof = true;  // close_notify, EOF, error
      break;
    }
    while (!r->to_inner.empty()) {
      ssize_t n = ::send(r->inner.get(), r->to_inner.data(), r->to_inner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close(r);
        break;
      }
      r->to_inner.erase(0, static_cast<std::size_t>(n));
      progress = true;
    }
    if (r->tls_eof && r->to_inner.empty() && !r->inner_shut) {
      ::shutdown(r->inner.get(), SHUT_WR);  // the client is done sending: the server sees EOF
      r->inner_shut = true;
    }
    // inner -> TLS
    while (!r->inner_eof && r->to_tls.size() < kRelayBuffer) {
      ssize_t n = ::recv(r->inner.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        r->to_tls.append(buf, static_cast<std::size_t>(n));
        progress = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) r->inner_eof = true;
      break;
    }
    while (!r->to_tls.empty()) {
      ERR_clear_error();
      int n = ::SSL_write(ssl, r->to_tls.data(), static_cast<int>(std::min<std::size_t>(r->to_tls.size(), 1u << 20)));
      if (n > 0) {
        r->to_tls.erase(0, static_cast<std::size_t>(n));
        progress = true;
        continue;
      }
      int e = ::SSL_get_error(ssl, n);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return close(r);  // the client is gone
      break;
    }
  }
  // The server closed (or the client did and the server has answered).
  if (r->inner_eof && r->to_tls.empty()) return close(r);
  if (r->tls_eof && r->inner_shut && r->to_tls.empty() && r->inner_eof) return close(r);
  rearm(r);
}

void TlsFront::Impl::run() {
  epoll_event evs[128];
  auto last_sweep = clock::now();
  for (;;) {
    int n = ::epoll_wait(epoll.get(), evs, 128, 500);
    if (n < 0 && errno != EINTR) return;
    const auto now = clock::now();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = evs[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag == kListenTag) {
        accept_all(now);
        continue;
      }
      pump(reinterpret_cast<Relay*>(static_cast<uintptr_t>(tag & ~uint64_t{1})));  // no-op once closed
    }
    if (now - last_sweep >= std::chrono::seconds(1)) {
      last_sweep = now;
      for (auto it = relays.begin(); it != relays.end();) {
        Relay* r = *it++;
        if (!r->handshaken && now >= r->deadline) close(r);  // a silent or slow handshake
      }
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
  ::SSL_CTX_set_mode(I.ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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
  I.watch(I.listener.fd(), EPOLLIN, kListenTag, true);
  I.watch(I.wake.get(), EPOLLIN, kWakeTag, true);
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
}

unsigned short TlsFront::port() const { return impl_->listener.port(); }

}  // namespace vmstack::api
