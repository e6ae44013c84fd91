// Internal helpers shared by the api codecs, server and client (not part of
// the public contract): text escaping, number formatting, and a minimal
// blocking fd stream usable by Boost.Beast's synchronous HTTP parser.
#pragma once


#include <sys/types.h>
#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/value.h"

namespace vmstack::api::detail {

// Nesting cap for all decoders: deep enough for any XenAPI value, shallow
// enough that recursive conversion can never blow the stack.
inline constexpr int kMaxDepth = 128;

// Appends `s` to `out`, replacing invalid UTF-8 with U+FFFD and escaping for
// XML element content (& < > " and \r; other C0 controls, which XML 1.0
// cannot carry, are dropped as xapi does).
void append_xml_escaped(std::string& out, std::string_view s);
// Same for a JSON string body (without the surrounding quotes).
void append_json_escaped(std::string& out, std::string_view s);
void append_int(std::string& out, int64_t v);
// Shortest round-trip form; `json` forces a fraction/exponent so the value
// decodes as a float again, and maps non-finite values to null.
void append_double(std::string& out, double d, bool json);

// Standard base64 (whitespace and padding skipped); false on other bytes.
bool decode_base64(std::string_view s, std::string& out);
bool parse_int(std::string_view s, int64_t& out);   // trims ASCII space, allows '+'
bool parse_double(std::string_view s, double& out);  // trims ASCII space
// XML-RPC's dateTime.iso8601 in the forms clients send (taken as UTC).
bool parse_xmlrpc_datetime(std::string_view s, DateTime& out);

// A connected socket (or any fd) as a Beast SyncReadStream, for the client's
// blocking reads. Reads only; writes go through send_all() with
// MSG_NOSIGNAL so a dead peer can't SIGPIPE us.
class FdStream {
 public:
  // `poll`: a read that finds nothing first polls a socket for this long
  // before it sleeps (see Client: an answer that comes within it is read
  // without a wake-up); `quick` is kept per connection: it turns polling
  // off after a miss and on again when an answer comes that fast anyway.
  explicit FdStream(int fd, std::chrono::microseconds poll = {}, bool* quick = nullptr)
      : fd_(fd), poll_(poll), quick_(quick) {}
  int fd() const { return fd_; }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      return read_raw(b.data(), b.size(), ec);
    }
    ec = {};
    return 0;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::size_t read_raw(void* p, std::size_t n, boost::system::error_code& ec);
  ssize_t poll_then_read(void* p, std::size_t n);
  int fd_;
  std::chrono::microseconds poll_;
  bool* quick_;
};

// Tries a non-blocking recv on `fd` until data, EOF or an error comes, or
// `until` passes (or `*give_up` turns true), yielding the core between
// tries. Returns recv's result; -1 with errno EAGAIN when it gave up. The
// busy-polling of the server (a quick caller's next request) and of the
// client (a quick answer).
ssize_t recv_polling(int fd, void* p, std::size_t n, std::chrono::steady_clock::time_point until,
                     const std::atomic<bool>* give_up = nullptr);

// Writes all of the given pieces (gathered). Returns false on any error.
// `flags` are added to MSG_NOSIGNAL (MSG_DONTWAIT: best effort, never blocks).
bool send_all(int fd, std::string_view a, std::string_view b = {}, int flags = 0);
// write() loop for non-socket fds (pipes, ttys). Returns false on error.
bool write_all(int fd, const char* p, std::size_t n);

}  // namespace vmstack::api::detail
