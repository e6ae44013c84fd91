// The fake hypervisor behaves like the QEMU driver where the toolstack can
// tell: events on another thread, queued until a handler is set, a saved
// guest left stopped, live state saved, re-attach by pid.
#include <gtest/gtest.h>

#include <unistd.h>

#include <condition_variable>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/uuid.h"
#include "guest.h"
#include "hv/fake_hypervisor.h"

using namespace vmstack;
using namespace vmstack::hv;
using namespace std::chrono_literals;

namespace {

DomainSpec spec_in(const std::string& dir) {
  DomainSpec s;
  s.uuid = make_uuid();
  s.name = "fake";
  s.run_dir = dir + "/" + s.uuid;
  return s;
}

struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Domain::Event> events;
  Domain::EventHandler handler() {
    return [this](Domain::Event e, const std::string&) {
      std::lock_guard lk(mu);
      events.push_back(e);
      cv.notify_all();
    };
  }
  bool wait_for(Domain::Event e) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 5s, [&] { return std::find(events.begin(), events.end(), e) != events.end(); });
  }
};

}  // namespace

TEST(FakeHypervisor, PowerButtonSaveRestoreAndAttach) {
  hvtest::TempDir tmp;
  FakeHypervisor hv;
  auto spec = spec_in(tmp.path);
  auto dom = hv.launch(spec);
  Seen seen;
  dom->set_event_handler(seen.handler());
  EXPECT_EQ(dom->query_status(), RunState::running);
  auto saved = load_live_state(spec.run_dir);
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->driver, "fake");
  EXPECT_EQ(saved->pid, dom->state().pid);
  // The QEMU driver's layout: sockets and console log in the guest dir.
  EXPECT_EQ(saved->console_log, spec.run_dir + "/qemu/console.log");
  EXPECT_EQ(saved->qmp_socket, guest_dir_of(spec.run_dir) + "/qmp.sock");

  dom->save(tmp.path + "/image", 1s);
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->stop();
  EXPECT_TRUE(seen.wait_for(Domain::Event::exited));
  EXPECT_FALSE(hv.alive(spec.uuid));

  auto restore = spec;
  restore.incoming_file = tmp.path + "/image";
  dom = hv.launch(restore);
  EXPECT_EQ(hv.calls(spec.uuid).front(), "restore");
  restore.incoming_file = tmp.path + "/not-an-image";
  EXPECT_THROW(hv.launch(restore), std::runtime_error) << "a running domain cannot be launched twice";

  // A daemon restart: the handle goes, a new one attaches from the live state.
  auto state = *load_live_state(spec.run_dir);
  dom.reset();
  EXPECT_TRUE(hv.alive(spec.uuid));
  auto again = hv.attach(state);
  ASSERT_TRUE(again);
  Seen seen2;
  again->set_event_handler(seen2.handler());
  again->powerdown();
  EXPECT_TRUE(seen2.wait_for(Domain::Event::guest_shutdown));
  EXPECT_EQ(again->query_status(), RunState::shutdown);
  EXPECT_TRUE(again->alive()) << "a powered-off guest stays until stopped, as with -no-shutdown";
  state.pid += 1;
  EXPECT_EQ(hv.attach(state), nullptr) << "another pid is another process";
}

TEST(FakeHypervisor, ScriptedBehaviourAndFailures) {
  hvtest::TempDir tmp;
  FakeHypervisor hv;
  FakeHypervisor::Behaviour b;
  b.acpi = false;
  b.fail_save = "disk full";
  hv.set_behaviour(b);
  auto spec = spec_in(tmp.path);
  auto dom = hv.launch(spec);
  Seen seen;
  dom->set_event_handler(seen.handler());
  dom->powerdown();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(dom->query_status(), RunState::running) << "this guest ignores the power button";
  try {
    dom->save(tmp.path + "/image", 1s);
    ADD_FAILURE() << "save succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk full");
  }
  EXPECT_EQ(dom->query_status(), RunState::running) << "a failed save leaves the guest running";
  hv.crash(spec.uuid);
  EXPECT_TRUE(seen.wait_for(Domain::Event::exited));
  b.fail_launch = "no room";
  hv.set_behaviour(b);
  EXPECT_THROW(hv.launch(spec_in(tmp.path)), std::runtime_error);
}

TEST(FakeHypervisor, EventsWaitForAHandler) {
  hvtest::TempDir tmp;
  FakeHypervisor hv;
  auto spec = spec_in(tmp.path);
  auto dom = hv.launch(spec);
  hv.guest_shutdown(spec.uuid);  // before anyone listens
  std::this_thread::sleep_for(50ms);
  Seen seen;
  dom->set_event_handler(seen.handler());
  EXPECT_TRUE(seen.wait_for(Domain::Event::guest_shutdown));
}

TEST(FakeHypervisor, HandlerMayDestroyTheDomain) {
  hvtest::TempDir tmp;
  FakeHypervisor hv;
  auto spec = spec_in(tmp.path);
  Domain* raw = hv.launch(spec).release();
  std::mutex mu;
  std::condition_variable cv;
  bool gone = false;
  raw->set_event_handler([&](Domain::Event e, const std::string&) {
    if (e != Domain::Event::exited) return;
    delete raw;
    std::lock_guard lk(mu);
    gone = true;
    cv.notify_all();
  });
  hv.crash(spec.uuid);
  std::unique_lock lk(mu);
  EXPECT_TRUE(cv.wait_for(lk, 5s, [&] { return gone; }));
}

// domain.json is acted on as root (a pid to signal, sockets, a uid): only a
// file root wrote counts, and saving it never writes through a name found
// in the run dir.
TEST(LiveState, OnlyAFileRootWroteIsTrustedAndNoneIsWrittenThrough) {
  hvtest::TempDir tmp;
  const std::string run = tmp.path + "/run", elsewhere = tmp.path + "/elsewhere";
  std::filesystem::create_directories(run);
  { std::ofstream(elsewhere) << "untouched\n"; }
  LiveState s;
  s.spec.uuid = make_uuid();
  s.spec.run_dir = run;
  s.pid = 4242;
  // A link planted under the temporary file's name is replaced, not followed.
  std::filesystem::create_symlink(elsewhere, run + "/domain.json.tmp");
  save_live_state(s);
  EXPECT_EQ(hvtest::read_file(elsewhere), "untouched\n");
  ASSERT_TRUE(load_live_state(run).has_value());
  EXPECT_EQ(load_live_state(run)->pid, 4242);

  const std::string copy = tmp.path + "/copy.json";
  std::filesystem::copy_file(run + "/domain.json", copy);
  std::filesystem::remove(run + "/domain.json");
  std::filesystem::create_symlink(copy, run + "/domain.json");
  EXPECT_FALSE(load_live_state(run).has_value()) << "a symlink is not root's file";
  std::filesystem::remove(run + "/domain.json");
  ASSERT_EQ(::link(copy.c_str(), (run + "/domain.json").c_str()), 0);
  EXPECT_FALSE(load_live_state(run).has_value()) << "a second link to a file is not root's file";
  std::filesystem::remove(run + "/domain.json");
  std::filesystem::copy_file(copy, run + "/domain.json");
  EXPECT_TRUE(load_live_state(run).has_value());
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((run + "/domain.json").c_str(), 70999, 70999), 0);
    EXPECT_FALSE(load_live_state(run).has_value()) << "a file of another user's";
  }
}
