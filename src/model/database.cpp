#include "model/database.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/uuid.h"

namespace vmstack::model {

namespace {

using json = nlohmann::json;

// Sets and maps are stored as JSON text; their elements are strings (refs,
// enums, plain strings) in every declared field.
std::string to_json_text(const Value& v) {
  json j;
  if (v.is_array()) {
    j = json::array();
    for (const auto& e : v.as_array()) j.push_back(e.to_display());
  } else if (v.is_struct()) {
    j = json::object();
    for (const auto& [k, e] : v.as_struct()) j[k] = e.to_display();
  }
  return j.dump();
}

Value from_json_text(const Field& f, const char* text) {
  json j = json::parse(text ? text : "null", nullptr, false);
  if (f.is_set()) {
    Array a;
    if (j.is_array())
      for (const auto& e : j) a.emplace_back(e.is_string() ? e.get<std::string>() : e.dump());
    return a;
  }
  Struct s;
  if (j.is_object())
    for (const auto& [k, e] : j.items()) s[k] = e.is_string() ? e.get<std::string>() : e.dump();
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

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RAII for prepared statements.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
      throw ApiError(errors::INTERNAL_ERROR, {std::string("sqlite prepare: ") + sqlite3_errmsg(db)});
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
};

constexpr size_t kMaxDeletions = 4096;

}  // namespace

Database::Database(const std::string& path, const Datamodel& dm) : dm_(dm) {
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

Database::~Database() { sqlite3_close(db_); }

void Database::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw ApiError(errors::INTERNAL_ERROR, {"sqlite: " + msg + " in " + sql});
  }
}

void Database::create_schema() {
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

void Database::load() {
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

void Database::persist(const Table& t, const std::string& ref, const Object& o) {
  if (!t.def->persistent) return;
  std::string cols = "ref", marks = "?";
  std::vector<const Field*> fields;
  for (const auto& f : t.def->fields) {
    if (f.derived()) continue;
    cols += "," + quote_ident(f.name);
    marks += ",?";
    fields.push_back(&f);
  }
  Stmt st(db_, "INSERT OR REPLACE INTO " + quote_ident(t.def->name) + " (" + cols + ") VALUES (" + marks + ")");
  sqlite3_bind_text(st.s, 1, ref.c_str(), -1, SQLITE_TRANSIENT);
  int i = 2;
  for (const Field* f : fields) {
    auto it = o.fields.find(f->name);
    const Value& v = it == o.fields.end() ? f->default_value : it->second;
    switch (f->type.kind) {
      case Kind::Int: sqlite3_bind_int64(st.s, i, v.as_int()); break;
      case Kind::Bool: sqlite3_bind_int64(st.s, i, v.as_bool() ? 1 : 0); break;
      case Kind::DateTime: sqlite3_bind_int64(st.s, i, v.as_datetime().epoch); break;
      case Kind::Float: sqlite3_bind_double(st.s, i, v.as_double()); break;
      case Kind::Set:
      case Kind::Map: sqlite3_bind_text(st.s, i, to_json_text(v).c_str(), -1, SQLITE_TRANSIENT); break;
      default: sqlite3_bind_text(st.s, i, v.to_display().c_str(), -1, SQLITE_TRANSIENT); break;
    }
    ++i;
  }
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw ApiError(errors::INTERNAL_ERROR, {std::string("sqlite write: ") + sqlite3_errmsg(db_)});
}

void Database::unpersist(const Table& t, const std::string& ref) {
  if (!t.def->persistent) return;
  Stmt st(db_, "DELETE FROM " + quote_ident(t.def->name) + " WHERE ref = ?");
  sqlite3_bind_text(st.s, 1, ref.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_step(st.s);
}

Database::Table& Database::table(const std::string& cls) {
  auto it = tables_.find(cls);
  if (it == tables_.end()) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {cls});
  return it->second;
}
const Database::Table& Database::table(const std::string& cls) const {
  return const_cast<Database*>(this)->table(cls);
}

const Database::Object& Database::object(const Table& t, const std::string& ref) const {
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {t.def->name, ref});
  return it->second;
}

void Database::index_refs(const Table& t, const std::string& ref, const Struct& fields, bool add) {
  for (const auto& f : t.def->fields) {
    if (f.type.kind != Kind::Ref) continue;
    auto it = fields.find(f.name);
    if (it == fields.end() || !it->second.is_string()) continue;
    auto& bucket = back_refs_[t.def->name + "." + f.name][it->second.as_string()];
    if (add) bucket.insert(ref);
    else bucket.erase(ref);
  }
}

Struct Database::with_derived(const Table& t, const std::string& ref, const Object& o) const {
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

bool Database::exists(const std::string& cls, const std::string& ref) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  return t.objects.count(ref) != 0;
}

Struct Database::get_record(const std::string& cls, const std::string& ref) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  return with_derived(t, ref, object(t, ref));
}

Value Database::get_field(const std::string& cls, const std::string& ref, const std::string& field) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  const auto& o = object(t, ref);
  const Field* f = t.def->field(field);
  if (!f) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {cls + ".get_" + field});
  if (f->derived()) return with_derived(t, ref, o)[field];
  auto it = o.fields.find(field);
  return it == o.fields.end() ? f->default_value : it->second;
}

std::vector<std::string> Database::all(const std::string& cls) const {
  std::shared_lock lk(mu_);
  std::vector<std::string> out;
  for (const auto& [ref, o] : table(cls).objects) out.push_back(ref);
  return out;
}

std::map<std::string, Struct> Database::all_records(const std::string& cls) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  std::map<std::string, Struct> out;
  for (const auto& [ref, o] : t.objects) out.emplace(ref, with_derived(t, ref, o));
  return out;
}

