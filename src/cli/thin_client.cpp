#include "cli/thin_client.h"

#include <cstring>
#include <string>

#include "cli/console.h"
#include "cli/thin_protocol.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

[[noreturn]] void lost(const std::string& why) {
  throw ApiError(api::wire_errors::PROTOCOL_ERROR, {"connection closed: " + why});
}

}  // namespace

std::vector<std::string> thin_command_line(const Args& a, const Credentials& creds) {
  std::vector<std::string> lines{a.command};
  for (const auto& [k, v] : a.params) lines.push_back(k + "=" + v);
  // An empty user name is "none given" (xe's error texts differ), as
  // credentials_for would have made it "root".
  lines.push_back("username=" + (creds.explicit_username ? creds.username : std::string()));
  lines.push_back("password=" + creds.password);
  std::size_t size = 0;
  for (const auto& l : lines) {
    if (l.find_first_of("\r\n") != std::string::npos) return {};  // lines would change
    size += l.size() + 1;
  }
  if (size > thin::kMaxCommandLine) return {};
  return lines;
}

std::optional<int> run_thin(const api::Endpoint& ep, const std::vector<std::string>& lines, Io& io) {
  if (lines.empty()) return std::nullopt;
  std::string body;
  for (const auto& l : lines) body += (body.empty() ? "" : "\n") + l;
  UniqueFd sock = connect_endpoint(ep);
  const int fd = sock.get();
  std::string request = "POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/" + std::to_string(thin::kMajor) + "." +
                        std::to_string(thin::kMinor) + "\r\noriginator: cli\r\ncontent-length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!thin::write_all(fd, request)) lost("sending the command");

  // A daemon with /cli answers the greeting. An HTTP status instead (404
  // from a daemon without /cli; 503, 413, 408 from one that could not take
  // it now) or nothing at all means nothing ran: xe runs the command itself.
  std::string hello;
  const bool got = thin::read_exact(fd, hello, std::strlen(thin::kPrefix) + 8);
  if (hello.compare(0, 5, "HTTP/") == 0 || hello.empty()) return std::nullopt;
  if (!got) lost("reading the daemon's greeting");
  auto version = thin::parse_greeting(hello);
  if (!version) throw ApiError(api::wire_errors::PROTOCOL_ERROR, {"the daemon does not speak the thin CLI protocol"});
  if (version->first != thin::kMajor)
    throw ApiError(api::wire_errors::PROTOCOL_ERROR,
                   {"thin CLI protocol version mismatch: daemon " + std::to_string(version->first) + "." +
                    std::to_string(version->second)});
  if (!thin::write_all(fd, thin::greeting())) lost("sending the greeting");

  for (;;) {
    std::optional<thin::Message> m;
    try {
      m = thin::read_message(fd);
    } catch (const std::runtime_error& e) {
      throw ApiError(api::wire_errors::PROTOCOL_ERROR, {e.what()});
    }
    if (!m) lost("reading the daemon's answer");
    if (m->kind != thin::Tag::command) continue;  // nothing else is sent to a client
    switch (m->tag) {
      case thin::Tag::print: io.out << m->strings[0] << '\n'; break;
      case thin::Tag::print_stderr: io.err << m->strings[0]; break;
      case thin::Tag::debug: break;
      case thin::Tag::exit: io.out.flush(); return m->number;
      case thin::Tag::error:
        io.err << "Error code: " << m->strings[0] << "\nError parameters: ";
        for (std::size_t i = 1; i < m->strings.size(); ++i) io.err << (i > 1 ? ", " : "") << m->strings[i];
        io.err << "\n";
        break;
      case thin::Tag::prompt: {
        io.out.flush();
        std::string answer;
        std::getline(io.in, answer);
        if (!thin::write_all(fd, thin::blob_chunk(answer) + thin::blob_end())) lost("answering a prompt");
        break;
      }
      default:
        // Load, HttpGet, HttpPut, HttpConnect: file and stream transfers
        // this xe leaves to its own commands (console, ...).
        if (!thin::write_all(fd, thin::response(thin::Tag::failed))) lost("refusing a transfer");
        io.err << "The daemon asked for a transfer this xe does not do.\n";
        break;
    }
  }
}

}  // namespace vmstack::cli
