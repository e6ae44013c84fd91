// QMP (QEMU Machine Protocol) client over a unix socket.
//
// connect() reads the greeting and negotiates qmp_capabilities. A reader
// thread owns the socket's input: replies are matched to execute() calls by
// "id", so several threads may execute() concurrently (writes are
// serialized); asynchronous events go to the event callback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace vmstack::hv {

// A command QEMU answered with {"error": {"class", "desc"}}.
class QmpError : public std::runtime_error {
 public:
  QmpError(std::string cls, std::string desc)
      : std::runtime_error(cls + ": " + desc), cls_(std::move(cls)), desc_(std::move(desc)) {}
  const std::string& error_class() const { return cls_; }  // e.g. "GenericError", "CommandNotFound"
  const std::string& desc() const { return desc_; }

 private:
  std::string cls_, desc_;
};

// The connection is gone (QEMU exited, socket closed) or a reply timed out.
class QmpConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The socket answered, but was not served by the process expected to serve
// it (SO_PEERCRED): another process's socket under the expected name (a
// symlink planted by a guest, say). Not worth retrying.
class QmpPeerError : public QmpConnectionError {
 public:
  using QmpConnectionError::QmpConnectionError;
};

class QmpClient {
 public:
  // (event name, data object or null, timestamp seconds). Runs on the reader
  // thread: must be quick and must NOT call execute() (hand work off).
  using EventCallback = std::function<void(const std::string& event, const nlohmann::json& data, double timestamp)>;
  // Called once when the connection closes: on the reader thread, or at
  // once from set_close_callback() if it had already closed.
  using CloseCallback = std::function<void()>;

  // Connects (retrying ENOENT/ECONNREFUSED until timeout), reads the greeting,
  // sends qmp_capabilities. Throws QmpConnectionError on failure.
  // expected_pid > 0: the socket must be served by that process (the QEMU
  // that created it, by its SO_PEERCRED pid), else QmpPeerError before a
  // byte is read or sent. The socket lives in a directory the guest's user
  // may write to, so its name alone proves nothing.
  static std::unique_ptr<QmpClient> connect(const std::string& socket_path,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                            pid_t expected_pid = 0);
  ~QmpClient();  // closes the socket, joins the reader

  // Sends {"execute": cmd, "arguments": args} and waits for its reply.
  // Returns the "return" value; throws QmpError for an error reply and
  // QmpConnectionError on disconnect or timeout.
  nlohmann::json execute(const std::string& cmd, const nlohmann::json& args = nullptr,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Same, passing fd to QEMU with SCM_RIGHTS alongside the command (for
  // "getfd"/"add-fd"). The caller keeps ownership of fd.
  nlohmann::json execute_with_fd(const std::string& cmd, const nlohmann::json& args, int fd,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Events that arrive before a callback is set are buffered (up to 256) and
  // delivered when it is set.
  void set_event_callback(EventCallback cb);
  void set_close_callback(CloseCallback cb);

  bool connected() const;
  const nlohmann::json& greeting() const;  // {"QMP": {"version": ..., "capabilities": ...}}
  void close();

 private:
  QmpClient();
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the reader thread
};

}  // namespace vmstack::hv
