// The server's request handling over bytes instead of a client's socket
// (see http_conn.h): tests and the fuzzers (tests/fuzz) drive the same
// read_request / serve_connection the server's threads run.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <thread>

#include "api/http_conn.h"
#include "api/wire_util.h"

namespace vmstack::api::detail {

std::string serve_bytes(std::string_view in, const HttpContext& ctx, const PeerIdentity& peer) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error("serve_bytes: socketpair failed");
  UniqueFd client(pair[1]);
  Connection c;
  c.fd = UniqueFd(pair[0]);
  c.peer = peer;
  c.since = clock::now();

  // The client: writes everything then closes its side, and collects every
  // byte the server answers until the server closes. Threads, because a
  // socket buffer holds less than a large input or answer.
  std::string out;
  std::thread writer([&] {
    send_all(client.get(), in);
    ::shutdown(client.get(), SHUT_WR);
  });
  std::thread reader([&] {
    char buf[16u << 10];
    for (;;) {
      ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR) break;
    }
  });

  // The server: the event thread's part (read_request until a request is
  // complete) and a worker's (serve_connection), in turn, as for a socket.
  std::exception_ptr error;
  try {
    for (;;) {
      ReadResult r = read_request(c, ctx);
      if (r == ReadResult::incomplete || r == ReadResult::idle) {
        pollfd p{c.fd.get(), POLLIN, 0};
        ::poll(&p, 1, -1);  // the writer always ends with EOF
        continue;
      }
      if (r != ReadResult::complete) break;  // closed, or refused (answer sent)
      AfterServe a = serve_connection(c, ctx);
      // handed_over: a stream ran to its end (ctx's start_stream runs it
      // inline); a deferred reply is not supported here (ctx never defers).
      if (a != AfterServe::park && a != AfterServe::read_on) break;
    }
  } catch (...) {
    error = std::current_exception();  // the client threads are joined first
  }
  c.fd.reset();  // the reader sees EOF, a blocked writer EPIPE
  writer.join();
  reader.join();
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace vmstack::api::detail
