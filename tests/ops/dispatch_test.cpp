// The dispatcher as clients meet it: typed argument unpacking from the
// datamodel's declarations (errors with xapi's parameters), aliases, the
// generated accessors, atomic map updates, and setters with checks. Runs on
// the fake hypervisor: no guest boots.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "daemon_fixture.h"
#include "model/sqlite_store.h"
#include "ops/dispatch.h"
#include "ops/tasks.h"

namespace vmstack::test {
namespace {

using Strings = std::vector<std::string>;

class DispatchTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 30, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string new_vm(const std::string& name) {
    auto tmpl = call(*c, "VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().at(0);
    auto vm = call(*c, "VM.clone", {s, tmpl, name}).as_string();
    call(*c, "VM.set_is_a_template", {s, vm, false});
    return vm;
  }
};

TEST_F(DispatchTest, ParameterCountsAsXapiCountsThem) {
  auto vm = new_vm("count");
  EXPECT_EQ(failure(*c, "VM.start", {s, vm}), (Strings{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "1"}));
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false, true}),
            (Strings{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "4"}));
  EXPECT_EQ(failure(*c, "VM.get_record", {s}), (Strings{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"}));
  // Trailing parameters added after a message's first release may be left out.
  EXPECT_TRUE(call(*c, "session.login_with_password", {"root", ""}).is_string());
  EXPECT_TRUE(call(*c, "session.login_with_password", {"root", "", "2.21"}).is_string());
  EXPECT_EQ(failure(*c, "session.login_with_password", {"root"}),
            (Strings{"MESSAGE_PARAMETER_COUNT_MISMATCH", "session.login_with_password", "2", "1"}));
}

TEST_F(DispatchTest, WrongTypesAreFieldTypeErrorsNamingTheParameter) {
  auto vm = new_vm("types");
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, "true", false}), (Strings{"FIELD_TYPE_ERROR", "start_paused"}));
  EXPECT_EQ(failure(*c, "VM.start", {s, true, false, false}), (Strings{"FIELD_TYPE_ERROR", "vm"}));
  EXPECT_EQ(failure(*c, "VM.start", {s, Struct{}, false, false}), (Strings{"FIELD_TYPE_ERROR", "vm"}));
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_max", {s, vm, "many"}), (Strings{"FIELD_TYPE_ERROR", "value"}));
  EXPECT_EQ(failure(*c, "VM.add_to_other_config", {s, vm, "k", Array{}}), (Strings{"FIELD_TYPE_ERROR", "value"}));
  EXPECT_EQ(failure(*c, "event.from", {s, "vm", "", 1.0}), (Strings{"FIELD_TYPE_ERROR", "classes"}));
  EXPECT_EQ(failure(*c, "VM.set_actions_after_crash", {s, vm, "explode"}),
            (Strings{"INVALID_VALUE", "value", "explode"}));
  // XML-RPC clients send int64 as strings: accepted for ints.
  call(*c, "VM.set_user_version", {s, vm, "7"});
  EXPECT_EQ(call(*c, "VM.get_user_version", {s, vm}).as_int(), 7);
  EXPECT_EQ(failure(*c, "VM.get_record", {s, "OpaqueRef:nope"}), (Strings{"HANDLE_INVALID", "VM", "OpaqueRef:nope"}));
}

TEST_F(DispatchTest, AliasesAsyncAndTheMethodList) {
  auto all = call(*c, "VM_get_all", {s}).as_array();  // xapi's Class_message spelling
  EXPECT_EQ(all, call(*c, "VM.get_all", {s}).as_array());
  EXPECT_FALSE(call(*c, "event_get_current_id", {s}).is_nil());
  EXPECT_EQ(failure(*c, "Async.VM.get_record", {s, all.at(0)}),
            (Strings{"MESSAGE_METHOD_UNKNOWN", "Async.VM.get_record"}))
      << "xapi has no Async form of the accessors";
  EXPECT_EQ(failure(*c, "Async.session.login_with_password", {"root", ""}),
            (Strings{"MESSAGE_METHOD_UNKNOWN", "Async.session.login_with_password"}));
  auto methods = call(*c, "system.listMethods", {}).as_array();
  auto has = [&](const char* m) { return std::find(methods.begin(), methods.end(), Value(m)) != methods.end(); };
  EXPECT_TRUE(has("VM.start"));
  EXPECT_TRUE(has("Async.VM.start"));
  EXPECT_TRUE(has("VM.get_power_state"));
  EXPECT_FALSE(has("Async.VM.get_power_state"));
  EXPECT_FALSE(has("VM.set_power_state")) << "read-only fields have no setter";
  EXPECT_TRUE(has("event.inject"));
  EXPECT_FALSE(has("session.get_all_records")) << "xapi lists no sessions (Xen Orchestra reads every get_all_records class)";
}

