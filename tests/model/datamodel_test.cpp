#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
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
      if (f.type.kind == Kind::Ref || (f.type.kind == Kind::Set && f.type.elem == Kind::Ref) ||
          (f.type.kind == Kind::Map && (f.type.elem == Kind::Ref || f.type.key == Kind::Ref))) {
        // A reference to one of xapi's classes vmstack lacks says so (it is
        // always null or empty here).
        if (!dm.cls(f.type.target)) {
          EXPECT_NE(f.doc.find("vmstack has no " + f.type.target + ")"), std::string::npos) << c.name << "." << f.name;
        }
      }
      if (f.type.kind == Kind::Enum || f.type.elem == Kind::Enum || f.type.key == Kind::Enum) {
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
  EXPECT_EQ(datamodel().cls("VM")->field("VBDs")->type.to_string(), "VBD ref set");
}

TEST(Datamodel, MessagesAreDeclaredWithTypedParameters) {
  const auto* start = datamodel().message("VM.start");
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->impl, Impl::custom);
  ASSERT_EQ(start->params.size(), 3u);
  EXPECT_EQ(start->params[0].name, "vm");
  EXPECT_EQ(start->params[0].type.to_string(), "VM ref");
  EXPECT_EQ(start->params[1].type.kind, Kind::Bool);
  EXPECT_FALSE(start->result.has_value());
  EXPECT_TRUE(start->session);
  EXPECT_TRUE(start->async);
  EXPECT_EQ(start->operation, "start");
  EXPECT_NE(std::find(start->errors.begin(), start->errors.end(), "VM_BAD_POWER_STATE"), start->errors.end());
  const auto* login = datamodel().message("session.login_with_password");
  ASSERT_NE(login, nullptr);
  EXPECT_FALSE(login->session);
  EXPECT_FALSE(login->async);
  EXPECT_EQ(login->required_params(), 2u);  // version and originator have defaults
  EXPECT_EQ(login->params.size(), 4u);
}

TEST(Datamodel, AccessorsAreGeneratedExceptWhereASetterIsDeclared) {
  const auto& dm = datamodel();
  // Generated from the fields.
  for (auto name : {"VM.get_record", "VM.get_all", "VM.get_all_records", "VM.get_by_uuid", "VM.get_by_name_label",
                    "VM.get_name_label", "VM.set_name_label", "VM.add_to_other_config", "VM.remove_from_other_config",
                    "VM.add_tags", "VM.remove_tags", "VM.get_VBDs"}) {
    const auto* m = dm.message(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_NE(m->impl, Impl::custom) << name;
    EXPECT_FALSE(m->async) << name << ": xapi has no Async form of accessors";
  }
  // A setter with checks is a declared message; no generic one exists beside it.
  for (auto name : {"VM.set_VCPUs_max", "VM.set_VCPUs_at_startup", "VM.set_memory_static_max", "VM.set_is_a_template"}) {
    const auto* m = dm.message(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->impl, Impl::custom) << name;
  }
  int setters = 0;
  for (const auto& m : dm.cls("VM")->messages) setters += m.name == "set_VCPUs_max";
  EXPECT_EQ(setters, 1);
  // No setters for read-only fields; nothing at all for event (no objects).
  EXPECT_EQ(dm.message("VM.set_power_state"), nullptr);
  EXPECT_EQ(dm.message("event.get_all"), nullptr);
  EXPECT_NE(dm.message("event.from"), nullptr);
}

TEST(Datamodel, EveryMessageParameterTypeResolves) {
  const auto& dm = datamodel();
  for (const auto& c : dm.classes)
    for (const auto& m : c.messages) {
      EXPECT_EQ(m.cls, c.name) << m.name;
      for (const auto& p : m.params) {
        if (p.type.kind == Kind::Ref || p.type.kind == Kind::Record || (p.type.kind == Kind::Set && p.type.elem == Kind::Ref)) {
          EXPECT_NE(dm.cls(p.type.target), nullptr) << m.wire_name() << " " << p.name;
        }
        if (p.type.kind == Kind::Enum) {
          EXPECT_NE(dm.enumeration(p.type.target), nullptr) << m.wire_name();
        }
      }
      if (!m.operation.empty()) {
        EXPECT_EQ(c.name, "VM") << m.wire_name();
        ASSERT_FALSE(m.params.empty());
        EXPECT_EQ(m.params[0].type.to_string(), "VM ref") << m.wire_name() << ": the lock is taken on the first parameter";
      }
    }
}

TEST(Datamodel, ParameterCoercionIsStricterThanFields) {
  const auto& dm = datamodel();
  EXPECT_EQ(dm.coerce(types::i64(), "n", Value("42")).as_int(), 42);  // XML-RPC int64 as a string
  EXPECT_EQ(dm.coerce(types::flt(), "t", Value(int64_t{3})).as_double(), 3.0);
  EXPECT_EQ(dm.coerce(types::en("vm_power_state"), "p", Value("halted")).as_string(), "Halted");
  auto err = [&](const Type& t, const Value& v) {
    try {
      dm.coerce(t, "param", v);
    } catch (const ApiError& e) {
      return e.description();
    }
    return std::vector<std::string>{};
  };
  EXPECT_EQ(err(types::boolean(), Value("true")), (std::vector<std::string>{"FIELD_TYPE_ERROR", "param"}));
  EXPECT_EQ(err(types::i64(), Value("four")), (std::vector<std::string>{"FIELD_TYPE_ERROR", "param"}));
  EXPECT_EQ(err(types::ref("VM"), Value(int64_t{1})), (std::vector<std::string>{"FIELD_TYPE_ERROR", "param"}));
  EXPECT_EQ(err(types::set_str(), Value("x")), (std::vector<std::string>{"FIELD_TYPE_ERROR", "param"}));
  EXPECT_EQ(err(types::map_ss(), Value(Array{})), (std::vector<std::string>{"FIELD_TYPE_ERROR", "param"}));
  EXPECT_EQ(err(types::en("vm_power_state"), Value("exploded")),
            (std::vector<std::string>{"INVALID_VALUE", "param", "exploded"}));
}

TEST(Datamodel, TextWithNulOrBrokenUtf8IsRefusedNotCut) {
  const auto& dm = datamodel();
  const auto* vm = dm.cls("VM");
  auto code = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e.description();
    }
    return std::vector<std::string>{};
  };
  EXPECT_EQ(code([&] { dm.coerce(*vm, *vm->field("name_label"), Value(std::string("a\0b", 3))); }),
            (std::vector<std::string>{"INVALID_VALUE", "VM.name_label", "a\\0b"}));
  EXPECT_EQ(code([&] { dm.coerce(types::str(), "label", Value(std::string("\xff\xfe"))); }),
            (std::vector<std::string>{"INVALID_VALUE", "label", "??"}));
  EXPECT_EQ(code([&] { dm.coerce(types::map_ss(), "m", Value(Struct{{std::string("k\0", 2), "v"}})); }).at(0),
            "INVALID_VALUE");
  Value big = Struct{{"ok", "fine"}, {"bad", std::string("\xc3")}};
  EXPECT_EQ(code([&] { dm.coerce_in_place(*vm, *vm->field("other_config"), big); }).at(0), "INVALID_VALUE");
  EXPECT_EQ(dm.coerce(types::str(), "label", Value("caf\xc3\xa9")).as_string(), "caf\xc3\xa9");
}
