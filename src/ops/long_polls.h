// event.from / event.next without a thread per waiting client. A poll that
// finds nothing new parks: its call's answer is deferred (api::PendingReply),
// so the server's worker goes back to serving others, and one thread here
// answers it when the store reports a change it is interested in or its
// timeout passes. 140 pollers cost 140 small records, not 140 workers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/pending_reply.h"
#include "model/store.h"
#include "ops/dispatch.h"

namespace vmstack::ops {

class LongPolls {
 public:
  // Turns a batch into the call's answer (event.from's record, event.next's
  // list); runs on the caller's thread or on this object's thread.
  using Answer = std::function<Value(const model::EventBatch&)>;

  // At most `max_parked` polls wait here; beyond that a poll blocks its
  // worker as before (the server's pool bounds those).
  explicit LongPolls(model::Store& store, std::size_t max_parked = 4096);
  ~LongPolls();
  LongPolls(const LongPolls&) = delete;
  LongPolls& operator=(const LongPolls&) = delete;

  // The changes in `classes` after `token`: answered at once when there are
  // some (or `timeout` is zero), else parked until there are or `timeout`
  // passes. Without a server to defer to (c.defer empty, e.g. a direct
  // dispatcher call) it blocks on the store instead.
  Value wait(const Call& c, std::set<std::string> classes, uint64_t token, std::chrono::milliseconds timeout,
             Answer answer);
  // The daemon is stopping: every parked poll is answered now with what it
  // has, and later polls are answered at once.
  void stop();
  std::size_t parked() const;

 private:
  using clock = std::chrono::steady_clock;
  struct Poll {
    std::set<std::string> classes;
    uint64_t token = 0;
    uint64_t seen = 0;  // nothing for it up to this generation
    clock::time_point deadline;
    std::shared_ptr<api::PendingReply> reply;
    Answer answer;
  };
  void run();
  // Answers the poll if it is due (or `stopping`); false keeps it parked.
  bool settle(Poll& p, clock::time_point now, bool stopping);
  void poke();

  model::Store& store_;
  const std::size_t max_parked_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Poll> incoming_;  // parked, not yet taken by the thread
  std::size_t parked_ = 0;      // incoming_ + the thread's own
  bool dirty_ = false;          // the store changed since the last look
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vmstack::ops