// Xen Orchestra's client starts its event loop from event.inject's token.
TEST_F(DispatchTest, EventInjectGivesATokenWhoseNextEventFromHasTheMod) {
  auto pool = call(*c, "pool.get_all", {s}).as_array().at(0).as_string();
  auto token = call(*c, "event.inject", {s, "pool", pool}).as_string();
  auto batch = call(*c, "event.from", {s, Array{"pool", "vm"}, token, 0.0}).as_struct();
  bool saw = false;
  for (const auto& e : batch.at("events").as_array()) {
    const auto& ev = e.as_struct();
    if (ev.at("ref").as_string() == pool && ev.at("operation").as_string() == "mod") saw = true;
  }
  EXPECT_TRUE(saw) << "the injected mod";
  // Nothing new after the batch's token: the inject itself is not repeated.
  auto after = call(*c, "event.from", {s, Array{"pool"}, batch.at("token"), 0.0}).as_struct();
  EXPECT_TRUE(after.at("events").as_array().empty());
  // A VM made after the token shows as an add.
  auto vm = new_vm("after-inject");
  batch = call(*c, "event.from", {s, Array{"vm"}, token, 0.0}).as_struct();
  saw = false;
  for (const auto& e : batch.at("events").as_array())
    if (e.as_struct().at("ref").as_string() == vm && e.as_struct().at("operation").as_string() == "add") saw = true;
  EXPECT_TRUE(saw);
  // Class names are case-insensitive (as event.from's); a wrong pair is HANDLE_INVALID.
  EXPECT_FALSE(call(*c, "event.inject", {s, "VM", vm}).as_string().empty());
  EXPECT_EQ(failure(*c, "event.inject", {s, "SR", vm}), (Strings{"HANDLE_INVALID", "SR", vm}));
  EXPECT_EQ(failure(*c, "event.inject", {s, "nonsense", vm}), (Strings{"HANDLE_INVALID", "nonsense", vm}));
  EXPECT_EQ(failure(*c, "event.inject", {s, "event", vm}), (Strings{"HANDLE_INVALID", "event", vm}));
}

TEST_F(DispatchTest, EightWritersLoseNoMapUpdate) {
  // 8 clients x 500 add_to_other_config on one VM: every key lands.
  auto vm = new_vm("contended");
  auto before = call(*c, "VM.get_other_config", {s, vm}).as_struct().size();
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      auto cl = d.client();
      for (int i = 0; i < 500; ++i)
        if (!failure(*cl, "VM.add_to_other_config", {s, vm, "k" + std::to_string(t) + "." + std::to_string(i), "v"}).empty())
          ++failed;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed, 0);
  auto oc = call(*c, "VM.get_other_config", {s, vm}).as_struct();
  EXPECT_EQ(oc.size(), before + 4000u);
  EXPECT_EQ(failure(*c, "VM.add_to_other_config", {s, vm, "k0.0", "again"}),
            (Strings{"MAP_DUPLICATE_KEY", "VM", "other_config", vm, "k0.0"}));
}

