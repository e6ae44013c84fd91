#include "cli/records.h"
#include "core/strings.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

constexpr const char* kNotInDatabase = "<not in database>";

std::string scalar(model::Kind kind, const std::string& enum_name, const model::ClassDef* target, const Value& v,
                   ObjectCache& objects) {
  if (v.is_nil()) return kNotInDatabase;
  switch (kind) {
    case model::Kind::Float:
      if (v.is_double()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", v.as_double());
        return buf;
      }
      return v.to_display();
    case model::Kind::Enum:
      // xe prints power states in lower case ("running"); other enums keep
      // the API's spelling (Disk, RW).
      return enum_name == "vm_power_state" ? lower(v.to_display()) : v.to_display();
    case model::Kind::Ref: {
      if (!v.is_string() || !target) return v.to_display();
      const Struct* r = objects.find(target->name, v.as_string());
      if (!r) return kNotInDatabase;
      return (*r).count("uuid") ? r->at("uuid").to_display() : v.as_string();
    }
    default:
      return v.to_display();
  }
}

// Splits "other-config:key" into ("other-config", "key").
std::pair<std::string, std::string> split_colon(const std::string& k) {
  auto c = k.find(':');
  if (c == std::string::npos) return {k, ""};
  return {k.substr(0, c), k.substr(c + 1)};
}

bool value_equal(const CliField& f, const std::string& shown, const std::string& wanted) {
  // Enums compare case-insensitively (power-state=Running works), like xapi.
  if (f.via == CliField::Via::Direct && f.field->type.kind == model::Kind::Enum) return lower(shown) == lower(wanted);
  return shown == wanted;
}

}  // namespace

const std::map<std::string, Struct>& ObjectCache::all(const std::string& cls) {
  auto it = cache_.find(cls);
  if (it != cache_.end()) return it->second;
  std::map<std::string, Struct> recs;
  Value v = session_.call(cls + ".get_all_records");
  // Moved, not copied: a copy of 100 VM records costs as much as parsing them.
  for (auto& [ref, rec] : v.as_struct()) recs.emplace(ref, std::move(rec.as_struct()));
  return cache_.emplace(cls, std::move(recs)).first->second;
}

const Struct* ObjectCache::find(const std::string& cls, const std::string& ref) {
  if (ref.empty() || ref == "OpaqueRef:NULL") return nullptr;
  try {
    const auto& m = all(cls);
    auto it = m.find(ref);
    return it == m.end() ? nullptr : &it->second;
  } catch (const ApiError&) {
    return nullptr;  // e.g. a class the daemon cannot list: show the raw value
  }
}

std::string ObjectCache::describe(const std::string& ref, const std::string& cls_hint) {
  if (ref.rfind("OpaqueRef:", 0) != 0) return ref;
  auto try_class = [&](const model::ClassDef& c) -> std::optional<std::string> {
    if (!c.stored) return std::nullopt;
    const Struct* r = find(c.name, ref);
    if (!r) return std::nullopt;
    std::string out = (*r).count("uuid") ? r->at("uuid").to_display() : ref;
    if (r->count("name_label")) out += " (" + r->at("name_label").to_display() + ")";
    return out;
  };
  const auto& dm = model::datamodel();
  if (const auto* c = dm.cls_ci(cls_hint)) {
    if (auto s = try_class(*c)) return *s;
  }
  // No hint: the classes an error is most likely about, cheapest first.
  for (const char* name : {"VM", "VDI", "SR", "VBD", "VIF", "network", "host", "task"}) {
    if (const auto* c = dm.cls(name))
      if (auto s = try_class(*c)) return *s;
  }
  return ref;
}

const Struct* source_record(const CliField& f, const Struct& record, ObjectCache& objects) {
  if (f.via != CliField::Via::Through) return &record;
  auto it = record.find(f.through->name);
  if (it == record.end() || !it->second.is_string()) return nullptr;
  return objects.find(f.target->name, it->second.as_string());
}

