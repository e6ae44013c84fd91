// XenAPI values: the one dynamic type that crosses every layer (wire codecs,
// datamodel records, CLI output). Mirrors the XenAPI type system: string,
// int (64-bit), float, bool, datetime, set (array) and map/record (struct).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmstack {

// Seconds since the epoch, UTC. Kept distinct from int so codecs can emit
// XML-RPC dateTime.iso8601 and JSON "20261123T10:58:15Z" strings.
struct DateTime {
  int64_t epoch = 0;
  bool operator==(const DateTime&) const = default;
  std::string iso8601() const;  // "20261123T10:58:15Z" (XenAPI's form)
  static bool parse(std::string_view s, DateTime& out);
  static DateTime now();  // the wall clock, to the second
};

class Value;
using Array = std::vector<Value>;
using Struct = std::map<std::string, Value>;

class Value {
 public:
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::string, DateTime, Array, Struct>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(long i) : v_(int64_t{i}) {}
  Value(long long i) : v_(int64_t{i}) {}
  Value(unsigned i) : v_(int64_t{i}) {}
  Value(unsigned long i) : v_(static_cast<int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(DateTime t) : v_(t) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Struct s) : v_(std::move(s)) {}

  bool is_nil() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_datetime() const { return std::holds_alternative<DateTime>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_struct() const { return std::holds_alternative<Struct>(v_); }

  // Strict accessors: throw ApiError FIELD_TYPE_ERROR-style errors on mismatch
  // (see error.h) so a malformed request can never crash the daemon.
  bool as_bool() const;
  int64_t as_int() const;  // also accepts decimal strings (XenAPI sends int64 as strings in XML-RPC)
  double as_double() const;
  const std::string& as_string() const;
  DateTime as_datetime() const;
  const Array& as_array() const;
  const Struct& as_struct() const;
  Array& as_array();
  Struct& as_struct();

  // Lookup in a struct; returns nil Value when absent or not a struct.
  const Value& operator[](std::string_view key) const;
  Value& operator[](const std::string& key);  // converts nil to struct

  const Storage& storage() const { return v_; }
  const char* type_name() const;
  bool operator==(const Value& o) const { return v_ == o.v_; }

  // A human-readable rendering as xe prints it: strings bare, maps as
  // "k: v; k2: v2", sets as "a; b".
  std::string to_display() const;

 private:
  Storage v_;
};

}  // namespace vmstack
