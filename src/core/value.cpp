#include "core/value.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "core/error.h"

namespace vmstack {

namespace {
[[noreturn]] void type_error(const char* want, const Value& v) {
  throw ApiError(errors::FIELD_TYPE_ERROR, {std::string("expected ") + want + ", got " + v.type_name()});
}
const Value& nil_value() {
  static const Value nil;  // immutable sentinel, not mutable state
  return nil;
}
}  // namespace

std::string DateTime::iso8601() const {
  // XenAPI's dateTime.iso8601 form has exactly four year digits. strftime's
  // %Y printed year 262 as "262", which no parser reads back (found by
  // fuzzing a request that dated something 0262). Times outside years
  // 0000..9999 cannot be written in this form: they are clamped to its ends.
  constexpr int64_t kFirst = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr int64_t kLast = 253402300799;   // 9999-12-31T23:59:59Z
  std::time_t t = static_cast<std::time_t>(std::clamp(epoch, kFirst, kLast));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];  // ample for any int fields; the clamp keeps them in range anyway
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

DateTime DateTime::now() { return DateTime{static_cast<int64_t>(std::time(nullptr))}; }

bool DateTime::parse(std::string_view s, DateTime& out) {
  // Accepts 20261123T10:58:15Z, 20261123T10:58:15 and 2026-11-23T10:58:15Z.
  std::string digits;
  for (char c : s) {
    if (c >= '0' && c <= '9') digits.push_back(c);
    else if (c != '-' && c != ':' && c != 'T' && c != 'Z' && c != '.') return false;
  }
  if (digits.size() < 14) return false;
  std::tm tm{};
  auto num = [&](size_t pos, size_t len) { return std::stoi(digits.substr(pos, len)); };
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(8, 2);
  tm.tm_min = num(10, 2);
  tm.tm_sec = num(12, 2);
  out.epoch = static_cast<int64_t>(timegm(&tm));
  return true;
}

bool Value::as_bool() const {
  if (auto p = std::get_if<bool>(&v_)) return *p;
  if (auto s = std::get_if<std::string>(&v_)) {
    if (*s == "true") return true;
    if (*s == "false") return false;
  }
  type_error("bool", *this);
}

int64_t Value::as_int() const {
  if (auto p = std::get_if<int64_t>(&v_)) return *p;
  if (auto s = std::get_if<std::string>(&v_)) {
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    if (ec == std::errc() && ptr == s->data() + s->size() && !s->empty()) return out;
  }
  type_error("int", *this);
}

double Value::as_double() const {
  if (auto p = std::get_if<double>(&v_)) return *p;
  if (auto p = std::get_if<int64_t>(&v_)) return static_cast<double>(*p);
  if (auto s = std::get_if<std::string>(&v_)) {
    try {
      size_t used = 0;
      double d = std::stod(*s, &used);
      if (used == s->size()) return d;
    } catch (const std::exception&) {
    }
  }
  type_error("float", *this);
}

const std::string& Value::as_string() const {
  if (auto p = std::get_if<std::string>(&v_)) return *p;
  type_error("string", *this);
}

DateTime Value::as_datetime() const {
  if (auto p = std::get_if<DateTime>(&v_)) return *p;
  if (auto s = std::get_if<std::string>(&v_)) {
    DateTime d;
    if (DateTime::parse(*s, d)) return d;
  }
  type_error("datetime", *this);
}

const Array& Value::as_array() const {
  if (auto p = std::get_if<Array>(&v_)) return *p;
  type_error("array", *this);
}
Array& Value::as_array() {
  if (is_nil()) v_ = Array{};
  if (auto p = std::get_if<Array>(&v_)) return *p;
  type_error("array", *this);
}
const Struct& Value::as_struct() const {
  if (auto p = std::get_if<Struct>(&v_)) return *p;
  type_error("struct", *this);
}
Struct& Value::as_struct() {
  if (is_nil()) v_ = Struct{};
  if (auto p = std::get_if<Struct>(&v_)) return *p;
  type_error("struct", *this);
}

const Value& Value::operator[](std::string_view key) const {
  auto p = std::get_if<Struct>(&v_);
  if (!p) return nil_value();
  auto it = p->find(std::string(key));
  return it == p->end() ? nil_value() : it->second;
}

Value& Value::operator[](const std::string& key) { return as_struct()[key]; }

const char* Value::type_name() const {
  static constexpr const char* names[] = {"nil", "bool", "int", "float", "string", "datetime", "array", "struct"};
  return names[v_.index()];
}

std::string Value::to_display() const {
  struct Visitor {
    std::string operator()(std::monostate) const { return "<not in database>"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", d);
      return buf;
    }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const DateTime& t) const { return t.iso8601(); }
    std::string operator()(const Array& a) const {
      std::string out;
      for (const auto& v : a) {
        if (!out.empty()) out += "; ";
        out += v.to_display();
      }
      return out;
    }
    std::string operator()(const Struct& s) const {
      std::string out;
      for (const auto& [k, v] : s) {
        if (!out.empty()) out += "; ";
        out += k + ": " + v.to_display();
      }
      return out;
    }
  };
  return std::visit(Visitor{}, v_);
}

}  // namespace vmstack
