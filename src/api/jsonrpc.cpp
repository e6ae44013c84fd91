// JSON-RPC codec as xapi speaks it on /jsonrpc. Requests: v1 ({method,
// params, id}) or v2 ({"jsonrpc":"2.0", ...}, params optional and possibly an
// object). Responses mirror the request's version:
//   v1 success {"result": v, "error": null, "id": id}
//   v1 failure {"result": null, "error": [CODE, params...], "id": id}
//   v2 success {"jsonrpc": "2.0", "result": v, "id": id}
//   v2 failure {"jsonrpc": "2.0", "error": {"code": 1, "message": CODE,
//               "data": [params...]}, "id": id}
// Decoding goes straight from nlohmann's SAX events into Value (no DOM).
#include <nlohmann/json.hpp>

#include <exception>

#include "api/rpc.h"
#include "api/wire_util.h"

namespace vmstack::api::jsonrpc {

namespace {

using detail::kMaxDepth;
using json = nlohmann::json;

[[noreturn]] void fail(std::string detail) {
  throw ApiError(wire_errors::JSONRPC_UNMARSHAL_FAILURE, {std::move(detail)});
}

// Builds a Value from SAX events, refusing nesting deeper than kMaxDepth.
class ValueBuilder {
 public:
  Value root;
  std::string error;

  bool null() { return put(Value()); }
  bool boolean(bool b) { return put(Value(b)); }
  bool number_integer(json::number_integer_t i) { return put(Value(static_cast<int64_t>(i))); }
  bool number_unsigned(json::number_unsigned_t u) {
    if (u > static_cast<json::number_unsigned_t>(INT64_MAX)) return put(Value(static_cast<double>(u)));
    return put(Value(static_cast<int64_t>(u)));
  }
  bool number_float(json::number_float_t d, const json::string_t&) { return put(Value(static_cast<double>(d))); }
  bool string(json::string_t& s) { return put(Value(std::move(s))); }
  bool binary(json::binary_t&) {
    error = "binary values are not supported";
    return false;
  }
  bool start_object(std::size_t) { return open(Value(Struct{})); }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return open(Value(Array{})); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) {
    error = std::string(ex.what()) + " (byte " + std::to_string(pos) + ")";
    return false;
  }

 private:
  // Places v in the current container (or as root); returns where it went.
  Value* place(Value v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    Value* top = stack_.back();
    if (top->is_array()) {
      auto& a = top->as_array();
      a.push_back(std::move(v));
      return &a.back();
    }
    // Keys usually arrive sorted (xapi and our encoder emit map order), so
    // hinting at the end makes the insert O(1); a duplicate key: last wins.
    auto& obj = top->as_struct();
    auto it = obj.insert_or_assign(obj.end(), std::move(key_), std::move(v));
    return &it->second;
  }
  bool put(Value v) {
    place(std::move(v));
    return true;
  }
  bool open(Value v) {
    if (static_cast<int>(stack_.size()) >= kMaxDepth) {
      error = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    // A container's address stays valid while it is on the stack: only the
    // innermost (top) container ever grows.
    stack_.push_back(place(std::move(v)));
    return true;
  }

  std::vector<Value*> stack_;
  std::string key_;
};

Value decode(const std::string& body) {
  ValueBuilder b;
  bool ok = false;
  try {
    ok = json::sax_parse(body.begin(), body.end(), &b);
  } catch (const std::exception& e) {
    fail(std::string("malformed JSON: ") + e.what());
  }
  if (!ok) fail("malformed JSON: " + (b.error.empty() ? std::string("parse error") : b.error));
  return std::move(b.root);
}

void write_value(std::string& out, const Value& v, int depth) {
  if (depth > kMaxDepth) throw ApiError(errors::INTERNAL_ERROR, {"value nested too deeply to encode"});
  switch (v.storage().index()) {
    case 0: out.append("null"); break;
    case 1: out.append(std::get<bool>(v.storage()) ? "true" : "false"); break;
    case 2: detail::append_int(out, std::get<int64_t>(v.storage())); break;
    case 3: detail::append_double(out, std::get<double>(v.storage()), true); break;
    case 4:
      out.push_back('"');
      detail::append_json_escaped(out, std::get<std::string>(v.storage()));
      out.push_back('"');
      break;
    case 5:
      out.push_back('"');
      out.append(std::get<DateTime>(v.storage()).iso8601());
      out.push_back('"');
      break;
    case 6: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : std::get<Array>(v.storage())) {
        if (!first) out.push_back(',');
        first = false;
        write_value(out, e, depth + 1);
      }
      out.push_back(']');
      break;
    }
    case 7: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : std::get<Struct>(v.storage())) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('"');
        detail::append_json_escaped(out, k);
        out.append("\":");
        write_value(out, e, depth + 1);
      }
      out.push_back('}');
      break;
    }
  }
}

