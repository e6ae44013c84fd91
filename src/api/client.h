// Synchronous XenAPI client over a unix socket or TCP, XML-RPC or JSON-RPC.
// Used by xe, xl, the tests and the benchmarks. Keeps one connection alive.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api/rpc.h"

namespace vmstack::api {

struct Endpoint {
  std::string unix_path;  // used when non-empty
  std::string host;       // otherwise host:port over TCP
  unsigned short port = 0;
  bool json = false;      // JSON-RPC instead of XML-RPC
};

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
