#include "hv/fake_hypervisor.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vmstack::hv {

using Clock = std::chrono::steady_clock;
using Event = Domain::Event;

// One guest. Its domain handles (the launch's, and any attach's) share it;
// the event handler is the latest handle's.
struct FakeHypervisor::Guest {
  std::mutex mu;
  std::condition_variable cv;
  LiveState state;
  RunState status = RunState::running;
  bool alive = true;
  int64_t balloon = 0;
  std::vector<std::string> calls;
  Domain::EventHandler handler;
  const void* handler_owner = nullptr;  // the handle that set it
  int in_handler = 0;                   // deliveries in progress
  std::vector<std::pair<Event, std::string>> pending;  // before a handler is set
};

class FakeDomain final : public Domain {
 public:
  FakeDomain(FakeHypervisor& hv, std::shared_ptr<FakeHypervisor::Guest> g) : hv_(hv), g_(std::move(g)) {}

  ~FakeDomain() override {
    std::unique_lock lk(g_->mu);
    if (g_->handler_owner != this) return;
    g_->handler = nullptr;
    g_->handler_owner = nullptr;
    // No event reaches a destroyed handle: wait out one being delivered,
    // unless that delivery is what destroys us.
    if (std::this_thread::get_id() != hv_.events_.get_id()) g_->cv.wait(lk, [&] { return g_->in_handler == 0; });
  }

  const LiveState& state() const override { return g_->state; }
  bool alive() const override {
    std::lock_guard lk(g_->mu);
    return g_->alive;
  }
  RunState query_status() override {
    std::lock_guard lk(g_->mu);
    return g_->alive ? g_->status : RunState::shutdown;
  }
  void pause() override { set_status("pause", RunState::paused); }
  void unpause() override { set_status("unpause", RunState::running); }
  void powerdown() override {
    bool acpi, off;
    std::chrono::milliseconds delay;
    {
      std::lock_guard lk(hv_.mu_);
      acpi = hv_.behaviour_.acpi;
      delay = hv_.behaviour_.powerdown_delay;
    }
    {
      std::lock_guard lk(g_->mu);
      require_alive();
      g_->calls.push_back("powerdown");
      // A paused guest cannot act on the button; QEMU keeps it pending.
      off = acpi && g_->status == RunState::running;
    }
    if (!off) return;
    auto g = g_;
    hv_.schedule(delay, [g, &hv = hv_] {
      {
        std::lock_guard lk(g->mu);
        if (!g->alive || g->status == RunState::shutdown) return;
        g->status = RunState::shutdown;
      }
      hv.guest_shutdown_event(g, "guest-shutdown");
    });
  }
  void reset() override {
    std::lock_guard lk(g_->mu);
    require_alive();
    g_->calls.push_back("reset");
    // As system_reset: a powered-off guest is back in the running state machine, still stopped.
    if (g_->status == RunState::shutdown) g_->status = RunState::paused;
  }
  void set_balloon(int64_t bytes) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    g_->calls.push_back("balloon:" + std::to_string(bytes));
    g_->balloon = bytes;
  }
  void save(const std::string& path, std::chrono::milliseconds) override {
    std::string fail;
    {
      std::lock_guard lk(hv_.mu_);
      fail = hv_.behaviour_.fail_save;
    }
    std::lock_guard lk(g_->mu);
    require_alive();
    g_->calls.push_back("save");
    if (!fail.empty()) throw std::runtime_error(fail);
    std::ofstream out(path, std::ios::trunc);
    out << "vmstack-fake-save " << g_->state.spec.uuid << "\n";
    if (!out) throw std::runtime_error("cannot write " + path);
    g_->status = RunState::paused;  // QEMU leaves a saved guest stopped (postmigrate)
  }
  void cancel_save(std::chrono::milliseconds) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    g_->calls.push_back("cancel_save");  // the fake's save is over when save() returns
  }
  void stop() override {
    {
      std::lock_guard lk(g_->mu);
      g_->calls.push_back("stop");
      if (!g_->alive) return;
    }
    hv_.exit_guest(g_, "exited:0");
  }
  bool wait_exit(std::chrono::milliseconds timeout) override {
    std::unique_lock lk(g_->mu);
    return g_->cv.wait_for(lk, timeout, [&] { return !g_->alive; });
  }
  void add_disk(const DiskSpec& d) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    DomainSpec probe = g_->state.spec;
    probe.disks.push_back(d);
    assign_device_ids(probe);
    if (probe.disks.back().cdrom) throw std::runtime_error("a CD drive cannot be hotplugged");
    g_->calls.push_back("add_disk:" + probe.disks.back().id);
    g_->state.spec = probe;
    save_live_state(g_->state);
  }
  void remove_disk(const std::string& id) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    auto& v = g_->state.spec.disks;
    auto it = std::find_if(v.begin(), v.end(), [&](const DiskSpec& d) { return d.id == id; });
    if (it == v.end()) throw std::runtime_error("no disk " + id + " in this domain");
    g_->calls.push_back("remove_disk:" + id);
    v.erase(it);
    save_live_state(g_->state);
  }
  void add_nic(const NicSpec& n) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    DomainSpec probe = g_->state.spec;
    probe.nics.push_back(n);
    assign_device_ids(probe);
    g_->calls.push_back("add_nic:" + probe.nics.back().id);
    g_->state.spec = probe;
    save_live_state(g_->state);
  }
  void remove_nic(const std::string& id) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    auto& v = g_->state.spec.nics;
    auto it = std::find_if(v.begin(), v.end(), [&](const NicSpec& n) { return n.id == id; });
    if (it == v.end()) throw std::runtime_error("no NIC " + id + " in this domain");
    g_->calls.push_back("remove_nic:" + id);
    v.erase(it);
    save_live_state(g_->state);
  }
  void change_cd(const std::string& id, const std::string& path) override {
    std::lock_guard lk(g_->mu);
    require_alive();
    auto& v = g_->state.spec.disks;
    auto it = std::find_if(v.begin(), v.end(), [&](const DiskSpec& d) { return d.id == id && d.cdrom; });
    if (it == v.end()) throw std::runtime_error("no CD drive " + id + " in this domain");
    g_->calls.push_back("change_cd:" + id + ":" + path);
    it->path = path;
    save_live_state(g_->state);
  }
  void set_event_handler(EventHandler handler) override {
    std::vector<std::pair<Event, std::string>> pending;
    {
      std::lock_guard lk(g_->mu);
      g_->handler = std::move(handler);
      g_->handler_owner = this;
      pending.swap(g_->pending);
    }
    for (auto& [e, d] : pending) hv_.deliver(g_, e, d);
  }
  std::string log_tail(size_t) const override { return "fake domain " + g_->state.spec.uuid; }

 private:
  void require_alive() const {
    if (!g_->alive) throw std::runtime_error("fake domain " + g_->state.spec.uuid + " is gone");
  }
  void set_status(const char* call, RunState s) {
    std::lock_guard lk(g_->mu);
    require_alive();
    g_->calls.push_back(call);
    g_->status = s;
  }

  FakeHypervisor& hv_;
  std::shared_ptr<FakeHypervisor::Guest> g_;
};

