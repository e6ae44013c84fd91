// The lifecycle table: refusals with xapi's parameters, allowed_operations
// computed from the same rules.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/datamodel.h"
#include "model/lifecycle.h"

using namespace vmstack;
using namespace vmstack::model;

namespace {

Struct vm(const std::string& power, bool tmpl = false, Struct current = {}) {
  return {{"power_state", power}, {"is_a_template", tmpl}, {"is_default_template", false},
          {"current_operations", std::move(current)}};
}

std::vector<std::string> error(const Struct& rec, const std::string& op) {
  auto e = vm_operation_error("OpaqueRef:vm", rec, op);
  return e ? e->description() : std::vector<std::string>{};
}

bool allows(const Struct& rec, const std::string& op) {
  auto ops = vm_allowed_operations(rec);
  return std::find(ops.begin(), ops.end(), Value(op)) != ops.end();
}

}  // namespace

TEST(Lifecycle, RefusesWithXapisParameters) {
  EXPECT_TRUE(error(vm("Halted"), "start").empty());
  EXPECT_EQ(error(vm("Running"), "start"), (std::vector<std::string>{"VM_BAD_POWER_STATE", "OpaqueRef:vm", "halted", "running"}));
  // Every allowed state, in xapi's order.
  EXPECT_EQ(error(vm("Running"), "destroy"),
            (std::vector<std::string>{"VM_BAD_POWER_STATE", "OpaqueRef:vm", "halted, suspended", "running"}));
  EXPECT_EQ(error(vm("Halted"), "hard_shutdown"),
            (std::vector<std::string>{"VM_BAD_POWER_STATE", "OpaqueRef:vm", "paused, suspended, running", "halted"}));
  EXPECT_EQ(error(vm("Halted", true), "start"), (std::vector<std::string>{"VM_IS_TEMPLATE", "OpaqueRef:vm", "start"}));
  EXPECT_TRUE(error(vm("Halted", true), "clone").empty());
  EXPECT_EQ(error(vm("Halted", false, {{"OpaqueRef:task", "clone"}}), "start"),
            (std::vector<std::string>{"OTHER_OPERATION_IN_PROGRESS", "VM", "OpaqueRef:vm", "clone", "OpaqueRef:task"}));
}

TEST(Lifecycle, BuiltInTemplatesAreProtected) {
  auto t = vm("Halted", true);
  t["is_default_template"] = true;
  EXPECT_TRUE(error(t, "clone").empty());
  EXPECT_EQ(error(t, "destroy")[0], "VM_IS_TEMPLATE");
  EXPECT_EQ(error(t, "changing_VCPUs")[0], "VM_IS_TEMPLATE");
  auto mine = vm("Halted", true);
  EXPECT_TRUE(error(mine, "destroy").empty());
  EXPECT_TRUE(error(mine, "changing_VCPUs").empty());
}

TEST(Lifecycle, ConcurrencyFollowsXapi) {
  Struct copying{{"OpaqueRef:t1", "clone"}};
  EXPECT_TRUE(allowed_concurrently("copy", copying));   // the long copies run together
  EXPECT_FALSE(allowed_concurrently("start", copying));
  Struct stopping{{"OpaqueRef:t1", "clean_shutdown"}};
  EXPECT_TRUE(allowed_concurrently("hard_shutdown", stopping));  // the plug can always be pulled
  EXPECT_FALSE(allowed_concurrently("hard_shutdown", Struct{{"OpaqueRef:t1", "hard_shutdown"}}));
  EXPECT_TRUE(allowed_concurrently("hard_reboot", stopping));
  EXPECT_FALSE(allowed_concurrently("hard_reboot", Struct{{"OpaqueRef:t1", "hard_reboot"}}));
}

TEST(Lifecycle, AllowedOperationsComeFromTheSameTable) {
  auto halted = vm("Halted");
  EXPECT_TRUE(allows(halted, "start"));
  EXPECT_TRUE(allows(halted, "destroy"));
  EXPECT_TRUE(allows(halted, "changing_VCPUs"));
  EXPECT_FALSE(allows(halted, "pause"));
  EXPECT_FALSE(allows(halted, "start_on")) << "variants are not listed, as in xapi";
  auto running = vm("Running");
  EXPECT_TRUE(allows(running, "clean_shutdown"));
  EXPECT_TRUE(allows(running, "changing_dynamic_range"));
  EXPECT_FALSE(allows(running, "changing_VCPUs"));
  EXPECT_FALSE(allows(running, "start"));
  // While an operation runs only what may run beside it is allowed.
  auto busy = vm("Running", false, {{"OpaqueRef:t", "clean_shutdown"}});
  EXPECT_TRUE(allows(busy, "hard_shutdown"));
  EXPECT_FALSE(allows(busy, "pause"));
  // Every rule names a declared vm_operations value, and every lifecycle
  // message names a rule.
  const auto* e = datamodel().enumeration("vm_operations");
  ASSERT_NE(e, nullptr);
  for (const auto& r : vm_operation_rules())
    EXPECT_NE(std::find(e->values.begin(), e->values.end(), r.op), e->values.end()) << r.op;
  for (const auto& m : datamodel().cls("VM")->messages) {
    if (!m.operation.empty()) {
      EXPECT_NE(vm_operation_rule(m.operation), nullptr) << m.wire_name();
    }
  }
}
