// Assembles the datamodel from the declarations in classes/ and generates
// each class's accessor messages from its fields, as xapi's IDL does
// (datamodel_utils.ml): get_record, get_all, get_all_records, get_by_uuid,
// get_by_name_label, get_<field>, and for RW fields set_<field>,
// add_to_/remove_from_<map>, add_/remove_<set> — unless the class declares a
// message of that name itself (a setter with checks).
#include "model/datamodel.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "core/error.h"
#include "core/strings.h"
#include "model/declare.h"

namespace vmstack::model {

namespace {

using namespace types;

Message generated(const ClassDef& c, std::string name, std::string doc, Impl impl, const Field* f = nullptr) {
  Message m;
  m.cls = c.name;
  m.name = std::move(name);
  m.doc = std::move(doc);
  m.impl = impl;
  m.field = f;
  m.async = false;  // xapi offers no Async. form of the generated accessors
  return m;
}

Param self_param(const ClassDef& c) { return {"self", ref(c.name), "reference to the object", std::nullopt}; }

// The accessors of one class, skipping names the class declared itself.
void generate_accessors(ClassDef& c) {
  std::vector<Message> gen;
  auto add = [&](Message m) {
    if (!c.message(m.name)) gen.push_back(std::move(m));
  };
  {
    auto m = generated(c, "get_record", "Get a record containing the current state of the given " + c.name + ".",
                       Impl::get_record);
    m.params = {self_param(c)};
    m.result = record(c.name);
    m.errors = {"HANDLE_INVALID"};
    add(std::move(m));
  }
  if (c.get_all) {
    auto all = generated(c, "get_all", "Return a list of all the " + c.name + "s known to the system.", Impl::get_all);
    all.result = set_ref(c.name);
    add(std::move(all));
    auto records = generated(c, "get_all_records",
                             "Return a map of " + c.name + " references to " + c.name + " records.",
                             Impl::get_all_records);
    records.result = map_of(c.name);
    add(std::move(records));
  }
  if (c.field("uuid")) {
    auto m = generated(c, "get_by_uuid", "Get a reference to the " + c.name + " instance with the specified UUID.",
                       Impl::get_by_uuid);
    m.params = {{"uuid", str(), "UUID of object to return", std::nullopt}};
    m.result = ref(c.name);
    m.errors = {"UUID_INVALID"};
    add(std::move(m));
  }
  if (c.has_name_label()) {
    auto m = generated(c, "get_by_name_label", "Get all the " + c.name + " instances with the given label.",
                       Impl::get_by_name_label);
    m.params = {{"label", str(), "label of object to return", std::nullopt}};
    m.result = set_ref(c.name);
    add(std::move(m));
  }
  for (const auto& f : c.fields) {
    {
      auto m = generated(c, "get_" + f.name, "Get the " + f.name + " field of the given " + c.name + ".",
                         Impl::get_field, &f);
      m.params = {self_param(c)};
      m.result = f.type;
      m.errors = {"HANDLE_INVALID"};
      add(std::move(m));
    }
    if (f.qual != Qual::RW) continue;
    {
      auto m = generated(c, "set_" + f.name, "Set the " + f.name + " field of the given " + c.name + ".",
                         Impl::set_field, &f);
      m.params = {self_param(c), {"value", f.type, "New value to set", std::nullopt}};
      m.errors = {"HANDLE_INVALID", "FIELD_TYPE_ERROR", "INVALID_VALUE"};
      add(std::move(m));
    }
    if (f.is_map()) {
      Type elem{f.type.elem, f.type.target, Kind::String};
      auto m = generated(c, "add_to_" + f.name,
                         "Add the given key-value pair to the " + f.name + " field of the given " + c.name + ".",
                         Impl::add_to_map, &f);
      m.params = {self_param(c), {"key", str(), "Key to add", std::nullopt}, {"value", elem, "Value to add", std::nullopt}};
      m.errors = {"HANDLE_INVALID", "MAP_DUPLICATE_KEY"};
      add(std::move(m));
      m = generated(c, "remove_from_" + f.name,
                    "Remove the given key and its corresponding value from the " + f.name + " field of the given " +
                        c.name + ". If the key is not in that Map, then do nothing.",
                    Impl::remove_from_map, &f);
      m.params = {self_param(c), {"key", str(), "Key to remove", std::nullopt}};
      m.errors = {"HANDLE_INVALID"};
      add(std::move(m));
    }
    if (f.is_set()) {
      Type elem{f.type.elem, f.type.target, Kind::String};
      auto m = generated(c, "add_" + f.name, "Add the given value to the " + f.name + " field of the given " + c.name +
                                                 ". If the value is already in that Set, then do nothing.",
                         Impl::add_to_set, &f);
      m.params = {self_param(c), {"value", elem, "New value to add", std::nullopt}};
      m.errors = {"HANDLE_INVALID"};
      add(std::move(m));
      m = generated(c, "remove_" + f.name, "Remove the given value from the " + f.name + " field of the given " + c.name +
                                               ". If the value is not in that Set, then do nothing.",
                    Impl::remove_from_set, &f);
      m.params = {self_param(c), {"value", elem, "Value to remove", std::nullopt}};
      m.errors = {"HANDLE_INVALID"};
      add(std::move(m));
    }
  }
  for (auto& m : gen) c.messages.push_back(std::move(m));
}

// Programming errors in the declarations stop the daemon at its first call
// to datamodel() (and fail the datamodel tests) rather than misbehave later.
void validate(const Datamodel& dm) {
  std::set<std::string> class_names;
  for (const auto& c : dm.classes) {
    if (!class_names.insert(c.name).second) throw std::logic_error("class declared twice: " + c.name);
    std::set<std::string> names;
    for (const auto& m : c.messages) {
      if (!names.insert(m.name).second) throw std::logic_error("message declared twice: " + m.wire_name());
      bool seen_default = false;
      for (const auto& p : m.params) {
        if (seen_default && !p.default_value)
          throw std::logic_error(m.wire_name() + ": a parameter without default follows one with a default");
        seen_default = seen_default || p.default_value.has_value();
      }
    }
  }
}

Datamodel build() {
  Datamodel dm;
  declare::declare_session(dm);
  declare::declare_host(dm);
  declare::declare_vm(dm);
  declare::declare_storage(dm);
  declare::declare_network(dm);
  declare::declare_metrics(dm);
  declare::declare_access(dm);
  declare::declare_message(dm);
  declare::declare_refused(dm);
  // Sessions, tasks and event registrations are per-daemon: no accessors
  // for event (it has no objects), generated ones for the rest.
  for (auto& c : dm.classes)
    if (c.stored) generate_accessors(c);
  validate(dm);
  return dm;
}

// Text the store can keep and give back whole: SQLite and the wire would
// cut a string at a NUL or mangle invalid UTF-8, so neither gets in.
bool clean_text(const std::string& s) { return s.find('\0') == std::string::npos && valid_utf8(s); }

// The refused value as an error can carry it: NUL as \0, bytes past ASCII as '?'.
std::string shown(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\0') out += "\\0";
    else if (static_cast<unsigned char>(c) >= 0x80) out += '?';
    else out += c;
  }
  return out;
}

ApiError bad_text(const std::string& what, const std::string& s) {
  return ApiError(errors::INVALID_VALUE, {what, shown(s)});
}

}  // namespace

