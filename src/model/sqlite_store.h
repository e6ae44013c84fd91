// The Store on one host: every XenAPI object lives in memory (reads never
// touch disk, as in xapi) and persistent classes are written through to
// SQLite in the same call. Every write bumps a generation counter; the last
// changes are kept in a bounded log, so event.from after a recent token
// looks only at what changed instead of scanning every object.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "model/store.h"

struct sqlite3;

namespace vmstack::model {

class SqliteStore final : public Store {
 public:
  // path: SQLite file (created), or ":memory:".
  explicit SqliteStore(const std::string& path, const Datamodel& dm = datamodel());
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  const Datamodel& dm() const override { return dm_; }

  bool exists(const std::string& cls, const std::string& ref) const override;
  Struct get_record(const std::string& cls, const std::string& ref) const override;
  Value get_field(const std::string& cls, const std::string& ref, const std::string& field) const override;
  Versioned read(const std::string& cls, const std::string& ref) const override;
  std::vector<std::string> all(const std::string& cls) const override;
  void for_each(const std::string& cls,
                const std::function<void(const std::string& ref, const Struct& record)>& fn) const override;
  std::string ref_by_uuid(const std::string& cls, const std::string& uuid) const override;
  std::vector<std::string> find(const std::string& cls, const std::string& field, const Value& value) const override;
  std::optional<std::string> class_of(const std::string& ref) const override;

  std::string create(const std::string& cls, Struct fields, std::string ref = {}) override;
  bool update_if(const std::string& cls, const std::string& ref, const Struct& changes, uint64_t expected) override;
  void destroy(const std::string& cls, const std::string& ref) override;
  // Runs fn under the write lock: no retries, whatever the contention.
  Struct modify(const std::string& cls, const std::string& ref,
                const std::function<void(Struct& record)>& fn) override;

  EventBatch changes_since(const std::set<std::string>& classes, uint64_t token,
                           std::chrono::milliseconds timeout) const override;
  uint64_t generation() const override;
  void end_waits() override;
  bool changed_after(const std::set<std::string>& classes, uint64_t seen) const override;
  void set_change_listener(std::function<void()> listener) override;

  std::optional<std::string> get_setting(const std::string& key) const override;
  void put_setting(const std::string& key, const std::string& value) override;
  void erase_setting(const std::string& key) override;
  std::vector<std::pair<std::string, std::string>> settings_with_prefix(const std::string& prefix) const override;

  // How many changes the log keeps (tests shrink it to exercise the fallback).
  void set_change_log_limit(size_t n);

 private:
  struct Object {
    Struct fields;
    uint64_t created = 0;
    uint64_t modified = 0;
  };
  struct Stmt;  // a prepared statement (sqlite_store.cpp)
  struct Table {
    Table();
    ~Table();
    Table(Table&&) noexcept;
    const ClassDef* def = nullptr;
    mutable std::unique_ptr<Stmt> upsert, remove;  // prepared on first use, under the write lock
    std::unordered_map<std::string, Object> objects;
    std::unordered_map<std::string, std::string> by_uuid;
  };
  // One entry per write, oldest first.
  struct Change {
    uint64_t gen;
    const Table* table;
    std::string ref;
    bool deleted;
    uint64_t created;  // when the object was created (del: to drop add+del pairs)
    std::string uuid;  // for del events
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
  void log_change(Change c);
  // Wakes blocked changes_since calls and the change listener; under the
  // write lock.
  void notify_locked();
  // Checks the `changed` fields of `updated`, persists it and makes it the
  // object's state; under the write lock.
  void apply_locked(Table& t, const std::string& ref, Object& current, Object updated,
                    const std::vector<std::string>& changed);
  Event event_for(const Table& t, const std::string& ref, const Object& o, uint64_t token, int64_t now) const;
  void scan_all(EventBatch& b, const std::function<bool(const std::string&)>& matches, uint64_t token) const;

  const Datamodel& dm_;
  sqlite3* db_ = nullptr;
  mutable std::shared_mutex mu_;
  mutable std::condition_variable_any changed_;
  std::map<std::string, Table> tables_;
  std::unordered_map<std::string, std::string> class_of_ref_;
  // "VBD.VM" -> target ref -> referring refs: the reverse index behind
  // derived sets like VM.VBDs.
  std::map<std::string, std::unordered_map<std::string, std::set<std::string>>> back_refs_;
  std::deque<Change> log_;
  size_t log_limit_ = 65536;
  // Changes at or below this generation may have left the log: a token older
  // than it is answered from a scan of the objects instead.
  uint64_t log_floor_ = 0;
  uint64_t generation_ = 0;
  bool waits_ended_ = false;  // under mu_
  std::function<void()> listener_;  // under mu_
};

}  // namespace vmstack::model
