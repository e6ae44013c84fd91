// Synchronous XenAPI client: one kept-alive connection over a plain fd, the
// request written with a single sendmsg, the response read with Beast's
// parser. No io_context, no threads: construction is essentially free, which
// matters for short-lived processes such as xe.
#include "api/client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include "api/wire_util.h"
#include "core/fd.h"

namespace vmstack::api {

namespace http = boost::beast::http;

namespace {

[[noreturn]] void connection_failed(std::string detail) {
  throw ApiError(wire_errors::CONNECTION_FAILED, {std::move(detail)});
}
[[noreturn]] void protocol_error(std::string detail) {
  throw ApiError(wire_errors::PROTOCOL_ERROR, {std::move(detail)});
}

int connect_retrying_eintr(int s, const sockaddr* a, socklen_t len) {
  int rc;
  do rc = ::connect(s, a, len);
  while (rc != 0 && errno == EINTR);
  return rc;
}

std::string where(const Endpoint& ep) {
  return ep.unix_path.empty() ? ep.host + ":" + std::to_string(ep.port) : ep.unix_path;
}

// A connected socket to the endpoint, or CONNECTION_FAILED with a message
// that tells the user what to check.
UniqueFd open_connection(const Endpoint& ep) {
  if (!ep.unix_path.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof addr.sun_path)
      connection_failed("cannot connect to " + ep.unix_path + ": socket path too long");
    std::memcpy(addr.sun_path, ep.unix_path.c_str(), ep.unix_path.size() + 1);
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) connection_failed(std::string("socket: ") + std::strerror(errno));
    if (connect_retrying_eintr(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int e = errno;
      std::string msg = "cannot connect to " + ep.unix_path + ": " + std::strerror(e);
      if (e == ENOENT || e == ECONNREFUSED) msg += " \u2014 is vmstackd running?";
      else if (e == EACCES || e == EPERM) msg += " \u2014 the API socket is only accessible to root";
      connection_failed(msg);
    }
    return s;
  }
  if (ep.host.empty()) connection_failed("no endpoint: neither a unix socket path nor a host was given");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(ep.port);
  int gai = ::getaddrinfo(ep.host.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) connection_failed("cannot resolve " + ep.host + ": " + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  std::string last = "no addresses";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!s) continue;
    if (connect_retrying_eintr(s.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      int one = 1;
      ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // request/response: no Nagle delay
      return s;
    }
    last = std::strerror(errno);
  }
  connection_failed("cannot connect to " + where(ep) + ": " + last + " \u2014 is vmstackd running?");
}

}  // namespace

constexpr std::size_t kReadChunk = 64 * 1024;
// A quick call's answer comes within tens of microseconds; sleeping for it
// costs a wake-up that on a virtualised host is as long again (an IPI
// through the hypervisor), so a client that gets its answers that fast
// polls for them this long before it sleeps. One miss turns it off for the
// connection until an answer comes that fast again (detail::FdStream).
constexpr std::chrono::microseconds kAnswerPoll{150};

struct Client::Impl {
  Endpoint ep;
  UniqueFd conn;                   // the kept-alive RPC connection
  boost::beast::flat_buffer buf;   // its read buffer
  int64_t next_id = 1;
  std::string header;  // reused request header buffer
  std::chrono::microseconds answer_poll = kAnswerPoll;
  bool quick_answers = true;  // poll for the answer (answer_poll)

  void disconnect() {
    conn.reset();
    buf.clear();
  }

  void build_header(const char* method, std::string_view target, const char* content_type, std::size_t len) {
    header.clear();
    header.append(method);
    header.push_back(' ');
    header.append(target);
    header.append(" HTTP/1.1\r\nHost: ");
    header.append(ep.unix_path.empty() ? ep.host : std::string("localhost"));
    header.append("\r\nUser-Agent: vmstack\r\n");
    if (content_type) {
      header.append("Content-Type: ");
      header.append(content_type);
      header.append("\r\nContent-Length: ");
      detail::append_int(header, static_cast<int64_t>(len));
      header.append("\r\n");
    }
    header.append("\r\n");
  }

