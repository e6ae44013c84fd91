#include "model/declare.h"

#include <algorithm>
#include <stdexcept>

namespace vmstack::model {

namespace types {
Type str() { return {Kind::String, "", Kind::String}; }
Type i64() { return {Kind::Int, "", Kind::String}; }
Type flt() { return {Kind::Float, "", Kind::String}; }
Type boolean() { return {Kind::Bool, "", Kind::String}; }
Type datetime() { return {Kind::DateTime, "", Kind::String}; }
Type any() { return {Kind::Any, "", Kind::String}; }
Type en(std::string e) { return {Kind::Enum, std::move(e), Kind::String}; }
Type ref(std::string c) { return {Kind::Ref, std::move(c), Kind::String}; }
Type record(std::string c) { return {Kind::Record, std::move(c), Kind::String}; }
Type set_ref(std::string c) { return {Kind::Set, std::move(c), Kind::Ref}; }
Type set_str() { return {Kind::Set, "", Kind::String}; }
Type set_int() { return {Kind::Set, "", Kind::Int}; }
Type set_en(std::string e) { return {Kind::Set, std::move(e), Kind::Enum}; }
Type map_ss() { return {Kind::Map, "", Kind::String}; }
Type map_se(std::string e) { return {Kind::Map, std::move(e), Kind::Enum}; }
Type map_of(std::string c) { return {Kind::Map, std::move(c), Kind::Record}; }
Type map_sr(std::string c) { return {Kind::Map, std::move(c), Kind::Ref}; }
Type map_rs(std::string c) { return {Kind::Map, std::move(c), Kind::String, Kind::Ref}; }
Type map_es(std::string e) { return {Kind::Map, std::move(e), Kind::String, Kind::Enum}; }
Type map_si() { return {Kind::Map, "", Kind::Int}; }
Type map_if() { return {Kind::Map, "", Kind::Float, Kind::Int}; }
Type map_ii() { return {Kind::Map, "", Kind::Int, Kind::Int}; }
Type map_i_set() { return {Kind::Map, "", Kind::Set, Kind::Int}; }
}  // namespace types

namespace declare {

namespace {

Value default_for(const Type& t) {
  switch (t.kind) {
    case Kind::String: return std::string();
    case Kind::Int: return int64_t{0};
    case Kind::Float: return 0.0;
    case Kind::Bool: return false;
    case Kind::DateTime: return DateTime{0};
    case Kind::Enum: return std::string();
    case Kind::Ref: return std::string("OpaqueRef:NULL");
    case Kind::Set: return Array{};
    case Kind::Map: return Struct{};
    case Kind::Record: return Struct{};
    case Kind::Any: return Value();
  }
  return {};
}

Field mk(std::string name, Type t, Qual q, std::string doc, Value def) {
  Field f;
  f.name = std::move(name);
  f.default_value = def.is_nil() ? default_for(t) : std::move(def);
  f.type = std::move(t);
  f.qual = q;
  f.doc = std::move(doc);
  return f;
}

}  // namespace

Field ro(std::string n, Type t, std::string doc, Value def) {
  return mk(std::move(n), std::move(t), Qual::RO_runtime, std::move(doc), std::move(def));
}
Field rc(std::string n, Type t, std::string doc, Value def) {
  return mk(std::move(n), std::move(t), Qual::RO_constructor, std::move(doc), std::move(def));
}
Field rw(std::string n, Type t, std::string doc, Value def) {
  return mk(std::move(n), std::move(t), Qual::RW, std::move(doc), std::move(def));
}
Field inv(std::string n, std::string other_class, std::string other_field, std::string doc) {
  Field f = ro(std::move(n), set_ref(std::move(other_class)), std::move(doc));
  f.inverse_of = std::move(other_field);
  return f;
}

Field uuid() { return ro("uuid", str(), "Unique identifier/object reference"); }
Field name_label() { return rw("name_label", str(), "a human-readable name"); }
Field name_description() { return rw("name_description", str(), "a notes field containing human-readable description"); }
Field allowed_ops(std::string e) {
  return ro("allowed_operations", set_en(std::move(e)), "list of the operations allowed in this state");
}
Field current_ops(std::string e) {
  return ro("current_operations", map_se(std::move(e)),
            "links each of the running tasks using this object (by reference) to a current_operation enum");
}
Field other_config() { return rw("other_config", map_ss(), "additional configuration"); }
Field tags() { return rw("tags", set_str(), "user-specified tags for categorization purposes"); }

Msg::Msg(std::string name, std::string doc) {
  m_.name = std::move(name);
  m_.doc = std::move(doc);
}
Msg& Msg::param(Type t, std::string name, std::string doc) {
  m_.params.push_back({std::move(name), std::move(t), std::move(doc), std::nullopt});
  return *this;
}
Msg& Msg::param(Type t, std::string name, std::string doc, Value default_value) {
  m_.params.push_back({std::move(name), std::move(t), std::move(doc), std::move(default_value)});
  return *this;
}
Msg& Msg::returns(Type t) {
  m_.result = std::move(t);
  return *this;
}
Msg& Msg::errors(std::vector<std::string> codes) {
  m_.errors = std::move(codes);
  return *this;
}
Msg& Msg::no_session() {
  m_.session = false;
  return *this;
}
Msg& Msg::no_async() {
  m_.async = false;
  return *this;
}
Msg& Msg::operation(std::string op) {
  m_.operation = std::move(op);
  return *this;
}

ClassDef cls(std::string name, std::string doc, std::string cli_prefix, std::vector<Field> fields,
             std::vector<Message> messages) {
  ClassDef c;
  c.name = std::move(name);
  c.doc = std::move(doc);
  c.cli_prefix = std::move(cli_prefix);
  c.fields = std::move(fields);
  c.messages = std::move(messages);
  for (auto& m : c.messages) m.cls = c.name;
  return c;
}

void refused(Datamodel& dm, const std::string& cls, const std::string& reason, const std::vector<std::string>& names) {
  auto it = std::find_if(dm.classes.begin(), dm.classes.end(), [&](const ClassDef& c) { return c.name == cls; });
  if (it == dm.classes.end()) throw std::logic_error("refused: no class " + cls);
  for (const auto& n : names) {
    Message m;
    m.cls = cls;
    m.name = n;
    m.doc = "Not available on this host: " + reason + ".";
    m.errors = {"OPERATION_NOT_ALLOWED"};
    m.impl = Impl::refused;
    m.refusal = reason;
    it->messages.push_back(std::move(m));
  }
}

}  // namespace declare
}  // namespace vmstack::model
