#include "model/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "core/uuid.h"

namespace vmstack::model {

namespace {

using json = nlohmann::json;

// Sets and maps are stored as JSON text; their elements are strings (refs,
// enums, plain strings) in every declared field.
// Written by hand rather than through a JSON DOM: a map with thousands of
// keys is serialized on every write of its row.
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// One element of a set or map: numbers stay numbers and a map's set values
// (VM_metrics.VCPUs_flags) stay arrays, so a reload gives back the types.
void append_json_element(std::string& out, const Value& e);

std::string to_json_text(const Value& v) {
  std::string out;
  if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first) out += ',';
      first = false;
      append_json_element(out, e);
    }
    out += ']';
  } else if (v.is_struct()) {
    out += '{';
    bool first = true;
    for (const auto& [k, e] : v.as_struct()) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, k);
      out += ':';
      append_json_element(out, e);
    }
    out += '}';
  } else {
    out = "null";
  }
  return out;
}

void append_json_element(std::string& out, const Value& e) {
  if (e.is_string()) append_json_string(out, e.as_string());
  else if (e.is_int()) out += std::to_string(e.as_int());
  else if (e.is_double()) out += json(e.as_double()).dump();
  else if (e.is_array()) out += to_json_text(e);
  else append_json_string(out, e.to_display());
}

Value element_from_json(Kind kind, const json& e) {
  switch (kind) {
    case Kind::Int:
      if (e.is_number_integer()) return e.get<int64_t>();
      break;
    case Kind::Float:
      if (e.is_number()) return e.get<double>();
      break;
    case Kind::Set: {
      Array a;
      if (e.is_array())
        for (const auto& x : e) a.emplace_back(x.is_string() ? x.get<std::string>() : x.dump());
      return a;
    }
    default: break;
  }
  return e.is_string() ? e.get<std::string>() : e.dump();
}

Value from_json_text(const Field& f, const char* text) {
  json j = json::parse(text ? text : "null", nullptr, false);
  if (f.is_set()) {
    Array a;
    if (j.is_array())
      for (const auto& e : j) a.push_back(element_from_json(f.type.elem, e));
    return a;
  }
  Struct s;
  if (j.is_object())
    for (const auto& [k, e] : j.items()) s[k] = element_from_json(f.type.elem, e);
  return s;
}

std::string quote_ident(const std::string& s) { return "\"" + s + "\""; }

const char* sql_type(const Field& f) {
  switch (f.type.kind) {
    case Kind::Int:
    case Kind::Bool:
    case Kind::DateTime: return "INTEGER";
    case Kind::Float: return "REAL";
    default: return "TEXT";
  }
}

}  // namespace

// RAII for prepared statements.
struct SqliteStore::Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
      throw ApiError(errors::INTERNAL_ERROR, {std::string("sqlite prepare: ") + sqlite3_errmsg(db)});
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
};

namespace {
}  // namespace

SqliteStore::Table::Table() = default;
SqliteStore::Table::~Table() = default;
SqliteStore::Table::Table(Table&&) noexcept = default;

SqliteStore::SqliteStore(const std::string& path, const Datamodel& dm) : dm_(dm) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  for (const auto& c : dm_.classes)
    if (c.stored) tables_[c.name].def = &c;
  create_schema();
  load();
}

SqliteStore::~SqliteStore() {
  tables_.clear();  // finalizes the cached statements before the connection closes
  sqlite3_close(db_);
}

void SqliteStore::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw ApiError(errors::INTERNAL_ERROR, {"sqlite: " + msg + " in " + sql});
  }
}

void SqliteStore::create_schema() {
  exec("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT)");
  for (const auto& [name, t] : tables_) {
    if (!t.def->persistent) continue;
    exec("CREATE TABLE IF NOT EXISTS " + quote_ident(name) + " (ref TEXT PRIMARY KEY)");
    // Columns are added one by one so a database from an older build gains the
    // fields declared since (adding a field stays a one-line change).
    std::set<std::string> have;
    {
      Stmt st(db_, "PRAGMA table_info(" + quote_ident(name) + ")");
      while (sqlite3_step(st.s) == SQLITE_ROW)
        have.insert(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1)));
    }
    for (const auto& f : t.def->fields)
      if (!f.derived() && !have.count(f.name))
        exec("ALTER TABLE " + quote_ident(name) + " ADD COLUMN " + quote_ident(f.name) + " " + sql_type(f));
  }
}

