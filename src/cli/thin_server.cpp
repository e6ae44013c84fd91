#include "cli/thin_server.h"

#include <cstring>
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

}  // namespace

void serve_thin_cli(const api::PostRequest& rq, int fd, const api::Dispatcher& dispatch) {
  if (!thin::write_all(fd, thin::greeting())) return;
  std::string hello;
  if (!thin::read_exact(fd, hello, std::strlen(thin::kPrefix) + 8)) return;
  auto version = thin::parse_greeting(hello);
  if (!version || version->first != thin::kMajor) return;  // as xapi: a mismatched client gets nothing more

  std::ostringstream out, err;
  std::istringstream in;  // nothing to read: commands that ask run in the client
  Io io{out, err, in, -1, -1};
  DispatchRpc rpc(dispatch, rq);
  int rc = run_in_daemon(split_lines(rq.body), rpc, io);

  std::string text = out.str();
  std::string reply;
  if (!text.empty()) {
    if (text.back() == '\n') text.pop_back();  // the client prints a newline after each Print
    reply += thin::print(text);
  }
  if (std::string e = err.str(); !e.empty()) reply += thin::print_stderr(e);
  reply += thin::exit_with(rc);
  thin::write_all(fd, reply);
  const std::size_t size = reply.size();
  std::string().swap(reply);
  text.clear();
  text.shrink_to_fit();
  out.str({});
  trim_heap_after(size);
}

}  // namespace vmstack::cli
