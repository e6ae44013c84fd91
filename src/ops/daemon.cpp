#include "ops/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "api/http_transfer.h"
#include "api/server.h"
#include "api/tls_front.h"
#include "api/wire_util.h"
#include "cli/thin_server.h"
#include "core/error.h"
#include "core/strings.h"
#include "hv/qemu_hypervisor.h"
#include "ops/admission.h"
#include "model/sqlite_store.h"
#include "net/bridge_backend.h"
#include "ops/console_relay.h"
#include "ops/dispatch.h"
#include "ops/domains.h"
#include "ops/host.h"
#include "ops/http_handlers.h"
#include "ops/journal.h"
#include "ops/messages.h"
#include "ops/metrics.h"
#include "ops/long_polls.h"
#include "ops/network_services.h"
#include "ops/networks.h"
#include "ops/recovery.h"
#include "ops/sessions.h"
#include "ops/storage.h"
#include "ops/tasks.h"
#include "ops/vm_admin.h"
#include "ops/vm_power.h"
#include "ops/vm_queries.h"
#include "ops/vm_record.h"
#include "storage/file_sr.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

namespace {

Daemon::Backends default_backends(const Config& cfg) {
  Daemon::Backends b;
  b.hypervisor = std::make_unique<hv::QemuHypervisor>(cfg.qemu_binary);
  b.network = std::make_unique<net::BridgeBackend>();
  return b;
}

}  // namespace

Daemon::Daemon(Config cfg) : Daemon(cfg, default_backends(cfg)) {}

Daemon::Daemon(Config cfg, Backends backends) : cfg_(std::move(cfg)), backends_(std::move(backends)) {
  cfg_.finalize();
  if (!backends_.hypervisor || !backends_.network) throw std::invalid_argument("Daemon: a backend is missing");
  fs::create_directories(cfg_.state_dir);
  fs::create_directories(cfg_.run_dir);
  // Private whatever the umask and whatever an older version left: the
  // database holds password hashes, the run dirs guests' consoles. A guest's
  // QEMU, running as its own user, needs no way through them: it runs in its
  // guest dir (hv::guest_dir_of, see hv::argv::kQmpSocket) and gets
  // everything else as descriptors.
  fs::permissions(cfg_.state_dir, fs::perms::owner_all, fs::perm_options::replace);
  fs::permissions(cfg_.run_dir, fs::perms::owner_all, fs::perm_options::replace);
  store_ = std::make_unique<model::SqliteStore>(cfg_.db_path);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    fs::permissions(cfg_.db_path + suffix, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
  }
  sr_drivers_ = std::make_unique<storage::SrDrivers>();
  sr_drivers_->add(std::make_unique<storage::FileSr>());
  journal_ = std::make_unique<Journal>(*store_);
  sessions_ = std::make_unique<Sessions>(*store_);
  sessions_->set_limits(cfg_.session_timeout, cfg_.max_sessions_per_user);
  storage_ = std::make_unique<Storage>(*store_, *sr_drivers_, *journal_, cfg_.state_dir);
  network_services_ = std::make_unique<NetworkServices>(*store_, *backends_.network, cfg_.state_dir);
  networks_ = std::make_unique<Networks>(*store_, *backends_.network);
  networks_->set_services(network_services_.get());
  domains_ = std::make_unique<Domains>(*store_, *backends_.hypervisor, *networks_, cfg_.run_dir);
  domains_->set_uid_base(cfg_.qemu_uid_base);
  admission_ = std::make_unique<Admission>(*store_, cfg_.host_memory_reserve);
  power_ = std::make_unique<VmPower>(*store_, *domains_, *storage_, *networks_, *admission_, *journal_,
                                     PowerSettings{cfg_.run_dir, hv::Accel::tcg, cfg_.clean_shutdown_timeout_s,
                                                   cfg_.boot_dirs, cfg_.qemu_args_dir});
  admin_ = std::make_unique<VmAdmin>(*store_, *storage_, *networks_, *power_, *journal_, *domains_);
  tasks_ = std::make_unique<Tasks>(*store_, cfg_.task_threads);
  dispatcher_ = std::make_unique<Dispatcher>(model::datamodel(), *store_, *tasks_,
                                             [this](const std::string& s) { sessions_->check(s); });
  long_polls_ = std::make_unique<LongPolls>(*store_);
  http_handlers_ = std::make_unique<HttpHandlers>(*store_, *sessions_, *tasks_, *storage_, cfg_.state_dir + "/tmp");
  bind_sessions(*dispatcher_, *sessions_, *store_, *long_polls_);
  bind_tasks(*dispatcher_, *tasks_, *store_);
  bind_host(*dispatcher_, *store_);
  bind_vm_queries(*dispatcher_, *store_, *admission_, host_ref_);
  bind_messages(*dispatcher_, *store_);
  bind_vm_power(*dispatcher_, *power_, *store_);
  bind_vm_admin(*dispatcher_, *admin_, *store_);
  bind_storage(*dispatcher_, *storage_, *store_);
  bind_networks(*dispatcher_, *networks_);
  // A message declared in the datamodel but served by nobody is a bug in
  // this build: refuse to start rather than answer NOT_IMPLEMENTED later.
  if (auto missing = dispatcher_->unbound(); !missing.empty())
    throw std::logic_error("messages declared without a handler: " + join(missing, ", "));
}

