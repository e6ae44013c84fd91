#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <atomic>
#include <thread>

#include "core/error.h"
#include "core/uuid.h"
#include "model/sqlite_store.h"

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

TEST(SqliteStore, CreateFillsDefaultsUuidAndRef) {
  SqliteStore db(":memory:");
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

TEST(SqliteStore, UnknownHandlesAndUuidsAreXenApiErrors) {
  SqliteStore db(":memory:");
  EXPECT_EQ(code_of([&] { db.get_record("VM", "OpaqueRef:nope"); }), "HANDLE_INVALID");
  EXPECT_EQ(code_of([&] { db.ref_by_uuid("VM", make_uuid()); }), "UUID_INVALID");
  EXPECT_EQ(code_of([&] { db.set_field("VM", "OpaqueRef:nope", "name_label", "x"); }), "HANDLE_INVALID");
  auto ref = db.create("VM", {});
  EXPECT_EQ(code_of([&] { db.set_field("VM", ref, "VCPUs_max", "many"); }), "FIELD_TYPE_ERROR");
  // a failed write leaves the record as it was
  EXPECT_EQ(db.get_field("VM", ref, "VCPUs_max").as_int(), 1);
}

TEST(SqliteStore, DerivedSetsFollowReferences) {
  SqliteStore db(":memory:");
  auto vm = db.create("VM", {});
  auto vdi = db.create("VDI", {});
  auto vbd = db.create("VBD", {{"VM", vm}, {"VDI", vdi}});
  EXPECT_EQ(db.get_record("VM", vm)["VBDs"].as_array(), Array{vbd});
  EXPECT_EQ(db.get_field("VDI", vdi, "VBDs").as_array(), Array{vbd});
  EXPECT_EQ(db.find("VBD", "VM", vm), std::vector<std::string>{vbd});
  db.destroy("VBD", vbd);
  EXPECT_TRUE(db.get_record("VM", vm)["VBDs"].as_array().empty());
}

TEST(SqliteStore, PersistsAcrossReopenButNotSessions) {
  TempFile f;
  std::string vm, session;
  {
    SqliteStore db(f.path);
    vm = db.create("VM", {{"name_label", "kept"}, {"other_config", Struct{{"k", "v"}}}, {"tags", Array{"t1"}}});
    db.set_field("VM", vm, "memory_static_max", int64_t{1} << 30);
    session = db.create("session", {});
    db.put_setting("probe", "tcg");
  }
  SqliteStore db(f.path);
  auto r = db.get_record("VM", vm);
  EXPECT_EQ(r["name_label"].as_string(), "kept");
  EXPECT_EQ(r["memory_static_max"].as_int(), int64_t{1} << 30);
  EXPECT_EQ(r["other_config"]["k"].as_string(), "v");
  EXPECT_EQ(r["tags"].as_array(), Array{"t1"});
  EXPECT_FALSE(db.exists("session", session));
  EXPECT_EQ(db.get_setting("probe"), "tcg");
}

// Sets and maps are stored as JSON text: numbers and a map's set values
// must come back as they went in, not as strings.
TEST(SqliteStore, TypedSetAndMapElementsSurviveReopen) {
  TempFile f;
  std::string m, sm, host;
  {
    SqliteStore db(f.path);
    m = db.create("VM_metrics", {{"VCPUs_utilisation", Struct{{"0", 0.25}, {"1", 1.0}}},
                                 {"VCPUs_CPU", Struct{{"0", int64_t{1}}}},
                                 {"VCPUs_flags", Struct{{"0", Array{"online", "running"}}}}});
    sm = db.create("SM", {{"features", Struct{{"VDI_CREATE", int64_t{2}}}}});
    host = db.create("host", {{"virtual_hardware_platform_versions", Array{int64_t{0}, int64_t{2}}}});
  }
  SqliteStore db(f.path);
  auto r = db.get_record("VM_metrics", m);
  EXPECT_EQ(r["VCPUs_utilisation"]["0"], Value(0.25));
  EXPECT_EQ(r["VCPUs_utilisation"]["1"], Value(1.0));
  EXPECT_EQ(r["VCPUs_CPU"]["0"], Value(int64_t{1}));
  EXPECT_EQ(r["VCPUs_flags"]["0"], Value(Array{"online", "running"}));
  EXPECT_EQ(db.get_field("SM", sm, "features")["VDI_CREATE"], Value(int64_t{2}));
  EXPECT_EQ(db.get_field("host", host, "virtual_hardware_platform_versions"), Value(Array{int64_t{0}, int64_t{2}}));
}

TEST(SqliteStore, EventsFromReportsAddModDelAfterToken) {
  SqliteStore db(":memory:");
  auto t0 = db.generation();
  auto vm = db.create("VM", {});
  auto b = db.changes_since({"vm"}, t0, 0ms);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].operation, "add");
  db.set_field("VM", vm, "power_state", "Running");
  auto b2 = db.changes_since({"VM"}, b.token, 0ms);
  ASSERT_EQ(b2.events.size(), 1u);
  EXPECT_EQ(b2.events[0].operation, "mod");
  EXPECT_EQ(b2.events[0].snapshot["power_state"].as_string(), "Running");
  EXPECT_TRUE(db.changes_since({"task"}, b.token, 0ms).events.empty());
  db.destroy("VM", vm);
  auto b3 = db.changes_since({"*"}, b2.token, 0ms);
  ASSERT_EQ(b3.events.size(), 1u);
  EXPECT_EQ(b3.events[0].operation, "del");
}

