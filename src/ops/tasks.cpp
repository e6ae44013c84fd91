#include "ops/tasks.h"

#include <ctime>

#include "core/error.h"
#include "core/uuid.h"
#include "ops/dispatch.h"

namespace vmstack::ops {

namespace {
std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}
}  // namespace

std::string task_result_xml(const Value& v) {
  if (v.is_nil()) return "";
  return "<value>" + xml_escape(v.to_display()) + "</value>";
}

Tasks::Tasks(model::Store& store, unsigned threads) : store_(store), pool_(threads) {}

std::string Tasks::create(const std::string& name, const std::string& session) {
  (void)session;
  return store_.create("task", {{"name_label", name},
                                {"created", DateTime::now()},
                                {"resident_on", host_.empty() ? std::string(kNullRef) : host_},
                                {"status", "pending"},
                                {"allowed_operations", Array{"cancel", "destroy"}}});
}

void Tasks::finish(const std::string& task, const Value* result, const std::vector<std::string>* error) {
  Struct changes{{"finished", DateTime::now()}, {"progress", 1.0}, {"allowed_operations", Array{"destroy"}}};
  if (result) {
    changes["status"] = "success";
    changes["result"] = task_result_xml(*result);
  } else {
    changes["status"] = "failure";
    Array info;
    for (const auto& e : *error) info.emplace_back(e);
    changes["error_info"] = std::move(info);
  }
  try {
    store_.update("task", task, changes);
  } catch (const ApiError&) {
    // The client destroyed the task while it ran: nothing left to record.
  }
  std::lock_guard lk(mu_);
  running_.erase(task);
}

bool Tasks::adopt(const std::string& task) {
  std::lock_guard lk(mu_);
  return running_.insert(task).second;
}

void Tasks::run(const std::string& task, std::function<Value()> fn) {
  {
    std::lock_guard lk(mu_);
    running_.insert(task);
  }
  pool_.post([this, task, fn = std::move(fn)] {
    try {
      Value v = fn();
      finish(task, &v, nullptr);
    } catch (const ApiError& e) {
      finish(task, nullptr, &e.description());
    } catch (const std::exception& e) {
      std::vector<std::string> d{errors::INTERNAL_ERROR, e.what()};
      finish(task, nullptr, &d);
    }
  });
}

void Tasks::set_status(const std::string& task, const std::string& status) {
  std::lock_guard lk(mu_);
  if (running_.count(task)) throw ApiError(errors::OPERATION_NOT_ALLOWED, {"the task is run by vmstackd, which sets its status"});
  store_.set_field("task", task, "status", status);
}

void Tasks::set_progress(const std::string& task, double p) {
  try {
    store_.set_field("task", task, "progress", p);
  } catch (const ApiError&) {
  }
}

void Tasks::cancel(const std::string& task) {
  auto status = store_.get_field("task", task, "status").as_string();
  if (status != "pending") throw ApiError(errors::OPERATION_NOT_ALLOWED, {"task is not pending"});
  // Our verbs are not interruptible half-way; record the request as xapi does
  // and let the verb finish.
  store_.set_field("task", task, "status", "cancelling");
}

void bind_tasks(Dispatcher& d, Tasks& tasks, model::Store& store) {
  d.bind("task.create", [&tasks, &store](const Call& c, const Args& a) {
    auto ref = tasks.create(a.str("label"), c.session);
    store.set_field("task", ref, "name_description", a.str("description"));
    return Value(ref);
  });
  d.bind("task.destroy", [&store](const Call&, const Args& a) {
    store.destroy("task", a.ref("self"));
    return Value();
  });
  d.bind("task.cancel", [&tasks](const Call&, const Args& a) {
    tasks.cancel(a.ref("task"));
    return Value();
  });
  d.bind("task.set_status", [&tasks](const Call&, const Args& a) {
    tasks.set_status(a.ref("self"), a.str("value"));
    return Value();
  });
}

}  // namespace vmstack::ops
