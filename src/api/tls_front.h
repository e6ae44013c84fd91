// HTTPS for the XenAPI: a TLS front end, as xapi long had stunnel in front
// of it. One event thread accepts TLS connections, does the handshakes and
// relays each connection's plain bytes over a socketpair whose other end the
// api::Server adopts as a TCP client at the real peer's address: the same
// budgets, per-source limits, throttles, password checks, routes (/console,
// /cli) and timeouts as plain TCP, with no thread per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "api/server.h"

namespace vmstack::api {

struct TlsConfig {
  std::string address;          // "0.0.0.0", "127.0.0.1", "::"
  unsigned short port = 0;      // 0: pick a free one (see TlsFront::port())
  std::string cert_file;        // PEM: the certificate (chain)
  std::string key_file;         // PEM: its private key
  std::size_t max_connections = 4096;          // TLS connections at once
  std::size_t max_connections_per_source = 128;  // per client IP (IPv6: per /64)
  std::size_t max_handshakes_per_source = 32;  // unfinished handshakes per client IP
  std::chrono::seconds handshake_timeout{10};
  // After the server has closed, how long a client that does not read its
  // answer (no TLS write progress) keeps its connection.
  std::chrono::seconds send_timeout{60};
};

class TlsFront {
 public:
  // Loads the certificate and key and binds (throws std::runtime_error
  // naming the file or address on failure). `server` must outlive this
  // object and be started before start().
  TlsFront(TlsConfig cfg, Server& server);
  ~TlsFront();  // stops
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  void start();
  void stop();
  unsigned short port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes a self-signed certificate and its key (EC P-256, SHA-256, ten
// years; the key file 0600) unless both files exist. The subject's CN is
// `common_name` ("localhost" if it is empty or too long); `alt_names` go
// into subjectAltName (IP addresses as IP, the rest as DNS). Returns true
// when it made them. Throws std::runtime_error on failure, and when only
// one of the two exists (half of an operator's pair is never replaced).
bool ensure_self_signed(const std::string& cert_file, const std::string& key_file, const std::string& common_name,
                        const std::vector<std::string>& alt_names);

}  // namespace vmstack::api