TEST(SqliteStore, EventsFromBlocksUntilAChange) {
  SqliteStore db(":memory:");
  auto t0 = db.generation();
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    db.create("VM", {});
  });
  auto b = db.changes_since({"VM"}, t0, 5s);
  writer.join();
  EXPECT_EQ(b.events.size(), 1u);
  auto empty = db.changes_since({"VM"}, b.token, 20ms);
  EXPECT_TRUE(empty.events.empty());
}

TEST(SqliteStore, EndEventWaitsReleasesLongPollsAtOnce) {
  SqliteStore db(":memory:");
  auto t0 = db.generation();
  std::chrono::steady_clock::duration waited{};
  EventBatch got;
  std::thread poller([&] {
    auto start = std::chrono::steady_clock::now();
    got = db.changes_since({"VM"}, t0, 30s);
    waited = std::chrono::steady_clock::now() - start;
  });
  std::this_thread::sleep_for(100ms);  // let it block
  db.end_waits();
  poller.join();
  EXPECT_LT(waited, 10s) << "the long poll sat out its timeout";
  EXPECT_TRUE(got.events.empty());
  EXPECT_EQ(got.token, t0);
  // Later polls do not block either; changes are still reported.
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(db.changes_since({"VM"}, t0, 30s).events.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  db.create("VM", {});
  EXPECT_EQ(db.changes_since({"VM"}, t0, 30s).events.size(), 1u);
}

TEST(SqliteStore, UpdateIfIsACompareAndSetOnTheGeneration) {
  SqliteStore db(":memory:");
  auto vm = db.create("VM", {});
  auto v = db.read("VM", vm);
  EXPECT_TRUE(db.update_if("VM", vm, {{"name_label", "first"}}, v.generation));
  // A writer that read before that write loses, and changes nothing.
  EXPECT_FALSE(db.update_if("VM", vm, {{"name_label", "stale"}}, v.generation));
  EXPECT_EQ(db.get_field("VM", vm, "name_label").as_string(), "first");
  auto v2 = db.read("VM", vm);
  EXPECT_GT(v2.generation, v.generation);
  EXPECT_TRUE(db.update_if("VM", vm, {{"name_label", "second"}}, v2.generation));
}

TEST(SqliteStore, ModifyLosesNoConcurrentUpdate) {
  // 8 threads x 500 map insertions through modify(): every key lands.
  SqliteStore db(":memory:");
  auto vm = db.create("VM", {});
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i)
        db.modify("VM", vm, [&](Struct& rec) {
          rec["other_config"].as_struct()["k" + std::to_string(t) + "-" + std::to_string(i)] = "v";
        });
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(db.get_field("VM", vm, "other_config").as_struct().size(), 4000u);
}

