#include "hv/qmp.h"

#include <fcntl.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/process.h"
#include "guest.h"

using namespace vmstack;
using namespace vmstack::hv;
using namespace std::chrono_literals;

namespace {

// A bare QEMU with no machine: just a QMP monitor.
struct BareQemu {
  hvtest::TempDir dir;
  Subprocess proc;
  std::string sock;
  BareQemu() {
    sock = dir.path + "/qmp.sock";
    SpawnOptions o;
    o.new_session = true;
    o.stdout_mode = SpawnOptions::Output::file;
    o.stdout_path = dir.path + "/qemu.log";
    o.stderr_mode = SpawnOptions::Output::stdout_;
    proc = Subprocess::spawn({"qemu-system-x86_64", "-machine", "none", "-nodefaults", "-no-user-config", "-display",
                              "none", "-chardev", "socket,id=qmp0,path=" + sock + ",server=on,wait=off", "-mon",
                              "chardev=qmp0,mode=control"},
                             o);
  }
};

}  // namespace

TEST(Qmp, HandshakeAndExecute) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->connected());
  EXPECT_EQ(c->greeting()["QMP"]["version"]["qemu"]["major"].get<int>(), 7);
  auto v = c->execute("query-version");
  EXPECT_EQ(v["qemu"]["major"].get<int>(), 7);
  auto st = c->execute("query-status");
  EXPECT_EQ(st["status"], "running");
  c->execute("quit");
  EXPECT_TRUE(q.proc.wait_for(5s));
}

// With the pid expected to serve the socket, a socket someone else serves
// (a symlink to it under QEMU's name, say) is refused before a byte goes
// either way; QEMU's own is accepted.
TEST(Qmp, OnlyTheExpectedProcessesSocket) {
  BareQemu q;
  const std::string elsewhere = q.dir.path + "/planted.sock";
  // Wait for QEMU's socket, then give it a second name: the same socket.
  QmpClient::connect(q.sock, 10s)->close();
  std::filesystem::create_symlink(q.sock, elsewhere);
  try {
    QmpClient::connect(elsewhere, 2s, q.proc.pid() + 100000);
    FAIL() << "expected QmpPeerError";
  } catch (const QmpPeerError& e) {
    EXPECT_NE(std::string(e.what()).find("is served by pid " + std::to_string(q.proc.pid())), std::string::npos)
        << e.what();
  }
  auto c = QmpClient::connect(elsewhere, 2s, q.proc.pid());
  EXPECT_EQ(c->execute("query-status")["status"], "running");
  c->execute("quit");
  EXPECT_TRUE(q.proc.wait_for(5s));
}

TEST(Qmp, ErrorsCarryClassAndDesc) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  try {
    c->execute("no-such-command");
    FAIL() << "expected QmpError";
  } catch (const QmpError& e) {
    EXPECT_EQ(e.error_class(), "CommandNotFound");
    EXPECT_NE(e.desc().find("no-such-command"), std::string::npos);
  }
  try {
    c->execute("balloon", {{"value", 1}});
    FAIL() << "expected QmpError";
  } catch (const QmpError& e) {
    EXPECT_FALSE(e.error_class().empty());
  }
  // The connection is still usable afterwards.
  EXPECT_NO_THROW(c->execute("query-status"));
}

TEST(Qmp, EventsAreDelivered) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  c->execute("stop");  // STOP arrives before a callback exists: buffered
  c->set_event_callback([&](const std::string& ev, const nlohmann::json&, double ts) {
    EXPECT_GT(ts, 0);
    std::lock_guard lk(mu);
    events.push_back(ev);
    cv.notify_all();
  });
  c->execute("cont");
  std::unique_lock lk(mu);
  ASSERT_TRUE(cv.wait_for(lk, 5s, [&] { return events.size() >= 2; }));
  EXPECT_EQ(events[0], "STOP");
  EXPECT_EQ(events[1], "RESUME");
}

TEST(Qmp, ConcurrentCommandsFromThreads) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = c->execute(i % 2 ? "query-status" : "query-name");
        if (r.is_object()) ++ok;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST(Qmp, DisconnectFailsPendingAndLaterCommands) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  std::atomic<bool> closed{false};
  c->set_close_callback([&] { closed = true; });
  q.proc.kill(SIGKILL);
  q.proc.wait();
  // The reader thread marks the client disconnected, then calls the
  // callback: wait for both (checking the flag right after the first raced
  // the second under ASan).
  for (int i = 0; i < 200 && (c->connected() || !closed.load()); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(c->connected());
  EXPECT_TRUE(closed.load());
  EXPECT_THROW(c->execute("query-status"), QmpConnectionError);
}

TEST(Qmp, ConnectTimesOutWithoutServer) {
  hvtest::TempDir d;
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(QmpClient::connect(d.path + "/nothing.sock", 300ms), QmpConnectionError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(Qmp, PassesFileDescriptors) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  hvtest::TempDir d;
  int fd = ::open((d.path + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_NO_THROW(c->execute_with_fd("getfd", {{"fdname", "t1"}}, fd));
  ::close(fd);
  EXPECT_NO_THROW(c->execute("closefd", {{"fdname", "t1"}}));
  EXPECT_THROW(c->execute("closefd", {{"fdname", "t1"}}), QmpError);  // already closed
}

TEST(Qmp, CloseCallbackSetAfterCloseFiresAtOnce) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  c->execute("quit");
  ASSERT_TRUE(q.proc.wait_for(5s));
  for (int i = 0; i < 200 && c->connected(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(c->connected());
  int calls = 0;
  c->set_close_callback([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  c->set_close_callback([&] { ++calls; });  // once per connection, not per listener
  EXPECT_EQ(calls, 1);
}

TEST(Qmp, ClientMayBeDestroyedFromItsOwnCallback) {
  BareQemu q;
  auto c = QmpClient::connect(q.sock, 10s);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  QmpClient* raw = c.release();
  raw->set_close_callback([&] {
    delete raw;  // on the reader thread, which must still unwind safely
    std::lock_guard lk(mu);
    done = true;
    cv.notify_all();
  });
  q.proc.kill(SIGKILL);
  std::unique_lock lk(mu);
  EXPECT_TRUE(cv.wait_for(lk, 5s, [&] { return done; }));
}
