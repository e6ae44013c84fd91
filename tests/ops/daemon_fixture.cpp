#include "daemon_fixture.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "core/fd.h"
#include "core/process.h"
#include "guest_guard.h"

namespace vmstack::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "vmstack-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  kill_guests_under(path_);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Daemon::Daemon(const std::string& state_dir, int clean_shutdown_timeout_s) {
  cfg_.state_dir = state_dir;
  cfg_.accel = "tcg";  // the probe's answer on these machines, without its cost
  cfg_.guest_dir = guest_dir();
  cfg_.clean_shutdown_timeout_s = clean_shutdown_timeout_s;
  cfg_.api_threads = 4;
  cfg_.task_threads = 2;
  socket_ = state_dir + "/xapi.sock";
  up();
}

Daemon::~Daemon() = default;

void Daemon::up() {
  xapi_ = std::make_unique<ops::Xapi>(cfg_);
  xapi_->init();
  xapi_->serve();
}

void Daemon::restart() {
  xapi_.reset();
  up();
}

std::unique_ptr<api::Client> Daemon::client() {
  api::Endpoint ep;
  ep.unix_path = socket_;
  return std::make_unique<api::Client>(ep);
}

std::string Daemon::login(api::Client& c) {
  return c.call("session.login_with_password", {"root", "", "1.0", "test"}).as_string();
}

Value call(api::Client& c, const std::string& method, Array params) { return c.call(method, params); }

std::vector<std::string> failure(api::Client& c, const std::string& method, Array params) {
  try {
    c.call(method, params);
  } catch (const ApiError& e) {
    return e.description();
  }
  return {};
}

int occurrences(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + needle.size())) ++n;
  return n;
}

std::string read_console_until(const std::string& socket, const std::string& console_ref, const std::string& session,
                               const std::string& needle, std::chrono::milliseconds deadline, int count,
                               const std::string& send) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket.c_str());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return "connect failed";
  std::string req = "GET /console?ref=" + console_ref + "&session_id=" + session + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (::write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return "write failed";
  std::string got;
  auto end = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  // Like a CONNECT: the byte stream starts after the response header, so
  // type only once it has arrived.
  while (got.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < end) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t r = ::read(s.get(), buf, sizeof buf);
    if (r <= 0) return got;
    got.append(buf, static_cast<size_t>(r));
  }
  if (!send.empty() && ::write(s.get(), send.data(), send.size()) != static_cast<ssize_t>(send.size()))
    return "send failed";
  while (occurrences(got, needle) < count && std::chrono::steady_clock::now() < end) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t r = ::read(s.get(), buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return got;
}

}  // namespace vmstack::test
