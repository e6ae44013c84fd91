// XML-RPC codec in xapi's dialect: strings and 64-bit ints go out as bare
// <value>text</value> (xapi encodes `int` as decimal strings), booleans as
// 1/0, and every response is wrapped in the {Status, Value|ErrorDescription}
// struct. Decoding accepts every standard XML-RPC type.
#include <pugixml.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "api/rpc.h"
#include "api/wire_util.h"
#include "api/xmlrpc_scan.h"

namespace vmstack::api::xmlrpc {

namespace {

using detail::kMaxDepth;

[[noreturn]] void fail(std::string expected, std::string received) {
  throw ApiError(wire_errors::XMLRPC_UNMARSHAL_FAILURE, {std::move(expected), std::move(received)});
}

// ---------- encoding ----------

void write_value(std::string& out, const Value& v, int depth);

void write_value(std::string& out, const Value& v, int depth) {
  if (depth > kMaxDepth) throw ApiError(errors::INTERNAL_ERROR, {"value nested too deeply to encode"});
  switch (v.storage().index()) {
    case 0: out.append("<value><nil/></value>"); break;
    case 1: out.append(v.as_bool() ? "<value><boolean>1</boolean></value>" : "<value><boolean>0</boolean></value>"); break;
    case 2:
      out.append("<value>");
      detail::append_int(out, std::get<int64_t>(v.storage()));
      out.append("</value>");
      break;
    case 3:
      out.append("<value><double>");
      detail::append_double(out, std::get<double>(v.storage()), false);
      out.append("</double></value>");
      break;
    case 4:
      out.append("<value>");
      detail::append_xml_escaped(out, std::get<std::string>(v.storage()));
      out.append("</value>");
      break;
    case 5:
      out.append("<value><dateTime.iso8601>");
      out.append(std::get<DateTime>(v.storage()).iso8601());
      out.append("</dateTime.iso8601></value>");
      break;
    case 6:
      out.append("<value><array><data>");
      for (const auto& e : std::get<Array>(v.storage())) write_value(out, e, depth + 1);
      out.append("</data></array></value>");
      break;
    case 7:
      out.append("<value><struct>");
      for (const auto& [k, e] : std::get<Struct>(v.storage())) {
        out.append("<member><name>");
        detail::append_xml_escaped(out, k);
        out.append("</name>");
        write_value(out, e, depth + 1);
        out.append("</member>");
      }
      out.append("</struct></value>");
      break;
  }
}

// ---------- decoding ----------

std::string describe(const pugi::xml_node& n) {
  switch (n.type()) {
    case pugi::node_null: return "nothing";
    case pugi::node_element: return std::string("<") + n.name() + ">";
    case pugi::node_pcdata:
    case pugi::node_cdata: {
      std::string t = n.value();
      if (t.size() > 40) t = t.substr(0, 40) + "...";
      return "text '" + t + "'";
    }
    default: return "unexpected node";
  }
}

bool is_blank(const char* s) {
  for (; *s; ++s)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
  return true;
}

// The concatenated character data of a leaf element; child elements are an error.
std::string text_of(const pugi::xml_node& n) {
  auto first = n.first_child();
  if (!first) return {};
  // Fast path: a single text child (the overwhelmingly common case).
  if (!first.next_sibling() && (first.type() == pugi::node_pcdata || first.type() == pugi::node_cdata))
    return first.value();
  std::string out;
  for (auto c = first; c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out.append(c.value());
    else if (c.type() == pugi::node_element) fail(std::string("text in <") + n.name() + ">", describe(c));
  }
  return out;
}

// The single element child of `n` (ignoring whitespace, comments, PIs).
pugi::xml_node only_element(const pugi::xml_node& n, const char* expected) {
  pugi::xml_node found;
  for (auto c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) {
      if (found) fail(std::string("a single ") + expected + " in <" + n.name() + ">", describe(c));
      found = c;
    } else if ((c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) && !is_blank(c.value())) {
      fail(std::string(expected) + " in <" + n.name() + ">", describe(c));
    }
  }
  if (!found) fail(std::string(expected) + " in <" + n.name() + ">", "nothing");
  if (std::strcmp(expected, "element") != 0 && std::strcmp(found.name(), expected) != 0)
    fail(std::string("<") + expected + ">", describe(found));
  return found;
}

Value parse_value(const pugi::xml_node& value, int depth);

Value parse_typed(const pugi::xml_node& t, int depth) {
  const char* name = t.name();
  // Containers first: they are what a XenAPI response mostly consists of.
  if (!std::strcmp(name, "struct")) {
    Struct s;
    for (auto m = t.first_child(); m; m = m.next_sibling()) {
      if (m.type() == pugi::node_element) {
        if (std::strcmp(m.name(), "member") != 0) fail("<member> in <struct>", describe(m));
        pugi::xml_node n, v;
        for (auto c = m.first_child(); c; c = c.next_sibling()) {
          if (c.type() != pugi::node_element) continue;
          if (!std::strcmp(c.name(), "name") && !n) n = c;
          else if (!std::strcmp(c.name(), "value") && !v) v = c;
          else fail("<name> and <value> in <member>", describe(c));
        }
        if (!n) fail("<name> in <member>", "nothing");
        if (!v) fail("<value> in <member>", "nothing");
        // Members usually arrive sorted (map order), so the end hint makes
        // this O(1); a duplicate name: last wins.
        s.insert_or_assign(s.end(), text_of(n), parse_value(v, depth + 1));
      } else if ((m.type() == pugi::node_pcdata || m.type() == pugi::node_cdata) && !is_blank(m.value())) {
        fail("<member> in <struct>", describe(m));
      }
    }
    return Value(std::move(s));
  }
  if (!std::strcmp(name, "array")) {
    auto data = only_element(t, "data");
    Array a;
    for (auto c = data.first_child(); c; c = c.next_sibling()) {
      if (c.type() == pugi::node_element) {
        if (std::strcmp(c.name(), "value") != 0) fail("<value> in <data>", describe(c));
        a.push_back(parse_value(c, depth + 1));
      } else if ((c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) && !is_blank(c.value())) {
        fail("<value> in <data>", describe(c));
      }
    }
    return Value(std::move(a));
  }
  if (!std::strcmp(name, "string")) return Value(text_of(t));
  if (!std::strcmp(name, "int") || !std::strcmp(name, "i4") || !std::strcmp(name, "i8")) {
    int64_t i = 0;
    std::string s = text_of(t);
    if (!detail::parse_int(s, i)) fail("an integer", "'" + s + "'");
    return Value(i);
  }
  if (!std::strcmp(name, "boolean")) {
    std::string s = text_of(t);
    if (s == "1" || s == "true") return Value(true);
    if (s == "0" || s == "false") return Value(false);
    fail("a boolean (0 or 1)", "'" + s + "'");
  }
  if (!std::strcmp(name, "double")) {
    double d = 0;
    std::string s = text_of(t);
    if (!detail::parse_double(s, d)) fail("a double", "'" + s + "'");
    return Value(d);
  }
  if (!std::strcmp(name, "dateTime.iso8601")) {
    DateTime dt;
    std::string s = text_of(t);
    if (!detail::parse_xmlrpc_datetime(s, dt)) fail("a dateTime.iso8601 (e.g. 20261123T10:58:15Z)", "'" + s + "'");
    return Value(dt);
  }
  if (!std::strcmp(name, "base64")) {
    std::string s = text_of(t), out;
    if (!detail::decode_base64(s, out)) fail("base64 data", "'" + s.substr(0, 40) + "'");
    return Value(std::move(out));
  }
  if (!std::strcmp(name, "nil")) return Value();
  fail("open_tag(int/i8/i4/boolean/double/string/dateTime.iso8601/base64/array/struct/nil)", describe(t));
}

// <value> contents: a typed element, or bare text meaning string.
Value parse_value(const pugi::xml_node& value, int depth) {
  if (depth > kMaxDepth) fail("nesting depth <= " + std::to_string(kMaxDepth), "deeper nesting");
  auto first = value.first_child();
  if (!first) return Value(std::string());  // <value/>: the empty string
  if (!first.next_sibling()) {  // fast paths: bare text, or just the type element
    auto t = first.type();
    if (t == pugi::node_pcdata || t == pugi::node_cdata) return Value(std::string(first.value()));
    if (t == pugi::node_element) return parse_typed(first, depth);
  }
  pugi::xml_node typed;
  bool has_text = false;
  for (auto c = first; c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) {
      if (typed) fail("a single type element in <value>", describe(c));
      typed = c;
    } else if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
      if (!is_blank(c.value()) || value.first_child() == value.last_child()) has_text = true;
    }
  }
  if (typed) {
    if (has_text) fail("either text or a type element in <value>", "both");
    return parse_typed(typed, depth);
  }
  return Value(text_of(value));
}

