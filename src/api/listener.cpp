#include "api/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace vmstack::api::detail {

namespace {

std::string errno_text(const std::string& what, int e) { return what + ": " + std::strerror(e); }

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("invalid unix socket path (1.." + std::to_string(sizeof addr.sun_path - 1) +
                             " bytes): '" + path + "'");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::move(o.fd_);
    tcp_ = o.tcp_;
    port_ = o.port_;
    path_ = std::move(o.path_);
    dev_ = o.dev_;
    ino_ = o.ino_;
    o.path_.clear();
  }
  return *this;
}

void Listener::close() {
  if (!fd_) return;
  fd_.reset();
  if (!path_.empty()) {
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
    path_.clear();
  }
}

Listener Listener::unix_socket(const std::string& path) {
  sockaddr_un addr = unix_address(path);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + " exists and is not a socket; refusing to remove it");
    // Stale or live? A live server accepts the connection, or its backlog is
    // full (EAGAIN on a non-blocking probe, which never hangs); ECONNREFUSED
    // means nobody listens any more.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (probe) {
      int rc = ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
        throw std::runtime_error(path + " is in use by a running server");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error(errno_text("removing stale socket " + path, errno));
  }
  Listener l;
  l.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!l.fd_) throw std::runtime_error(errno_text("socket(AF_UNIX)", errno));
  // The umask makes bind() create the file 0600, so there is no window in
  // which another user could connect; the chmod afterwards is belt and braces.
  mode_t old = ::umask(077);
  int rc = ::bind(l.fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_errno = errno;
  ::umask(old);
  if (rc != 0) throw std::runtime_error(errno_text("bind(" + path + ")", bind_errno));
  if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error(errno_text("stat(" + path + ")", errno));
  l.path_ = path;  // from here on close() removes the file
  l.dev_ = st.st_dev;
  l.ino_ = st.st_ino;
  if (::chmod(path.c_str(), 0600) != 0) throw std::runtime_error(errno_text("chmod(" + path + ")", errno));
  if (::listen(l.fd_.get(), SOMAXCONN) != 0) throw std::runtime_error(errno_text("listen(" + path + ")", errno));
  return l;
}

Listener Listener::tcp(const std::string& address, unsigned short port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int gai = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) throw std::runtime_error("cannot resolve " + address + ": " + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  std::string last = "no addresses for " + address;
  Listener l;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) {
      last = errno_text("socket", errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // restart while old conns in TIME_WAIT
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
      last = errno_text("bind/listen " + address + ":" + service, errno);
      continue;
    }
    l.fd_ = std::move(fd);
    break;
  }
  if (!l.fd_) throw std::runtime_error(last);
  l.tcp_ = true;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(l.fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw std::runtime_error(errno_text("getsockname", errno));
  if (ss.ss_family == AF_INET) l.port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  else if (ss.ss_family == AF_INET6) l.port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return l;
}

PeerIdentity identify_peer(int fd, bool tcp) {
  PeerIdentity p;
  if (!tcp) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) p.uid = static_cast<int>(cred.uid);
    p.address = "unix";
    return p;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    p.address = std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    p.address = "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return p;
}

}  // namespace vmstack::api::detail