size_t Message::required_params() const {
  size_t n = 0;
  for (const auto& p : params)
    if (!p.default_value) ++n;
  return n;
}

// As xapi's datamodel writes types: "VM ref", "enum vm_operations set",
// "(string -> string) map" (the conformance test compares them so).
std::string Type::to_string() const {
  auto scalar = [](Kind k, const std::string& t) -> std::string {
    switch (k) {
      case Kind::String: return "string";
      case Kind::Int: return "int";
      case Kind::Float: return "float";
      case Kind::Bool: return "bool";
      case Kind::DateTime: return "datetime";
      case Kind::Enum: return "enum " + t;
      case Kind::Ref: return t + " ref";
      case Kind::Record: return t + " record";
      case Kind::Set: return "string set";  // a map's value that is a set
      case Kind::Map: return "map";
      case Kind::Any: return "<object record>";  // event.snapshot
    }
    return "?";
  };
  switch (kind) {
    case Kind::Set: return scalar(elem, target) + " set";
    case Kind::Map:
      if (elem == Kind::Record) return "(" + target + " ref -> " + target + " record) map";
      if (key == Kind::Ref || key == Kind::Enum) return "(" + scalar(key, target) + " -> " + scalar(elem, "") + ") map";
      return "(" + scalar(key, "") + " -> " + scalar(elem, target) + ") map";
    default: return scalar(kind, target);
  }
}

