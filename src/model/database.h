// The object store: every XenAPI object lives in memory (reads never touch
// disk, as in xapi) and persistent classes are written through to SQLite in
// the same call. Every write bumps a generation counter that event.from uses.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/value.h"
#include "model/datamodel.h"

struct sqlite3;

namespace vmstack::model {

struct Event {
  uint64_t id = 0;
  int64_t timestamp = 0;
  std::string cls;
  std::string operation;  // add | mod | del
  std::string ref;
  std::string obj_uuid;
  Value snapshot;  // the record (nil for del)
};

struct EventBatch {
  std::vector<Event> events;
  std::map<std::string, int64_t> valid_ref_counts;
  uint64_t token = 0;
};

class Database {
 public:
  // path: SQLite file (created), or ":memory:".
  explicit Database(const std::string& path, const Datamodel& dm = datamodel());
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const Datamodel& dm() const { return dm_; }

  // ---- reads (shared lock). Unknown refs throw HANDLE_INVALID [class, ref].
  bool exists(const std::string& cls, const std::string& ref) const;
  Struct get_record(const std::string& cls, const std::string& ref) const;  // includes derived sets
  Value get_field(const std::string& cls, const std::string& ref, const std::string& field) const;
  std::vector<std::string> all(const std::string& cls) const;
  std::map<std::string, Struct> all_records(const std::string& cls) const;
  std::string ref_by_uuid(const std::string& cls, const std::string& uuid) const;  // UUID_INVALID
  std::vector<std::string> refs_by_name_label(const std::string& cls, const std::string& label) const;
  // Refs of `cls` whose field `field` equals `value` (e.g. VBDs whose VM is x).
  std::vector<std::string> find(const std::string& cls, const std::string& field, const Value& value) const;
  std::optional<std::string> class_of(const std::string& ref) const;

  // ---- writes (exclusive lock, one SQLite transaction each).
  // Fills defaults and a fresh uuid unless given; returns the ref.
  std::string create(const std::string& cls, Struct fields, std::string ref = {});
  void set_field(const std::string& cls, const std::string& ref, const std::string& field, Value v);
  void update(const std::string& cls, const std::string& ref, const Struct& changes);
  void destroy(const std::string& cls, const std::string& ref);

  // ---- events. Blocks up to `timeout` until something in `classes` (names,
  // case-insensitive, "*" for all) changed after `token`.
  EventBatch events_from(const std::set<std::string>& classes, uint64_t token,
                         std::chrono::milliseconds timeout) const;
  uint64_t generation() const;
  // The daemon is stopping: every waiting (and later) events_from returns
  // what it has at once, so long polls do not hold the shutdown up.
  void end_event_waits();

  // ---- host-local settings that are not XenAPI objects (users, probe cache).
  std::optional<std::string> get_setting(const std::string& key) const;
  void put_setting(const std::string& key, const std::string& value);

 private:
  struct Object {
    Struct fields;
    uint64_t created = 0;
    uint64_t modified = 0;
  };
  struct Table {
    const ClassDef* def = nullptr;
    std::unordered_map<std::string, Object> objects;
    std::unordered_map<std::string, std::string> by_uuid;
  };
  struct Deletion {
    uint64_t gen;
    std::string cls, ref, uuid;
  };

  Table& table(const std::string& cls);
  const Table& table(const std::string& cls) const;
  const Object& object(const Table& t, const std::string& ref) const;
  Struct with_derived(const Table& t, const std::string& ref, const Object& o) const;
  void index_refs(const Table& t, const std::string& ref, const Struct& fields, bool add);
  void persist(const Table& t, const std::string& ref, const Object& o);
  void unpersist(const Table& t, const std::string& ref);
  void create_schema();
  void load();
  void exec(const std::string& sql);
  void bump_locked(Object& o);

  const Datamodel& dm_;
  sqlite3* db_ = nullptr;
  mutable std::shared_mutex mu_;
  mutable std::condition_variable_any changed_;
  std::map<std::string, Table> tables_;
  std::unordered_map<std::string, std::string> class_of_ref_;
  // "VBD.VM" -> target ref -> referring refs: the reverse index behind
  // derived sets like VM.VBDs.
  std::map<std::string, std::unordered_map<std::string, std::set<std::string>>> back_refs_;
  std::deque<Deletion> deletions_;  // bounded; event.from reports these as "del"
  uint64_t generation_ = 0;
  bool waits_ended_ = false;  // under mu_
};

}  // namespace vmstack::model
