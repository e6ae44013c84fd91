#include "ops/tasks.h"

#include <ctime>

#include "core/error.h"
#include "ops/xapi.h"

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
DateTime now() { return DateTime{static_cast<int64_t>(std::time(nullptr))}; }
}  // namespace

std::string task_result_xml(const Value& v) {
  if (v.is_nil()) return "";
  return "<value>" + xml_escape(v.to_display()) + "</value>";
}

Tasks::Tasks(Xapi& x, unsigned threads) : x_(x), pool_(threads) {}

void Tasks::post(std::function<void()> fn) { pool_.post(std::move(fn)); }

std::string Tasks::create(const std::string& name, const std::string& session) {
  (void)session;
  return x_.db().create("task", {{"name_label", name},
                                 {"created", now()},
                                 {"resident_on", x_.host_ref()},
                                 {"status", "pending"},
                                 {"allowed_operations", Array{"cancel", "destroy"}}});
}

void Tasks::finish(const std::string& task, const Value* result, const std::vector<std::string>* error) {
  Struct changes{{"finished", now()}, {"progress", 1.0}, {"allowed_operations", Array{"destroy"}}};
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
    x_.db().update("task", task, changes);
  } catch (const ApiError&) {
    // The client destroyed the task while it ran: nothing left to record.
  }
}

void Tasks::run(const std::string& task, std::function<Value()> fn) {
  post([this, task, fn = std::move(fn)] {
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

void Tasks::set_progress(const std::string& task, double p) {
  try {
    x_.db().set_field("task", task, "progress", p);
  } catch (const ApiError&) {
  }
}

void Tasks::cancel(const std::string& task) {
  auto status = x_.db().get_field("task", task, "status").as_string();
  if (status != "pending") throw ApiError(errors::OPERATION_NOT_ALLOWED, {"task is not pending"});
  // Our verbs are not interruptible half-way; record the request as xapi does
  // and let the verb finish.
  x_.db().set_field("task", task, "status", "cancelling");
}

void register_task(MethodTable& t) {
  t.add("task.create", 2, [](CallCtx& x, const Array& a) {
    auto ref = x.xapi.tasks().create(a.at(0).as_string(), x.session);
    x.xapi.db().set_field("task", ref, "name_description", a.at(1));
    return Value(ref);
  });
  t.add("task.destroy", 1, [](CallCtx& x, const Array& a) {
    x.xapi.db().destroy("task", a.at(0).as_string());
    return Value();
  });
  t.add("task.cancel", 1, [](CallCtx& x, const Array& a) {
    x.xapi.tasks().cancel(a.at(0).as_string());
    return Value();
  });
}

}  // namespace vmstack::ops
