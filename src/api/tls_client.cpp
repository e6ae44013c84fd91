#include "api/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "api/wire_util.h"
#include "core/error.h"

namespace vmstack::api {

namespace {

struct CtxFree {
  void operator()(SSL_CTX* c) const { ::SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { ::SSL_free(s); }
};
using Ctx = std::unique_ptr<SSL_CTX, CtxFree>;
using Ssl = std::unique_ptr<SSL, SslFree>;

std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ::ERR_get_error()) {
    char buf[256];
    ::ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "the connection closed during the handshake" : out;
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Waits until `fd` is ready for `events`; false on error.
bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  while (::poll(&p, 1, -1) < 0)
    if (errno != EINTR) return false;
  return true;
}

// The whole buffer through TLS on the non-blocking socket.
bool write_tls(SSL* ssl, int tcp, const char* p, int n) {
  for (;;) {
    int w = ::SSL_write(ssl, p, n);
    if (w > 0) return true;  // without partial writes, all of it
    int e = ::SSL_get_error(ssl, w);
    if (e == SSL_ERROR_WANT_WRITE ? !wait_for(tcp, POLLOUT) : e == SSL_ERROR_WANT_READ ? !wait_for(tcp, POLLIN) : true)
      return false;
  }
}

// Relays until the server is done (or either side fails). The TLS socket is
// non-blocking: a record that is not application data (a TLS 1.3 session
// ticket) must not leave the relay waiting for the server while the caller's
// request waits for the relay.
void relay(Ctx ctx, Ssl ssl, UniqueFd tcp, UniqueFd plain) {
  (void)ctx;
  int fl = ::fcntl(tcp.get(), F_GETFL);
  ::fcntl(tcp.get(), F_SETFL, fl | O_NONBLOCK);
  char buf[16384];
  bool plain_open = true;
  for (;;) {
    // What TLS has decoded or can decode now goes first.
    for (;;) {
      int n = ::SSL_read(ssl.get(), buf, sizeof buf);
      if (n > 0) {
        if (!detail::send_all(plain.get(), std::string_view(buf, static_cast<std::size_t>(n)))) return;
        continue;
      }
      int e = ::SSL_get_error(ssl.get(), n);
      if (e == SSL_ERROR_WANT_READ) break;
      if (e == SSL_ERROR_WANT_WRITE) {
        if (!wait_for(tcp.get(), POLLOUT)) return;
        continue;
      }
      ::ERR_clear_error();
      ::shutdown(plain.get(), SHUT_WR);  // the server is done: the caller reads its end
      return;
    }
    pollfd p[2] = {{tcp.get(), POLLIN, 0}, {plain_open ? plain.get() : -1, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(plain.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The caller is done sending: close_notify, then read on.
        plain_open = false;
        ::SSL_shutdown(ssl.get());
        ::shutdown(plain.get(), SHUT_RD);
      } else if (!write_tls(ssl.get(), tcp.get(), buf, static_cast<int>(n))) {
        return;
      }
    }
  }
}

}  // namespace

UniqueFd tls_connect(UniqueFd tcp, const std::string& host, const std::string& ca_file) {
  auto fail = [&](const std::string& why) -> UniqueFd {
    throw ApiError("CONNECTION_FAILED", {"HTTPS to " + host + ": " + why});
  };
  Ctx ctx(::SSL_CTX_new(::TLS_client_method()));
  if (!ctx) return fail(ssl_errors());
  ::SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  ::SSL_CTX_set_default_verify_paths(ctx.get());
  if (!ca_file.empty() && ::SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return fail("cannot load the certificates in " + ca_file + ": " + ssl_errors());
  ::SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  Ssl ssl(::SSL_new(ctx.get()));
  if (!ssl) return fail(ssl_errors());
  X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl.get());
  if (is_ip(host)) {
    ::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    ::SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    ::X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  // A server that never finishes the handshake does not hang xe.
  timeval t{30, 0};
  ::setsockopt(tcp.get(), SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  ::setsockopt(tcp.get(), SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  ::SSL_set_fd(ssl.get(), tcp.get());
  if (::SSL_connect(ssl.get()) != 1) {
    long v = ::SSL_get_verify_result(ssl.get());
    if (v != X509_V_OK)
      return fail(std::string("the server's certificate is not trusted (") + ::X509_verify_cert_error_string(v) +
                  "); give its certificate with cafile=<PEM file> (vmstackd's own: <state dir>/tls/vmstackd.pem)");
    return fail("TLS handshake failed: " + ssl_errors() + " (is it vmstackd's HTTPS port? --nossl for plain HTTP)");
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return fail(std::strerror(errno));
  UniqueFd mine(pair[0]), theirs(pair[1]);
  // Detached: it owns everything it uses and ends with the connection.
  std::thread(relay, std::move(ctx), std::move(ssl), std::move(tcp), std::move(theirs)).detach();
  return mine;
}

}  // namespace vmstack::api
