// The daemon's API contract without booting guests: authentication, error
// codes with their parameters, the datamodel-derived accessors, persistence
// across a restart, tasks and events.
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "daemon_fixture.h"
#include "ops/sessions.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;

class ApiTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path()};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string template_ref(const std::string& name) {
    auto refs = call(*c, "VM.get_by_name_label", {s, name}).as_array();
    EXPECT_EQ(refs.size(), 1u) << name;
    return refs.empty() ? "" : refs[0].as_string();
  }
};

TEST_F(ApiTest, CallsWithoutAValidSessionAreRefused) {
  EXPECT_EQ(failure(*c, "VM.get_all", {}), (std::vector<std::string>{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_all", "0", "-1"}))
      << "xapi counts both without the session";
  EXPECT_EQ(failure(*c, "VM.get_all", {s, "extra"}), (std::vector<std::string>{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_all", "0", "1"}));
  EXPECT_EQ(failure(*c, "VM.get_all", {"OpaqueRef:forged"}), (std::vector<std::string>{"SESSION_INVALID", "OpaqueRef:forged"}));
  call(*c, "session.logout", {s});
  EXPECT_EQ(failure(*c, "VM.get_all", {s}), (std::vector<std::string>{"SESSION_INVALID", s}));
}

TEST_F(ApiTest, WrongPasswordOrUnknownUserIsRefused) {
  d.daemon().sessions().set_password("root", "s3cret");
  auto e = failure(*c, "session.login_with_password", {"root", "wrong", "1.0", "t"});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "SESSION_AUTHENTICATION_FAILED");
  EXPECT_EQ(e.at(1), "root");
  e = failure(*c, "session.login_with_password", {"nobody", "s3cret"});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "SESSION_AUTHENTICATION_FAILED");
  // The right password works, and a session from it is usable.
  auto s2 = call(*c, "session.login_with_password", {"root", "s3cret", "1.0", "t"}).as_string();
  EXPECT_FALSE(call(*c, "VM.get_all", {s2}).as_array().empty());
}

TEST_F(ApiTest, ErrorsCarryXenApiCodesAndParameters) {
  auto tmpl = template_ref("Demo Linux (direct kernel boot)");
  EXPECT_EQ(failure(*c, "VM.get_record", {s, "OpaqueRef:nope"}), (std::vector<std::string>{"HANDLE_INVALID", "VM", "OpaqueRef:nope"}));
  EXPECT_EQ(failure(*c, "VM.no_such_call", {s}), (std::vector<std::string>{"MESSAGE_METHOD_UNKNOWN", "VM.no_such_call"}));
  EXPECT_EQ(failure(*c, "VM.start", {s, tmpl, false, false}), (std::vector<std::string>{"VM_IS_TEMPLATE", tmpl, "start"}));
  auto vm = call(*c, "VM.clone", {s, tmpl, "halted-one"}).as_string();
  call(*c, "VM.set_is_a_template", {s, vm, false});
  EXPECT_EQ(failure(*c, "VM.clean_shutdown", {s, vm}), (std::vector<std::string>{"VM_BAD_POWER_STATE", vm, "running", "halted"}));
  EXPECT_EQ(failure(*c, "VM.unpause", {s, vm}), (std::vector<std::string>{"VM_BAD_POWER_STATE", vm, "paused", "halted"}));
  auto before = call(*c, "VM.get_record", {s, vm});
  auto e = failure(*c, "VM.set_memory_limits", {s, vm, int64_t{1} << 30, int64_t{256} << 20, int64_t{256} << 20, int64_t{256} << 20});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "MEMORY_CONSTRAINT_VIOLATION");
  EXPECT_EQ(call(*c, "VM.get_record", {s, vm}), before) << "a refused call must change nothing";
  EXPECT_EQ(failure(*c, "VM.destroy", {s, tmpl}), (std::vector<std::string>{"VM_IS_TEMPLATE", tmpl, "destroy"}))
      << "built-in templates stay";
  EXPECT_EQ(failure(*c, "VM.set_VCPUs_max", {s, vm, "lots"}), (std::vector<std::string>{"FIELD_TYPE_ERROR", "value"}));
}

TEST_F(ApiTest, DerivedAccessorsAndPersistenceAcrossRestart) {
  auto tmpl = template_ref("Demo Linux (direct kernel boot)");
  auto vm = call(*c, "VM.clone", {s, tmpl, "web"}).as_string();
  call(*c, "VM.provision", {s, vm});
  call(*c, "VM.set_is_a_template", {s, vm, false});
  auto uuid = call(*c, "VM.get_uuid", {s, vm}).as_string();
  EXPECT_EQ(call(*c, "VM.get_by_uuid", {s, uuid}).as_string(), vm);
  call(*c, "VM.set_name_description", {s, vm, "front end"});
  call(*c, "VM.add_to_other_config", {s, vm, "owner", "ops"});
  auto dup = failure(*c, "VM.add_to_other_config", {s, vm, "owner", "dev"});
  ASSERT_FALSE(dup.empty());
  EXPECT_EQ(dup[0], "MAP_DUPLICATE_KEY");
  call(*c, "VM.set_memory_limits", {s, vm, int64_t{64} << 20, int64_t{512} << 20, int64_t{128} << 20, int64_t{384} << 20});
  // Provisioning made a real disk in the default SR.
  auto vbds = call(*c, "VM.get_VBDs", {s, vm}).as_array();
  ASSERT_EQ(vbds.size(), 1u);
  auto vdi = call(*c, "VBD.get_VDI", {s, vbds[0]}).as_string();
  // The location is the file SR's name for the image, in the SR's directory.
  auto sr = call(*c, "VDI.get_SR", {s, vdi}).as_string();
  auto pbd = call(*c, "SR.get_PBDs", {s, sr}).as_array().at(0);
  auto dir = call(*c, "PBD.get_device_config", {s, pbd})["location"].as_string();
  auto path = dir + "/" + call(*c, "VDI.get_location", {s, vdi}).as_string();
  EXPECT_TRUE(std::filesystem::exists(path)) << path;
  EXPECT_EQ(call(*c, "VDI.get_virtual_size", {s, vdi}).as_int(), int64_t{1} << 30);

  c.reset();
  d.restart();
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(call(*c, "VM.get_by_uuid", {s, uuid}).as_string(), vm);
  auto rec = call(*c, "VM.get_record", {s, vm});
  EXPECT_EQ(rec["name_label"].as_string(), "web");
  EXPECT_EQ(rec["name_description"].as_string(), "front end");
  EXPECT_EQ(rec["other_config"]["owner"].as_string(), "ops");
  EXPECT_EQ(rec["memory_dynamic_max"].as_int(), int64_t{384} << 20);
  EXPECT_EQ(rec["VBDs"].as_array().size(), 1u);
  // Built-in templates are not duplicated by a restart.
  EXPECT_EQ(call(*c, "VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().size(), 1u);
  // Host facts: the accelerator is visible to clients.
  auto host = call(*c, "host.get_all", {s}).as_array().at(0).as_string();
  EXPECT_EQ(call(*c, "host.get_cpu_info", {s, host})["accelerator"].as_string(), "tcg");
  EXPECT_EQ(call(*c, "host.get_software_version", {s, host})["accelerator"].as_string(), "tcg");
}

TEST_F(ApiTest, AsyncCallsRunAsTasksAndEventsReportChanges) {
  auto tmpl = template_ref("Other install media");
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.1})["token"];
  auto task = call(*c, "Async.VM.clone", {s, tmpl, "async-clone"}).as_string();
  std::string status;
  for (int i = 0; i < 200 && (status = call(*c, "task.get_status", {s, task}).as_string()) == "pending"; ++i)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(status, "success") << call(*c, "task.get_error_info", {s, task}).to_display();
  auto result = call(*c, "task.get_result", {s, task}).as_string();
  EXPECT_NE(result.find("OpaqueRef:"), std::string::npos) << result;
  // The new VM shows up as an "add" event after the token.
  auto ev = call(*c, "event.from", {s, Array{"vm"}, token, 5.0});
  bool seen = false;
  for (const auto& e : ev["events"].as_array())
    if (e["operation"].as_string() == "add" && e["snapshot"]["name_label"].as_string() == "async-clone") seen = true;
  EXPECT_TRUE(seen) << ev.to_display();
  // A failing async call fails its task with the error, not the call.
  auto bad = call(*c, "Async.VM.start", {s, tmpl, false, false}).as_string();
  for (int i = 0; i < 200 && call(*c, "task.get_status", {s, bad}).as_string() == "pending"; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(call(*c, "task.get_status", {s, bad}).as_string(), "failure");
  EXPECT_EQ(call(*c, "task.get_error_info", {s, bad}).as_array().at(0).as_string(), "VM_IS_TEMPLATE");
}

TEST_F(ApiTest, StoppingDoesNotWaitOutEventFromLongPolls) {
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.1})["token"];
  auto poller_client = d.client();
  std::chrono::steady_clock::duration polled{};
  std::thread poller([&] {
    auto start = std::chrono::steady_clock::now();
    try {
      call(*poller_client, "event.from", {s, Array{"vm"}, token, 50.0});
    } catch (const std::exception&) {
      // The answer or a closed connection: either way the poll is over.
    }
    polled = std::chrono::steady_clock::now() - start;
  });
  std::this_thread::sleep_for(300ms);  // let the poll park in the daemon
  auto start = std::chrono::steady_clock::now();
  c.reset();
  d.restart();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s) << "the stop waited for the 50 s long poll";
  poller.join();
  EXPECT_LT(polled, 20s);
}

}  // namespace
}  // namespace vmstack::test
