#include "cli/console.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace vmstack::cli {

namespace {

[[noreturn]] void connect_failed(int err) { throw ApiError("CONNECTION_FAILED", {std::strerror(err)}); }

bool write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

constexpr char kEscape = 0x1d;  // Ctrl-]

}  // namespace

UniqueFd connect_endpoint(const api::Endpoint& ep) {
  if (!ep.unix_path.empty()) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof sa.sun_path) connect_failed(ENAMETOOLONG);
    std::memcpy(sa.sun_path, ep.unix_path.c_str(), ep.unix_path.size() + 1);
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) connect_failed(errno);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) connect_failed(errno);
    return s;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  if (::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res) != 0)
    throw ApiError("CONNECTION_FAILED", {"cannot resolve " + ep.host});
  int err = ECONNREFUSED;
  UniqueFd out;
  for (addrinfo* ai = res; ai && !out; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!s) continue;
    if (::connect(s.get(), ai->ai_addr, ai->ai_addrlen) == 0) out = std::move(s);
    else err = errno;
  }
  ::freeaddrinfo(res);
  if (!out) connect_failed(err);
  return out;
}

int open_stream(int fd, const std::string& target, std::string& status_line, std::string& early) {
  return open_request(fd, "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: xe\r\n\r\n", status_line,
                      early);
}

int open_request(int fd, const std::string& req, std::string& status_line, std::string& early) {
  if (!write_all(fd, req.data(), req.size())) throw ApiError("CONNECTION_FAILED", {std::strerror(errno)});
  std::string buf;
  char chunk[4096];
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ApiError("PROTOCOL_ERROR", {"connection closed before the response header"});
    buf.append(chunk, static_cast<size_t>(n));
    if (buf.size() > (64u << 10)) throw ApiError("PROTOCOL_ERROR", {"response header too large"});
  }
  status_line = buf.substr(0, buf.find("\r\n"));
  early = buf.substr(end + 4);
  // "HTTP/1.1 200 OK"
  auto sp = status_line.find(' ');
  if (sp == std::string::npos) return 0;
  return std::atoi(status_line.c_str() + sp + 1);
}

ProxyEnd proxy(int in_fd, int out_fd, int sock, bool escape, int stop_fd) {
  char buf[16384];
  bool in_open = in_fd >= 0;
  for (;;) {
    pollfd p[3] = {{sock, POLLIN, 0}, {in_open ? in_fd : -1, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return ProxyEnd::Closed;
    }
    if (p[2].revents & POLLIN) return ProxyEnd::Interrupted;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ProxyEnd::Closed;  // the daemon closed the stream
      if (!write_all(out_fd, buf, static_cast<size_t>(n))) return ProxyEnd::Closed;
    }
    if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(in_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // Input is done; keep showing the guest's output until the stream
        // ends (a script piping commands wants to see their results).
        in_open = false;
        continue;
      }
      size_t len = static_cast<size_t>(n);
      bool quit = false;
      if (escape)
        if (void* e = std::memchr(buf, kEscape, len)) {
          len = static_cast<size_t>(static_cast<char*>(e) - buf);
          quit = true;
        }
      if (len && !write_all(sock, buf, len)) return ProxyEnd::Closed;
      if (quit) return ProxyEnd::Escaped;
    }
  }
}

struct SignalFd::Mask {
  sigset_t set;
};

SignalFd::SignalFd() : old_(std::make_unique<Mask>()) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &s, &old_->set);
  fd_.reset(::signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK));
}

SignalFd::~SignalFd() {
  // Consume what arrived (it has been acted upon) before unblocking, so it
  // is not delivered with its default action now.
  signalfd_siginfo info;
  while (fd_ && ::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old_->set, nullptr);
}

struct RawTerminal::Saved {
  termios tio;
};

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!::isatty(fd)) return;
  saved_ = std::make_unique<Saved>();
  if (::tcgetattr(fd, &saved_->tio) != 0) return;
  termios raw = saved_->tio;
  ::cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
}

RawTerminal::~RawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSANOW, &saved_->tio);
}

}  // namespace vmstack::cli
