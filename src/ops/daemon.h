// vmstackd's top object: it owns the store, the backends (hypervisor,
// network, SR drivers), the verb objects wired to the narrow interfaces they
// use, the dispatcher and the API server. The only mutable state of the
// daemon lives here and in the objects it owns; nothing else reaches across.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "api/rpc.h"
#include "hv/hypervisor.h"
#include "model/store.h"
#include "net/backend.h"
#include "ops/config.h"

namespace vmstack::api {
class Server;
class TlsFront;
}
namespace vmstack::storage {
class SrDrivers;
}

namespace vmstack::ops {

class Admission;
class Dispatcher;
class Domains;
class HttpHandlers;
class Journal;
class LongPolls;
class NetworkServices;
class Networks;
class Sessions;
class Storage;
class Tasks;
class VmAdmin;
class VmPower;

class Daemon {
 public:
  // The backends a daemon runs on; tests pass fakes.
  struct Backends {
    std::unique_ptr<hv::Hypervisor> hypervisor;  // default: QEMU
    std::unique_ptr<net::Backend> network;       // default: Linux bridges
  };

  explicit Daemon(Config cfg);
  Daemon(Config cfg, Backends backends);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // First-start objects, accelerator choice, re-attach to running guests.
  void init();
  // Serve the API (unix socket, optional TCP). Returns once listening.
  void serve();  // the unix socket, --listen-http, and HTTPS when tls_address is set
  void stop();

  // One RPC call, as the server hands it over.
  Value call(const api::RpcCall& call);

  const Config& config() const { return cfg_; }
  model::Store& store() { return *store_; }
  Sessions& sessions() { return *sessions_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  const std::string& host_ref() const { return host_ref_; }
  unsigned short tcp_port() const;
  unsigned short tls_port() const;  // 0 without --listen

 private:
  // GET /console?ref=<console>&session_id=<session>: the serial console as
  // a raw byte stream (what it printed so far, then live, both directions).
  void serve_console(const std::string& target, int fd);

  std::atomic<bool> stopping_{false};
  Config cfg_;
  // console.location from the listeners: at init, then with the bound ports.
  void publish_console_locations();
  std::string host_ref_;
  std::unique_ptr<model::Store> store_;
  Backends backends_;
  std::unique_ptr<storage::SrDrivers> sr_drivers_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<LongPolls> long_polls_;  // after sessions_: its answers use them
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<NetworkServices> network_services_;  // before networks_, which uses it
  std::unique_ptr<Networks> networks_;
  std::unique_ptr<Domains> domains_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<VmPower> power_;
  std::unique_ptr<VmAdmin> admin_;
  std::unique_ptr<Tasks> tasks_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<HttpHandlers> http_handlers_;  // /import_raw_vdi, /export_raw_vdi, ...
  void make_tls();  // certificate, TlsFront (bound, not started)
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<api::TlsFront> tls_;
};

}  // namespace vmstack::ops
