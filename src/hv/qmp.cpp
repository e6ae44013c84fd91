#include "hv/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "core/fd.h"
#include "core/process.h"

namespace vmstack::hv {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct QmpClient::Impl {
  UniqueFd fd;
  std::string path;
  json greeting;
  std::string rbuf;  // bytes read but not yet parsed
  std::thread reader;

  std::mutex mu;  // open, next_id, replies
  std::condition_variable cv;
  bool open = true;
  uint64_t next_id = 1;
  std::map<uint64_t, std::optional<json>> replies;  // pending ids

  std::mutex write_mu;

  std::mutex cb_mu;  // held while delivering events
  EventCallback event_cb;
  CloseCallback close_cb;
  std::deque<std::tuple<std::string, json, double>> buffered;
  bool reader_done = false;  // the reader saw EOF (or was shut down)
  bool closed_notified = false;

  // Reads one line; deadline only used before the reader thread starts.
  bool read_line(std::string& line, Clock::time_point deadline) {
    for (;;) {
      auto nl = rbuf.find('\n');
      if (nl != std::string::npos) {
        line = rbuf.substr(0, nl);
        rbuf.erase(0, nl + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      struct pollfd p{fd.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      char buf[8192];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      rbuf.append(buf, static_cast<size_t>(n));
    }
  }

  void deliver_event(const json& msg) {
    std::string name = msg.value("event", "");
    json data = msg.contains("data") ? msg["data"] : json(nullptr);
    double ts = 0;
    if (msg.contains("timestamp") && msg["timestamp"].is_object()) {
      auto& t = msg["timestamp"];
      ts = t.value("seconds", 0.0) + t.value("microseconds", 0.0) / 1e6;
    }
    std::lock_guard lk(cb_mu);
    if (event_cb) {
      event_cb(name, data, ts);
    } else {
      if (buffered.size() >= 256) buffered.pop_front();
      buffered.emplace_back(std::move(name), std::move(data), ts);
    }
  }

  void handle_line(const std::string& line) {
    if (line.find_first_not_of(" \r\t") == std::string::npos) return;
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) return;
    if (msg.contains("event")) {
      deliver_event(msg);
      return;
    }
    if (!msg.contains("return") && !msg.contains("error")) return;
    if (!msg.contains("id") || !msg["id"].is_number_unsigned()) return;  // not ours
    uint64_t id = msg["id"].get<uint64_t>();
    std::lock_guard lk(mu);
    auto it = replies.find(id);
    if (it == replies.end()) return;  // timed out earlier
    it->second = std::move(msg);
    cv.notify_all();
  }

  void run_reader() {
    for (;;) {
      std::string line;
      auto nl = rbuf.find('\n');
      if (nl != std::string::npos) {
        line = rbuf.substr(0, nl);
        rbuf.erase(0, nl + 1);
        handle_line(line);
        continue;
      }
      char buf[16384];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      rbuf.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lk(mu);
      open = false;
      cv.notify_all();
    }
    std::lock_guard lk(cb_mu);
    reader_done = true;
    if (close_cb && !closed_notified) {
      closed_notified = true;
      close_cb();
    }
  }

  void shutdown_and_join() {
    {
      std::lock_guard lk(mu);
      open = false;
      cv.notify_all();
    }
    if (fd.valid()) ::shutdown(fd.get(), SHUT_RDWR);
    if (reader.joinable()) {
      if (reader.get_id() == std::this_thread::get_id()) {
        reader.detach();  // closing from our own callback; the thread ends by itself
      } else {
        reader.join();
      }
    }
  }
};

QmpClient::QmpClient() : impl_(std::make_shared<Impl>()) {}

QmpClient::~QmpClient() { close(); }

std::unique_ptr<QmpClient> QmpClient::connect(const std::string& socket_path, std::chrono::milliseconds timeout,
                                              pid_t expected_pid) {
  auto deadline = Clock::now() + timeout;
  struct sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) throw QmpConnectionError("QMP socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);

  std::unique_ptr<QmpClient> c(new QmpClient());
  auto& im = *c->impl_;
  im.path = socket_path;
  for (;;) {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) throw QmpConnectionError(std::string("socket: ") + std::strerror(errno));
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      im.fd = std::move(s);
      break;
    }
    int e = errno;
    if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR) || Clock::now() >= deadline)
      throw QmpConnectionError("connect " + socket_path + ": " + std::strerror(e));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (expected_pid > 0) {
    pid_t peer = socket_peer_pid(im.fd.get());
    if (peer != expected_pid)
      throw QmpPeerError("QMP socket " + socket_path + " is served by " +
                         (peer > 0 ? "pid " + std::to_string(peer) : std::string("an unknown process")) +
                         ", not by QEMU (pid " + std::to_string(expected_pid) + "): refusing it");
  }

