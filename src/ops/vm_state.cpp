#include "ops/vm_state.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/uuid.h"

namespace vmstack::ops {

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

void set_allowed_operations(model::Database& db, const std::string& vm) {
  if (!db.exists("VM", vm)) return;
  auto rec = db.get_record("VM", vm);
  std::vector<std::string> ops;
  if (rec["is_a_template"].as_bool()) {
    ops = {"clone", "copy", "provision", "export"};
    if (!rec["is_default_template"].as_bool()) ops.push_back("destroy");
  } else {
    const auto& ps = rec["power_state"].as_string();
    if (ps == "Halted")
      ops = {"start", "clone", "copy", "provision", "destroy", "export", "changing_memory_limits", "changing_VCPUs",
             "make_into_template"};
    else if (ps == "Running")
      ops = {"clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot", "pause", "suspend",
             "changing_memory_limits"};
    else if (ps == "Paused")
      ops = {"unpause", "hard_shutdown", "hard_reboot"};
    else if (ps == "Suspended")
      ops = {"resume", "hard_shutdown"};
  }
  Array a;
  for (auto& o : ops) a.emplace_back(o);
  if (rec["allowed_operations"] != Value(a)) db.set_field("VM", vm, "allowed_operations", std::move(a));
}

void require_power_state(model::Database& db, const std::string& vm, const std::vector<std::string>& allowed,
                         bool no_templates) {
  auto rec = db.get_record("VM", vm);  // HANDLE_INVALID for unknown refs
  if (no_templates && rec["is_a_template"].as_bool()) throw ApiError(errors::VM_IS_TEMPLATE, {vm});
  const auto& ps = rec["power_state"].as_string();
  if (std::find(allowed.begin(), allowed.end(), ps) != allowed.end()) return;
  throw ApiError(errors::VM_BAD_POWER_STATE, {vm, lower(allowed.front()), lower(ps)});
}

OpLock::OpLock(model::Database& db, std::mutex& mu, const std::string& vm, const std::string& op,
               const std::string& task)
    : db_(db), mu_(mu), vm_(vm), key_(task.empty() ? "OpaqueRef:" + make_uuid() : task) {
  std::lock_guard lk(mu_);
  auto cur = db_.get_field("VM", vm_, "current_operations");
  if (!cur.as_struct().empty()) throw ApiError(errors::OTHER_OPERATION_IN_PROGRESS, {"VM", vm_});
  cur.as_struct()[key_] = op;
  db_.set_field("VM", vm_, "current_operations", std::move(cur));
}

OpLock::~OpLock() {
  std::lock_guard lk(mu_);
  try {
    auto cur = db_.get_field("VM", vm_, "current_operations");
    cur.as_struct().erase(key_);
    db_.set_field("VM", vm_, "current_operations", std::move(cur));
  } catch (const ApiError&) {
    // VM destroyed by the verb itself: nothing left to unlock.
  }
}

}  // namespace vmstack::ops