const Field* ClassDef::field(std::string_view n) const {
  for (const auto& f : fields)
    if (f.name == n) return &f;
  return nullptr;
}

const Message* ClassDef::message(std::string_view n) const {
  for (const auto& m : messages)
    if (m.name == n) return &m;
  return nullptr;
}

const ClassDef* Datamodel::cls(std::string_view n) const {
  for (const auto& c : classes)
    if (c.name == n) return &c;
  return nullptr;
}

const ClassDef* Datamodel::cls_ci(std::string_view n) const {
  for (const auto& c : classes)
    if (iequal(c.name, n)) return &c;
  return nullptr;
}

const EnumDef* Datamodel::enumeration(std::string_view n) const {
  for (const auto& e : enums)
    if (e.name == n) return &e;
  return nullptr;
}

const Message* Datamodel::message(std::string_view wire) const {
  auto dot = wire.find('.');
  if (dot == std::string_view::npos) return nullptr;
  const ClassDef* c = cls(wire.substr(0, dot));
  return c ? c->message(wire.substr(dot + 1)) : nullptr;
}

Struct Datamodel::default_record(const ClassDef& c) const {
  Struct r;
  for (const auto& f : c.fields)
    if (!f.derived()) r[f.name] = f.default_value;
  return r;
}

Value Datamodel::coerce(const ClassDef& c, const Field& f, const Value& v) const {
  auto bad = [&](const Value& x) -> ApiError {
    return ApiError(errors::INVALID_VALUE, {c.name + "." + f.name, x.to_display()});
  };
  auto scalar = [&](Kind k, const std::string& target, const Value& x) -> Value {
    switch (k) {
      case Kind::String:
        if (!clean_text(x.as_string())) throw bad_text(c.name + "." + f.name, x.as_string());
        return x.as_string();
      case Kind::Int: return x.as_int();
      case Kind::Float: return x.as_double();
      case Kind::Bool: return x.as_bool();
      case Kind::DateTime: return x.as_datetime();
      case Kind::Ref: {
        const auto& s = x.as_string();
        if (!starts_with(s, "OpaqueRef:")) throw bad(x);
        return s;
      }
      case Kind::Enum: {
        const auto* e = enumeration(target);
        const auto& s = x.as_string();
        // Enums are matched case-insensitively, as xapi does, then stored in
        // their canonical spelling.
        if (e)
          for (const auto& val : e->values)
            if (iequal(val, s)) return val;
        throw bad(x);
      }
      case Kind::Set: {  // a map's value that is a string set (VM_metrics.VCPUs_flags)
        Array out;
        for (const auto& e : x.as_array()) {
          if (!clean_text(e.as_string())) throw bad_text(c.name + "." + f.name, e.as_string());
          out.push_back(e.as_string());
        }
        return out;
      }
      default: throw bad(x);
    }
  };
  try {
    switch (f.type.kind) {
      case Kind::Set: {
        Array out;
        for (const auto& e : v.as_array()) out.push_back(scalar(f.type.elem, f.type.target, e));
        return out;
      }
      case Kind::Map: {
        Struct out;
        for (const auto& [k, e] : v.as_struct()) {
          if (!clean_text(k)) throw bad_text(c.name + "." + f.name, k);
          // Enum keys (VM.blocked_operations) are values of the enum, in
          // its spelling; the values are then free strings.
          if (f.type.key == Kind::Enum) out[scalar(Kind::Enum, f.type.target, k).as_string()] = scalar(f.type.elem, "", e);
          else out[k] = scalar(f.type.elem, f.type.target, e);
        }
        return out;
      }
      default: return scalar(f.type.kind, f.type.target, v);
    }
  } catch (const ApiError& e) {
    if (e.code() == errors::INVALID_VALUE) throw;
    throw ApiError(errors::FIELD_TYPE_ERROR, {f.name});
  }
}