constexpr unsigned kParseFlags = pugi::parse_escapes | pugi::parse_cdata | pugi::parse_eol | pugi::parse_ws_pcdata_single;

pugi::xml_node load(pugi::xml_document& doc, const std::string& body, const char* root) {
  auto res = doc.load_buffer(body.data(), body.size(), kParseFlags, pugi::encoding_utf8);
  if (!res) fail(std::string("well-formed XML <") + root + ">",
                 std::string(res.description()) + " at offset " + std::to_string(res.offset));
  auto el = doc.document_element();
  if (!el) fail(std::string("<") + root + ">", "nothing");
  if (std::strcmp(el.name(), root) != 0) fail(std::string("<") + root + ">", describe(el));
  return el;
}

std::string error_string(const Value& v) { return v.is_string() ? v.as_string() : v.to_display(); }

}  // namespace

RpcCall parse_request(const std::string& body) {
  try {
    pugi::xml_document doc;
    auto call = load(doc, body, "methodCall");
    RpcCall out;
    pugi::xml_node name, params;
    for (auto c = call.first_child(); c; c = c.next_sibling()) {
      if (c.type() == pugi::node_element) {
        if (!std::strcmp(c.name(), "methodName") && !name) name = c;
        else if (!std::strcmp(c.name(), "params") && !params) params = c;
        else fail("<methodName> or <params> in <methodCall>", describe(c));
      } else if ((c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) && !is_blank(c.value())) {
        fail("<methodName> in <methodCall>", describe(c));
      }
    }
    if (!name) fail("<methodName>", "nothing");
    out.method = text_of(name);
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!out.method.empty() && ws(out.method.back())) out.method.pop_back();
    std::size_t lead = 0;
    while (lead < out.method.size() && ws(out.method[lead])) ++lead;
    out.method.erase(0, lead);
    if (out.method.empty()) fail("a method name", "an empty <methodName>");
    if (params) {
      for (auto p = params.first_child(); p; p = p.next_sibling()) {
        if (p.type() == pugi::node_element) {
          if (std::strcmp(p.name(), "param") != 0) fail("<param> in <params>", describe(p));
          out.params.push_back(parse_value(only_element(p, "value"), 0));
        } else if ((p.type() == pugi::node_pcdata || p.type() == pugi::node_cdata) && !is_blank(p.value())) {
          fail("<param> in <params>", describe(p));
        }
      }
    }
    return out;
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    fail("a valid XML-RPC request", e.what());
  }
}

