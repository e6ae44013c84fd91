#include "lb/daemon.h"

#include <utility>  // before Asio: boost 1.74 awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <csignal>

#include <spdlog/spdlog.h>

#include "lb/control.h"
#include "lb/metrics.h"
#include "lb/state_file.h"

namespace vmstack::lb {

namespace asio = boost::asio;

struct Daemon::Io {
  explicit Io(const std::string& state_dir) : signals(ctx), tick(ctx), state(state_dir) {}
  asio::io_context ctx;
  asio::signal_set signals;
  asio::steady_timer tick;
  StateFile state;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<MetricsServer> metrics;
};

namespace {

// A command from the control socket, held to the CLI's checks (the same
// function the CLI's parser calls), with the CLI's messages.
Command checked_command(const nlohmann::json& j) {
  Command c = command_from_json(j);
  if (std::string e = validate_command(c); !e.empty()) throw LbError(LbError::Code::Invalid, e);
  return c;
}

nlohmann::json reply(const ExecResult& r) {
  return {{"rc", r.rc}, {"out", r.out}, {"err", r.err}};
}

}  // namespace

Daemon::Daemon(DaemonOptions opts)
    : opts_(std::move(opts)), io_(std::make_unique<Io>(opts_.state_dir)) {
  control_path_ = opts_.control_socket.empty() ? default_control_socket() : opts_.control_socket;
  proxy_ = std::make_unique<Proxy>(table_, opts_.proxy);
}

Daemon::~Daemon() { shutdown(); }

asio::io_context& Daemon::io() { return io_->ctx; }

const std::string& Daemon::state_file() const { return io_->state.path(); }

void Daemon::start() {
  uint64_t nofile = raise_nofile_limit(opts_.nofile);
  if (nofile < opts_.nofile)
    spdlog::warn("open files limited to {} (about {} concurrent TCP connections)", nofile, nofile / 2);

  // 1. Saved rules.
  io_->state.prepare();
  bool rewrite = false;
  if (auto text = io_->state.read()) {
    // Line by line: a bad line (logged with its number) costs that rule only.
    LoadReport rep = load_state(table_, *text, io_->state.path());
    if (!rep.ok()) {
      // The file as it was stays next to it; the rules file itself is
      // rewritten from what loaded, so the next start is clean.
      std::string copy = io_->state.set_aside();
      spdlog::error("{}: {} line(s) skipped, {} line(s) loaded; the file as it was is kept in {}",
                    io_->state.path(), rep.skipped.size(), rep.applied, copy);
      rewrite = true;
    }
    spdlog::info("restored {} virtual services from {}", table_.list().size(), io_->state.path());
  }
  dirty_ = rewrite;
  save_if_dirty();
  change_sub_ = table_.subscribe_changes([this] {
    // Any thread (control, health checks): save on the control thread.
    dirty_ = true;
    asio::post(io_->ctx, [this] { save_if_dirty(); });
  });

  // 2. Data plane, 3. control socket, 4. metrics.
  try {
    proxy_->start();
    for (auto& [k, e] : proxy_->listener_errors()) spdlog::warn("{} (retrying)", e);
    io_->control = std::make_unique<ControlServer>(
        io_->ctx, control_path_, [this](const nlohmann::json& r) { return handle(r); });
    io_->control->start();
    if (!opts_.metrics_listen.empty()) {
      io_->metrics = std::make_unique<MetricsServer>(io_->ctx, [this] { return metrics_text(); });
      io_->metrics->start(opts_.metrics_listen);
    }
  } catch (...) {
    shutdown();
    throw;
  }
  started_ = true;
}

void Daemon::run() {
  if (!started_) return;
  io_->signals.add(SIGINT);
  io_->signals.add(SIGTERM);
  io_->signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("caught {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop();
  });
  std::function<void()> arm = [this, &arm] {
    io_->tick.expires_after(std::chrono::seconds(1));
    io_->tick.async_wait([this, &arm](boost::system::error_code ec) {
      if (ec) return;
      table_.tick();  // rates, template expiry
      arm();
    });
  };
  arm();
  auto guard = asio::make_work_guard(io_->ctx);
  io_->ctx.run();
  io_->ctx.restart();
}

