#include "ops/console_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <thread>

#include "api/wire_util.h"
#include "core/fd.h"
#include "core/process.h"

namespace vmstack::ops {

namespace {

// QEMU's socket chardev serves one client at a time; the next waits in a
// one-deep listen queue. Behind a full queue (two consoles already open) a
// blocking connect() would hold this worker for as long as they last, so
// connect without blocking and give up after a few seconds.
//
// The socket's name is in the guest's own directory, where an escaped guest
// can put a symlink to any socket root may reach (another guest's console):
// with peer_pid > 0 the socket must be served by that process, the
// domain's QEMU (SO_PEERCRED: whoever called listen()), else `why` says so.
UniqueFd connect_console(const std::string& path, pid_t peer_pid, std::string& why) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s) break;
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      if (peer_pid <= 0) return s;
      pid_t peer = socket_peer_pid(s.get());
      if (peer == peer_pid) return s;
      why = "refusing the console socket of the VM: it is served by " +
            (peer > 0 ? "pid " + std::to_string(peer) : std::string("an unknown process")) + ", not by its QEMU (pid " +
            std::to_string(peer_pid) + ")";
      return UniqueFd();
    }
    if (errno != EAGAIN || std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  why = "cannot connect to the console of the VM: " + std::string(std::strerror(errno));
  return UniqueFd();
}

// The console log, opened for reading only if it is what QEMU writes: a
// regular file with a single link. Opened without following a symlink (the
// name is in the guest's directory) and without blocking (a FIFO under the
// name must not hold this worker); checked on the descriptor, not the name.
UniqueFd open_console_log(const std::string& path, std::string& why) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    why = "cannot open the console log " + path + ": " + std::strerror(errno);
    return fd;
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    why = "refusing the console log " + path + ": not a plain file with a single link";
    return UniqueFd();
  }
  return fd;
}

// Follows a growing file from a byte offset.
class LogTail {
 public:
  explicit LogTail(UniqueFd fd) : fd_(std::move(fd)) {}
  // Copies everything appended since the last call to `out`; false when the
  // client is gone. A log that shrank was truncated: start it over.
  bool drain(int out) {
    struct stat st{};
    if (::fstat(fd_.get(), &st) == 0 && st.st_size < offset_) offset_ = 0;
    char buf[16384];
    for (;;) {
      ssize_t r = ::pread(fd_.get(), buf, sizeof buf, offset_);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return true;
      offset_ += r;
      if (!api::detail::send_all(out, std::string_view(buf, static_cast<size_t>(r)))) return false;
    }
  }

 private:
  UniqueFd fd_;
  off_t offset_ = 0;
};

}  // namespace

std::string relay_console(int client, const std::string& socket_path, const std::string& log_path, pid_t peer_pid,
                          const std::atomic<bool>& stopping) {
  std::string why;
  UniqueFd log_fd = open_console_log(log_path, why);
  if (!log_fd) return why;
  // Watch before the first read, so no append can fall between the two; the
  // very inode opened (through /proc/self/fd), never whatever the name
  // points at by now.
  UniqueFd notify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  const std::string opened = "/proc/self/fd/" + std::to_string(log_fd.get());
  if (!notify || ::inotify_add_watch(notify.get(), opened.c_str(), IN_MODIFY) < 0)
    return "cannot watch the console log " + log_path + ": " + std::strerror(errno);
  LogTail tail(std::move(log_fd));
  UniqueFd guest = connect_console(socket_path, peer_pid, why);
  if (!guest) return why;
  if (!tail.drain(client)) return {};

  char buf[4096];
  pollfd p[3] = {{client, POLLIN, 0}, {guest.get(), POLLIN, 0}, {notify.get(), POLLIN, 0}};
  while (!stopping) {
    if (::poll(p, 3, 500) < 0) {
      if (errno == EINTR) continue;
      return {};
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(client, buf, sizeof buf);
      if (r <= 0) return {};
      // The chardev socket is non-blocking: wait for room rather than drop keys.
      for (ssize_t done = 0; done < r;) {
        ssize_t w = ::send(guest.get(), buf + done, static_cast<size_t>(r - done), MSG_NOSIGNAL);
        if (w > 0) {
          done += w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
          pollfd out{guest.get(), POLLOUT, 0};
          ::poll(&out, 1, 500);
          if (stopping) return {};
        } else {
          return {};
        }
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(guest.get(), buf, sizeof buf);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        tail.drain(client);  // QEMU logs its last words before it closes
        return {};
      }
    }
    if (p[2].revents & POLLIN) {
      char events[4096];
      while (::read(notify.get(), events, sizeof events) > 0) {
      }
    }
    if (!tail.drain(client)) return {};
  }
  return {};
}

namespace {

// Writes all of buf to a non-blocking fd, waiting for room; false when the
// peer has gone or the daemon stops.
bool send_all_nb(int fd, const char* buf, size_t n, const std::atomic<bool>& stopping) {
  for (size_t done = 0; done < n;) {
    ssize_t w = ::send(fd, buf + done, n - done, MSG_NOSIGNAL);
    if (w > 0) {
      done += static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd out{fd, POLLOUT, 0};
      ::poll(&out, 1, 500);
      if (stopping) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string relay_stream(int client, const std::string& socket_path, pid_t peer_pid, const std::atomic<bool>& stopping) {
  std::string why;
  UniqueFd guest = connect_console(socket_path, peer_pid, why);
  if (!guest) return why;
  char buf[16384];
  pollfd p[2] = {{client, POLLIN, 0}, {guest.get(), POLLIN, 0}};
  while (!stopping) {
    if (::poll(p, 2, 500) < 0) {
      if (errno == EINTR) continue;
      return {};
    }
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(p[i].fd, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0 || !send_all_nb(p[1 - i].fd, buf, static_cast<size_t>(r), stopping)) return {};
    }
  }
  return {};
}

}  // namespace vmstack::ops
