// Polling for a quick answer before sleeping (detail::FdStream, used by the
// client; the server's linger does the same for a quick caller's next
// request): it reads what comes, turns itself off after a miss, and on again
// when data comes that fast anyway.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "api/client.h"
#include "api/server.h"
#include "api/wire_util.h"
#include "core/fd.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace std::chrono_literals;

namespace {

struct Pair {
  UniqueFd a, b;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a.reset(sv[0]);
    b.reset(sv[1]);
  }
};

std::string read_some(detail::FdStream& s) {
  char buf[64];
  boost::system::error_code ec;
  std::size_t n = s.read_some(boost::asio::buffer(buf), ec);
  EXPECT_FALSE(ec) << ec.message();
  return std::string(buf, n);
}

}  // namespace

TEST(BusyPoll, SlowAnswerTurnsPollingOffAQuickOneOnAgain) {
  Pair p;
  bool quick = true;
  // A poll window far longer than a read of data already there, far
  // shorter than the late answer: the test holds under load and sanitizers.
  detail::FdStream s(p.a.get(), 5ms, &quick);

  // Data that is already there is read at once and keeps polling on.
  ASSERT_EQ(::write(p.b.get(), "x", 1), 1);
  EXPECT_EQ(read_some(s), "x");
  EXPECT_TRUE(quick);

  // An answer that takes 100 ms: the poll misses, the read sleeps for it.
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(::write(p.b.get(), "late", 4), 4);
  });
  EXPECT_EQ(read_some(s), "late");
  late.join();
  EXPECT_FALSE(quick);

  // Off: no polling, but an answer there at once turns it back on.
  ASSERT_EQ(::write(p.b.get(), "y", 1), 1);
  EXPECT_EQ(read_some(s), "y");
  EXPECT_TRUE(quick);
}

TEST(BusyPoll, EndOfStreamAndErrorsAreReportedWhilePolling) {
  Pair p;
  bool quick = true;
  detail::FdStream s(p.a.get(), 50ms, &quick);
  std::thread closer([&] {
    std::this_thread::sleep_for(5ms);
    p.b.reset();
  });
  char buf[8];
  boost::system::error_code ec;
  EXPECT_EQ(s.read_some(boost::asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, boost::asio::error::eof);
  closer.join();
}

// The server polls only for a quick caller and still parks a connection
// whose client goes quiet, with polling on or off.
TEST(BusyPoll, ServerAnswersQuickAndSlowCallersAlike) {
  for (auto poll : {std::chrono::microseconds{0}, std::chrono::microseconds{200}}) {
    SCOPED_TRACE(poll.count());
    test::TempDir dir;
    Server server({test::sock_in(dir), "", 0, 1}, test::test_dispatch);
    ServerLimits lim;
    lim.busy_poll = poll;
    lim.park_after = 20ms;
    server.set_limits(lim);
    server.start();
    Client quick_client(Endpoint{test::sock_in(dir), "", 0, false});
    Client slow_client(Endpoint{test::sock_in(dir), "", 0, false});
    auto echo = [](Client& c, int i) {
      Value v("call " + std::to_string(i));
      EXPECT_EQ(c.call("echo", {v}), Value(Array{v}));
    };
    for (int i = 0; i < 200; ++i) echo(quick_client, i);
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(30ms);  // past park_after: parked in between
      echo(slow_client, i);
      echo(quick_client, i);
    }
  }
}
