// xapi's thin CLI protocol, which `xe` speaks to the daemon on POST /cli:
// the client sends its command line (one argument per line, username= and
// password= last) as the request body; the daemon answers with no HTTP
// status line, only this protocol: both sides send
// "XenSource thin CLI protocol" and a version (major, minor as 32-bit
// little-endian integers), then the daemon sends length-prefixed messages
// (Print, PrintStderr, Exit, ...) until Exit. The command runs inside the
// daemon against its dispatcher, as xapi's xe does: one round trip, no XML
// for the answer's records, no login/logout calls on the wire.
//
// Encoding as xapi's cli_protocol.ml (major 0, minor 2), so xapi's own xe
// client can talk to vmstackd too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmstack::cli::thin {

inline constexpr const char* kPrefix = "XenSource thin CLI protocol";
inline constexpr int32_t kMajor = 0;
inline constexpr int32_t kMinor = 2;

// Output is sent as Print messages of about this many bytes, cut at line
// ends, as it is produced (a longer line goes whole).
inline constexpr std::size_t kPrintChunk = 64u << 10;

// Command tags (the server's messages) and response tags (the client's),
// xapi's numbers.
enum class Tag : int32_t {
  print = 0,
  load = 1,
  prompt = 3,
  exit = 4,
  ok = 5,
  failed = 6,
  chunk = 7,
  end = 8,
  command = 9,
  response = 10,
  blob = 11,
  http_get = 12,
  http_put = 13,
  error = 14,
  debug = 15,
  print_stderr = 16,
  http_connect = 17,
  wait = 18,
};

// One decoded message: `kind` is command, response or blob; `tag` the
// inner tag; `strings` and `number` its payload (Exit's code, a Chunk's length).
struct Message {
  Tag kind = Tag::command;
  Tag tag = Tag::print;
  std::vector<std::string> strings;
  int32_t number = 0;
};

// The version greeting, 35 bytes.
std::string greeting();
// The greeting's version, or nullopt when `bytes` (35 of them) is not one.
std::optional<std::pair<int32_t, int32_t>> parse_greeting(const std::string& bytes);

// Framed messages (a 32-bit length, then the message).
std::string print(const std::string& line);  // the client prints it and a newline
std::string print_stderr(const std::string& text);
std::string exit_with(int code);
std::string response(Tag ok_failed_or_wait);
std::string blob_chunk(const std::string& data);  // header and data
std::string blob_end();
// Decodes a message's payload (without its length); throws std::runtime_error on junk.
Message decode(const std::string& payload);

// Blocking I/O on a socket: false on EOF or error (`out` then holds what
// did arrive).
bool write_all(int fd, const std::string& bytes);
bool read_exact(int fd, std::string& out, std::size_t n);
// One framed message, at most `limit` bytes; nullopt on EOF, error or an
// oversized frame (xe accepts up to 64 MiB: a Print is one chunk, or one line).
std::optional<Message> read_message(int fd, std::size_t limit = 64u << 20);
// read_exact with one deadline for all of it (poll), not one per read.
bool read_exact_by(int fd, std::string& out, std::size_t n, std::chrono::steady_clock::time_point deadline);

// The commands the daemon refuses to run: they use the terminal or the
// client's files, or may wait indefinitely. xe runs them itself.
bool client_only(const std::string& command);

// The commands xe runs itself: the client-only ones, and those that need no
// daemon at all (help, usage).
bool runs_in_client(const std::string& command);


// A /cli request body larger than this is not sent: xe runs the command
// itself (the daemon reads at most 64 KiB without a session).
inline constexpr std::size_t kMaxCommandLine = 60u << 10;

}  // namespace vmstack::cli::thin