FakeHypervisor::FakeHypervisor() { events_ = std::thread([this] { run_events(); }); }

FakeHypervisor::~FakeHypervisor() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  events_.join();
}

void FakeHypervisor::set_behaviour(const Behaviour& b) {
  std::lock_guard lk(mu_);
  behaviour_ = b;
}

void FakeHypervisor::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    timers_.emplace(Clock::now() + delay, std::move(fn));
  }
  cv_.notify_all();
}

void FakeHypervisor::run_events() {
  std::unique_lock lk(mu_);
  for (;;) {
    if (stopping_) return;
    if (timers_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto first = timers_.begin();
    if (first->first > Clock::now()) {
      cv_.wait_until(lk, first->first);
      continue;
    }
    auto fn = std::move(first->second);
    timers_.erase(first);
    lk.unlock();
    fn();
    lk.lock();
  }
}

void FakeHypervisor::deliver(const std::shared_ptr<Guest>& g, Domain::Event e, const std::string& detail) {
  schedule(std::chrono::milliseconds(0), [g, e, detail] {
    Domain::EventHandler h;
    {
      std::lock_guard lk(g->mu);
      if (!g->handler) {
        g->pending.emplace_back(e, detail);
        return;
      }
      h = g->handler;
      ++g->in_handler;
    }
    try {
      h(e, detail);
    } catch (...) {
      // as the QEMU driver: a throwing handler does not stop deliveries
    }
    {
      std::lock_guard lk(g->mu);
      --g->in_handler;
    }
    g->cv.notify_all();
  });
}

void FakeHypervisor::guest_shutdown_event(const std::shared_ptr<Guest>& g, const std::string& detail) {
  deliver(g, Event::guest_shutdown, detail);
}

void FakeHypervisor::exit_guest(const std::shared_ptr<Guest>& g, const std::string& detail) {
  {
    std::lock_guard lk(g->mu);
    if (!g->alive) return;
    g->alive = false;
    g->status = RunState::shutdown;
  }
  g->cv.notify_all();
  deliver(g, Event::exited, detail);
}

std::shared_ptr<FakeHypervisor::Guest> FakeHypervisor::find(const std::string& uuid) const {
  std::lock_guard lk(mu_);
  auto it = guests_.find(uuid);
  return it == guests_.end() ? nullptr : it->second;
}

std::unique_ptr<Domain> FakeHypervisor::launch(const DomainSpec& spec_in) {
  DomainSpec spec = spec_in;
  assign_device_ids(spec);
  if (spec.run_dir.empty()) throw std::runtime_error("DomainSpec.run_dir is empty");
  auto g = std::make_shared<Guest>();
  {
    std::lock_guard lk(mu_);
    if (!behaviour_.fail_launch.empty()) throw std::runtime_error(behaviour_.fail_launch);
    auto old = guests_.find(spec.uuid);
    if (old != guests_.end()) {
      std::lock_guard glk(old->second->mu);
      if (old->second->alive) throw std::runtime_error("a fake domain for " + spec.uuid + " is already running");
    }
    g->state.pid = next_pid_++;
  }
  if (!spec.incoming_file.empty()) {
    std::ifstream in(spec.incoming_file);
    std::string magic, uuid;
    if (!(in >> magic >> uuid) || magic != "vmstack-fake-save")
      throw std::runtime_error("cannot restore from " + spec.incoming_file + ": not a saved fake domain");
  }
  std::error_code ec;
  std::filesystem::create_directories(spec.run_dir, ec);
  g->state.driver = "fake";
  // The QEMU driver's layout: the sockets and log in the guest dir.
  const std::string guest_dir = guest_dir_of(spec.run_dir);
  g->state.qmp_socket = guest_dir + "/qmp.sock";
  g->state.console_socket = guest_dir + "/console.sock";
  g->state.console_log = guest_dir + "/console.log";
  g->state.vnc_socket = spec.vnc ? guest_dir + "/vnc.sock" : "";
  g->state.started = static_cast<int64_t>(std::time(nullptr));
  g->status = spec.start_paused ? RunState::paused : RunState::running;
  g->balloon = spec.memory_target;
  g->calls.push_back(spec.incoming_file.empty() ? "launch" : "restore");
  spec.incoming_file.clear();
  spec.start_paused = false;
  g->state.spec = spec;
  save_live_state(g->state);
  {
    std::lock_guard lk(mu_);
    guests_[spec.uuid] = g;
  }
  return std::make_unique<FakeDomain>(*this, g);
}

std::unique_ptr<Domain> FakeHypervisor::attach(const LiveState& state) {
  auto g = find(state.spec.uuid);
  if (!g) return nullptr;
  {
    std::lock_guard lk(g->mu);
    if (!g->alive || g->state.pid != state.pid) return nullptr;
  }
  return std::make_unique<FakeDomain>(*this, g);
}

bool FakeHypervisor::stop_orphan(const std::string& run_dir) {
  std::vector<std::shared_ptr<Guest>> all;
  {
    std::lock_guard lk(mu_);
    for (const auto& [u, g] : guests_) all.push_back(g);
  }
  for (const auto& g : all) {
    bool match;
    {
      std::lock_guard lk(g->mu);
      match = g->alive && g->state.spec.run_dir == run_dir;
      if (match) g->calls.push_back("stop_orphan");
    }
    if (match) {
      exit_guest(g, "signal:9");
      return true;
    }
  }
  return false;
}

void FakeHypervisor::guest_shutdown(const std::string& uuid) {
  auto g = find(uuid);
  if (!g) throw std::runtime_error("no fake domain " + uuid);
  {
    std::lock_guard lk(g->mu);
    if (!g->alive) return;
    g->status = RunState::shutdown;
  }
  guest_shutdown_event(g, "guest-shutdown");
}

void FakeHypervisor::guest_reset(const std::string& uuid) {
  auto g = find(uuid);
  if (!g) throw std::runtime_error("no fake domain " + uuid);
  deliver(g, Event::guest_reset, "guest-reset");
}

void FakeHypervisor::crash(const std::string& uuid) {
  auto g = find(uuid);
  if (!g) throw std::runtime_error("no fake domain " + uuid);
  exit_guest(g, "signal:9");
}

bool FakeHypervisor::alive(const std::string& uuid) const {
  auto g = find(uuid);
  if (!g) return false;
  std::lock_guard lk(g->mu);
  return g->alive;
}

size_t FakeHypervisor::alive_count() const {
  std::vector<std::shared_ptr<Guest>> all;
  {
    std::lock_guard lk(mu_);
    for (const auto& [u, g] : guests_) all.push_back(g);
  }
  size_t n = 0;
  for (const auto& g : all) {
    std::lock_guard lk(g->mu);
    n += g->alive ? 1 : 0;
  }
  return n;
}

RunState FakeHypervisor::status(const std::string& uuid) const {
  auto g = find(uuid);
  if (!g) return RunState::unknown;
  std::lock_guard lk(g->mu);
  return g->alive ? g->status : RunState::shutdown;
}

std::vector<std::string> FakeHypervisor::calls(const std::string& uuid) const {
  auto g = find(uuid);
  if (!g) return {};
  std::lock_guard lk(g->mu);
  return g->calls;
}

DomainSpec FakeHypervisor::last_spec(const std::string& uuid) const {
  auto g = find(uuid);
  if (!g) return {};
  std::lock_guard lk(g->mu);
  return g->state.spec;
}

}  // namespace vmstack::hv