Daemon::~Daemon() {
  stop();
  // Tasks first (they call into everything else), then the running domains.
  tasks_.reset();
  domains_.reset();
}

void Daemon::init() {
  auto accel = choose_accelerator(*store_, cfg_);
  power_->set_accel(accel.accel);
  spdlog::info("accelerator: {}", accel.detail);
  host_ref_ = bootstrap_host(*store_, accel);
  sessions_->set_host(host_ref_);
  tasks_->set_host(host_ref_);
  storage_->set_host(host_ref_);
  domains_->set_host(host_ref_);
  storage_->ensure_default_sr();
  storage_->migrate_locations();
  storage_->attach_all();
  ensure_templates(*store_, cfg_);
  networks_->ensure_bridges();
  auto generated = sessions_->ensure_root_user(cfg_.root_password, cfg_.state_dir + "/root-password");
  if (!generated.empty()) spdlog::info("created user root; its password is in {}/root-password", cfg_.state_dir);
  // A daemon killed mid-verb left its domains running, its intents in the
  // journal and its operation locks on the records: adopt the domains, finish
  // or undo the intents (which may still need the records' devices), then
  // drop the locks nobody holds any more.
  domains_->reattach_all();
  Recovery(*store_, *journal_, *domains_, *storage_, *networks_, *admin_).run();
  ensure_host_metrics(*store_, host_ref_);
  ensure_control_domain(*store_, host_ref_);
  ensure_sm_records(*store_, sr_drivers_->types());
  reconcile_vm_metrics(*store_);
  publish_console_locations();
  for (const auto& vm : store_->all("VM")) {
    if (!store_->get_field("VM", vm, "current_operations").as_struct().empty())
      store_->set_field("VM", vm, "current_operations", Struct{});
    refresh_allowed_operations(*store_, vm);
  }
}

void Daemon::serve() {
  api::ServerConfig sc;
  sc.unix_path = cfg_.unix_socket;
  sc.tcp_address = cfg_.tcp_address;
  sc.tcp_port = cfg_.tcp_port;
  sc.threads = cfg_.api_threads;
  api::ServerLimits limits;
  limits.max_connections = cfg_.max_connections;
  limits.max_connections_per_source = cfg_.max_connections_per_ip;
  server_ = std::make_unique<api::Server>(sc, [this](const api::RpcCall& c) { return call(c); });
  server_->set_limits(limits);
  // A large body is read only for a call whose session is live: a forged
  // one is refused after the first few KiB.
  server_->set_body_admission([this](const api::CallHead& h) { return dispatcher_->admit_large_body(h); });
  server_->add_stream_route("/console", [this](const std::string& target, int fd) { serve_console(target, fd); });
  // xe sends its command lines here and the command runs in the daemon
  // (xapi's thin CLI): one round trip instead of login, calls and logout,
  // and no records encoded as XML only to be printed.
  http_handlers_->add_routes(*server_);
  server_->add_post_route("/cli", [this](const api::PostRequest& rq, int fd) {
    cli::serve_thin_cli(rq, fd, [this](const api::RpcCall& c) { return call(c); });
  });
  // The certificate is made and the HTTPS port bound before the server
  // answers anyone: whoever sees the daemon up finds both.
  if (!cfg_.tls_address.empty()) make_tls();
  if (tls_) publish_console_locations();  // before anyone reads them
  // NAT and internal networks rebuilt, their guests kept off the API's
  // ports, before the API answers anyone.
  std::vector<unsigned short> api_ports;
  if (tls_) api_ports.push_back(tls_->port());
  if (!cfg_.tcp_address.empty() && cfg_.tcp_port != 0) api_ports.push_back(cfg_.tcp_port);
  network_services_->set_blocked_ports(api_ports);
  network_services_->start();
  server_->start();
  if (!tls_ && !cfg_.tcp_address.empty()) publish_console_locations();  // the plain port is bound now
  if (tls_) {
    tls_->start();
    spdlog::info("serving HTTPS on {}:{}", cfg_.tls_address, tls_->port());
  }
}

