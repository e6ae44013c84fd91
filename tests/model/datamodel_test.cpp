#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "model/datamodel.h"

using namespace vmstack;
using namespace vmstack::model;

TEST(Datamodel, DeclaresTheIssueClasses) {
  for (auto c : {"session", "pool", "host", "VM", "VBD", "VDI", "SR", "network", "VIF", "console", "task", "event"})
    EXPECT_NE(datamodel().cls(c), nullptr) << c;
  EXPECT_EQ(datamodel().cls_ci("vm"), datamodel().cls("VM"));
}

TEST(Datamodel, EveryRefAndInverseTargetExists) {
  const auto& dm = datamodel();
  for (const auto& c : dm.classes) {
    std::set<std::string> names;
    for (const auto& f : c.fields) {
      EXPECT_TRUE(names.insert(f.name).second) << c.name << "." << f.name << " declared twice";
      if (f.type.kind == Kind::Ref || (f.type.kind == Kind::Set && f.type.elem == Kind::Ref)) {
        EXPECT_NE(dm.cls(f.type.target), nullptr) << c.name << "." << f.name;
      }
      if (f.type.kind == Kind::Enum || f.type.elem == Kind::Enum) {
        EXPECT_NE(dm.enumeration(f.type.target), nullptr) << c.name << "." << f.name;
      }
      if (f.derived()) {
        const auto* other = dm.cls(f.type.target);
        ASSERT_NE(other, nullptr);
        const auto* back = other->field(f.inverse_of);
        ASSERT_NE(back, nullptr) << c.name << "." << f.name;
        EXPECT_EQ(back->type.target, c.name);
      }
    }
  }
}

TEST(Datamodel, CoerceChecksTypesAndEnums) {
  const auto& dm = datamodel();
  const auto* vm = dm.cls("VM");
  EXPECT_EQ(dm.coerce(*vm, *vm->field("VCPUs_max"), Value("4")).as_int(), 4);
  EXPECT_EQ(dm.coerce(*vm, *vm->field("power_state"), Value("running")).as_string(), "Running");
  EXPECT_THROW(dm.coerce(*vm, *vm->field("power_state"), Value("exploded")), ApiError);
  EXPECT_THROW(dm.coerce(*vm, *vm->field("VCPUs_max"), Value("four")), ApiError);
  EXPECT_THROW(dm.coerce(*vm, *vm->field("resident_on"), Value("not-a-ref")), ApiError);
  auto m = dm.coerce(*vm, *vm->field("other_config"), Value(Struct{{"a", "b"}}));
  EXPECT_EQ(m["a"].as_string(), "b");
}

TEST(Datamodel, CliNames) {
  EXPECT_EQ(cli_name("name_label"), "name-label");
  EXPECT_EQ(cli_name("PV_kernel"), "PV-kernel");
  EXPECT_EQ(api_name_from_cli("memory-static-max"), "memory_static_max");
  EXPECT_EQ(datamodel().cls("VM")->field("VBDs")->type.to_string(), "(VBD ref) Set");
}
