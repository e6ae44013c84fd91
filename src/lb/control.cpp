#include "lb/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <utility>  // before Asio: boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/fd.h"

namespace vmstack::lb {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

constexpr size_t kMaxRequest = 16u << 20;  // a restore of many thousands of rules fits

sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

// A connect() that succeeds means a live daemon owns the socket.
bool socket_is_live(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa = unix_addr(path);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

}  // namespace

std::string default_control_socket() {
  const char* env = std::getenv("VMSTACK_LB_SOCKET");
  return env && *env ? env : "/run/vmstack-lb/lbd.sock";
}

ControlReply control_call(const std::string& path, const nlohmann::json& request, int timeout_ms) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_un sa = unix_addr(path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::runtime_error(path + ": " + std::strerror(errno));
  std::string req = request.dump() + "\n";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto wait_for = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    pollfd p{fd.get(), events, 0};
    if (left <= 0 || ::poll(&p, 1, int(left)) <= 0)
      throw std::runtime_error(path + ": no answer from vmstack-lbd (timeout)");
  };
  for (size_t off = 0; off < req.size();) {
    wait_for(POLLOUT);
    ssize_t n = ::send(fd.get(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    off += size_t(n);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    wait_for(POLLIN);
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    resp.append(buf, size_t(n));
    if (!resp.empty() && resp.back() == '\n') break;
  }
  try {
    auto j = nlohmann::json::parse(resp);
    ControlReply r;
    r.rc = j.at("rc").get<int>();
    r.out = j.value("out", std::string());
    r.err = j.value("err", std::string());
    return r;
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(path + ": malformed reply from vmstack-lbd");
  }
}

// ------------------------------------------------------------ server
struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  Impl(asio::io_context& io, std::string p, Handler h)
      : io(io), path(std::move(p)), handler(std::move(h)), acceptor(io) {}

  struct Session : std::enable_shared_from_this<Session> {
    Session(asio::io_context& io, std::shared_ptr<Impl> owner)
        : sock(io), timer(io), buf(kMaxRequest), owner(std::move(owner)) {}
    local::socket sock;
    asio::steady_timer timer;
    asio::streambuf buf;
    std::string reply;
    std::shared_ptr<Impl> owner;

    void start() {
      auto self = shared_from_this();
      // A client that never finishes its request is dropped.
      timer.expires_after(std::chrono::seconds(30));
      timer.async_wait([self](boost::system::error_code ec) {
        if (!ec) self->sock.close(ec);
      });
      asio::async_read_until(sock, buf, '\n', [self](boost::system::error_code ec, size_t n) {
        self->on_request(ec, n);
      });
    }

    void on_request(boost::system::error_code ec, size_t n) {
      nlohmann::json resp;
      if (ec) {
        if (ec != asio::error::not_found) return;  // closed or timed out
        resp = {{"rc", 2}, {"out", ""}, {"err", "request too large\n"}};
      } else {
        std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
        try {
          resp = owner->handler(nlohmann::json::parse(line));
        } catch (const std::exception& e) {
          resp = {{"rc", 2}, {"out", ""}, {"err", std::string("bad request: ") + e.what() + "\n"}};
        }
      }
      reply = resp.dump() + "\n";
      auto self = shared_from_this();
      asio::async_write(sock, asio::buffer(reply), [self](boost::system::error_code, size_t) {
        boost::system::error_code ignored;
        self->timer.cancel();
        self->sock.shutdown(local::socket::shutdown_both, ignored);
        self->sock.close(ignored);
      });
    }
  };

  void accept() {
    auto s = std::make_shared<Session>(io, shared_from_this());
    acceptor.async_accept(s->sock, [self = shared_from_this(), s](boost::system::error_code ec) {
      if (!self->acceptor.is_open()) return;
      if (!ec) s->start();
      self->accept();
    });
  }

  asio::io_context& io;
  std::string path;
  Handler handler;
  local::acceptor acceptor;
};

ControlServer::ControlServer(asio::io_context& io, std::string path, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(path), std::move(handler))) {}

ControlServer::~ControlServer() { stop(); }

const std::string& ControlServer::path() const { return impl_->path; }

void ControlServer::start() {
  const std::string& path = impl_->path;
  unix_addr(path);  // length check
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code fec;
  if (!dir.empty() && !std::filesystem::exists(dir, fec)) {
    std::filesystem::create_directories(dir, fec);
    if (!fec)
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, fec);
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + " exists and is not a socket");
    if (socket_is_live(path))
      throw std::runtime_error("another vmstack-lbd is already serving " + path);
    ::unlink(path.c_str());  // left behind by a daemon that died
  }
  boost::system::error_code ec;
  impl_->acceptor.open(local(), ec);
  if (!ec) impl_->acceptor.bind(local::endpoint(path), ec);
  // Only the daemon's user may change rules. A directory we created is 0700
  // as well, so there is no window in which others can connect.
  if (!ec && ::chmod(path.c_str(), 0600) != 0)
    ec = boost::system::error_code(errno, boost::system::system_category());
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    throw std::runtime_error("control socket " + path + ": " + ec.message());
  }
  impl_->accept();
}

void ControlServer::stop() {
  if (!impl_->acceptor.is_open()) return;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  ::unlink(impl_->path.c_str());
}

}  // namespace vmstack::lb
