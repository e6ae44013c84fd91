#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/uuid.h"
#include "model/database.h"

using namespace vmstack;
using namespace vmstack::model;
using namespace std::chrono_literals;

namespace {
struct TempFile {
  std::string path = (std::filesystem::temp_directory_path() / ("vmstack-db-" + make_uuid() + ".sqlite")).string();
  ~TempFile() {
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
};

std::string code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.code();
  }
  return "no error";
}
}  // namespace

TEST(Database, CreateFillsDefaultsUuidAndRef) {
  Database db(":memory:");
  auto ref = db.create("VM", {{"name_label", "a"}});
  EXPECT_EQ(ref.rfind("OpaqueRef:", 0), 0u);
  auto r = db.get_record("VM", ref);
  EXPECT_TRUE(looks_like_uuid(r["uuid"].as_string()));
  EXPECT_EQ(r["power_state"].as_string(), "Halted");
  EXPECT_EQ(r["VCPUs_max"].as_int(), 1);
  EXPECT_EQ(db.ref_by_uuid("VM", r["uuid"].as_string()), ref);
  EXPECT_EQ(db.refs_by_name_label("VM", "a"), std::vector<std::string>{ref});
  EXPECT_TRUE(db.refs_by_name_label("VM", "b").empty());
}

TEST(Database, UnknownHandlesAndUuidsAreXenApiErrors) {
  Database db(":memory:");
  EXPECT_EQ(code_of([&] { db.get_record("VM", "OpaqueRef:nope"); }), "HANDLE_INVALID");
  EXPECT_EQ(code_of([&] { db.ref_by_uuid("VM", make_uuid()); }), "UUID_INVALID");
  EXPECT_EQ(code_of([&] { db.set_field("VM", "OpaqueRef:nope", "name_label", "x"); }), "HANDLE_INVALID");
  auto ref = db.create("VM", {});
  EXPECT_EQ(code_of([&] { db.set_field("VM", ref, "VCPUs_max", "many"); }), "FIELD_TYPE_ERROR");
  // a failed write leaves the record as it was
  EXPECT_EQ(db.get_field("VM", ref, "VCPUs_max").as_int(), 1);
}

TEST(Database, DerivedSetsFollowReferences) {
  Database db(":memory:");
  auto vm = db.create("VM", {});
  auto vdi = db.create("VDI", {});
  auto vbd = db.create("VBD", {{"VM", vm}, {"VDI", vdi}});
  EXPECT_EQ(db.get_record("VM", vm)["VBDs"].as_array(), Array{vbd});
  EXPECT_EQ(db.get_field("VDI", vdi, "VBDs").as_array(), Array{vbd});
  EXPECT_EQ(db.find("VBD", "VM", vm), std::vector<std::string>{vbd});
  db.destroy("VBD", vbd);
  EXPECT_TRUE(db.get_record("VM", vm)["VBDs"].as_array().empty());
}

TEST(Database, PersistsAcrossReopenButNotSessions) {
  TempFile f;
  std::string vm, session;
  {
    Database db(f.path);
    vm = db.create("VM", {{"name_label", "kept"}, {"other_config", Struct{{"k", "v"}}}, {"tags", Array{"t1"}}});
    db.set_field("VM", vm, "memory_static_max", int64_t{1} << 30);
    session = db.create("session", {});
    db.put_setting("probe", "tcg");
  }
  Database db(f.path);
  auto r = db.get_record("VM", vm);
  EXPECT_EQ(r["name_label"].as_string(), "kept");
  EXPECT_EQ(r["memory_static_max"].as_int(), int64_t{1} << 30);
  EXPECT_EQ(r["other_config"]["k"].as_string(), "v");
  EXPECT_EQ(r["tags"].as_array(), Array{"t1"});
  EXPECT_FALSE(db.exists("session", session));
  EXPECT_EQ(db.get_setting("probe"), "tcg");
}

TEST(Database, EventsFromReportsAddModDelAfterToken) {
  Database db(":memory:");
  auto t0 = db.generation();
  auto vm = db.create("VM", {});
  auto b = db.events_from({"vm"}, t0, 0ms);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].operation, "add");
  db.set_field("VM", vm, "power_state", "Running");
  auto b2 = db.events_from({"VM"}, b.token, 0ms);
  ASSERT_EQ(b2.events.size(), 1u);
  EXPECT_EQ(b2.events[0].operation, "mod");
  EXPECT_EQ(b2.events[0].snapshot["power_state"].as_string(), "Running");
  EXPECT_TRUE(db.events_from({"task"}, b.token, 0ms).events.empty());
  db.destroy("VM", vm);
  auto b3 = db.events_from({"*"}, b2.token, 0ms);
  ASSERT_EQ(b3.events.size(), 1u);
  EXPECT_EQ(b3.events[0].operation, "del");
}

TEST(Database, EventsFromBlocksUntilAChange) {
  Database db(":memory:");
  auto t0 = db.generation();
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    db.create("VM", {});
  });
  auto b = db.events_from({"VM"}, t0, 5s);
  writer.join();
  EXPECT_EQ(b.events.size(), 1u);
  auto empty = db.events_from({"VM"}, b.token, 20ms);
  EXPECT_TRUE(empty.events.empty());
}

TEST(Database, EndEventWaitsReleasesLongPollsAtOnce) {
  Database db(":memory:");
  auto t0 = db.generation();
  std::chrono::steady_clock::duration waited{};
  EventBatch got;
  std::thread poller([&] {
    auto start = std::chrono::steady_clock::now();
    got = db.events_from({"VM"}, t0, 30s);
    waited = std::chrono::steady_clock::now() - start;
  });
  std::this_thread::sleep_for(100ms);  // let it block
  db.end_event_waits();
  poller.join();
  EXPECT_LT(waited, 10s) << "the long poll sat out its timeout";
  EXPECT_TRUE(got.events.empty());
  EXPECT_EQ(got.token, t0);
  // Later polls do not block either; changes are still reported.
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(db.events_from({"VM"}, t0, 30s).events.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  db.create("VM", {});
  EXPECT_EQ(db.events_from({"VM"}, t0, 30s).events.size(), 1u);
}