  // Sends the request and reads the response body. Returns false when the
  // failure looks like a kept-alive connection the server had already closed
  // (nothing was received), so the caller may reconnect and retry once.
  bool exchange(const std::string& body, std::string& resp_body, std::string& error) {
    if (!detail::send_all(conn.get(), header, body)) {
      error = std::string("sending request: ") + std::strerror(errno);
      disconnect();
      return false;
    }
    http::response_parser<http::string_body> parser;
    // Beast reads into the buffer's spare capacity, at least 512 bytes; the
    // parser moves each chunk into the body, so without room reserved a
    // 450 KB get_all_records answer arrives in ~900 reads.
    buf.reserve(kReadChunk);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // we asked for it: the server is trusted
    parser.header_limit(1u << 20);
    detail::FdStream stream(conn.get(), answer_poll, &quick_answers);
    boost::system::error_code ec;
    http::read(stream, buf, parser, ec);
    if (ec) {
      bool nothing_received = ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
                              ec == boost::system::errc::connection_reset;
      error = "reading response: " + ec.message();
      disconnect();
      if (nothing_received) return false;
      protocol_error(error + " from " + where(ep));
    }
    auto& res = parser.get();
    if (res.result_int() != 200) {
      disconnect();
      protocol_error("HTTP " + std::to_string(res.result_int()) + " " + std::string(res.reason()) + " from " +
                     where(ep) + ": " + res.body().substr(0, 200));
    }
    resp_body = std::move(res.body());
    if (!res.keep_alive()) disconnect();
    return true;
  }
};

Client::Client(Endpoint ep) : impl_(std::make_unique<Impl>()) { impl_->ep = std::move(ep); }
Client::~Client() = default;

Value Client::call(const std::string& method, const Array& params) {
  auto& I = *impl_;
  const bool json = I.ep.json;
  std::string body = json ? jsonrpc::format_request(method, params, I.next_id++) : xmlrpc::format_request(method, params);
  I.build_header("POST", json ? "/jsonrpc" : "/", json ? "application/json" : "text/xml", body.size());
  std::string resp, error;
  // Only a kept-alive connection that turns out dead before any response
  // byte arrived is retried, once, on a fresh connection: the server closed
  // it while idle (or restarted), so it cannot have run the call.
  bool may_retry = static_cast<bool>(I.conn);
  for (;;) {
    if (!I.conn) I.conn = open_connection(I.ep);
    if (I.exchange(body, resp, error)) break;
    if (!may_retry) connection_failed("connection to " + where(I.ep) + " lost: " + error);
    may_retry = false;
  }
  RpcResult r = json ? jsonrpc::parse_response(resp) : xmlrpc::parse_response(resp);
  if (r.ok) return std::move(r.value);
  if (r.error_description.empty()) protocol_error("empty ErrorDescription from " + where(I.ep));
  std::vector<std::string> rest(std::make_move_iterator(r.error_description.begin() + 1),
                                std::make_move_iterator(r.error_description.end()));
  throw ApiError(std::move(r.error_description[0]), std::move(rest));
}

void Client::set_answer_poll(std::chrono::microseconds poll) { impl_->answer_poll = poll; }

bool Client::stream_get(const std::string& target, int out_fd) {
  auto& I = *impl_;
  // A stream consumes a connection of its own; the RPC one stays alive.
  UniqueFd s = open_connection(I.ep);
  I.build_header("GET", target, nullptr, 0);
  if (!detail::send_all(s.get(), I.header))
    connection_failed("sending request to " + where(I.ep) + ": " + std::strerror(errno));
  http::response_parser<http::empty_body> parser;
  parser.header_limit(1u << 20);
  detail::FdStream stream(s.get());
  boost::beast::flat_buffer buf;
  boost::system::error_code ec;
  http::read_header(stream, buf, parser, ec);
  if (ec) connection_failed("reading stream header from " + where(I.ep) + ": " + ec.message());
  if (parser.get().result_int() != 200) return false;
  // Whatever followed the header in the buffer is the start of the stream.
  auto pending = buf.data();
  if (!detail::write_all(out_fd, static_cast<const char*>(pending.data()), pending.size())) return true;
  char chunk[16384];
  for (;;) {
    ssize_t n = ::read(s.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the stream ended (errors end it too)
    if (!detail::write_all(out_fd, chunk, static_cast<std::size_t>(n))) break;  // our consumer went away
  }
  return true;
}

}  // namespace vmstack::api
