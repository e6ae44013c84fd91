#include "ops/xapi.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <filesystem>

#include "api/server.h"
#include "api/wire_util.h"
#include "core/error.h"
#include "core/fd.h"
#include "ops/console_relay.h"
#include "ops/guests.h"
#include "ops/host.h"
#include "ops/sessions.h"
#include "ops/storage.h"
#include "ops/tasks.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

Xapi::Xapi(Config cfg) : cfg_(std::move(cfg)) {
  cfg_.finalize();
  fs::create_directories(cfg_.state_dir);
  fs::create_directories(cfg_.run_dir);
  db_ = std::make_unique<model::Database>(cfg_.db_path);
  sessions_ = std::make_unique<Sessions>(*this);
  storage_ = std::make_unique<Storage>(*this);
  guests_ = std::make_unique<Guests>(*this);
  tasks_ = std::make_unique<Tasks>(*this, cfg_.task_threads);
  register_generic(methods_);  // first: the verbs below override by name
  register_session(methods_);
  register_event(methods_);
  register_task(methods_);
  register_vm(methods_);
  register_storage(methods_);
  register_host(methods_);
}

Xapi::~Xapi() {
  stop();
  // Tasks first (they call into everything else), then the guests' Domains.
  tasks_.reset();
  guests_.reset();
}

void Xapi::init() {
  auto accel = choose_accelerator(*this);
  guests_->set_accel(accel.accel);
  spdlog::info("accelerator: {}", accel.detail);
  host_ref_ = bootstrap_host(*this, accel);
  storage_->ensure_default_sr(host_ref_);
  ensure_templates(*this);
  auto generated = sessions_->ensure_root_user(cfg_.root_password, cfg_.state_dir + "/root-password");
  if (!generated.empty())
    spdlog::info("created user root; its password is in {}/root-password", cfg_.state_dir);
  // A daemon killed mid-verb leaves its operation locks behind.
  for (const auto& vm : db_->all("VM"))
    if (!db_->get_field("VM", vm, "current_operations").as_struct().empty())
      db_->set_field("VM", vm, "current_operations", Struct{});
  guests_->reattach_all();
}

void Xapi::serve() {
  api::ServerConfig sc;
  sc.unix_path = cfg_.unix_socket;
  sc.tcp_address = cfg_.tcp_address;
  sc.tcp_port = cfg_.tcp_port;
  sc.threads = cfg_.api_threads;
  server_ = std::make_unique<api::Server>(sc, [this](const api::RpcCall& c) { return dispatch(c); });
  server_->add_stream_route("/console", [this](const std::string& target, int fd) { serve_console(target, fd); });
  server_->start();
}

void Xapi::stop() {
  stopping_ = true;
  db_->end_event_waits();  // else the server's stop waits out every event.from long poll
  if (server_) server_->stop();
}

unsigned short Xapi::tcp_port() const { return server_ ? server_->tcp_port() : 0; }

Value Xapi::dispatch(const api::RpcCall& call) {
  std::string name = call.method;
  bool async = name.rfind("Async.", 0) == 0;
  if (async) name = name.substr(6);
  const Method* m = methods_.find(name);
  if (!m || (async && !m->async_ok)) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {call.method});
  size_t lead = m->session ? 1 : 0;
  size_t n = call.params.size();
  if (n < m->min_arity + lead || n > m->arity + lead)
    throw ApiError(errors::MESSAGE_PARAMETER_COUNT_MISMATCH,
                   {call.method, std::to_string(m->arity + lead), std::to_string(n)});
  std::string session;
  if (m->session) {
    if (!call.params[0].is_string()) throw ApiError(errors::SESSION_INVALID, {call.params[0].to_display()});
    session = call.params[0].as_string();
    sessions_->check(session);
  }
  Array args(call.params.begin() + static_cast<long>(lead), call.params.end());
  if (!async) {
    CallCtx ctx{*this, call, session, {}};
    Value v = m->fn(ctx, args);
    // xapi answers void calls with an empty string, not <nil/>: older SDKs
    // (and XML-RPC libraries without the nil extension) expect that.
    if (v.is_nil()) return std::string();
    return v;
  }
  auto task = tasks_->create("Async." + name, session);
  // The task outlives this request: it keeps its own copy of the call.
  auto owned = std::make_shared<api::RpcCall>(call);
  tasks_->run(task, [this, m, owned, session, task, args = std::move(args)] {
    CallCtx ctx{*this, *owned, session, task};
    return m->fn(ctx, args);
  });
  return Value(task);
}

namespace {

std::string query_param(const std::string& target, const std::string& key) {
  auto q = target.find('?');
  if (q == std::string::npos) return {};
  std::string rest = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto amp = rest.find('&', pos);
    auto part = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = part.find('=');
    if (eq != std::string::npos && part.substr(0, eq) == key) {
      // Refs and uuids need no decoding beyond %3A for ':'.
      std::string v = part.substr(eq + 1), out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size() && std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
          out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
          i += 2;
        } else {
          out.push_back(v[i]);
        }
      }
      return out;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return {};
}

}  // namespace

void Xapi::serve_console(const std::string& target, int fd) {
  auto fail = [fd](const std::string& msg) {
    std::string line = "vmstack: " + msg + "\r\n";
    api::detail::send_all(fd, line);  // best effort: a client that has gone has nothing to be told
  };
  std::string console = query_param(target, "ref"), session = query_param(target, "session_id");
  std::string sock, log;
  try {
    sessions_->check(session);
    auto vm = db_->get_field("console", console, "VM").as_string();
    if (!guests_->console_paths(vm, sock, log)) return fail("VM_BAD_POWER_STATE: the VM is not running");
  } catch (const ApiError& e) {
    std::string d;
    for (const auto& p : e.description()) d += (d.empty() ? "" : " ") + p;
    return fail(d);
  }
  auto why = relay_console(fd, sock, log, stopping_);
  if (!why.empty()) fail(why);
}

}  // namespace vmstack::ops
