// lb_test_httpd: a tiny HTTP real server for the lb end-to-end test and the
// benchmark. Every request gets "200 OK" with the server's name as body, so
// a client can tell which real server answered. HTTP/1.1 keep-alive and
// "Connection: close" both work; idle connections are simply held (the
// benchmark parks thousands of them). Single-threaded, epoll, non-blocking.
//
//   lb_test_httpd --listen 10.0.0.11:80 --name rs1
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/fd.h"
#include "core/strings.h"
#include "lb/types.h"

using vmstack::UniqueFd;
using vmstack::lb::Endpoint;

namespace {

struct Conn {
  UniqueFd fd;
  std::string in, out;
  size_t out_off = 0;
  bool close_after = false;
};

bool wants_close(const std::string& head) {
  std::string h = vmstack::lower(head);
  if (h.find("connection: close") != std::string::npos) return true;
  // HTTP/1.0 closes unless it asks for keep-alive.
  return h.find(" http/1.0\r\n") != std::string::npos &&
         h.find("connection: keep-alive") == std::string::npos;
}

int usage() {
  std::fprintf(stderr, "usage: lb_test_httpd --listen ADDR:PORT --name NAME\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen, name;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--listen")
      listen = argv[i + 1];
    else if (k == "--name")
      name = argv[i + 1];
    else
      return usage();
  }
  auto ep = Endpoint::parse(listen);
  if (!ep || name.empty()) return usage();

  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd sigfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

  sockaddr_storage ss;
  socklen_t len = ep->to_sockaddr(&ss);
  UniqueFd lfd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(lfd.get(), 4096) != 0) {
    std::fprintf(stderr, "lb_test_httpd: %s: %s\n", listen.c_str(), std::strerror(errno));
    return 1;
  }
  const std::string body = name + "\n";
  const std::string head_keep = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n";

  UniqueFd ep_fd(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd.get();
  epoll_ctl(ep_fd.get(), EPOLL_CTL_ADD, lfd.get(), &ev);
  ev.data.fd = sigfd.get();
  epoll_ctl(ep_fd.get(), EPOLL_CTL_ADD, sigfd.get(), &ev);
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  char buf[16384];

  auto flush = [&](Conn& c) -> bool {  // false: connection is done
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                         MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN;
      c.out_off += size_t(n);
    }
    c.out.clear();
    c.out_off = 0;
    return !c.close_after;
  };

  for (;;) {
    epoll_event evs[256];
    int n = epoll_wait(ep_fd.get(), evs, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == sigfd.get()) return 0;
      if (fd == lfd.get()) {
        for (;;) {
          int c = ::accept4(lfd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto conn = std::make_unique<Conn>();
          conn->fd.reset(c);
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.fd = c;
          epoll_ctl(ep_fd.get(), EPOLL_CTL_ADD, c, &cev);
          conns[c] = std::move(conn);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      bool alive = true, eof = false;
      for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.in.append(buf, size_t(r));
          continue;
        }
        if (r == 0 || errno != EAGAIN) eof = true;
        break;
      }
      // Answer every complete request head in the buffer.
      for (size_t end; !c.close_after && (end = c.in.find("\r\n\r\n")) != std::string::npos;) {
        std::string head = c.in.substr(0, end + 4);
        c.in.erase(0, end + 4);
        c.close_after = wants_close(head);
        c.out += head_keep;
        c.out += c.close_after ? "Connection: close\r\n\r\n" : "\r\n";
        c.out += body;
      }
      if (!c.out.empty()) alive = flush(c);
      if (eof && c.out.empty()) alive = false;
      if (!alive) conns.erase(it);
    }
  }
}