void write_string(std::string& out, const std::string& s) {
  out.push_back('"');
  detail::append_json_escaped(out, s);
  out.push_back('"');
}

std::string error_string(const Value& v) { return v.is_string() ? v.as_string() : v.to_display(); }

}  // namespace

RpcCall parse_request(const std::string& body) {
  Value v = decode(body);
  if (!v.is_struct()) fail("request must be a JSON object");
  auto& obj = v.as_struct();
  RpcCall call;
  auto m = obj.find("method");
  if (m == obj.end()) fail("required field 'method' is missing");
  if (!m->second.is_string() || m->second.as_string().empty()) fail("invalid field 'method' in request body");
  call.method = std::move(m->second.as_string());
  auto ver = obj.find("jsonrpc");
  if (ver != obj.end()) {
    if (!ver->second.is_string() || ver->second.as_string() != "2.0") fail("invalid field 'jsonrpc' in request body");
    call.jsonrpc_v2 = true;
  }
  auto p = obj.find("params");
  if (p == obj.end() || p->second.is_nil()) {
    if (!call.jsonrpc_v2) fail("required field 'params' is missing");
  } else if (p->second.is_array()) {
    call.params = std::move(p->second.as_array());
  } else if (p->second.is_struct() && call.jsonrpc_v2) {
    call.params.push_back(std::move(p->second));
  } else {
    fail("invalid field 'params' in request body");
  }
  auto id = obj.find("id");
  if (id != obj.end()) {
    if (!id->second.is_nil() && !id->second.is_int() && !id->second.is_string())
      fail("invalid field 'id' in request body");
    call.id = std::move(id->second);
  }
  return call;
}

void append_response(std::string& out, const RpcCall& call, const RpcResult& r) {
  out.append(call.jsonrpc_v2 ? "{\"jsonrpc\":\"2.0\"," : "{");
  if (r.ok) {
    out.append("\"result\":");
    write_value(out, r.value, 1);
    if (!call.jsonrpc_v2) out.append(",\"error\":null");
  } else if (call.jsonrpc_v2) {
    out.append("\"error\":{\"code\":1,\"message\":");
    write_string(out, r.error_description.empty() ? std::string(errors::INTERNAL_ERROR) : r.error_description[0]);
    out.append(",\"data\":[");
    for (std::size_t i = 1; i < r.error_description.size(); ++i) {
      if (i > 1) out.push_back(',');
      write_string(out, r.error_description[i]);
    }
    out.append("]}");
  } else {
    out.append("\"result\":null,\"error\":[");
    for (std::size_t i = 0; i < r.error_description.size(); ++i) {
      if (i > 0) out.push_back(',');
      write_string(out, r.error_description[i]);
    }
    out.append("]");
  }
  out.append(",\"id\":");
  write_value(out, call.id, 1);
  out.append("}\n");
}

std::string format_response(const RpcCall& call, const RpcResult& r) {
  std::string out;
  out.reserve(512);
  append_response(out, call, r);
  return out;
}

std::string format_request(const std::string& method, const Array& params, int64_t id) {
  std::string out;
  out.reserve(256);
  out.append("{\"jsonrpc\":\"2.0\",\"method\":");
  write_string(out, method);
  out.append(",\"params\":[");
  bool first = true;
  for (const auto& p : params) {
    if (!first) out.push_back(',');
    first = false;
    write_value(out, p, 1);
  }
  out.append("],\"id\":");
  detail::append_int(out, id);
  out.append("}\n");
  return out;
}

RpcResult parse_response(const std::string& body) {
  Value v = decode(body);
  if (!v.is_struct()) fail("response must be a JSON object");
  auto& obj = v.as_struct();
  auto err = obj.find("error");
  if (err != obj.end() && !err->second.is_nil()) {
    RpcResult r;
    r.ok = false;
    const Value& e = err->second;
    if (e.is_array()) {
      for (const auto& x : e.as_array()) r.error_description.push_back(error_string(x));
    } else if (e.is_struct()) {
      const Value& msg = e["message"];
      if (!msg.is_string()) fail("error object without a 'message' string");
      r.error_description.push_back(msg.as_string());
      const Value& data = e["data"];
      if (data.is_array())
        for (const auto& x : data.as_array()) r.error_description.push_back(error_string(x));
      else if (!data.is_nil())
        r.error_description.push_back(error_string(data));
    } else {
      r.error_description.push_back(error_string(e));
    }
    if (r.error_description.empty()) fail("empty error in response");
    return r;
  }
  auto res = obj.find("result");
  if (res == obj.end()) fail("neither 'result' nor 'error' in response");
  return RpcResult::success(std::move(res->second));
}

}  // namespace vmstack::api::jsonrpc