TEST(SqliteStore, TheGenericCompareAndSetModifyLosesNothingEither) {
  // Store::modify's CAS loop (what an etcd store would run), forced through
  // the base class: contention makes it retry, never drop a write.
  SqliteStore db(":memory:");
  auto vm = db.create("VM", {});
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i)
        db.Store::modify("VM", vm, [&](Struct& rec) {
          rec["other_config"].as_struct()["k" + std::to_string(t) + "-" + std::to_string(i)] = "v";
        });
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(db.get_field("VM", vm, "other_config").as_struct().size(), 800u);
}

TEST(SqliteStore, ModifyAbortsOnThrowAndWritesNothing) {
  SqliteStore db(":memory:");
  auto vm = db.create("VM", {{"name_label", "a"}});
  auto gen = db.generation();
  EXPECT_EQ(code_of([&] {
              db.modify("VM", vm, [](Struct& rec) {
                rec["name_label"] = "b";
                throw ApiError(errors::MAP_DUPLICATE_KEY, {});
              });
            }),
            "MAP_DUPLICATE_KEY");
  EXPECT_EQ(db.get_field("VM", vm, "name_label").as_string(), "a");
  EXPECT_EQ(db.generation(), gen);
  // A modify that changes nothing writes nothing either.
  db.modify("VM", vm, [](Struct&) {});
  EXPECT_EQ(db.generation(), gen);
}

TEST(SqliteStore, ChangeFeedOneEventPerObjectAndNoDelsForTheUnseen) {
  SqliteStore db(":memory:");
  auto a = db.create("VM", {{"name_label", "a"}});
  auto token = db.changes_since({"VM"}, 0, 0ms).token;
  // Three writes to a: one "mod" with the last state.
  for (auto n : {"a1", "a2", "a3"}) db.set_field("VM", a, "name_label", n);
  // b comes and goes after the token: the client never saw it, no event.
  auto b = db.create("VM", {});
  db.destroy("VM", b);
  auto batch = db.changes_since({"VM"}, token, 0ms);
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].ref, a);
  EXPECT_EQ(batch.events[0].operation, "mod");
  EXPECT_EQ(batch.events[0].snapshot["name_label"].as_string(), "a3");
  EXPECT_EQ(batch.valid_ref_counts.at("VM"), 1);
  // The empty token is the beginning: adds for what exists, no dels.
  auto from_start = db.changes_since({"VM"}, 0, 0ms);
  ASSERT_EQ(from_start.events.size(), 1u);
  EXPECT_EQ(from_start.events[0].operation, "add");
}

TEST(SqliteStore, OldTokensFallBackToAScanOfTheObjects) {
  SqliteStore db(":memory:");
  db.set_change_log_limit(4);
  auto a = db.create("VM", {});
  auto token = db.generation();
  std::vector<std::string> vms;
  for (int i = 0; i < 10; ++i) vms.push_back(db.create("VM", {}));
  db.set_field("VM", a, "name_label", "changed");
  // The log kept only the last 4 changes; the answer is still complete.
  auto batch = db.changes_since({"VM"}, token, 0ms);
  EXPECT_EQ(batch.events.size(), 11u);
  std::set<std::string> ops;
  for (const auto& e : batch.events) ops.insert(e.ref == a ? "mod:" + e.operation : e.operation);
  EXPECT_EQ(ops, (std::set<std::string>{"add", "mod:mod"}));
}
