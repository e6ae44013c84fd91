// The XenAPI datamodel, declared once. Every class and field the daemon knows
// is listed in datamodel.cpp; from that table come the SQLite schema, the RPC
// dispatch of get_/set_/get_record/get_all_records/get_by_uuid/
// get_by_name_label, xe's parameter tables and docs/api-reference.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/value.h"

namespace vmstack::model {

enum class Kind {
  String,
  Int,
  Float,
  Bool,
  DateTime,
  Enum,    // target = enum name
  Ref,     // target = class name
  Set,     // elem = element kind (String, Ref, Enum); target for Ref/Enum elems
  Map,     // string -> string (or -> enum for current_operations)
};

struct Type {
  Kind kind = Kind::String;
  std::string target;            // class (Ref) or enum name (Enum)
  Kind elem = Kind::String;      // Set element kind / Map value kind
  std::string to_string() const; // "string", "VM ref", "(VBD ref) Set", "(string -> string) Map"
};

enum class Qual {
  RO_runtime,      // only the daemon writes it
  RO_constructor,  // given at create time, read-only afterwards
  RW,              // has a set_<field>
};

struct Field {
  std::string name;   // API name: name_label, PV_kernel, other_config
  Type type;
  Qual qual = Qual::RO_runtime;
  Value default_value;
  std::string doc;
  // For derived one-to-many sets (VM.VBDs): the field of the other class that
  // points back here ("VM" of VBD). Not stored; computed from the index.
  std::string inverse_of;
  bool derived() const { return !inverse_of.empty(); }
  bool is_map() const { return type.kind == Kind::Map; }
  bool is_set() const { return type.kind == Kind::Set; }
};

struct EnumDef {
  std::string name;
  std::vector<std::string> values;
};

struct ClassDef {
  std::string name;       // "VM"
  std::string doc;
  std::string cli_prefix; // "vm" — xe's command prefix
  bool persistent = true; // false: not stored (session, task, event live in memory)
  bool stored = true;     // false: no objects at all (event is messages only)
  std::vector<Field> fields;

  const Field* field(std::string_view name) const;
  bool has_name_label() const { return field("name_label") != nullptr; }
};

struct Datamodel {
  std::vector<ClassDef> classes;
  std::vector<EnumDef> enums;

  const ClassDef* cls(std::string_view name) const;  // exact API name ("VM")
  const ClassDef* cls_ci(std::string_view name) const;  // case-insensitive (event.from uses "vm")
  const EnumDef* enumeration(std::string_view name) const;
  // A record with every stored field at its default (uuid filled by caller).
  Struct default_record(const ClassDef& c) const;
  // Checks `v` against field type; converts XML-RPC's string ints etc.
  // Throws ApiError FIELD_TYPE_ERROR / INVALID_VALUE.
  Value coerce(const ClassDef& c, const Field& f, const Value& v) const;
};

// The one, immutable, datamodel (built on first use).
const Datamodel& datamodel();

// XenAPI name -> xe's spelling: name_label -> name-label, PV_kernel ->
// PV-kernel, VCPUs_max -> VCPUs-max. And back.
std::string cli_name(std::string_view api_name);
std::string api_name_from_cli(std::string_view cli);

}  // namespace vmstack::model
