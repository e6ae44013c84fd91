// Records as xe shows them: fetched with <Class>.get_all_records, rendered
// field by field through the datamodel (references become uuids), filtered
// on key=value pairs exactly the way xe's <class>-list filters.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/fields.h"
#include "cli/printer.h"
#include "cli/session.h"

namespace vmstack::cli {

struct Object {
  std::string ref;
  Struct record;
};

// Every record of the classes asked for, fetched once per class per command
// (one get_all_records call), so rendering a reference or resolving a uuid
// never costs a call per object.
class ObjectCache {
 public:
  using Entry = std::pair<const std::string, Struct>;  // (ref, record)

  explicit ObjectCache(Session& s) : session_(s) {}

  const std::map<std::string, Struct>& all(const std::string& cls);  // ref -> record
  // Drops a class so the next all() fetches it again (after a change).
  void invalidate(const std::string& cls) { cache_.erase(cls); }
  const Struct* find(const std::string& cls, const std::string& ref);
  // uuid (and " (name-label)" when the class has one) of any reference, as
  // xe prints error parameters; `ref` unchanged if unknown.
  std::string describe(const std::string& ref, const std::string& cls_hint = {});
  Session& session() { return session_; }

 private:
  Session& session_;
  std::map<std::string, std::map<std::string, Struct>> cache_;
};

// The record a field's value is in: `record` itself, or for a Through
// field the object it refers to (null when there is none).
const Struct* source_record(const CliField& f, const Struct& record, ObjectCache& objects);
// One field of one record as xe prints it.
std::string display(const CliField& f, const Struct& record, ObjectCache& objects);

// A key=value filter of xe's lists and selectors: "field=value",
// "map-field:key=value", "set-field:contains=value". A value starting with
// "/=" negates (event-wait's not-equal).
struct Filter {
  std::string key, value;
};

// Records of `cls` matching every filter. Throws CliError (xe's "Unknown
// field" text) for a key the class does not have.
std::vector<Object> select(ObjectCache& objects, const model::ClassDef& cls, const std::vector<CliField>& fields,
                           const std::vector<Filter>& filters);
// The same, as entries of the cache (no copies; valid until the class is
// invalidated): for commands that only print them.
std::vector<const ObjectCache::Entry*> select_cached(ObjectCache& objects, const model::ClassDef& cls,
                                                    const std::vector<CliField>& fields,
                                                    const std::vector<Filter>& filters);
bool matches(const Struct& record, const std::vector<CliField>& fields, const Filter& f, ObjectCache& objects);
// Throws unless `key` names a field (or map/set filter) of the class.
void check_filter_key(const std::vector<CliField>& fields, const std::string& key);

// The (name ( RO), value) pairs of one record, restricted to `params` when
// given (in the record's own field order, as xe does).
PrintedRecord print_record(const Struct& record, const std::vector<CliField>& fields, ObjectCache& objects,
                           const std::vector<std::string>* params = nullptr);

// Parameters every command accepts that are never filters (xe's stdparams).
bool is_std_param(const std::string& key);

}  // namespace vmstack::cli
