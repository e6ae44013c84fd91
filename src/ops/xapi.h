// vmstackd's top object: owns the database, the method table, sessions,
// tasks, the guests' QEMU domains and the API server. The only mutable state
// of the daemon lives here (and in the objects it owns).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "api/rpc.h"
#include "model/database.h"
#include "ops/config.h"
#include "ops/methods.h"

namespace vmstack::api {
class Server;
}

namespace vmstack::ops {

class Sessions;
class Tasks;
class Guests;
class Storage;

class Xapi {
 public:
  explicit Xapi(Config cfg);
  ~Xapi();
  Xapi(const Xapi&) = delete;
  Xapi& operator=(const Xapi&) = delete;

  // First-start objects, accelerator choice, re-attach to running guests.
  void init();
  // Serve the API (unix socket, optional TCP). Returns once listening.
  void serve();
  void stop();

  Value dispatch(const api::RpcCall& call);

  const Config& config() const { return cfg_; }
  model::Database& db() { return *db_; }
  Sessions& sessions() { return *sessions_; }
  Tasks& tasks() { return *tasks_; }
  Guests& guests() { return *guests_; }
  Storage& storage() { return *storage_; }
  MethodTable& methods() { return methods_; }
  const std::string& host_ref() const { return host_ref_; }
  void set_host_ref(std::string r) { host_ref_ = std::move(r); }
  unsigned short tcp_port() const;
  // Guards the check-and-set of VM.current_operations (see OpLock).
  std::mutex& op_mutex() { return op_mu_; }

 private:
  // GET /console?ref=<console>&session_id=<session>: the serial console as
  // a raw byte stream (what it printed so far, then live, both directions).
  void serve_console(const std::string& target, int fd);

  std::mutex op_mu_;
  std::atomic<bool> stopping_{false};
  Config cfg_;
  std::unique_ptr<model::Database> db_;
  MethodTable methods_;
  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<Guests> guests_;
  std::unique_ptr<Tasks> tasks_;
  std::unique_ptr<api::Server> server_;
  std::string host_ref_;
};

// Registration of each family of methods (one file each).
void register_generic(MethodTable& t);
void register_session(MethodTable& t);
void register_event(MethodTable& t);
void register_task(MethodTable& t);
void register_vm(MethodTable& t);
void register_storage(MethodTable& t);
void register_host(MethodTable& t);

}  // namespace vmstack::ops
