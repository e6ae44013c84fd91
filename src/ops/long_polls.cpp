#include "ops/long_polls.h"

#include <algorithm>

#include "core/error.h"

namespace vmstack::ops {

LongPolls::LongPolls(model::Store& store, std::size_t max_parked) : store_(store), max_parked_(max_parked) {
  // The listener runs under the store's write lock: it only flags and
  // signals. This thread never holds mu_ while it calls the store, so the
  // two locks are always taken in that one order.
  store_.set_change_listener([this] { poke(); });
  thread_ = std::thread([this] { run(); });
}

LongPolls::~LongPolls() {
  stop();
  store_.set_change_listener({});
}

void LongPolls::poke() {
  {
    std::lock_guard lk(mu_);
    dirty_ = true;
  }
  cv_.notify_one();
}

std::size_t LongPolls::parked() const {
  std::lock_guard lk(mu_);
  return parked_;
}

Value LongPolls::wait(const Call& c, std::set<std::string> classes, uint64_t token, std::chrono::milliseconds timeout,
                      Answer answer) {
  auto now = store_.changes_since(classes, token, std::chrono::milliseconds(0));
  if (!now.events.empty() || timeout.count() <= 0) return answer(now);
  bool room;
  {
    std::lock_guard lk(mu_);
    room = !stopping_ && parked_ < max_parked_;
    if (room) ++parked_;  // reserved before deferring: the cap holds under a burst
  }
  std::shared_ptr<api::PendingReply> reply = room && c.defer ? c.defer() : nullptr;
  if (!reply) {
    if (room) {
      std::lock_guard lk(mu_);
      --parked_;
    }
    return answer(store_.changes_since(classes, token, timeout));
  }
  {
    std::lock_guard lk(mu_);
    // Taken by the thread unless it has stopped meanwhile (it leaves only
    // with nothing incoming): then this call answers itself.
    if (!stopping_) {
      incoming_.push_back({std::move(classes), token, now.token, clock::now() + timeout, reply, std::move(answer)});
      cv_.notify_one();
      return {};  // ignored: the reply carries the answer
    }
    --parked_;
  }
  reply->complete(answer(store_.changes_since(classes, token, std::chrono::milliseconds(0))));
  return {};
}

bool LongPolls::settle(Poll& p, clock::time_point now, bool stopping) {
  if (p.reply->settled()) return true;  // the client has gone
  model::EventBatch b;
  if (stopping || now >= p.deadline) {
    b = store_.changes_since(p.classes, p.token, std::chrono::milliseconds(0));
  } else {
    uint64_t gen = store_.generation();
    if (gen <= p.seen) return false;
    if (!store_.changed_after(p.classes, p.seen)) {
      p.seen = gen;
      return false;
    }
    b = store_.changes_since(p.classes, p.token, std::chrono::milliseconds(0));
    if (b.events.empty()) {
      p.seen = b.token;
      return false;
    }
  }
  try {
    p.reply->complete(p.answer(b));
  } catch (const ApiError& e) {
    p.reply->complete(api::RpcResult::failure(e));
  } catch (const std::exception& e) {
    p.reply->complete(api::RpcResult::failure(ApiError(errors::INTERNAL_ERROR, {e.what()})));
  }
  return true;
}

void LongPolls::run() {
  std::vector<Poll> polls;  // this thread's own
  std::unique_lock lk(mu_);
  for (;;) {
    auto woken = [&] { return dirty_ || stopping_ || !incoming_.empty(); };
    if (polls.empty()) {
      cv_.wait(lk, woken);
    } else {
      auto next = polls.front().deadline;
      for (const auto& p : polls) next = std::min(next, p.deadline);
      cv_.wait_until(lk, next, woken);
    }
    const bool stopping = stopping_;
    dirty_ = false;
    for (auto& p : incoming_) polls.push_back(std::move(p));
    incoming_.clear();
    lk.unlock();
    const auto now = clock::now();
    std::size_t before = polls.size();
    std::erase_if(polls, [&](Poll& p) { return settle(p, now, stopping); });
    lk.lock();
    parked_ -= before - polls.size();
    if (stopping && incoming_.empty()) return;
  }
}

void LongPolls::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vmstack::ops
