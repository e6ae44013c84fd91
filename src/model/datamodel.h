// The XenAPI datamodel, declared once: classes, their fields AND their
// messages (as xapi's IDL does in idl/datamodel*.ml). One file per group of
// classes under src/model/classes/ holds the declarations; from them come the
// SQLite schema, the RPC dispatch with typed argument unpacking, the
// lifecycle checks, xe's parameter tables and help, and docs/api-reference.md.
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
  Map,     // string -> elem (String, Enum, or Int)
  Record,  // target = class name: a whole record (constructors, get_record)
  Any,     // an untyped value (event.from's result, plugin arguments)
};

struct Type {
  Kind kind = Kind::String;
  std::string target;            // class (Ref, Record) or enum name (Enum)
  Kind elem = Kind::String;      // Set element kind / Map value kind (Set: a string set)
  Kind key = Kind::String;       // Map key kind: String, Int (VM_metrics.VCPUs_utilisation), Ref or Enum (of target)
  std::string to_string() const; // xapi's spelling: "string", "VM ref", "VBD ref set", "(string -> string) map"
};

// Constructors for types, used by the declarations and tests.
namespace types {
Type str();
Type i64();
Type flt();
Type boolean();
Type datetime();
Type any();
Type en(std::string e);
Type ref(std::string cls);
Type record(std::string cls);
Type set_ref(std::string cls);
Type set_str();
Type set_int();
Type set_en(std::string e);
Type map_ss();
Type map_se(std::string e);
Type map_of(std::string cls);  // (cls ref -> cls record) Map: get_all_records
Type map_sr(std::string cls);  // (string -> cls ref) Map
Type map_si();                 // (string -> int) Map
Type map_rs(std::string cls);  // (cls ref -> string) Map
Type map_es(std::string e);    // (enum e -> string) Map
Type map_if();                 // (int -> float) Map
Type map_ii();                 // (int -> int) Map
Type map_i_set();              // (int -> string set) Map
}  // namespace types

enum class Qual {
  RO_runtime,      // only the daemon writes it
  RO_constructor,  // given at create time, read-only afterwards
  RW,              // has a set_<field> (generated unless a message of that name is declared)
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

struct Param {
  std::string name;
  Type type;
  std::string doc;
  // xapi lets a client omit trailing parameters that were added to a message
  // after its first release (session.login_with_password's version and
  // originator); those carry the value the server assumes.
  std::optional<Value> default_value;
};

// How a message is implemented: declared messages are bound to a handler in
// ops/; the rest are generated from the fields and served generically.
enum class Impl {
  custom,
  get_record,
  get_all,
  get_all_records,
  get_by_uuid,
  get_by_name_label,
  get_field,
  set_field,
  add_to_map,
  remove_from_map,
  add_to_set,
  remove_from_set,
  // Declared because xapi has it, answered with OPERATION_NOT_ALLOWED and
  // the reason this host lacks it (Message::refusal), whatever the arguments.
  refused,
};

struct Message {
  std::string cls;   // "VM"
  std::string name;  // "start"
  std::string doc;
  std::vector<Param> params;    // after the session reference
  std::optional<Type> result;   // nullopt: void
  std::vector<std::string> errors;  // the XenAPI error codes it may raise
  bool session = true;          // takes a session reference first
  bool async = true;            // may be called as Async.<Class>.<name>
  // For VM lifecycle verbs: the vm_operations value (see model/lifecycle.h)
  // whose allowed power states and conflicts this message is checked
  // against, and that it records in current_operations while it runs.
  std::string operation;
  Impl impl = Impl::custom;
  const Field* field = nullptr;  // generated accessors: the field they serve
  std::string refusal;           // Impl::refused: why this host lacks it

  std::string wire_name() const { return cls + "." + name; }
  // Parameters without a default: the count xapi reports as expected in
  // MESSAGE_PARAMETER_COUNT_MISMATCH.
  size_t required_params() const;
};

struct ClassDef {
  std::string name;       // "VM"
  std::string doc;
  std::string cli_prefix; // "vm" — xe's command prefix
  bool persistent = true; // false: not stored on disk (session, task live in memory)
  bool stored = true;     // false: no objects at all (event is messages only)
  bool get_all = true;    // get_all, get_all_records generated (xapi: not for session)
  std::vector<Field> fields;
  std::vector<Message> messages;  // declared and generated, declared first

  const Field* field(std::string_view name) const;
  const Message* message(std::string_view name) const;
  bool has_name_label() const { return field("name_label") != nullptr; }
};

struct Datamodel {
  // Generated messages point at their fields: a copy would point into the
  // original, so the datamodel moves but never copies.
  Datamodel() = default;
  Datamodel(Datamodel&&) = default;
  Datamodel& operator=(Datamodel&&) = default;
  Datamodel(const Datamodel&) = delete;
  Datamodel& operator=(const Datamodel&) = delete;

  std::vector<ClassDef> classes;
  std::vector<EnumDef> enums;

  const ClassDef* cls(std::string_view name) const;     // exact API name ("VM")
  const ClassDef* cls_ci(std::string_view name) const;  // case-insensitive (event.from uses "vm")
  const EnumDef* enumeration(std::string_view name) const;
  // "VM.start" -> the message; nullptr if unknown.
  const Message* message(std::string_view wire_name) const;
  // A record with every stored field at its default (uuid filled by caller).
  Struct default_record(const ClassDef& c) const;
  // Checks `v` against field type; converts XML-RPC's string ints etc.
  // Throws ApiError FIELD_TYPE_ERROR [field] / INVALID_VALUE [field, value].
  Value coerce(const ClassDef& c, const Field& f, const Value& v) const;
  // The same, converting `v` where it stands: a value already of the right
  // type (a big map of strings, say) is checked without being copied.
  void coerce_in_place(const ClassDef& c, const Field& f, Value& v) const;
  // Checks `v` against a parameter's type (`what` names it in errors).
  // Throws FIELD_TYPE_ERROR [what] / INVALID_VALUE [what, value].
  Value coerce(const Type& t, const std::string& what, const Value& v) const;
};

// The one, immutable, datamodel (built on first use).
const Datamodel& datamodel();

// XenAPI name -> xe's spelling: name_label -> name-label, PV_kernel ->
// PV-kernel, VCPUs_max -> VCPUs-max. And back.
std::string cli_name(std::string_view api_name);
std::string api_name_from_cli(std::string_view cli);

// docs/api-reference.md, generated from the declarations (checked in; a
// test fails when the file is stale).
std::string api_reference_markdown(const Datamodel& dm = datamodel());

}  // namespace vmstack::model
