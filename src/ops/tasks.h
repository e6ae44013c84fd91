// Tasks: Async.* calls and other long work run on a small worker pool, each
// recorded as a task object (status, progress, result, error_info) that
// clients poll or watch with event.from.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/value.h"
#include "ops/work_queue.h"

namespace vmstack::ops {

class Xapi;

class Tasks {
 public:
  Tasks(Xapi& x, unsigned threads);
  Tasks(const Tasks&) = delete;
  Tasks& operator=(const Tasks&) = delete;

  std::string create(const std::string& name, const std::string& session);
  // Runs fn on a worker; its value (or ApiError) completes the task.
  void run(const std::string& task, std::function<Value()> fn);
  // Background work that is not a task (reacting to guest events).
  void post(std::function<void()> fn);
  void set_progress(const std::string& task, double p);
  void cancel(const std::string& task);

 private:
  void finish(const std::string& task, const Value* result, const std::vector<std::string>* error);

  Xapi& x_;
  WorkQueue pool_;  // last member: joined first, while x_ is still valid
};

// XenAPI task.result carries the value as an XML-RPC <value> fragment.
std::string task_result_xml(const Value& v);

}  // namespace vmstack::ops