void append_response(std::string& out, const RpcResult& r) {
  out.append("<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>");
  if (r.ok) {
    out.append("<member><name>Status</name><value>Success</value></member><member><name>Value</name>");
    write_value(out, r.value, 1);
    out.append("</member>");
  } else {
    out.append(
        "<member><name>Status</name><value>Failure</value></member>"
        "<member><name>ErrorDescription</name><value><array><data>");
    for (const auto& s : r.error_description) {
      out.append("<value>");
      detail::append_xml_escaped(out, s);
      out.append("</value>");
    }
    out.append("</data></array></value></member>");
  }
  out.append("</struct></value></param></params></methodResponse>\n");
}

std::string format_response(const RpcResult& r) {
  std::string out;
  out.reserve(512);
  append_response(out, r);
  return out;
}

std::string format_request(const std::string& method, const Array& params) {
  std::string out;
  out.reserve(256);
  out.append("<?xml version=\"1.0\"?><methodCall><methodName>");
  detail::append_xml_escaped(out, method);
  out.append("</methodName><params>");
  for (const auto& p : params) {
    out.append("<param>");
    write_value(out, p, 0);
    out.append("</param>");
  }
  out.append("</params></methodCall>\n");
  return out;
}

namespace {

// The XenAPI envelope around a response's value (or a plain value).
RpcResult from_envelope(Value v) {
  if (!v.is_struct()) return RpcResult::success(std::move(v));
  const Value& status = v["Status"];
  if (status.is_string() && status.as_string() == "Success" && v.as_struct().count("Value"))
    return RpcResult::success(std::move(v.as_struct().at("Value")));
  if (status.is_string() && status.as_string() == "Failure") {
    RpcResult r;
    r.ok = false;
    const Value& ed = v["ErrorDescription"];
    if (ed.is_array())
      for (const auto& e : ed.as_array()) r.error_description.push_back(error_string(e));
    else if (!ed.is_nil())
      r.error_description.push_back(error_string(ed));
    if (r.error_description.empty()) fail("a non-empty ErrorDescription", "an empty one");
    return r;
  }
  RpcResult plain;  // not a XenAPI envelope: the value itself
  plain.value = std::move(v);
  return plain;
}

}  // namespace

RpcResult parse_response_dom(const std::string& body) {
  try {
    pugi::xml_document doc;
    auto resp = load(doc, body, "methodResponse");
    auto top = only_element(resp, "element");
    if (!std::strcmp(top.name(), "fault")) {
      Value f = parse_value(only_element(top, "value"), 0);
      RpcResult r;
      r.ok = false;
      r.error_description = {"XMLRPC_FAULT", error_string(f["faultCode"]), error_string(f["faultString"])};
      return r;
    }
    if (std::strcmp(top.name(), "params") != 0) fail("<params> or <fault>", describe(top));
    auto param = only_element(top, "param");
    return from_envelope(parse_value(only_element(param, "value"), 0));
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    fail("a valid XML-RPC response", e.what());
  }
}

RpcResult parse_response(const std::string& body) {
  if (auto v = scan_response_value(body)) return from_envelope(std::move(*v));
  return parse_response_dom(body);
}

}  // namespace vmstack::api::xmlrpc