TEST_F(DispatchTest, SettersWithChecksAreDeclaredMessages) {
  auto vm = new_vm("vcpus");
  call(*c, "VM.set_VCPUs_max", {s, vm, int64_t{4}});
  call(*c, "VM.set_VCPUs_at_startup", {s, vm, int64_t{2}});
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_at_startup", {s, vm, int64_t{0}}), (Strings{"INVALID_VALUE", "VCPUs_at_startup", "0"}));
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_at_startup", {s, vm, int64_t{5}}), (Strings{"INVALID_VALUE", "VCPUs_at_startup", "5"}));
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_max", {s, vm, int64_t{1}}), (Strings{"INVALID_VALUE", "VCPUs_max", "1"}))
      << "below VCPUs_at_startup";
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_max", {s, vm, int64_t{8}}), (Strings{"VM_BAD_POWER_STATE", vm, "halted", "running"}));
  EXPECT_EQ(call(*c, "VM.get_VCPUs_max", {s, vm}).as_int(), 4);
  // A template's rules come from the same table.
  auto tmpl = call(*c, "VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().at(0).as_string();
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_max", {s, tmpl, int64_t{2}}), (Strings{"VM_IS_TEMPLATE", tmpl, "changing_VCPUs"}));
  EXPECT_EQ(failure(*c, "VM.set_is_a_template", {s, tmpl, false})[0], "OPERATION_NOT_ALLOWED");
  EXPECT_EQ(failure(*c, "VM.set_is_a_template", {s, vm, true}), (Strings{"VM_BAD_POWER_STATE", vm, "halted", "running"}));
}

TEST_F(DispatchTest, ProvisionMakesATemplateAVmAndCopyFallsBackToTheDisksSrs) {
  auto tmpl = call(*c, "VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().at(0);
  auto vm = call(*c, "VM.clone", {s, tmpl, "provisioned"}).as_string();
  EXPECT_TRUE(call(*c, "VM.get_is_a_template", {s, vm}).as_bool());
  call(*c, "VM.provision", {s, vm});
  EXPECT_FALSE(call(*c, "VM.get_is_a_template", {s, vm}).as_bool()) << "as xapi: ready to start";
  call(*c, "VM.start", {s, vm, false, false});
  call(*c, "VM.hard_shutdown", {s, vm});
  // VM.copy with a null SR copies each disk into its own SR.
  auto copy = call(*c, "VM.copy", {s, vm, "copied", "OpaqueRef:NULL"}).as_string();
  auto disk = [&](const std::string& v) {
    return call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, v}).as_array().at(0)}).as_string();
  };
  EXPECT_NE(disk(copy), disk(vm));
  EXPECT_EQ(call(*c, "VDI.get_SR", {s, disk(copy)}).as_string(), call(*c, "VDI.get_SR", {s, disk(vm)}).as_string());
}

TEST(Dispatcher, EveryDeclaredMessageNeedsAHandler) {
  model::SqliteStore store(":memory:");
  ops::Tasks tasks(store, 1);
  ops::Dispatcher dispatcher(model::datamodel(), store, tasks, [](const std::string&) {});
  auto missing = dispatcher.unbound();
  EXPECT_NE(std::find(missing.begin(), missing.end(), "VM.start"), missing.end());
  EXPECT_EQ(std::find(missing.begin(), missing.end(), "VM.get_record"), missing.end()) << "accessors are generated";
  EXPECT_THROW(dispatcher.bind("VM.no_such_message", {}), std::logic_error);
  EXPECT_THROW(dispatcher.bind("VM.get_record", {}), std::logic_error);
  dispatcher.bind("VM.start", [](const ops::Call&, const ops::Args&) { return Value(); });
  EXPECT_THROW(dispatcher.bind("VM.start", {}), std::logic_error);
  // Unbound declared messages answer a specific error, never crash.
  api::RpcCall rpc;
  rpc.method = "VM.pause";
  rpc.params = {"OpaqueRef:s", "OpaqueRef:vm"};
  try {
    dispatcher.dispatch(rpc);
    ADD_FAILURE() << "an unbound message answered";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.description(), (Strings{"NOT_IMPLEMENTED", "VM.pause"}));
  }
  // The daemon itself refuses to start with an unbound message: it binds all.
  TempDir dir;
  EXPECT_NO_THROW(TestDaemon(dir.path(), 30, Backend::fake));
}

}  // namespace
}  // namespace vmstack::test
