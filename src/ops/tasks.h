// Tasks: Async.* calls and other long work run on a small worker pool, each
// recorded as a task object (status, progress, result, error_info) that
// clients poll or watch with event.from.
#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/value.h"
#include "model/store.h"
#include "ops/work_queue.h"

namespace vmstack::ops {

class Dispatcher;

class Tasks {
 public:
  Tasks(model::Store& store, unsigned threads);
  Tasks(const Tasks&) = delete;
  Tasks& operator=(const Tasks&) = delete;

  // The host tasks are resident on (set once the host record exists).
  void set_host(const std::string& host_ref) { host_ = host_ref; }

  std::string create(const std::string& name, const std::string& session);
  // Runs fn on a worker; its value (or ApiError) completes the task.
  void run(const std::string& task, std::function<Value()> fn);
  void set_progress(const std::string& task, double p);
  void cancel(const std::string& task);
  // task.set_status, for tasks a client made (task.create): a task a worker
  // runs is refused, its status is the worker's to write.
  void set_status(const std::string& task, const std::string& status);
  // Work done outside the pool (an HTTP transfer) records itself on a
  // task: adopt() marks it as vmstackd's (its status is no longer the
  // client's to set; false when other work has it already), finish()
  // completes it: with `result` on success, otherwise with `error` (xapi's
  // error_info) as its failure.
  bool adopt(const std::string& task);
  void finish(const std::string& task, const Value* result, const std::vector<std::string>* error);
  // Waits for every queued and running task to finish (stopping daemon).
  void drain() { pool_.drain(); }

 private:

  model::Store& store_;
  std::mutex mu_;
  std::set<std::string> running_;  // tasks a worker owns until it finishes them
  std::string host_;
  WorkQueue pool_;  // last member: joined first, while the rest is still valid
};

// XenAPI task.result carries the value as an XML-RPC <value> fragment.
std::string task_result_xml(const Value& v);

void bind_tasks(Dispatcher& d, Tasks& tasks, model::Store& store);

}  // namespace vmstack::ops
