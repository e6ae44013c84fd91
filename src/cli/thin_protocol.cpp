#include "cli/thin_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "api/wire_util.h"

namespace vmstack::cli::thin {

namespace {

void put_int(std::string& out, int32_t v) {
  auto u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

void put_string(std::string& out, const std::string& s) {
  put_int(out, static_cast<int32_t>(s.size()));
  out += s;
}

std::string framed(const std::string& message) {
  std::string out;
  put_int(out, static_cast<int32_t>(message.size()));
  return out + message;
}

std::string command(Tag tag, const std::string& body) {
  std::string m;
  put_int(m, static_cast<int32_t>(Tag::command));
  put_int(m, static_cast<int32_t>(tag));
  return framed(m + body);
}

// Reads from a payload, refusing to run past its end.
struct Reader {
  const std::string& s;
  std::size_t pos = 0;
  int32_t get_int() {
    if (s.size() - pos < 4) throw std::runtime_error("thin CLI message truncated");
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
    pos += 4;
    return static_cast<int32_t>(u);
  }
  std::string get_string() {
    int32_t n = get_int();
    if (n < 0 || static_cast<std::size_t>(n) > s.size() - pos) throw std::runtime_error("thin CLI string truncated");
    std::string out = s.substr(pos, static_cast<std::size_t>(n));
    pos += static_cast<std::size_t>(n);
    return out;
  }
};

}  // namespace

std::string greeting() {
  std::string out = kPrefix;
  put_int(out, kMajor);
  put_int(out, kMinor);
  return out;
}

std::optional<std::pair<int32_t, int32_t>> parse_greeting(const std::string& bytes) {
  const std::size_t n = std::strlen(kPrefix);
  if (bytes.size() != n + 8 || bytes.compare(0, n, kPrefix) != 0) return std::nullopt;
  Reader r{bytes, n};
  int32_t major = r.get_int();
  return std::make_pair(major, r.get_int());
}

std::string print(const std::string& line) {
  std::string b;
  put_string(b, line);
  return command(Tag::print, b);
}

std::string print_stderr(const std::string& text) {
  std::string b;
  put_string(b, text);
  return command(Tag::print_stderr, b);
}

std::string exit_with(int code) {
  std::string b;
  put_int(b, code);
  return command(Tag::exit, b);
}

std::string response(Tag t) {
  std::string m;
  put_int(m, static_cast<int32_t>(Tag::response));
  put_int(m, static_cast<int32_t>(t));
  return framed(m);
}

std::string blob_chunk(const std::string& data) {
  std::string m;
  put_int(m, static_cast<int32_t>(Tag::blob));
  put_int(m, static_cast<int32_t>(Tag::chunk));
  put_int(m, static_cast<int32_t>(data.size()));
  return framed(m) + data;
}

std::string blob_end() {
  std::string m;
  put_int(m, static_cast<int32_t>(Tag::blob));
  put_int(m, static_cast<int32_t>(Tag::end));
  return framed(m);
}

Message decode(const std::string& payload) {
  Reader r{payload};
  Message m;
  m.kind = static_cast<Tag>(r.get_int());
  m.tag = static_cast<Tag>(r.get_int());
  switch (m.kind) {
    case Tag::command:
      switch (m.tag) {
        case Tag::print:
        case Tag::print_stderr:
        case Tag::debug:
        case Tag::load:
        case Tag::http_connect: m.strings.push_back(r.get_string()); break;
        case Tag::http_get:
        case Tag::http_put:
          m.strings.push_back(r.get_string());
          m.strings.push_back(r.get_string());
          break;
        case Tag::exit: m.number = r.get_int(); break;
        case Tag::error: {
          m.strings.push_back(r.get_string());
          int32_t n = r.get_int();
          if (n < 0) throw std::runtime_error("thin CLI error parameters truncated");
          for (int32_t i = 0; i < n; ++i) m.strings.push_back(r.get_string());
          break;
        }
        case Tag::prompt: break;
        default: throw std::runtime_error("unknown thin CLI command " + std::to_string(static_cast<int>(m.tag)));
      }
      break;
    case Tag::response:
      if (m.tag != Tag::ok && m.tag != Tag::failed && m.tag != Tag::wait)
        throw std::runtime_error("unknown thin CLI response " + std::to_string(static_cast<int>(m.tag)));
      break;
    case Tag::blob:
      if (m.tag == Tag::chunk) m.number = r.get_int();
      else if (m.tag != Tag::end) throw std::runtime_error("unknown thin CLI blob header");
      break;
    default: throw std::runtime_error("unknown thin CLI message " + std::to_string(static_cast<int>(m.kind)));
  }
  return m;
}

bool write_all(int fd, const std::string& bytes) { return api::detail::send_all(fd, bytes); }

bool read_exact(int fd, std::string& out, std::size_t n) {
  out.resize(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      out.resize(got);  // what did arrive
      return false;
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

bool read_exact_by(int fd, std::string& out, std::size_t n, std::chrono::steady_clock::time_point deadline) {
  out.resize(n);
  std::size_t got = 0;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR) continue;
    ssize_t k = r > 0 ? ::recv(fd, out.data() + got, n - got, MSG_DONTWAIT) : 0;
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (k <= 0) {
      out.resize(got);
      return false;
    }
    got += static_cast<std::size_t>(k);
  }
  return true;
}

std::optional<Message> read_message(int fd, std::size_t limit) {
  std::string len;
  if (!read_exact(fd, len, 4)) return std::nullopt;
  Reader r{len};
  int32_t n = r.get_int();
  if (n < 0 || static_cast<std::size_t>(n) > limit) return std::nullopt;
  std::string payload;
  if (!read_exact(fd, payload, static_cast<std::size_t>(n))) return std::nullopt;
  return decode(payload);
}

bool client_only(const std::string& command) {
  // console: the terminal and a stream of its own; event-wait: may wait for
  // ever; vm-uninstall: asks on the terminal; --complete: xe's own;
  // vdi-import/-export: the file is the client's (cmd_transfer.cpp).
  return command == "console" || command == "event-wait" || command == "vm-uninstall" || command == "--complete" ||
         command == "vdi-import" || command == "vdi-export";
}

bool runs_in_client(const std::string& command) {
  return client_only(command) || command.empty() || command == "help" || command == "-help";
}

}  // namespace vmstack::cli::thin