void SqliteStore::load() {
  for (auto& [name, t] : tables_) {
    if (!t.def->persistent) continue;
    Stmt st(db_, "SELECT * FROM " + quote_ident(name));
    int ncol = sqlite3_column_count(st.s);
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      std::string ref;
      Object o;
      o.fields = dm_.default_record(*t.def);
      for (int i = 0; i < ncol; ++i) {
        std::string col = sqlite3_column_name(st.s, i);
        if (col == "ref") {
          ref = reinterpret_cast<const char*>(sqlite3_column_text(st.s, i));
          continue;
        }
        const Field* f = t.def->field(col);
        if (!f || f->derived() || sqlite3_column_type(st.s, i) == SQLITE_NULL) continue;
        switch (f->type.kind) {
          case Kind::Int: o.fields[col] = static_cast<int64_t>(sqlite3_column_int64(st.s, i)); break;
          case Kind::Bool: o.fields[col] = sqlite3_column_int64(st.s, i) != 0; break;
          case Kind::DateTime: o.fields[col] = DateTime{sqlite3_column_int64(st.s, i)}; break;
          case Kind::Float: o.fields[col] = sqlite3_column_double(st.s, i); break;
          case Kind::Set:
          case Kind::Map:
            o.fields[col] = from_json_text(*f, reinterpret_cast<const char*>(sqlite3_column_text(st.s, i)));
            break;
          default: o.fields[col] = std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, i))); break;
        }
      }
      o.created = o.modified = ++generation_;
      t.by_uuid[o.fields["uuid"].to_display()] = ref;
      class_of_ref_[ref] = name;
      index_refs(t, ref, o.fields, true);
      t.objects.emplace(ref, std::move(o));
    }
  }
}

void SqliteStore::persist(const Table& t, const std::string& ref, const Object& o) {
  if (!t.def->persistent) return;
  std::vector<const Field*> fields;
  for (const auto& f : t.def->fields)
    if (!f.derived()) fields.push_back(&f);
  if (!t.upsert) {
    // Prepared once per table: the statement names every stored column.
    std::string cols = "ref", marks = "?";
    for (const Field* f : fields) {
      cols += "," + quote_ident(f->name);
      marks += ",?";
    }
    t.upsert = std::make_unique<Stmt>(db_, "INSERT OR REPLACE INTO " + quote_ident(t.def->name) + " (" + cols +
                                               ") VALUES (" + marks + ")");
  }
  sqlite3_stmt* st = t.upsert->s;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  sqlite3_bind_text(st, 1, ref.c_str(), -1, SQLITE_TRANSIENT);
  int i = 2;
  for (const Field* f : fields) {
    auto it = o.fields.find(f->name);
    const Value& v = it == o.fields.end() ? f->default_value : it->second;
    switch (f->type.kind) {
      case Kind::Int: sqlite3_bind_int64(st, i, v.as_int()); break;
      case Kind::Bool: sqlite3_bind_int64(st, i, v.as_bool() ? 1 : 0); break;
      case Kind::DateTime: sqlite3_bind_int64(st, i, v.as_datetime().epoch); break;
      case Kind::Float: sqlite3_bind_double(st, i, v.as_double()); break;
      case Kind::Set:
      case Kind::Map: sqlite3_bind_text(st, i, to_json_text(v).c_str(), -1, SQLITE_TRANSIENT); break;
      default: sqlite3_bind_text(st, i, v.to_display().c_str(), -1, SQLITE_TRANSIENT); break;
    }
    ++i;
  }
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) throw ApiError(errors::INTERNAL_ERROR, {std::string("sqlite write: ") + sqlite3_errmsg(db_)});
}

void SqliteStore::unpersist(const Table& t, const std::string& ref) {
  if (!t.def->persistent) return;
  if (!t.remove) t.remove = std::make_unique<Stmt>(db_, "DELETE FROM " + quote_ident(t.def->name) + " WHERE ref = ?");
  sqlite3_stmt* st = t.remove->s;
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, ref.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) throw ApiError(errors::INTERNAL_ERROR, {std::string("sqlite delete: ") + sqlite3_errmsg(db_)});
}

SqliteStore::Table& SqliteStore::table(const std::string& cls) {
  auto it = tables_.find(cls);
  if (it == tables_.end()) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {cls});
  return it->second;
}
const SqliteStore::Table& SqliteStore::table(const std::string& cls) const {
  return const_cast<SqliteStore*>(this)->table(cls);
}

const SqliteStore::Object& SqliteStore::object(const Table& t, const std::string& ref) const {
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {t.def->name, ref});
  return it->second;
}

