// The datamodel-driven argument coercion (src/model/datamodel.cpp): every
// message parameter and every field of the datamodel against any value a
// client can send. Input: a first line naming the target, "VM.start(start_paused)"
// for a parameter or "VM.other_config" for a field (anything else picks one
// by hash), then the value as JSON, or as an XML-RPC <value> if it starts
// with '<'. Checked: coercion gives a value of the declared type or an
// ApiError (FIELD_TYPE_ERROR / INVALID_VALUE), a coerced value coerces to
// itself, the in-place form agrees with coerce(), and the result encodes.
#include <functional>

#include "api/rpc.h"
#include "fuzz_util.h"
#include "model/datamodel.h"

using namespace vmstack;
using namespace vmstack::model;

namespace {

struct Target {
  std::string name;
  const ClassDef* cls = nullptr;
  const Field* field = nullptr;  // a field, or
  const Type* type = nullptr;    // a parameter's type
};

const std::vector<Target>& targets() {
  static const std::vector<Target> all = [] {
    std::vector<Target> t;
    for (const auto& c : datamodel().classes) {
      for (const auto& f : c.fields) t.push_back({c.name + "." + f.name, &c, &f, nullptr});
      for (const auto& m : c.messages)
        for (const auto& p : m.params) t.push_back({m.wire_name() + "(" + p.name + ")", &c, nullptr, &p.type});
    }
    return t;
  }();
  return all;
}

const Target& pick(const std::string& name) {
  for (const auto& t : targets())
    if (t.name == name) return t;
  return targets()[std::hash<std::string>()(name) % targets().size()];
}

// Is v of type t (as coerce promises)?
bool fits(const Type& t, Kind k, const Value& v) {
  switch (k) {
    case Kind::String: case Kind::Ref: return v.is_string();
    case Kind::Int: return v.is_int();
    case Kind::Float: return v.is_double();
    case Kind::Bool: return v.is_bool();
    case Kind::DateTime: return v.is_datetime();
    case Kind::Enum: {
      const EnumDef* e = datamodel().enumeration(t.target);
      return v.is_string() && e && std::count(e->values.begin(), e->values.end(), v.as_string()) == 1;
    }
    case Kind::Record: return v.is_struct();
    case Kind::Any: return true;
    case Kind::Set:
      if (!v.is_array()) return false;
      for (const auto& e : v.as_array())
        if (!fits(t, t.elem, e)) return false;
      return true;
    case Kind::Map:
      if (!v.is_struct()) return false;
      for (const auto& [k2, e] : v.as_struct())
        if (!fits(t, t.elem, e)) return false;
      return true;
  }
  return false;
}

std::optional<Value> decode(const std::string& text) {
  try {
    if (!text.empty() && text[0] == '<')
      return api::xmlrpc::parse_response("<methodResponse><params><param>" + text + "</param></params></methodResponse>").value;
    return api::jsonrpc::parse_response("{\"result\":" + text + "}").value;
  } catch (const ApiError&) {
    return std::nullopt;
  }
}

void expect_coercion_error(const ApiError& e) {
  FUZZ_CHECK(e.code() == errors::FIELD_TYPE_ERROR || e.code() == errors::INVALID_VALUE,
             "coerce threw " + e.code());
}

void encodes(const Value& v) {
  try {
    api::xmlrpc::format_response(api::RpcResult::success(v));
    api::RpcCall call;
    api::jsonrpc::format_response(call, api::RpcResult::success(v));
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.code() == errors::INTERNAL_ERROR, e.code());  // too deep to encode only
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in = fuzz::input(data, size);
  const size_t nl = in.find('\n');
  const Target& t = pick(in.substr(0, nl));
  std::optional<Value> v = decode(nl == std::string::npos ? std::string() : in.substr(nl + 1));
  if (!v) return 0;
  const Datamodel& dm = datamodel();
  if (t.type) {
    Value out;
    try {
      out = dm.coerce(*t.type, t.name, *v);
    } catch (const ApiError& e) {
      expect_coercion_error(e);
      return 0;
    }
    FUZZ_CHECK(fits(*t.type, t.type->kind, out), t.name + ": " + out.to_display());
    FUZZ_CHECK(fuzz::same(dm.coerce(*t.type, t.name, out), out), t.name + ": not idempotent");
    encodes(out);
    return 0;
  }
  std::optional<Value> out;
  try {
    out = dm.coerce(*t.cls, *t.field, *v);
  } catch (const ApiError& e) {
    expect_coercion_error(e);
  }
  Value in_place = *v;
  try {
    dm.coerce_in_place(*t.cls, *t.field, in_place);
    FUZZ_CHECK(out && fuzz::same(in_place, *out), t.name + ": coerce_in_place and coerce disagree");
  } catch (const ApiError& e) {
    expect_coercion_error(e);
    FUZZ_CHECK(!out, t.name + ": coerce_in_place refuses what coerce accepts");
  }
  if (!out) return 0;
  FUZZ_CHECK(fits(t.field->type, t.field->type.kind, *out), t.name + ": " + out->to_display());
  encodes(*out);
  return 0;
}