std::string display(const CliField& f, const Struct& record, ObjectCache& objects) {
  if (f.via == CliField::Via::Through) {
    const Struct* src = source_record(f, record, objects);
    if (!src) return kNotInDatabase;  // no guest report (yet): as xapi's xe shows it
    CliField direct = f;
    direct.via = CliField::Via::Direct;
    direct.target = nullptr;
    return display(direct, *src, objects);
  }
  auto it = record.find(f.field->name);
  if (it == record.end()) return kNotInDatabase;
  const Value& v = it->second;
  const auto& t = f.field->type;
  switch (f.via) {
    case CliField::Via::RefUuid:
      return scalar(model::Kind::Ref, "", f.target, v, objects);
    case CliField::Via::RefNameLabel: {
      const Struct* r = v.is_string() ? objects.find(f.target->name, v.as_string()) : nullptr;
      if (!r || !r->count("name_label")) return kNotInDatabase;
      return r->at("name_label").to_display();
    }
    case CliField::Via::Direct:
    case CliField::Via::Through:
      break;
  }
  if (t.kind == model::Kind::Set) {
    if (!v.is_array()) return v.to_display();
    std::string out;
    for (const auto& e : v.as_array()) {
      if (!out.empty()) out += "; ";
      out += scalar(t.elem, t.target, f.target, e, objects);
    }
    return out;
  }
  if (t.kind == model::Kind::Map) {
    if (!v.is_struct()) return v.to_display();
    std::string out;
    for (const auto& [k, e] : v.as_struct()) {
      if (!out.empty()) out += "; ";
      out += k + ": " + e.to_display();
    }
    return out;
  }
  return scalar(t.kind, t.target, f.target, v, objects);
}

void check_filter_key(const std::vector<CliField>& fields, const std::string& key) {
  if (find_field(fields, key)) return;
  auto [name, sub] = split_colon(key);
  const CliField* f = find_field(fields, name);
  if (!sub.empty() && f) {
    if (f->is_map()) return;
    if (f->is_set()) {
      if (sub != "contains") throw failure("Invalid syntax for set filtering (should be set-param:contains=key)");
      return;
    }
    throw failure("Field '" + f->name + "' is not a set or map");
  }
  throw failure("Unknown field '" + key + "'");
}

bool matches(const Struct& record, const std::vector<CliField>& fields, const Filter& flt, ObjectCache& objects) {
  bool negate = flt.value.rfind("/=", 0) == 0;
  std::string wanted = negate ? flt.value.substr(2) : flt.value;
  bool result;
  if (const CliField* exact = find_field(fields, flt.key)) {
    result = value_equal(*exact, display(*exact, record, objects), wanted);
  } else {
    auto [name, sub] = split_colon(flt.key);
    const CliField* f = find_field(fields, name);
    if (!f) throw failure("Unknown field '" + flt.key + "'");
    const Struct* src = source_record(*f, record, objects);
    auto it = src ? src->find(f->field->name) : record.end();
    const Value* v = !src || it == src->end() ? nullptr : &it->second;
    if (f->is_map()) {
      result = v && v->is_struct() && v->as_struct().count(sub) && v->as_struct().at(sub).to_display() == wanted;
    } else if (f->is_set()) {
      result = false;
      if (v && v->is_array()) {
        const auto& t = f->field->type;
        for (const auto& e : v->as_array())
          if (scalar(t.elem, t.target, f->target, e, objects) == wanted) result = true;
      }
    } else {
      throw failure("Field '" + f->name + "' is not a set or map");
    }
  }
  return negate ? !result : result;
}

std::vector<const ObjectCache::Entry*> select_cached(ObjectCache& objects, const model::ClassDef& cls,
                                                    const std::vector<CliField>& fields,
                                                    const std::vector<Filter>& filters) {
  for (const auto& f : filters) check_filter_key(fields, f.key);
  std::vector<const ObjectCache::Entry*> out;
  for (const auto& entry : objects.all(cls.name)) {
    bool ok = true;
    for (const auto& f : filters)
      if (!matches(entry.second, fields, f, objects)) {
        ok = false;
        break;
      }
    if (ok) out.push_back(&entry);
  }
  return out;
}

std::vector<Object> select(ObjectCache& objects, const model::ClassDef& cls, const std::vector<CliField>& fields,
                           const std::vector<Filter>& filters) {
  std::vector<Object> out;
  for (const auto* e : select_cached(objects, cls, fields, filters)) out.push_back({e->first, e->second});
  return out;
}

PrintedRecord print_record(const Struct& record, const std::vector<CliField>& fields, ObjectCache& objects,
                           const std::vector<std::string>* params) {
  PrintedRecord out;
  for (const auto& f : fields) {
    if (params && std::find(params->begin(), params->end(), f.name) == params->end()) continue;
    out.emplace_back(f.name + " " + f.qualifier(), display(f, record, objects));
  }
  return out;
}

bool is_std_param(const std::string& key) {
  static const char* const kStd[] = {"server",   "password", "port", "username", "minimal", "force",
                                     "multiple", "all",      "trace", "message-priority", "params", "passwordfile", "nossl", "debug"};
  for (const char* s : kStd)
    if (key == s) return true;
  return false;
}

}  // namespace vmstack::cli