void SqliteStore::index_refs(const Table& t, const std::string& ref, const Struct& fields, bool add) {
  for (const auto& f : t.def->fields) {
    if (f.type.kind != Kind::Ref) continue;
    auto it = fields.find(f.name);
    if (it == fields.end() || !it->second.is_string()) continue;
    auto& bucket = back_refs_[t.def->name + "." + f.name][it->second.as_string()];
    if (add) bucket.insert(ref);
    else bucket.erase(ref);
  }
}

Struct SqliteStore::with_derived(const Table& t, const std::string& ref, const Object& o) const {
  Struct r = o.fields;
  for (const auto& f : t.def->fields) {
    if (!f.derived()) continue;
    Array a;
    auto idx = back_refs_.find(f.type.target + "." + f.inverse_of);
    if (idx != back_refs_.end()) {
      auto b = idx->second.find(ref);
      if (b != idx->second.end())
        for (const auto& r2 : b->second) a.emplace_back(r2);
    }
    r[f.name] = std::move(a);
  }
  return r;
}

bool SqliteStore::exists(const std::string& cls, const std::string& ref) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  return t.objects.count(ref) != 0;
}

Struct SqliteStore::get_record(const std::string& cls, const std::string& ref) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  return with_derived(t, ref, object(t, ref));
}

Value SqliteStore::get_field(const std::string& cls, const std::string& ref, const std::string& field) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  const auto& o = object(t, ref);
  const Field* f = t.def->field(field);
  if (!f) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {cls + ".get_" + field});
  if (f->derived()) return with_derived(t, ref, o)[field];
  auto it = o.fields.find(field);
  return it == o.fields.end() ? f->default_value : it->second;
}

Versioned SqliteStore::read(const std::string& cls, const std::string& ref) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  const auto& o = object(t, ref);
  return {o.fields, o.modified};
}

std::vector<std::string> SqliteStore::all(const std::string& cls) const {
  std::shared_lock lk(mu_);
  std::vector<std::string> out;
  const auto& t = table(cls);
  out.reserve(t.objects.size());
  for (const auto& [ref, o] : t.objects) out.push_back(ref);
  return out;
}

void SqliteStore::for_each(const std::string& cls,
                           const std::function<void(const std::string& ref, const Struct& record)>& fn) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  for (const auto& [ref, o] : t.objects) fn(ref, with_derived(t, ref, o));
}

std::string SqliteStore::ref_by_uuid(const std::string& cls, const std::string& uuid) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  auto it = t.by_uuid.find(uuid);
  if (it == t.by_uuid.end()) throw ApiError(errors::UUID_INVALID, {cls, uuid});
  return it->second;
}

std::vector<std::string> SqliteStore::find(const std::string& cls, const std::string& field, const Value& value) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  std::vector<std::string> out;
  const Field* f = t.def->field(field);
  if (f && f->type.kind == Kind::Ref && value.is_string()) {
    auto idx = back_refs_.find(cls + "." + field);
    if (idx != back_refs_.end()) {
      auto b = idx->second.find(value.as_string());
      if (b != idx->second.end()) out.assign(b->second.begin(), b->second.end());
    }
    return out;
  }
  for (const auto& [ref, o] : t.objects) {
    auto it = o.fields.find(field);
    if (it != o.fields.end() && it->second == value) out.push_back(ref);
  }
  return out;
}

std::optional<std::string> SqliteStore::class_of(const std::string& ref) const {
  std::shared_lock lk(mu_);
  auto it = class_of_ref_.find(ref);
  if (it == class_of_ref_.end()) return std::nullopt;
  return it->second;
}

void SqliteStore::log_change(Change c) {
  log_.push_back(std::move(c));
  while (log_.size() > log_limit_) {
    log_floor_ = log_.front().gen;
    log_.pop_front();
  }
}

void SqliteStore::set_change_log_limit(size_t n) {
  std::unique_lock lk(mu_);
  log_limit_ = n;
  while (log_.size() > log_limit_) {
    log_floor_ = log_.front().gen;
    log_.pop_front();
  }
}