void Daemon::stop() {
  asio::post(io_->ctx, [this] {
    boost::system::error_code ec;
    io_->signals.cancel(ec);
    io_->tick.cancel();
    if (io_->control) io_->control->stop();
    if (io_->metrics) io_->metrics->stop();
    io_->ctx.stop();
  });
}

void Daemon::shutdown() {
  if (io_->control) io_->control->stop();
  if (io_->metrics) io_->metrics->stop();
  if (change_sub_) {
    table_.unsubscribe(change_sub_);
    change_sub_ = 0;
  }
  proxy_->stop();
  if (dirty_) save_if_dirty();
  started_ = false;
}

void Daemon::save_if_dirty(std::string* warning) {
  if (!dirty_.exchange(false)) return;
  try {
    io_->state.write(save_state(table_));
  } catch (const std::exception& e) {
    dirty_ = true;  // try again on the next change
    std::string m = std::string("rules not saved: ") + e.what();
    spdlog::error("{}", m);
    if (warning) *warning = "warning: " + m + "\n";
  }
}

std::string Daemon::listener_warning(const Command& c) const {
  if (c.op != Op::AddService && c.op != Op::EditService) return {};
  auto errs = proxy_->listener_errors();
  auto it = errs.find(c.svc.key);
  return it == errs.end() ? std::string() : "warning: " + it->second + " (will retry)\n";
}

nlohmann::json Daemon::handle(const nlohmann::json& request) {
  ExecResult r;
  try {
    if (request.contains("cmd")) {
      Command c = checked_command(request.at("cmd"));
      if (c.op == Op::Restore) throw LbError(LbError::Code::Invalid, "send -R as a batch");
      r = execute_command(table_, c, hooks_);
      if (r.rc == 0 && is_rule_change(c.op)) r.err += listener_warning(c);
    } else if (request.contains("batch")) {
      std::vector<int> lines = request.value("lines", std::vector<int>{});
      const auto& batch = request.at("batch");
      if (!batch.is_array()) throw LbError(LbError::Code::Invalid, "\"batch\" must be a list");
      std::vector<Command> cmds;
      // Every command is checked before any is applied, as the CLI checks
      // every line of a restore before sending it.
      for (size_t i = 0; i < batch.size(); ++i) {
        try {
          Command c = checked_command(batch[i]);
          if (!is_rule_change(c.op) && c.op != Op::StartDaemon && c.op != Op::StopDaemon &&
              c.op != Op::Zero)
            throw LbError(LbError::Code::Invalid, "only rule commands can be restored");
          cmds.push_back(std::move(c));
        } catch (const std::exception& e) {
          int line = lines.size() == batch.size() ? lines[i] : int(i + 1);
          throw LbError(LbError::Code::Invalid, "line " + std::to_string(line) + ": " + e.what());
        }
      }
      r = execute_batch(table_, cmds, hooks_, lines.size() == cmds.size() ? &lines : nullptr);
    } else {
      throw LbError(LbError::Code::Invalid, "request has neither \"cmd\" nor \"batch\"");
    }
  } catch (const std::exception& e) {
    r.rc = 2;
    r.err = std::string(e.what()) + "\n";
  }
  // Saved before the reply: once ipvsadm returns, the rule survives a
  // restart.
  std::string warning;
  save_if_dirty(&warning);
  r.err += warning;
  return reply(r);
}

std::string Daemon::metrics_text() {
  ProxyStats ps = proxy_->stats();
  std::string out = render_metrics(table_.list(), &ps);
  if (extra_metrics_) out += extra_metrics_();
  return out;
}

Endpoint Daemon::metrics_endpoint() const {
  return io_->metrics ? io_->metrics->endpoint() : Endpoint{};
}

}  // namespace vmstack::lb
