// The login throttles: per-source failure backoff, the hashing gate, and the
// source keys they are kept under.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "api/throttle.h"

using namespace vmstack::api;
using namespace std::chrono_literals;
using clock_type = FailureBackoff::clock;

TEST(Throttle, SourceKeys) {
  EXPECT_EQ(throttle_source("192.0.2.7:40000", -1), "192.0.2.7");
  EXPECT_EQ(throttle_source("unix", 0), "unix:0");
  EXPECT_EQ(throttle_source("unix", 1000), "unix:1000");
  // One IPv6 host can use a whole /64: it is one source.
  EXPECT_EQ(throttle_source("[2001:db8:1:2:aaaa::1]:80", -1), "2001:db8:1:2::/64");
  EXPECT_EQ(throttle_source("[2001:db8:1:2:bbbb::9]:81", -1), "2001:db8:1:2::/64");
  EXPECT_EQ(throttle_source("[::ffff:192.0.2.7]:80", -1), "::ffff:192.0.2.7");
  EXPECT_EQ(throttle_source("[::1]:5", -1), "::/64");
}

TEST(Throttle, BackoffAfterFreeFailuresDoublesUpToTheCap) {
  FailureBackoff::Policy p;
  p.free_failures = 3;
  p.first_delay = 1000ms;
  p.max_delay = 5000ms;
  p.window = 60s;
  FailureBackoff b(p);
  auto t = clock_type::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b.retry_after("a", t).count(), 0);
    EXPECT_EQ(b.failed("a", t).count(), 0) << "failure " << i + 1 << " is free";
  }
  EXPECT_EQ(b.failed("a", t), 1000ms);
  EXPECT_EQ(b.retry_after("a", t + 400ms), 600ms);
  EXPECT_EQ(b.retry_after("a", t + 1000ms).count(), 0);
  EXPECT_EQ(b.failed("a", t + 1000ms), 2000ms);
  EXPECT_EQ(b.failed("a", t + 3000ms), 4000ms);
  EXPECT_EQ(b.failed("a", t + 7000ms), 5000ms) << "capped";
  EXPECT_EQ(b.failed("a", t + 12000ms), 5000ms);
  // Other sources are not affected.
  EXPECT_EQ(b.retry_after("b", t + 12000ms).count(), 0);
  // Success forgives.
  b.succeeded("a");
  EXPECT_EQ(b.retry_after("a", t + 12000ms).count(), 0);
  EXPECT_EQ(b.failed("a", t + 12000ms).count(), 0);
}

TEST(Throttle, OldFailuresAreForgotten) {
  FailureBackoff::Policy p;
  p.free_failures = 2;
  p.window = 10s;
  FailureBackoff b(p);
  auto t = clock_type::now();
  b.failed("a", t);
  b.failed("a", t + 1s);
  // The streak ended a window ago: the next failure is free again.
  EXPECT_EQ(b.failed("a", t + 12s).count(), 0);
  EXPECT_EQ(b.retry_after("x", t).count(), 0);
  b.failed("x", t);
  EXPECT_EQ(b.retry_after("x", t + 11s).count(), 0);
  EXPECT_EQ(b.sources(), 1u) << "a source quiet for a window is dropped when looked at";
}

TEST(Throttle, RememberedSourcesAreBounded) {
  FailureBackoff::Policy p;
  p.max_sources = 100;
  FailureBackoff b(p);
  auto t = clock_type::now();
  for (int i = 0; i < 10000; ++i) b.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t);
  EXPECT_LE(b.sources(), 100u);
}

TEST(Throttle, GateBoundsConcurrencyAndQueue) {
  ConcurrencyGate g(2, 1, 2000ms);
  auto a = g.enter();
  auto b = g.enter();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(g.in_use(), 2u);
  // A third waits (the one waiting place), a fourth is refused at once.
  std::atomic<bool> third_got{false};
  std::thread waiter([&] { third_got = g.enter().has_value(); });
  std::this_thread::sleep_for(50ms);
  auto t0 = clock_type::now();
  EXPECT_FALSE(g.enter().has_value());
  EXPECT_LT(clock_type::now() - t0, 1000ms) << "refused without waiting for max_wait";
  a.reset();  // frees a slot: the waiter gets it
  waiter.join();
  EXPECT_TRUE(third_got);
  // Nobody frees one now: a waiter gives up after max_wait.
  auto c = g.enter();
  ASSERT_TRUE(c);
  t0 = clock_type::now();
  EXPECT_FALSE(g.enter().has_value());
  EXPECT_GE(clock_type::now() - t0, 1900ms);
}

TEST(Throttle, GateUnderContention) {
  ConcurrencyGate g(2, 64, 5s);
  std::atomic<int> inside{0}, most{0}, done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 32; ++i)
    ts.emplace_back([&] {
      auto t = g.enter();
      ASSERT_TRUE(t);
      int now = ++inside;
      for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
      }
      std::this_thread::sleep_for(2ms);
      --inside;
      ++done;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(done, 32);
  EXPECT_LE(most, 2);
  EXPECT_EQ(g.in_use(), 0u);
}
