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

namespace {

// The daemon owns its backends; the fakes must survive its restarts, so it
// gets these thin forwarders instead.
class ForwardHv final : public hv::Hypervisor {
 public:
  explicit ForwardHv(hv::Hypervisor& h) : h_(h) {}
  std::string name() const override { return h_.name(); }
  std::unique_ptr<hv::Domain> launch(const hv::DomainSpec& s) override { return h_.launch(s); }
  std::unique_ptr<hv::Domain> attach(const hv::LiveState& s) override { return h_.attach(s); }
  bool stop_orphan(const std::string& run_dir) override { return h_.stop_orphan(run_dir); }

 private:
  hv::Hypervisor& h_;
};

class ForwardNet final : public net::Backend {
 public:
  explicit ForwardNet(net::Backend& n) : n_(n) {}
  std::string name() const override { return n_.name(); }
  void bridge_create(const std::string& b, int64_t mtu) override { n_.bridge_create(b, mtu); }
  void bridge_destroy(const std::string& b) override { n_.bridge_destroy(b); }
  bool bridge_exists(const std::string& b) override { return n_.bridge_exists(b); }
  std::string vif_plug(const net::VifPlug& v) override { return n_.vif_plug(v); }
  void vif_unplug(const std::string& tap) override { n_.vif_unplug(tap); }
  void routed_apply(const net::RoutedNetwork& r) override { n_.routed_apply(r); }
  void routed_remove(const net::RoutedNetwork& r) override { n_.routed_remove(r); }

 private:
  net::Backend& n_;
};

}  // namespace

void FakeNetwork::bridge_create(const std::string& b, int64_t) {
  std::lock_guard lk(mu_);
  bridges_.insert(b);
}
void FakeNetwork::bridge_destroy(const std::string& b) {
  std::lock_guard lk(mu_);
  bridges_.erase(b);
}
bool FakeNetwork::bridge_exists(const std::string& b) {
  std::lock_guard lk(mu_);
  return bridges_.count(b) != 0;
}
std::string FakeNetwork::vif_plug(const net::VifPlug& v) {
  std::lock_guard lk(mu_);
  if (!fail_plug.empty()) throw std::runtime_error(fail_plug);
  if (!bridges_.count(v.bridge)) throw std::runtime_error("bridge " + v.bridge + " does not exist");
  auto tap = net::tap_name(v.vm_uuid, v.device);
  taps_.insert(tap);
  return tap;
}
void FakeNetwork::vif_unplug(const std::string& tap) {
  std::lock_guard lk(mu_);
  taps_.erase(tap);
}
void FakeNetwork::routed_apply(const net::RoutedNetwork& r) {
  throw std::runtime_error("the fake network has no host side for " + r.bridge + " (use the real backend in a namespace)");
}

std::set<std::string> FakeNetwork::bridges() const {
  std::lock_guard lk(mu_);
  return bridges_;
}
std::set<std::string> FakeNetwork::taps() const {
  std::lock_guard lk(mu_);
  return taps_;
}

TestDaemon::TestDaemon(const std::string& state_dir, int clean_shutdown_timeout_s, Backend b,
                       const std::function<void(ops::Config&)>& tweak)
    : backend_(b) {
  cfg_.state_dir = state_dir;
  cfg_.accel = "tcg";  // the probe's answer on these machines, without its cost
  cfg_.guest_dir = guest_dir();
  cfg_.clean_shutdown_timeout_s = clean_shutdown_timeout_s;
  cfg_.api_threads = 4;
  cfg_.task_threads = 2;
  cfg_.qemu_args_dir = state_dir + "/qemu-args.d";  // never the host's /etc in a test
  if (tweak) tweak(cfg_);
  socket_ = state_dir + "/xapi.sock";
  up();
}

TestDaemon::~TestDaemon() {
  daemon_.reset();  // before the fakes it forwards to
}

void TestDaemon::up() {
  if (backend_ == Backend::fake) {
    if (!fake_hv_) fake_hv_ = std::make_unique<hv::FakeHypervisor>();
    if (!fake_net_) fake_net_ = std::make_unique<FakeNetwork>();
    ops::Daemon::Backends b;
    b.hypervisor = std::make_unique<ForwardHv>(*fake_hv_);
    b.network = std::make_unique<ForwardNet>(*fake_net_);
    daemon_ = std::make_unique<ops::Daemon>(cfg_, std::move(b));
  } else {
    daemon_ = std::make_unique<ops::Daemon>(cfg_);
  }
  daemon_->init();
  daemon_->serve();
}

void TestDaemon::restart() {
  daemon_.reset();
  up();
}

std::unique_ptr<api::Client> TestDaemon::client() {
  api::Endpoint ep;
  ep.unix_path = socket_;
  return std::make_unique<api::Client>(ep);
}

std::string TestDaemon::login(api::Client& c) {
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

std::string install_demo_vm(api::Client& c, const std::string& session, const std::string& name) {
  auto tmpl = call(c, "VM.get_by_name_label", {session, "Demo Linux (direct kernel boot)"}).as_array().at(0);
  auto vm = call(c, "VM.clone", {session, tmpl, name}).as_string();
  call(c, "VM.provision", {session, vm});
  call(c, "VM.set_is_a_template", {session, vm, false});
  return vm;
}

int occurrences(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + needle.size())) ++n;
  return n;
}

std::string read_console_until(const std::string& socket, const std::string& console_ref, const std::string& session,
                               const std::string& needle, std::chrono::milliseconds deadline, int count,
                               const std::string& send, const std::string& method) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket.c_str());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return "connect failed";
  std::string req = method + " /console?ref=" + console_ref + "&session_id=" + session + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
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
