// `xe console`: an HTTP GET of /console?ref=<console>&session_id=<session>
// on the daemon's socket; after the 200 response header the connection is a
// raw byte stream to the guest's serial port.
#pragma once

#include <memory>
#include <string>

#include "api/client.h"
#include "core/fd.h"

namespace vmstack::cli {

// Connects to the endpoint (unix socket or TCP). Throws ApiError
// CONNECTION_FAILED [strerror text] like the API client does.
UniqueFd connect_endpoint(const api::Endpoint& ep);

// Sends the GET and reads the response header. Returns the status code;
// `status_line` gets the first line, `early` any stream bytes that arrived
// with the header.
int open_stream(int fd, const std::string& target, std::string& status_line, std::string& early);
// The same for any request head (`req`, ending in its blank line).
int open_request(int fd, const std::string& req, std::string& status_line, std::string& early);

enum class ProxyEnd {
  Closed,       // the daemon closed the stream (or an I/O error)
  Escaped,      // Ctrl-] on a terminal
  Interrupted,  // stop_fd became readable (a signal arrived)
};

// Copies in_fd -> sock and sock -> out_fd until the socket closes. With
// `escape` (a terminal on in_fd), the byte Ctrl-] (0x1d) typed on in_fd ends
// the session instead. A readable `stop_fd` (e.g. a SignalFd) ends it too.
ProxyEnd proxy(int in_fd, int out_fd, int sock, bool escape, int stop_fd = -1);

// SIGINT, SIGTERM and SIGHUP delivered through a file descriptor while it
// lives (blocked for the calling thread, restored afterwards), so an
// interrupted console still logs its session out.
class SignalFd {
 public:
  SignalFd();
  ~SignalFd();
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  struct Mask;
  std::unique_ptr<Mask> old_;
};

// Puts a terminal in raw mode for its lifetime (xe passes Ctrl-C etc. to
// the guest); restores the previous mode on destruction.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace vmstack::cli
