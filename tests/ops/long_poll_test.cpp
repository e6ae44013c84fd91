// The daemon's side of staying responsive: event.from / event.next park
// instead of holding workers, failed logins back off per source, and a
// large body is read only for a live session.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "api/server.h"
#include "core/error.h"
#include "daemon_fixture.h"
#include "ops/sessions.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The name_label an event's snapshot carries ("" for deletions).
std::string name_in(const Value& event) {
  const Value& n = event["snapshot"]["name_label"];
  return n.is_string() ? n.as_string() : "";
}

std::size_t threads_now() {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

class ResponsivenessTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 30, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string template_ref() {
    return call(*c, "VM.get_by_name_label", {s, "Other install media"}).as_array().at(0).as_string();
  }
};

TEST_F(ResponsivenessTest, ParkedLongPollsHoldNoWorkers) {
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.0})["token"].as_string();
  std::size_t before = threads_now();
  constexpr int kPollers = 140;
  std::atomic<int> answered{0}, saw_clone{0};
  std::vector<std::thread> pollers;
  for (int i = 0; i < kPollers; ++i)
    pollers.emplace_back([&, i] {
      auto pc = d.client();
      // As a client does: poll again from the new token until the VM shows
      // up (the clone also changes its template, which may come first).
      std::string from = token;
      for (int round = 0; round < 10; ++round) {
        Value ev = i % 2 ? call(*pc, "event.from", {s, Array{"vm"}, from, 30.0})
                         : call(*pc, "event_from", {s, Array{"VM"}, from, 30.0});
        if (round == 0) ++answered;
        from = ev["token"].as_string();
        for (const auto& e : ev["events"].as_array())
          if (name_in(e) == "woken") {
            ++saw_clone;
            return;
          }
      }
    });
  std::this_thread::sleep_for(1500ms);  // all of them sent and parked
  EXPECT_EQ(answered, 0) << "nothing changed: they wait";
  // 140 waiting calls, more than the worker pool's cap (128), yet the
  // daemon answers others at once: had each poll kept a worker, this call
  // would queue behind them for their 30 s. (The thread count is no proof:
  // a burst of calls grows the pool for a while.)
  EXPECT_LE(threads_now(), before + kPollers + api::ServerLimits{}.max_threads);
  auto t0 = steady::now();
  EXPECT_FALSE(call(*c, "VM.get_all", {s}).as_array().empty());
  EXPECT_LT(steady::now() - t0, 2s);
  // One change wakes them all.
  t0 = steady::now();
  call(*c, "VM.clone", {s, template_ref(), "woken"});
  for (auto& t : pollers) t.join();
  EXPECT_LT(steady::now() - t0, 10s);
  EXPECT_EQ(answered, kPollers);
  EXPECT_EQ(saw_clone, kPollers);
}

TEST_F(ResponsivenessTest, ParkedPollsTimeOutAndEventNextParksToo) {
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.0})["token"].as_string();
  auto t0 = steady::now();
  auto ev = call(*c, "event.from", {s, Array{"vm"}, token, 0.5});
  EXPECT_GE(steady::now() - t0, 450ms);
  EXPECT_TRUE(ev["events"].as_array().empty());
  EXPECT_FALSE(ev["token"].as_string().empty());
  // Legacy event.next: registered classes, a per-session token.
  call(*c, "event.register", {s, Array{"vm"}});
  std::atomic<bool> got{false};
  std::thread next([&] {
    auto nc = d.client();
    for (int round = 0; round < 10 && !got; ++round) {
      Value events = call(*nc, "event.next", {s});
      for (const auto& e : events.as_array())
        if (name_in(e) == "next-one") got = true;
    }
  });
  std::this_thread::sleep_for(300ms);
  call(*c, "VM.clone", {s, template_ref(), "next-one"});
  next.join();
  EXPECT_TRUE(got);
}

TEST_F(ResponsivenessTest, StoppingAnswersParkedPolls) {
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.0})["token"].as_string();
  std::vector<std::thread> pollers;
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i)
    pollers.emplace_back([&] {
      auto pc = d.client();
      try {
        call(*pc, "event.from", {s, Array{"vm"}, token, 50.0});
      } catch (const ApiError&) {
        // A closed connection ends the poll too.
      }
      ++done;
    });
  std::this_thread::sleep_for(500ms);
  auto t0 = steady::now();
  c.reset();
  d.restart();
  for (auto& t : pollers) t.join();
  EXPECT_LT(steady::now() - t0, 10s);
  EXPECT_EQ(done, 20);
}

TEST_F(ResponsivenessTest, FailedLoginsBackOffPerSourceButLocalRootIsNeverThrottled) {
  d.daemon().sessions().set_password("root", "s3cret");
  auto attempt = [&](const std::string& pw) { return failure(*c, "session.login_with_password", {"root", pw, "1.0", "t"}); };
  // Five free failures, the sixth starts a lock-out.
  for (int i = 0; i < 6; ++i) {
    auto e = attempt("wrong");
    ASSERT_EQ(e.size(), 3u);
    EXPECT_EQ(e[0], "SESSION_AUTHENTICATION_FAILED");
    EXPECT_EQ(e[2], "Authentication failure");
  }
  // Locked out: refused at once, without a hash, even with the right password.
  auto t0 = steady::now();
  auto e = attempt("s3cret");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], "SESSION_AUTHENTICATION_FAILED");
  EXPECT_EQ(e[1], "root");
  EXPECT_NE(e[2].find("Too many failed logins from unix:0"), std::string::npos) << e[2];
  EXPECT_LT(steady::now() - t0, 2s);
  // Local root (uid 0 on the unix socket, empty password) is not affected.
  EXPECT_NO_THROW(d.login(*c));
  // After the lock-out the right password works, and clears the record.
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(attempt("s3cret").empty());
  EXPECT_EQ(attempt("wrong").at(2), "Authentication failure");
}

TEST_F(ResponsivenessTest, LargeBodiesOnlyForLiveSessions) {
  auto vm = call(*c, "VM.clone", {s, template_ref(), "big"}).as_string();
  const std::string big(1u << 20, 'd');
  for (bool json : {false, true}) {
    api::Client k(api::Endpoint{d.socket(), "", 0, json});
    call(k, "VM.set_name_description", {s, vm, big});
    EXPECT_EQ(call(k, "VM.get_name_description", {s, vm}).as_string().size(), big.size());
    EXPECT_EQ(failure(k, "VM.set_name_description", {"OpaqueRef:forged", vm, big}),
              (std::vector<std::string>{"SESSION_INVALID", "OpaqueRef:forged"}));
    EXPECT_EQ(failure(k, "VM.no_such_call", {s, big}), (std::vector<std::string>{"MESSAGE_METHOD_UNKNOWN", "VM.no_such_call"}));
    // Calls without a session get the small limit.
    auto e = failure(k, "session.login_with_password", {"root", big});
    ASSERT_FALSE(e.empty());
    EXPECT_EQ(e[0], "PROTOCOL_ERROR");
    EXPECT_NE(e.at(1).find("413"), std::string::npos) << e.at(1);
    // Small calls keep xapi's error order (arity before session).
    EXPECT_EQ(failure(k, "VM.get_all", {"OpaqueRef:forged", "extra"}),
              (std::vector<std::string>{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_all", "0", "1"}));
  }
}

}  // namespace
}  // namespace vmstack::test
