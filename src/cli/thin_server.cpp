#include "cli/thin_server.h"

#include <chrono>
#include <cstring>
#include <ostream>
#include <streambuf>
#include <sstream>
#include <string>
#include <vector>

#include "cli/session.h"
#include "cli/thin_protocol.h"
#include "cli/xe.h"
#include "core/error.h"
#include "core/heap.h"

namespace vmstack::cli {

namespace {

constexpr auto kGreetingTimeout = std::chrono::seconds(10);

// xe's calls, made as if they had come over the connection.
class DispatchRpc : public Rpc {
 public:
  DispatchRpc(const api::Dispatcher& d, const api::PostRequest& rq) : dispatch_(d), rq_(rq) {}
  Value call(const std::string& method, const Array& params) override {
    api::RpcCall c;
    c.method = method;
    c.params = params;
    c.peer_uid = rq_.peer_uid;
    c.peer_address = rq_.peer_address;
    try {
      return dispatch_(c);
    } catch (const ApiError&) {
      throw;
    } catch (const std::exception& e) {
      throw ApiError(errors::INTERNAL_ERROR, {e.what()});
    }
  }

 private:
  const api::Dispatcher& dispatch_;
  const api::PostRequest& rq_;
};

std::vector<std::string> split_lines(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t nl = body.find('\n', start);
    if (nl == std::string::npos) nl = body.size();
    std::string line = body.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(std::move(line));
    start = nl + 1;
  }
  return out;
}

// What the command prints, sent as Print messages of about kPrintChunk
// bytes, each cut after a line end (xe prints a newline after each Print),
// as it is produced: no copy of a large listing is kept.
class PrintStream : public std::streambuf {
 public:
  explicit PrintStream(int fd) : fd_(fd) {}
  // Sends what is left (its last newline, too, is xe's to print).
  void finish() {
    if (buf_.empty()) return;
    if (buf_.back() == '\n') buf_.pop_back();
    send(buf_);
    std::string().swap(buf_);
  }
  std::size_t sent() const { return sent_; }

 protected:
  int_type overflow(int_type ch) override {
    if (ch != traits_type::eof()) {
      buf_.push_back(static_cast<char>(ch));
      maybe_send();
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* p, std::streamsize n) override {
    buf_.append(p, static_cast<std::size_t>(n));
    maybe_send();
    return n;
  }

 private:
  void maybe_send() {
    if (buf_.size() < thin::kPrintChunk) return;
    std::size_t nl = buf_.rfind('\n');
    if (nl == std::string::npos) return;  // one long line: wait for its end
    send(buf_.substr(0, nl));
    buf_.erase(0, nl + 1);
  }
  void send(const std::string& text) {
    // A client that went away loses the rest; the command still completes.
    if (!failed_ && !thin::write_all(fd_, thin::print(text))) failed_ = true;
    sent_ += text.size();
  }

  int fd_;
  std::string buf_;
  bool failed_ = false;
  std::size_t sent_ = 0;
};

}  // namespace

void serve_thin_cli(const api::PostRequest& rq, int fd, const api::Dispatcher& dispatch) {
  if (!thin::write_all(fd, thin::greeting())) return;
  // One deadline for the client's greeting: a client trickling it holds its
  // thread no longer, and nothing has run yet.
  std::string hello;
  if (!thin::read_exact_by(fd, hello, std::strlen(thin::kPrefix) + 8,
                           std::chrono::steady_clock::now() + kGreetingTimeout))
    return;
  auto version = thin::parse_greeting(hello);
  if (!version || version->first != thin::kMajor) return;  // as xapi: a mismatched client gets nothing more

  std::size_t printed = 0;
  int rc = 1;
  std::string errors;
  {
    PrintStream print(fd);
    std::ostream out(&print);
    std::ostringstream err;
    std::istringstream in;  // nothing to read: commands that ask run in the client
    Io io{out, err, in, -1, -1};
    DispatchRpc rpc(dispatch, rq);
    rc = run_in_daemon(split_lines(rq.body), rpc, io);
    out.flush();
    print.finish();
    printed = print.sent();
    errors = err.str();
  }
  std::string tail;
  if (!errors.empty()) tail += thin::print_stderr(errors);
  tail += thin::exit_with(rc);
  thin::write_all(fd, tail);
  trim_heap_after(printed);  // the listing's records and text are freed now
}

}  // namespace vmstack::cli
