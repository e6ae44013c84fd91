// Synchronous XenAPI client over a unix socket or TCP, XML-RPC or JSON-RPC.
// Used by xe, xl, the tests and the benchmarks. Keeps one connection alive.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api/rpc.h"
#include "core/fd.h"

namespace vmstack::api {

struct Endpoint {
  std::string unix_path;  // used when non-empty
  std::string host;       // otherwise host:port over TCP
  unsigned short port = 0;
  bool json = false;      // JSON-RPC instead of XML-RPC
  bool tls = false;       // TCP over TLS (HTTPS), the server's certificate checked (tls_client.h)
  std::string ca_file = {};  // PEM certificates trusted besides the system's (vmstackd's self-signed one)
};

// A connected socket to the endpoint (for TLS, the plain side of the relay
// tls_connect makes), or ApiError CONNECTION_FAILED with a message that
// tells the user what to check.
UniqueFd open_connection(const Endpoint& ep);

class Client {
 public:
  explicit Client(Endpoint ep);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Returns Value on Success; throws ApiError(ErrorDescription) on Failure and
  // ApiError("CONNECTION_FAILED"/"PROTOCOL_ERROR", [detail]) on transport errors.
  Value call(const std::string& method, const Array& params);

  // Raw HTTP GET whose response body is streamed to `out_fd` until EOF (for
  // console streaming). Returns false if the server refused.
  bool stream_get(const std::string& target, int out_fd);

  // How long a call polls for its answer before sleeping (default 150 µs,
  // adaptive: see client.cpp); zero sleeps at once.
  void set_answer_poll(std::chrono::microseconds poll);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmstack::api
