// What a transfer route's handler (server.h: HttpHandler) needs to speak
// HTTP itself: the request's query parameters, its body as the client
// framed it, and the answer's status line and headers. Used by xapi's HTTP
// handlers beside the RPC endpoint (/import_raw_vdi, /export_raw_vdi, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/server.h"

namespace vmstack::api {

// The first `key=` of the target's query string, percent-decoded; "" when absent.
std::string query_param(std::string_view target, std::string_view key);
// The target's path (before '?').
std::string_view target_path(std::string_view target);

// The value of cookie `name` in the request's Cookie headers, or "".
std::string cookie_value(const HttpRequest& rq, std::string_view name);
// HTTP basic auth's user and password, when the request carries them.
std::optional<std::pair<std::string, std::string>> basic_credentials(const HttpRequest& rq);

// The request body as the client frames it: Content-Length, chunked
// transfer encoding, or (neither: xapi's clients' way for a length they do
// not know) until the client closes its side.
class HttpBodyReader {
 public:
  HttpBodyReader(int fd, HttpRequest& rq);
  // Up to `n` bytes of the body; 0 at its end. Throws std::runtime_error
  // when the client breaks the framing, leaves before the declared length or
  // stalls past the socket's timeout.
  std::size_t read(char* buf, std::size_t n);
  std::optional<std::uint64_t> length() const { return length_; }
  // A Content-Length of at least `n` is taken as "unknown": the body ends
  // when the client closes (Xen Orchestra announces 1 PiB for a stream of
  // unknown length and closes once it is sent).
  void end_at_close_beyond(std::uint64_t n) {
    if (length_ && *length_ >= n) length_.reset();
  }
  std::uint64_t consumed() const { return consumed_; }

 private:
  std::size_t raw_read(char* buf, std::size_t n);  // from `buffered` first, then the socket; 0 at EOF
  bool raw_line(std::string& line);                // a CRLF-ended line (chunk framing)
  int fd_;
  std::string pending_;  // bytes read ahead (the request's `buffered`, chunk framing)
  std::size_t pending_pos_ = 0;
  std::optional<std::uint64_t> length_;
  bool chunked_ = false;
  std::uint64_t chunk_left_ = 0;
  bool done_ = false;
  std::uint64_t consumed_ = 0;
};

// "HTTP/1.1 100 Continue" when the client waits for it (Expect:
// 100-continue): once the request is accepted, before its body is read.
void send_continue(int fd, const HttpRequest& rq);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;
// The status line and headers of an answer that closes the connection;
// `length` as Content-Length when known (otherwise the body ends at close).
bool send_head(int fd, int code, std::string_view reason, const HttpHeaders& headers,
               std::optional<std::uint64_t> length);
// A whole text/plain answer.
bool send_text(int fd, int code, std::string_view reason, std::string_view body, const HttpHeaders& headers = {});

}  // namespace vmstack::api
