// The object store: where XenAPI objects live. An interface, so that the
// verbs above it do not know whether objects sit in this host's SQLite file
// (SqliteStore, today) or in etcd shared by a pool of hosts (later): every
// read-modify-write goes through modify(), a compare-and-set on the object's
// generation retried until it commits, which etcd's transactions on
// mod_revision provide as well; and event.from is built on changes_since(),
// the store's change feed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/value.h"
#include "model/datamodel.h"

namespace vmstack::model {

struct Event {
  uint64_t id = 0;  // the generation of the change
  int64_t timestamp = 0;
  std::string cls;
  std::string operation;  // add | mod | del
  std::string ref;
  std::string obj_uuid;
  Value snapshot;  // the record (nil for del)
};

struct EventBatch {
  std::vector<Event> events;  // one per changed object, oldest change first
  std::map<std::string, int64_t> valid_ref_counts;
  uint64_t token = 0;  // pass back to get the changes after this batch
};

// A stored record and the generation it was last written at.
struct Versioned {
  Struct record;  // stored fields only (no derived sets)
  uint64_t generation = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual const Datamodel& dm() const = 0;

  // ---- reads. Unknown refs throw HANDLE_INVALID [class, ref].
  virtual bool exists(const std::string& cls, const std::string& ref) const = 0;
  // The record with its derived sets (VM.VBDs...).
  virtual Struct get_record(const std::string& cls, const std::string& ref) const = 0;
  virtual Value get_field(const std::string& cls, const std::string& ref, const std::string& field) const = 0;
  virtual Versioned read(const std::string& cls, const std::string& ref) const = 0;
  virtual std::vector<std::string> all(const std::string& cls) const = 0;
  // Calls fn for every record (with derived sets) of the class, without
  // copying the table first; fn must not call back into the store.
  virtual void for_each(const std::string& cls,
                        const std::function<void(const std::string& ref, const Struct& record)>& fn) const = 0;
  std::map<std::string, Struct> all_records(const std::string& cls) const;
  virtual std::string ref_by_uuid(const std::string& cls, const std::string& uuid) const = 0;  // UUID_INVALID
  std::vector<std::string> refs_by_name_label(const std::string& cls, const std::string& label) const {
    return find(cls, "name_label", label);
  }
  // Refs of `cls` whose field `field` equals `value` (e.g. VBDs whose VM is x).
  virtual std::vector<std::string> find(const std::string& cls, const std::string& field, const Value& value) const = 0;
  virtual std::optional<std::string> class_of(const std::string& ref) const = 0;

  // ---- writes. Values are checked against the datamodel (FIELD_TYPE_ERROR,
  // INVALID_VALUE); a failed write changes nothing.
  // Fills defaults and a fresh uuid unless given; returns the ref.
  virtual std::string create(const std::string& cls, Struct fields, std::string ref = {}) = 0;
  // Applies `changes` if the object is still at generation `expected` (0:
  // whatever it is at). Returns false, changing nothing, if it moved on.
  virtual bool update_if(const std::string& cls, const std::string& ref, const Struct& changes, uint64_t expected) = 0;
  void update(const std::string& cls, const std::string& ref, const Struct& changes) {
    update_if(cls, ref, changes, 0);
  }
  void set_field(const std::string& cls, const std::string& ref, const std::string& field, Value v) {
    update_if(cls, ref, Struct{{field, std::move(v)}}, 0);
  }
  virtual void destroy(const std::string& cls, const std::string& ref) = 0;

  // Atomic read-modify-write: fn edits a copy of the stored record (it may
  // throw to abort, e.g. MAP_DUPLICATE_KEY, and must not call the store);
  // the fields it changed are written if nobody wrote the object meanwhile,
  // else fn runs again on the fresh record. Returns the record as committed.
  // This default is the compare-and-set loop over read() and update_if()
  // that any store (etcd's transactions included) can offer; a store with a
  // local write lock may do better.
  virtual Struct modify(const std::string& cls, const std::string& ref,
                        const std::function<void(Struct& record)>& fn);

  // ---- the change feed. Blocks up to `timeout` until something in
  // `classes` (names, case-insensitive, "*" for all) changed after `token`
  // (0: the beginning, when every object is an "add" and nothing a "del").
  virtual EventBatch changes_since(const std::set<std::string>& classes, uint64_t token,
                                   std::chrono::milliseconds timeout) const = 0;
  virtual uint64_t generation() const = 0;
  // The daemon is stopping: every waiting (and later) changes_since returns
  // what it has at once, so long polls do not hold the shutdown up.
  virtual void end_waits() = 0;
  // For callers that wait for many feeds at once without a thread each (the
  // parked event.from polls): whether anything in `classes` may have
  // changed after generation `seen` (false is exact; true may still give an
  // empty batch, e.g. an object created and deleted since). Never blocks;
  // costs what changed after `seen`, not the store's size.
  virtual bool changed_after(const std::set<std::string>& classes, uint64_t seen) const = 0;
  // Called after every committed change and by end_waits(), on the writer's
  // thread, possibly under the store's lock: it must only signal (e.g.
  // notify a condition variable), never call the store. One listener;
  // an empty function removes it.
  virtual void set_change_listener(std::function<void()> listener) = 0;

  // ---- host-local settings that are not XenAPI objects (users, probe cache).
  virtual std::optional<std::string> get_setting(const std::string& key) const = 0;
  // Durable once it returns (the intent journal relies on it).
  virtual void put_setting(const std::string& key, const std::string& value) = 0;
  virtual void erase_setting(const std::string& key) = 0;
  // Every (key, value) whose key starts with `prefix`, in key order.
  virtual std::vector<std::pair<std::string, std::string>> settings_with_prefix(const std::string& prefix) const = 0;
};

}  // namespace vmstack::model