std::string Database::ref_by_uuid(const std::string& cls, const std::string& uuid) const {
  std::shared_lock lk(mu_);
  const auto& t = table(cls);
  auto it = t.by_uuid.find(uuid);
  if (it == t.by_uuid.end()) throw ApiError(errors::UUID_INVALID, {cls, uuid});
  return it->second;
}

std::vector<std::string> Database::refs_by_name_label(const std::string& cls, const std::string& label) const {
  return find(cls, "name_label", label);
}

std::vector<std::string> Database::find(const std::string& cls, const std::string& field, const Value& value) const {
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

std::optional<std::string> Database::class_of(const std::string& ref) const {
  std::shared_lock lk(mu_);
  auto it = class_of_ref_.find(ref);
  if (it == class_of_ref_.end()) return std::nullopt;
  return it->second;
}

void Database::bump_locked(Object& o) { o.modified = ++generation_; }

std::string Database::create(const std::string& cls, Struct fields, std::string ref) {
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
  if (t.def->field("uuid")) {
    auto& u = o.fields["uuid"];
    if (!u.is_string() || u.as_string().empty()) u = make_uuid();
    if (t.by_uuid.count(u.as_string())) throw ApiError(errors::INVALID_VALUE, {cls + ".uuid", u.as_string()});
    t.by_uuid[u.as_string()] = ref;
  }
  bump_locked(o);
  o.created = o.modified;
  persist(t, ref, o);
  index_refs(t, ref, o.fields, true);
  class_of_ref_[ref] = cls;
  t.objects.emplace(ref, std::move(o));
  changed_.notify_all();
  return ref;
}

void Database::set_field(const std::string& cls, const std::string& ref, const std::string& field, Value v) {
  update(cls, ref, Struct{{field, std::move(v)}});
}

void Database::update(const std::string& cls, const std::string& ref, const Struct& changes) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {cls, ref});
  Object updated = it->second;
  for (const auto& [k, v] : changes) {
    const Field* f = t.def->field(k);
    if (!f || f->derived()) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {cls + ".set_" + k});
    updated.fields[k] = dm_.coerce(*t.def, *f, v);
  }
  bump_locked(updated);
  persist(t, ref, updated);  // before touching memory: a failed write loses nothing
  index_refs(t, ref, it->second.fields, false);
  index_refs(t, ref, updated.fields, true);
  it->second = std::move(updated);
  changed_.notify_all();
}

void Database::destroy(const std::string& cls, const std::string& ref) {
  std::unique_lock lk(mu_);
  auto& t = table(cls);
  auto it = t.objects.find(ref);
  if (it == t.objects.end()) throw ApiError(errors::HANDLE_INVALID, {cls, ref});
  unpersist(t, ref);
  index_refs(t, ref, it->second.fields, false);
  std::string uuid = it->second.fields["uuid"].is_string() ? it->second.fields["uuid"].as_string() : "";
  t.by_uuid.erase(uuid);
  class_of_ref_.erase(ref);
  t.objects.erase(it);
  deletions_.push_back({++generation_, cls, ref, uuid});
  if (deletions_.size() > kMaxDeletions) deletions_.pop_front();
  changed_.notify_all();
}

uint64_t Database::generation() const {
  std::shared_lock lk(mu_);
  return generation_;
}

EventBatch Database::events_from(const std::set<std::string>& classes, uint64_t token,
                                 std::chrono::milliseconds timeout) const {
  std::set<std::string> wanted;
  bool all = false;
  for (const auto& c : classes) {
    if (c == "*") all = true;
    else wanted.insert(lower(c));
  }
  auto matches = [&](const std::string& cls) { return all || wanted.count(lower(cls)); };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::shared_lock lk(mu_);
  for (;;) {
    EventBatch b;
    b.token = generation_;
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (const auto& [name, t] : tables_) {
      if (!matches(name)) continue;
      b.valid_ref_counts[name] = static_cast<int64_t>(t.objects.size());
      for (const auto& [ref, o] : t.objects) {
        if (o.modified <= token) continue;
        Event e;
        e.id = o.modified;
        e.timestamp = now;
        e.cls = name;
        e.operation = o.created > token ? "add" : "mod";
        e.ref = ref;
        auto u = o.fields.find("uuid");
        if (u != o.fields.end()) e.obj_uuid = u->second.to_display();
        e.snapshot = with_derived(t, ref, o);
        b.events.push_back(std::move(e));
      }
    }
    for (const auto& d : deletions_) {
      if (d.gen <= token || !matches(d.cls)) continue;
      b.events.push_back({d.gen, now, d.cls, "del", d.ref, d.uuid, {}});
    }
    if (!b.events.empty() || waits_ended_ || std::chrono::steady_clock::now() >= deadline) {
      std::sort(b.events.begin(), b.events.end(), [](const Event& a, const Event& c) { return a.id < c.id; });
      return b;
    }
    changed_.wait_until(lk, deadline);
  }
}

void Database::end_event_waits() {
  {
    std::unique_lock lk(mu_);  // a waiter checks the flag under the lock: no lost wake-up
    waits_ended_ = true;
  }
  changed_.notify_all();
}

std::optional<std::string> Database::get_setting(const std::string& key) const {
  std::shared_lock lk(mu_);
  Stmt st(db_, "SELECT value FROM settings WHERE key = ?");
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) == SQLITE_ROW) return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
  return std::nullopt;
}

void Database::put_setting(const std::string& key, const std::string& value) {
  std::unique_lock lk(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)");
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw ApiError(errors::INTERNAL_ERROR, {sqlite3_errmsg(db_)});
}

}  // namespace vmstack::model
