// A fixed pool of worker threads draining a FIFO of jobs; joins on
// destruction after finishing what was queued.
#pragma once

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vmstack::ops {

class WorkQueue {
 public:
  explicit WorkQueue(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  ~WorkQueue() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void post(std::function<void()> fn) {
    {
      std::lock_guard lk(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

  // Waits until every job posted so far (and any they post) has finished.
  void drain() {
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return queue_.empty() && busy_ == 0; });
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
      }
      // A job that throws (a store write failing on a full disk, say) must
      // not take the daemon down with it, nor leave busy_ counted.
      try {
        job();
      } catch (const std::exception& e) {
        spdlog::error("background job failed: {}", e.what());
      } catch (...) {
        spdlog::error("background job failed");
      }
      {
        std::lock_guard lk(mu_);
        --busy_;
      }
      idle_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_;
  unsigned busy_ = 0;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace vmstack::ops