void Datamodel::coerce_in_place(const ClassDef& c, const Field& f, Value& v) const {
  auto fits = [&](Kind k, const Value& x) {
    switch (k) {
      case Kind::String: return x.is_string() && clean_text(x.as_string());
      case Kind::Int: return x.is_int();
      case Kind::Float: return x.is_double();
      case Kind::Bool: return x.is_bool();
      case Kind::DateTime: return x.is_datetime();
      default: return false;  // refs and enums are checked by coerce()
    }
  };
  if (f.type.kind == Kind::Map && f.type.key == Kind::Enum) {
    v = coerce(c, f, v);  // keys to check and respell
    return;
  }
  if (f.type.kind == Kind::Map && v.is_struct()) {
    for (auto& [k, e] : v.as_struct()) {
      if (!clean_text(k)) throw bad_text(c.name + "." + f.name, k);
      if (!fits(f.type.elem, e)) e = coerce(c, Field{f.name, {f.type.elem, f.type.target, Kind::String}, f.qual, {}, {}, {}}, e);
    }
    return;
  }
  if (f.type.kind == Kind::Set && v.is_array()) {
    for (auto& e : v.as_array())
      if (!fits(f.type.elem, e)) e = coerce(c, Field{f.name, {f.type.elem, f.type.target, Kind::String}, f.qual, {}, {}, {}}, e);
    return;
  }
  if (fits(f.type.kind, v)) return;
  v = coerce(c, f, v);
}

Value Datamodel::coerce(const Type& t, const std::string& what, const Value& v) const {
  auto type_error = [&]() -> ApiError { return ApiError(errors::FIELD_TYPE_ERROR, {what}); };
  // Parameters are stricter than xe's text: a bool is a bool (xapi refuses
  // "true" as a string); ints may come as decimal strings because XML-RPC's
  // <int> is 32-bit and XenAPI clients send int64 values as strings.
  auto scalar = [&](Kind k, const std::string& target, const Value& x) -> Value {
    switch (k) {
      case Kind::String:
      case Kind::Ref:
        if (!x.is_string()) throw type_error();
        if (!clean_text(x.as_string())) throw bad_text(what, x.as_string());
        return x;
      case Kind::Int:
        if (x.is_int()) return x;
        if (x.is_string()) {
          try {
            return x.as_int();
          } catch (const ApiError&) {
          }
        }
        throw type_error();
      case Kind::Float:
        if (x.is_double()) return x;
        if (x.is_int()) return static_cast<double>(x.as_int());
        if (x.is_string()) {
          try {
            return x.as_double();
          } catch (const ApiError&) {
          }
        }
        throw type_error();
      case Kind::Bool:
        if (!x.is_bool()) throw type_error();
        return x;
      case Kind::DateTime: {
        if (x.is_datetime()) return x;
        DateTime d;
        if (x.is_string() && DateTime::parse(x.as_string(), d)) return d;
        throw type_error();
      }
      case Kind::Enum: {
        if (!x.is_string()) throw type_error();
        if (const auto* e = enumeration(target))
          for (const auto& val : e->values)
            if (iequal(val, x.as_string())) return val;
        throw ApiError(errors::INVALID_VALUE, {what, x.as_string()});
      }
      case Kind::Record:
        if (!x.is_struct()) throw type_error();
        return x;
      case Kind::Any: return x;
      default: throw type_error();
    }
  };
  switch (t.kind) {
    case Kind::Set: {
      if (!v.is_array()) throw type_error();
      Array out;
      for (const auto& e : v.as_array()) out.push_back(scalar(t.elem, t.target, e));
      return out;
    }
    case Kind::Map: {
      if (!v.is_struct()) throw type_error();
      Struct out;
      for (const auto& [k, e] : v.as_struct()) {
        if (!clean_text(k)) throw bad_text(what, k);
        if (t.key == Kind::Enum) out[scalar(Kind::Enum, t.target, k).as_string()] = scalar(t.elem, "", e);
        else out[k] = scalar(t.elem, t.target, e);
      }
      return out;
    }
    default: return scalar(t.kind, t.target, v);
  }
}

const Datamodel& datamodel() {
  static const Datamodel dm = build();  // immutable after construction
  return dm;
}

std::string cli_name(std::string_view api) {
  std::string out(api);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string api_name_from_cli(std::string_view cli) {
  std::string out(cli);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

}  // namespace vmstack::model
