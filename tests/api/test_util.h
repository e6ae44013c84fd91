// Shared helpers for the api tests: a temp dir, a dispatcher with methods
// that exercise every path, and raw socket access for HTTP-level checks.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "api/rpc.h"
#include "core/fd.h"

namespace vmstack::api::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/vmstack-api-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// echo: returns its params; VM.get_record: a record with every XenAPI type;
// fail: HANDLE_INVALID; crash: std::runtime_error; throw_int: a non-std
// exception; too_deep: an unencodable result; whoami: peer identity;
// sleep(ms): blocks.
inline Value test_dispatch(const RpcCall& c) {
  if (c.method == "echo") return Value(c.params);
  if (c.method == "VM.get_record") {
    return Value(Struct{{"uuid", Value("6f1c7c7e-1f1e-4a5b-9c0d-123456789abc")},
                        {"name_label", Value("vm <&> \xC3\xA9")},
                        {"memory_static_max", Value(int64_t{4} << 30)},
                        {"VCPUs_max", Value(2)},
                        {"is_a_template", Value(false)},
                        {"other_config", Value(Struct{{"k", Value("v")}})},
                        {"VBDs", Value(Array{Value("OpaqueRef:a"), Value("OpaqueRef:b")})}});
  }
  if (c.method == "fail") throw ApiError(errors::HANDLE_INVALID, {"VM", "OpaqueRef:nope"});
  if (c.method == "crash") throw std::runtime_error("kaboom");
  if (c.method == "throw_int") throw 42;
  if (c.method == "too_deep") {  // a value deeper than any codec will encode
    Value v("leaf");
    for (int i = 0; i < 300; ++i) v = Value(Array{std::move(v)});
    return v;
  }
  if (c.method == "whoami") return Value(Struct{{"uid", Value(c.peer_uid)}, {"addr", Value(c.peer_address)}});
  if (c.method == "sleep") {
    std::this_thread::sleep_for(std::chrono::milliseconds(c.params.at(0).as_int()));
    return Value("slept");
  }
  throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {c.method});
}

inline UniqueFd connect_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd.reset();
  return fd;
}

inline void write_str(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// Reads until EOF (or error).
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Waits up to `limit` for the peer to close; returns what it sent meanwhile,
// or "<still open>" followed by it if it did not close (so a check that the
// answer starts with a status line also checks that the peer closed).
inline std::string read_until_closed(int fd, std::chrono::milliseconds limit) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return "<still open>" + out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// The API socket's path in a test's temp dir.
inline std::string sock_in(const TempDir& d) { return (d.path / "xapi.sock").string(); }

// One raw HTTP exchange over a unix socket: sends `request`, half-closes,
// returns everything the server sent until it closed.
inline std::string raw_unix(const std::string& path, const std::string& request) {
  UniqueFd fd = connect_unix(path);
  if (!fd) return "connect failed";
  write_str(fd.get(), request);
  ::shutdown(fd.get(), SHUT_WR);
  return read_all(fd.get());
}

}  // namespace vmstack::api::test
