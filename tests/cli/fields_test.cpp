// xe's parameter tables and command table must follow the datamodel: these
// tests walk the datamodel instead of listing fields, so adding a field to
// the model is automatically covered.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cli/commands.h"
#include "cli/fields.h"
#include "cli/xe_errors.h"

using namespace vmstack;
using namespace vmstack::cli;

TEST(Fields, EveryDatamodelFieldAppearsInOrderWithItsQualifier) {
  for (const auto& c : model::datamodel().classes) {
    if (c.cli_prefix.empty()) continue;
    auto fields = cli_fields(c);
    size_t pos = 0;
    for (const auto& f : c.fields) {
      // Find the first CliField for this datamodel field at or after pos.
      while (pos < fields.size() && fields[pos].field != &f) ++pos;
      ASSERT_LT(pos, fields.size()) << c.name << "." << f.name << " missing or out of order";
      const auto& cf = fields[pos];
      bool rw = f.qual == model::Qual::RW;
      std::string want;
      if (f.is_map()) want = rw ? "(MRW)" : "(MRO)";
      else if (f.is_set()) want = rw ? "(SRW)" : "(SRO)";
      else if (cf.via == CliField::Via::Direct) want = rw ? "( RW)" : "( RO)";
      else want = "( RO)";
      EXPECT_EQ(cf.qualifier(), want) << c.name << "." << f.name;
      if (cf.via == CliField::Via::Direct) {
        EXPECT_EQ(cf.name, model::cli_name(f.name));
      }
    }
  }
}

TEST(Fields, ReferencesNamedAfterTheirClassBecomeUuidAndNameLabel) {
  const auto& dm = model::datamodel();
  auto vbd = cli_fields(*dm.cls("VBD"));
  const CliField* vm_uuid = find_field(vbd, "vm-uuid");
  ASSERT_NE(vm_uuid, nullptr);
  EXPECT_EQ(vm_uuid->via, CliField::Via::RefUuid);
  EXPECT_EQ(vm_uuid->target, dm.cls("VM"));
  ASSERT_NE(find_field(vbd, "vm-name-label"), nullptr);
  EXPECT_EQ(find_field(vbd, "VM"), vm_uuid);  // the API spelling finds it too
  // A reference with its own name keeps it (VM.resident_on -> resident-on).
  auto vm = cli_fields(*dm.cls("VM"));
  const CliField* res = find_field(vm, "resident-on");
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->via, CliField::Via::Direct);
  EXPECT_EQ(find_field(vm, "name_label"), find_field(vm, "name-label"));
  EXPECT_EQ(find_field(vm, "no-such-field"), nullptr);
  // PBD.host has no name-label column target issue: host has a name.
  auto pbd = cli_fields(*dm.cls("PBD"));
  EXPECT_NE(find_field(pbd, "host-uuid"), nullptr);
  EXPECT_NE(find_field(pbd, "sr-uuid"), nullptr);
}

TEST(Fields, PrefixLookup) {
  const auto& dm = model::datamodel();
  EXPECT_EQ(class_for_prefix("vm"), dm.cls("VM"));
  EXPECT_EQ(class_for_prefix("sr"), dm.cls("SR"));
  EXPECT_EQ(class_for_prefix("nope"), nullptr);
}

TEST(CommandTable, GeneratedCommandsFollowTheDatamodel) {
  const auto& table = command_table();
  for (const auto& c : model::datamodel().classes) {
    if (c.cli_prefix.empty() || !c.stored || !c.field("uuid")) continue;
    const std::string p = c.cli_prefix;
    if (!c.get_all) {  // nothing to list them with (session, as in xapi): no commands
      EXPECT_EQ(table.find(p + "-list"), nullptr) << p;
      continue;
    }
    ASSERT_NE(table.find(p + "-list"), nullptr) << p;
    ASSERT_NE(table.find(p + "-param-list"), nullptr) << p;
    ASSERT_NE(table.find(p + "-param-get"), nullptr) << p;
    std::set<std::string> settable;
    bool has_collection = false;
    for (const auto& f : cli_fields(c)) {
      if (!f.writable()) continue;
      if (f.is_map()) settable.insert(f.name + ":");
      else if (!f.is_set()) settable.insert(f.name);
      if (f.is_map() || f.is_set()) has_collection = true;
    }
    const Command* set = table.find(p + "-param-set");
    if (settable.empty()) {
      EXPECT_EQ(set, nullptr) << p;
    } else {
      ASSERT_NE(set, nullptr) << p;
      EXPECT_EQ(std::set<std::string>(set->optn.begin(), set->optn.end()), settable) << p;
      EXPECT_EQ(set->reqd, std::vector<std::string>{"uuid"});
    }
    EXPECT_EQ(table.find(p + "-param-add") != nullptr, has_collection) << p;
  }
  // VM views: templates and snapshots get their own commands.
  EXPECT_NE(table.find("template-list"), nullptr);
  EXPECT_NE(table.find("template-param-set"), nullptr);
  EXPECT_NE(table.find("snapshot-list"), nullptr);
  // event has no objects: no event-list.
  EXPECT_EQ(table.find("event-list"), nullptr);
  for (const char* verb : {"vm-start", "vm-shutdown", "vm-reboot", "vm-suspend", "vm-resume", "vm-pause",
                           "vm-unpause", "vm-destroy", "vm-uninstall", "vm-install", "vm-clone", "vm-copy",
                           "vm-memory-limits-set", "vm-disk-list", "console", "event-wait", "help"})
    EXPECT_NE(table.find(verb), nullptr) << verb;
}

TEST(CommandTable, ParseSize) {
  EXPECT_EQ(parse_size("x", "268435456"), 268435456);
  EXPECT_EQ(parse_size("x", "256MiB"), 256LL << 20);
  EXPECT_EQ(parse_size("x", "1GiB"), 1LL << 30);
  EXPECT_EQ(parse_size("x", "4 KiB"), 4096);
  EXPECT_EQ(parse_size("x", "2TiB"), 2LL << 40);
  EXPECT_THROW(parse_size("x", "12XB"), CliError);
  EXPECT_THROW(parse_size("x", "MiB"), CliError);
  EXPECT_THROW(parse_size("x", "-5"), CliError);
  EXPECT_THROW(parse_size("x", "99999999999TiB"), CliError);
}
