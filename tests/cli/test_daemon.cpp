#include "test_daemon.h"

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include "cli/thin_server.h"
#include "core/error.h"
#include "ops/sessions.h"
#include "ops/vm_record.h"

namespace vmstack::cli::testing {

namespace fs = std::filesystem;

namespace {

fs::path make_temp_dir() {
  char tmpl[] = "/tmp/vmstack-cli-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// The daemon owns its backends; these do nothing a test of xe could see
// beyond the records.
class NullNetwork final : public net::Backend {
 public:
  std::string name() const override { return "null"; }
  void bridge_create(const std::string&, int64_t) override {}
  void bridge_destroy(const std::string&) override {}
  bool bridge_exists(const std::string&) override { return false; }
  std::string vif_plug(const net::VifPlug& v) override { return net::tap_name(v.vm_uuid, v.device); }
  void vif_unplug(const std::string&) override {}
  void routed_apply(const net::RoutedNetwork&) override {
    throw std::runtime_error("xe's test daemon has no host networking for nat or internal networks");
  }
  void routed_remove(const net::RoutedNetwork&) override {}
};

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// The default console: a banner, then every line read comes back upper-cased
// until "quit" or EOF.
void echo_console(const std::string& target, int fd) {
  write_all(fd, "console of " + target.substr(target.find("ref=") + 4, 20) + "\r\n");
  char buf[1024];
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    std::string chunk(buf, static_cast<size_t>(n));
    std::string up = chunk;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    write_all(fd, up);
    line += chunk;
    if (line.find("quit") != std::string::npos) return;
  }
}

}  // namespace

TestDaemon::TestDaemon(bool serve_cli) : dir_(make_temp_dir()), socket_((dir_ / "xapi.sock").string()) {
  ops::Config cfg;
  cfg.state_dir = dir_.string();
  cfg.accel = "tcg";
  cfg.guest_dir = (dir_ / "no-guest").string();
  cfg.api_threads = 2;
  cfg.task_threads = 2;
  ops::Daemon::Backends b;
  b.hypervisor = std::make_unique<hv::FakeHypervisor>();
  b.network = std::make_unique<NullNetwork>();
  daemon_ = std::make_unique<ops::Daemon>(cfg, std::move(b));
  daemon_->init();
  daemon_->sessions().set_password(kUser, kPassword);
  seed();
  console_handler = echo_console;
  // Served here rather than by daemon.serve(): the test sees each call and
  // may replace the console stream.
  server_ = std::make_unique<api::Server>(api::ServerConfig{socket_, "", 0, 2},
                                         [this](const api::RpcCall& c) { return call(c); });
  server_->add_stream_route("/console", [this](const std::string& target, int fd) { console_handler(target, fd); });
  if (serve_cli)
    server_->add_post_route("/cli", [this](const api::PostRequest& rq, int fd) {
      cli::serve_thin_cli(rq, fd, [this](const api::RpcCall& c) { return call(c); });
    });
  server_->start();
}

Value TestDaemon::call(const api::RpcCall& c) {
  {
    std::lock_guard lk(mu_);
    calls_.push_back(c.method);
  }
  return daemon_->call(c);
}

TestDaemon::~TestDaemon() {
  server_.reset();
  daemon_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> TestDaemon::calls() {
  std::lock_guard lk(mu_);
  return calls_;
}

void TestDaemon::clear_calls() {
  std::lock_guard lk(mu_);
  calls_.clear();
}

size_t TestDaemon::live_sessions() { return db().all("session").size(); }

void TestDaemon::seed() {
  auto& db = this->db();
  pool = db.all("pool").at(0);
  host = db.all("host").at(0);
  sr = db.get_field("pool", pool, "default_SR").as_string();
  db.update("pool", pool, {{"name_label", "pool0"}});
  db.update("host", host, {{"name_label", "host0"}, {"hostname", "host0"}});
  network = db.create("network", {{"name_label", "Pool-wide network"}, {"bridge", "xenbr0"}});
  // The daemon made the host's control domain at start; named for host0.
  dom0 = db.get_field("host", host, "control_domain").as_string();
  db.update("VM", dom0, {{"name_label", "Control domain on host: host0"}});
  tmpl = db.create("VM", {{"name_label", "Debian Template"},
                          {"name_description", "a template, with a comma"},
                          {"is_a_template", true},
                          {"other_config", Struct{{"disks", "<provision><disk device=\"0\" size=\"1048576\" "
                                                            "sr=\"\" bootable=\"true\" type=\"system\"/></provision>"}}}});
  alpha = db.create("VM", {{"name_label", "alpha"}, {"power_state", "Halted"},
                           {"other_config", Struct{{"owner", "ops"}, {"tier", "gold"}}},
                           {"tags", Array{"web"}}});
  beta = db.create("VM", {{"name_label", "beta"}});
  beta_vdi = db.create("VDI", {{"name_label", "beta disk"}, {"SR", sr}, {"virtual_size", int64_t{8} << 30},
                               {"location", "beta.qcow2"}});
  beta_vbd = db.create("VBD", {{"VM", beta}, {"VDI", beta_vdi}, {"userdevice", "0"}, {"device", "xvda"},
                               {"bootable", true}, {"type", "Disk"}});
  db.create("VIF", {{"VM", beta}, {"network", network}, {"device", "0"}, {"MAC", "aa:bb:cc:dd:ee:ff"}});
  for (const auto& vm : {dom0, tmpl, alpha, beta}) ops::refresh_allowed_operations(db, vm);
  // The built-in templates would be in every listing the tests compare.
  for (const auto& vm : db.all("VM"))
    if (db.get_field("VM", vm, "is_default_template").as_bool()) db.destroy("VM", vm);
  // beta really runs (on the fake hypervisor), started as a client would.
  api::RpcCall login;
  login.method = "session.login_with_password";
  login.params = {"root", ""};
  login.peer_uid = 0;
  auto session = daemon_->call(login).as_string();
  api::RpcCall start;
  start.method = "VM.start";
  start.params = {session, beta, false, false};
  daemon_->call(start);
  daemon_->sessions().logout(session);
  for (const auto& con : db.find("console", "VM", beta))
    if (db.get_field("console", con, "protocol").as_string() == "vt100") beta_console = con;
}

}  // namespace vmstack::cli::testing