std::string SqliteStore::create(const std::string& cls, Struct fields, std::string ref) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  Object o;
  o.fields = dm_.default_record(*t.def);
  for (auto& [k, v] : fields) {
    const Field* f = t.def->field(k);
    if (!f || f->derived()) continue;
    o.fields[k] = dm_.coerce(*t.def, *f, v);
  }
  if (ref.empty()) ref = make_ref();
  std::string uuid;
  if (t.def->field("uuid")) {
    auto& u = o.fields["uuid"];
    if (!u.is_string() || u.as_string().empty()) u = make_uuid();
    uuid = u.as_string();
    if (t.by_uuid.count(uuid)) throw ApiError(errors::INVALID_VALUE, {cls + ".uuid", uuid});
  }
  persist(t, ref, o);  // first: a failed write leaves nothing behind in memory
  o.created = o.modified = ++generation_;
  if (!uuid.empty()) t.by_uuid[uuid] = ref;
  index_refs(t, ref, o.fields, true);
  class_of_ref_[ref] = cls;
  log_change({o.modified, &t, ref, false, o.created, uuid});
  t.objects.emplace(ref, std::move(o));
  notify_locked();
  return ref;
}

void SqliteStore::apply_locked(Table& t, const std::string& ref, Object& current, Object updated,
                               const std::vector<std::string>& changed) {
  for (const auto& k : changed) {
    const Field* f = t.def->field(k);
    if (!f || f->derived()) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {t.def->name + ".set_" + k});
    dm_.coerce_in_place(*t.def, *f, updated.fields[k]);
  }
  persist(t, ref, updated);  // before touching memory: a failed write loses nothing
  updated.modified = ++generation_;
  index_refs(t, ref, current.fields, false);
  index_refs(t, ref, updated.fields, true);
  current = std::move(updated);
  log_change({current.modified, &t, ref, false, current.created, {}});
  notify_locked();
}

bool SqliteStore::update_if(const std::string& cls, const std::string& ref, const Struct& changes, uint64_t expected) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {cls, ref});
  if (expected != 0 && it->second.modified != expected) return false;
  Object updated = it->second;
  std::vector<std::string> changed;
  for (const auto& [k, v] : changes) {
    updated.fields[k] = v;
    changed.push_back(k);
  }
  apply_locked(t, ref, it->second, std::move(updated), changed);
  return true;
}

Struct SqliteStore::modify(const std::string& cls, const std::string& ref,
                           const std::function<void(Struct& record)>& fn) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {cls, ref});
  Object updated;
  updated.fields = it->second.fields;
  updated.created = it->second.created;
  fn(updated.fields);
  std::vector<std::string> changed;
  for (const auto& [k, v] : updated.fields) {
    auto old = it->second.fields.find(k);
    if (old == it->second.fields.end() || !(old->second == v)) changed.push_back(k);
  }
  if (!changed.empty()) apply_locked(t, ref, it->second, std::move(updated), changed);
  return it->second.fields;
}

void SqliteStore::destroy(const std::string& cls, const std::string& ref) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {cls, ref});
  unpersist(t, ref);
  index_refs(t, ref, it->second.fields, false);
  auto u = it->second.fields.find("uuid");
  std::string uuid = u != it->second.fields.end() && u->second.is_string() ? u->second.as_string() : "";
  uint64_t created = it->second.created;
  t.by_uuid.erase(uuid);
  class_of_ref_.erase(ref);
  t.objects.erase(it);
  log_change({++generation_, &t, ref, true, created, uuid});
  notify_locked();
}

uint64_t SqliteStore::generation() const {
  std::shared_lock lk(mu_);
  return generation_;
}

Event SqliteStore::event_for(const Table& t, const std::string& ref, const Object& o, uint64_t token,
                             int64_t now) const {
  Event e;
  e.id = o.modified;
  e.timestamp = now;
  e.cls = t.def->name;
  e.operation = o.created > token ? "add" : "mod";
  e.ref = ref;
  auto u = o.fields.find("uuid");
  if (u != o.fields.end()) e.obj_uuid = u->second.to_display();
  e.snapshot = with_derived(t, ref, o);
  return e;
}

void SqliteStore::scan_all(EventBatch& b, const std::function<bool(const std::string&)>& matches,
                           uint64_t token) const {
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& [name, t] : tables_) {
    if (!matches(name)) continue;
    for (const auto& [ref, o] : t.objects)
      if (o.modified > token) b.events.push_back(event_for(t, ref, o, token, now));
  }
  // Deletions still in the log; older ones are lost, which valid_ref_counts
  // lets a client notice.
  if (token == 0) return;
  for (const auto& c : log_)
    if (c.deleted && c.gen > token && c.created <= token && matches(c.table->def->name))
      b.events.push_back({c.gen, now, c.table->def->name, "del", c.ref, c.uuid, {}});
}