  std::string line;
  for (;;) {
    if (!im.read_line(line, deadline)) throw QmpConnectionError("no QMP greeting on " + socket_path);
    json g = json::parse(line, nullptr, false);
    if (!g.is_discarded() && g.is_object() && g.contains("QMP")) {
      im.greeting = std::move(g);
      break;
    }
  }
  // The reader co-owns the Impl so that a client destroyed from one of its
  // own callbacks (on the reader thread) does not pull the state from under it.
  im.reader = std::thread([impl = c->impl_] { impl->run_reader(); });
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  c->execute("qmp_capabilities", nullptr, std::max(left, std::chrono::milliseconds(1000)));
  return c;
}

json QmpClient::execute(const std::string& cmd, const json& args, std::chrono::milliseconds timeout) {
  return execute_with_fd(cmd, args, -1, timeout);
}

json QmpClient::execute_with_fd(const std::string& cmd, const json& args, int pass_fd,
                                std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  uint64_t id;
  {
    std::lock_guard lk(im.mu);
    if (!im.open) throw QmpConnectionError("QMP connection closed (" + cmd + ")");
    id = im.next_id++;
    im.replies.emplace(id, std::nullopt);
  }
  json req = {{"execute", cmd}, {"id", id}};
  if (!args.is_null()) req["arguments"] = args;
  std::string wire = req.dump() + "\n";
  bool sent = true;
  {
    std::lock_guard wl(im.write_mu);
    size_t off = 0;
    if (pass_fd >= 0) {
      // The first chunk carries the descriptor.
      struct iovec iov{wire.data(), wire.size()};
      alignas(struct cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
      struct msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = ctrl;
      mh.msg_controllen = sizeof ctrl;
      struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
      ssize_t n;
      do {
        n = ::sendmsg(im.fd.get(), &mh, MSG_NOSIGNAL);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) sent = false;
      else off = static_cast<size_t>(n);
    }
    while (sent && off < wire.size()) {
      ssize_t n = ::send(im.fd.get(), wire.data() + off, wire.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        sent = false;
        break;
      }
      off += static_cast<size_t>(n);
    }
  }
  std::unique_lock lk(im.mu);
  if (!sent) {
    im.replies.erase(id);
    throw QmpConnectionError("QMP send failed (" + cmd + ")");
  }
  bool got = im.cv.wait_for(lk, timeout, [&] { return im.replies[id].has_value() || !im.open; });
  std::optional<json> reply = std::move(im.replies[id]);
  im.replies.erase(id);
  lk.unlock();
  if (!reply) {
    if (!got) throw QmpConnectionError("QMP command " + cmd + " timed out");
    throw QmpConnectionError("QMP connection closed (" + cmd + ")");
  }
  if (reply->contains("error")) {
    auto& e = (*reply)["error"];
    throw QmpError(e.value("class", "GenericError"), e.value("desc", ""));
  }
  return (*reply)["return"];
}

void QmpClient::set_event_callback(EventCallback cb) {
  auto& im = *impl_;
  std::lock_guard lk(im.cb_mu);
  im.event_cb = std::move(cb);
  if (im.event_cb) {
    while (!im.buffered.empty()) {
      auto [n, d, t] = std::move(im.buffered.front());
      im.buffered.pop_front();
      im.event_cb(n, d, t);
    }
  }
}

void QmpClient::set_close_callback(CloseCallback cb) {
  auto& im = *impl_;
  std::lock_guard lk(im.cb_mu);
  im.close_cb = std::move(cb);
  // Already closed before anyone listened: tell the new listener now.
  if (im.reader_done && im.close_cb && !im.closed_notified) {
    im.closed_notified = true;
    im.close_cb();
  }
}

bool QmpClient::connected() const {
  std::lock_guard lk(impl_->mu);
  return impl_->open;
}

const json& QmpClient::greeting() const { return impl_->greeting; }

void QmpClient::close() {
  if (impl_) impl_->shutdown_and_join();
}

}  // namespace vmstack::hv