void Daemon::publish_console_locations() {
  // The ports as bound (a listener given port 0 picked its own).
  Config c = cfg_;
  if (tls_) c.tls_port = tls_->port();
  if (server_ && !cfg_.tcp_address.empty()) c.tcp_port = server_->tcp_port();
  auto base = c.console_base_url(store_->get_field("host", host_ref_, "hostname").as_string());
  domains_->set_console_base(base);
  // Consoles made before (a daemon that was on other listeners) follow.
  for (const auto& con : store_->all("console"))
    store_->set_field("console", con, "location", base + "/console?ref=" + con);
}

void Daemon::make_tls() {
  std::string cert = cfg_.tls_cert.empty() ? cfg_.state_dir + "/tls/vmstackd.pem" : cfg_.tls_cert;
  std::string key = cfg_.tls_key.empty() ? cfg_.state_dir + "/tls/vmstackd.key" : cfg_.tls_key;
  if (cfg_.tls_cert.empty() && cfg_.tls_key.empty()) {
    // A certificate of our own at first start, as xapi makes one; the
    // operator's own replaces the two files (or --tls-cert/--tls-key).
    char buf[256] = {};
    std::string host = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : "localhost";
    std::vector<std::string> names{"localhost", "127.0.0.1", "::1"};
    if (host != "localhost") names.push_back(host);
    if (cfg_.tls_address != "0.0.0.0" && cfg_.tls_address != "::" && cfg_.tls_address != host &&
        cfg_.tls_address != "127.0.0.1" && cfg_.tls_address != "::1" && cfg_.tls_address != "localhost")
      names.push_back(cfg_.tls_address);
    if (api::ensure_self_signed(cert, key, host, names))
      spdlog::info("made a self-signed TLS certificate {} (replace it and {} with your own)", cert, key);
  }
  api::TlsConfig tc;
  tc.address = cfg_.tls_address;
  tc.port = cfg_.tls_port;
  tc.cert_file = cert;
  tc.key_file = key;
  tc.max_connections = cfg_.max_connections;
  tc.max_connections_per_source = cfg_.max_connections_per_ip;
  tls_ = std::make_unique<api::TlsFront>(tc, *server_);
}

void Daemon::stop() {
  stopping_ = true;
  // Parked event.from / event.next polls are answered now (the server sends
  // those answers before it stops); a poll blocking a worker wakes too.
  if (long_polls_) long_polls_->stop();
  store_->end_waits();
  // The server first: its in-flight answers still cross the TLS relays,
  // which the front keeps running until the server has finished.
  if (server_) server_->stop();
  if (tls_) tls_->stop();
}

unsigned short Daemon::tcp_port() const { return server_ ? server_->tcp_port() : 0; }
unsigned short Daemon::tls_port() const { return tls_ ? tls_->port() : 0; }

Value Daemon::call(const api::RpcCall& c) { return dispatcher_->dispatch(c); }

void Daemon::serve_console(const std::string& target, int fd) {
  auto fail = [fd](const std::string& msg) {
    std::string line = "vmstack: " + msg + "\r\n";
    api::detail::send_all(fd, line);  // best effort: a client that has gone has nothing to be told
  };
  std::string console = api::query_param(target, "ref"), session = api::query_param(target, "session_id");
  std::optional<hv::LiveState> state;
  bool rfb = false;
  try {
    sessions_->check(session);
    auto vm = store_->get_field("console", console, "VM").as_string();
    rfb = store_->get_field("console", console, "protocol").as_string() == "rfb";
    state = domains_->live_state(vm);
    if (!state) return fail("VM_BAD_POWER_STATE: the VM is not running");
  } catch (const ApiError& e) {
    return fail(join(e.description(), " "));
  }
  // A VNC console is the guest's RFB stream, nothing added (no text either).
  // The sockets and log are in the guest's directory: only its QEMU's
  // sockets (by pid) and a plain log are relayed.
  if (rfb) {
    auto why = relay_stream(fd, state->vnc_socket, state->pid, stopping_);
    if (!why.empty()) spdlog::warn("console {}: {}", console, why);
    return;
  }
  auto why = relay_console(fd, state->console_socket, state->console_log, state->pid, stopping_);
  if (!why.empty()) fail(why);
}

}  // namespace vmstack::ops