EventBatch SqliteStore::changes_since(const std::set<std::string>& classes, uint64_t token,
                                      std::chrono::milliseconds timeout) const {
  std::set<std::string> wanted;
  bool all = false;
  for (const auto& c : classes) {
    if (c == "*") all = true;
    else wanted.insert(lower(c));
  }
  auto matches = [&](const std::string& cls) { return all || wanted.count(lower(cls)) != 0; };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::shared_lock lk(mu_);
  uint64_t seen = token;  // the log is only searched past what was already found empty
  for (;;) {
    EventBatch b;
    b.token = generation_;
    for (const auto& [name, t] : tables_)
      if (matches(name)) b.valid_ref_counts[name] = static_cast<int64_t>(t.objects.size());
    if (token == 0 || seen < log_floor_) {
      scan_all(b, matches, token);
    } else if (generation_ > seen) {
      // One event per object: its latest state (or its deletion).
      int64_t now = static_cast<int64_t>(std::time(nullptr));
      auto first = std::upper_bound(log_.begin(), log_.end(), seen,
                                    [](uint64_t g, const Change& c) { return g < c.gen; });
      std::set<std::pair<const Table*, std::string>> done;
      for (auto it = log_.end(); it != first;) {
        --it;
        if (!matches(it->table->def->name) || !done.insert({it->table, it->ref}).second) continue;
        if (it->deleted) {
          if (it->created <= token) b.events.push_back({it->gen, now, it->table->def->name, "del", it->ref, it->uuid, {}});
          continue;
        }
        auto o = it->table->objects.find(it->ref);
        if (o != it->table->objects.end()) b.events.push_back(event_for(*it->table, it->ref, o->second, token, now));
      }
      seen = generation_;
      // An earlier pass found nothing for us before `seen`: the events are
      // only in the newer part, but the objects must be re-read as a whole.
    }
    if (!b.events.empty() || waits_ended_ || std::chrono::steady_clock::now() >= deadline) {
      std::sort(b.events.begin(), b.events.end(), [](const Event& a, const Event& c) { return a.id < c.id; });
      return b;
    }
    changed_.wait_until(lk, deadline);
  }
}

void SqliteStore::end_waits() {
  std::unique_lock lk(mu_);  // a waiter checks the flag under the lock: no lost wake-up
  waits_ended_ = true;
  notify_locked();
}

void SqliteStore::notify_locked() {
  changed_.notify_all();
  if (listener_) listener_();
}

void SqliteStore::set_change_listener(std::function<void()> listener) {
  std::unique_lock lk(mu_);
  listener_ = std::move(listener);
}

bool SqliteStore::changed_after(const std::set<std::string>& classes, uint64_t seen) const {
  std::shared_lock lk(mu_);
  if (generation_ <= seen) return false;
  if (seen < log_floor_) return true;  // the log no longer reaches back that far
  bool all = classes.count("*") != 0;
  std::set<std::string> wanted;
  for (const auto& c : classes) wanted.insert(lower(c));
  // Newest first: only what came after `seen` is looked at.
  for (auto it = log_.rbegin(); it != log_.rend() && it->gen > seen; ++it)
    if (all || wanted.count(lower(it->table->def->name))) return true;
  return false;
}

std::optional<std::string> SqliteStore::get_setting(const std::string& key) const {
  std::shared_lock lk(mu_);
  Stmt st(db_, "SELECT value FROM settings WHERE key = ?");
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) == SQLITE_ROW) return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
  return std::nullopt;
}

void SqliteStore::put_setting(const std::string& key, const std::string& value) {
  std::unique_lock lk(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)");
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw ApiError(errors::INTERNAL_ERROR, {sqlite3_errmsg(db_)});
}

void SqliteStore::erase_setting(const std::string& key) {
  std::unique_lock lk(mu_);
  Stmt st(db_, "DELETE FROM settings WHERE key = ?");
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw ApiError(errors::INTERNAL_ERROR, {sqlite3_errmsg(db_)});
}

std::vector<std::pair<std::string, std::string>> SqliteStore::settings_with_prefix(const std::string& prefix) const {
  std::shared_lock lk(mu_);
  // substr() rather than LIKE: keys may hold '%' or '_'.
  Stmt st(db_, "SELECT key, value FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key");
  sqlite3_bind_int(st.s, 1, static_cast<int>(prefix.size()));
  sqlite3_bind_text(st.s, 2, prefix.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::pair<std::string, std::string>> out;
  while (sqlite3_step(st.s) == SQLITE_ROW)
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)),
                     reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1)));
  return out;
}

}  // namespace vmstack::model
