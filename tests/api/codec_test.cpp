#include <gtest/gtest.h>

#include <cmath>

#include "api/rpc.h"

using namespace vmstack;
using namespace vmstack::api;

namespace {

Value sample() {
  Struct inner{{"a", Value(Array{Value(1), Value("two"), Value(3.5)})}, {"empty_map", Value(Struct{})}};
  return Value(Struct{
      {"string", Value("hello")},
      {"empty", Value("")},
      {"spaces", Value("  ")},
      {"escapes", Value("a & b < c > d \"q\" 'apos' \t tab\nnewline\r\ncrlf")},
      {"unicode", Value("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC")},
      {"int", Value(int64_t{9007199254740993})},
      {"negative", Value(int64_t{-42})},
      {"max", Value(INT64_MAX)},
      {"min", Value(INT64_MIN)},
      {"double", Value(0.1)},
      {"big_double", Value(1.5e300)},
      {"whole_double", Value(3.0)},
      {"true", Value(true)},
      {"false", Value(false)},
      {"nil", Value()},
      {"when", Value(DateTime{1795431495})},
      {"array", Value(Array{Value(Array{}), Value(Array{Value("x")}), Value(Struct{{"k", Value("v")}})})},
      {"nested", Value(inner)},
      {"key with <&> chars", Value("v")},
  });
}

// XML-RPC carries XenAPI ints as decimal strings (as xapi does); normalise
// the expected value accordingly.
Value ints_as_strings(const Value& v) {
  if (v.is_int()) return Value(std::to_string(v.as_int()));
  if (v.is_array()) {
    Array a;
    for (const auto& e : v.as_array()) a.push_back(ints_as_strings(e));
    return Value(a);
  }
  if (v.is_struct()) {
    Struct s;
    for (const auto& [k, e] : v.as_struct()) s[k] = ints_as_strings(e);
    return Value(s);
  }
  return v;
}

// JSON carries datetimes as strings.
Value datetimes_as_strings(const Value& v) {
  if (v.is_datetime()) return Value(v.as_datetime().iso8601());
  if (v.is_array()) {
    Array a;
    for (const auto& e : v.as_array()) a.push_back(datetimes_as_strings(e));
    return Value(a);
  }
  if (v.is_struct()) {
    Struct s;
    for (const auto& [k, e] : v.as_struct()) s[k] = datetimes_as_strings(e);
    return Value(s);
  }
  return v;
}

}  // namespace

TEST(XmlRpc, RequestRoundTrip) {
  Array params{Value("OpaqueRef:abc"), sample(), Value(7), Value(Array{})};
  std::string body = xmlrpc::format_request("VM.get_record", params);
  RpcCall c = xmlrpc::parse_request(body);
  EXPECT_EQ(c.method, "VM.get_record");
  ASSERT_EQ(c.params.size(), 4u);
  EXPECT_EQ(c.params[0], Value("OpaqueRef:abc"));
  EXPECT_EQ(c.params[1], ints_as_strings(sample()));
  EXPECT_EQ(c.params[2].as_int(), 7);
  EXPECT_EQ(c.params[3], Value(Array{}));
}

TEST(XmlRpc, ResponseSuccessRoundTrip) {
  std::string body = xmlrpc::format_response(RpcResult::success(sample()));
  EXPECT_NE(body.find("<name>Status</name><value>Success</value>"), std::string::npos);
  RpcResult r = xmlrpc::parse_response(body);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.value, ints_as_strings(sample()));
  EXPECT_DOUBLE_EQ(r.value["double"].as_double(), 0.1);
  EXPECT_EQ(r.value["min"].as_int(), INT64_MIN);
}

TEST(XmlRpc, ResponseFailureRoundTrip) {
  ApiError e(errors::HANDLE_INVALID, {"VM", "OpaqueRef:<&>"});
  std::string body = xmlrpc::format_response(RpcResult::failure(e));
  EXPECT_NE(body.find("<value>Failure</value>"), std::string::npos);
  EXPECT_NE(body.find("ErrorDescription"), std::string::npos);
  RpcResult r = xmlrpc::parse_response(body);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error_description, e.description());
}

TEST(XmlRpc, IntsGoOutAsStringsLikeXapi) {
  std::string body = xmlrpc::format_response(RpcResult::success(Value(int64_t{1} << 40)));
  EXPECT_NE(body.find("<value>1099511627776</value>"), std::string::npos) << body;
  std::string req = xmlrpc::format_request("m", {Value(true), Value(2.5)});
  EXPECT_NE(req.find("<boolean>1</boolean>"), std::string::npos);
  EXPECT_NE(req.find("<double>2.5</double>"), std::string::npos);
}

TEST(XmlRpc, ParsesHandWrittenRequestWithAllTypes) {
  std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<methodCall>
  <methodName> VM.set_memory </methodName>
  <params>
    <param><value>bare text</value></param>
    <param><value><string>typed &amp; escaped &#x41;&#66;</string></value></param>
    <param><value><int>-5</int></value></param>
    <param><value><i4> 17 </i4></value></param>
    <param><value><i8>9223372036854775807</i8></value></param>
    <param><value><boolean>1</boolean></value></param>
    <param><value><double>-1.25e3</double></value></param>
    <param><value><dateTime.iso8601>20261123T10:58:15Z</dateTime.iso8601></value></param>
    <param><value><nil/></value></param>
    <param><value><base64>aGVsbG8=</base64></value></param>
    <param><value/></param>
    <param><value><string><![CDATA[<raw>]]></string></value></param>
    <param>
      <value>
        <struct>
          <member><name>k</name><value><array><data>
            <value>1</value><value><int>2</int></value>
          </data></array></value></member>
          <member><value>order swapped</value><name>k2</name></member>
        </struct>
      </value>
    </param>
  </params>
</methodCall>)";
  RpcCall c = xmlrpc::parse_request(body);
  EXPECT_EQ(c.method, "VM.set_memory");
  ASSERT_EQ(c.params.size(), 13u);
  EXPECT_EQ(c.params[0], Value("bare text"));
  EXPECT_EQ(c.params[1], Value("typed & escaped AB"));
  EXPECT_EQ(c.params[2], Value(-5));
  EXPECT_EQ(c.params[3], Value(17));
  EXPECT_EQ(c.params[4], Value(INT64_MAX));
  EXPECT_EQ(c.params[5], Value(true));
  EXPECT_EQ(c.params[6], Value(-1250.0));
  DateTime dt;
  ASSERT_TRUE(DateTime::parse("20261123T10:58:15Z", dt));
  EXPECT_EQ(c.params[7], Value(dt));
  EXPECT_TRUE(c.params[8].is_nil());
  EXPECT_EQ(c.params[9], Value("hello"));
  EXPECT_EQ(c.params[10], Value(""));
  EXPECT_EQ(c.params[11], Value("<raw>"));
  EXPECT_EQ(c.params[12]["k"], Value(Array{Value("1"), Value(2)}));
  EXPECT_EQ(c.params[12]["k2"], Value("order swapped"));
}

TEST(XmlRpc, NoParamsElementIsOk) {
  RpcCall c = xmlrpc::parse_request("<methodCall><methodName>pool.get_all</methodName></methodCall>");
  EXPECT_EQ(c.method, "pool.get_all");
  EXPECT_TRUE(c.params.empty());
}

TEST(XmlRpc, ControlCharactersAreDroppedAndInvalidUtf8Replaced) {
  std::string s = std::string("a\x01") + "b\x1f" + "c\xff" + "d";
  std::string body = xmlrpc::format_response(RpcResult::success(Value(s)));
  RpcResult r = xmlrpc::parse_response(body);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.value, Value("abc\xEF\xBF\xBD" "d"));
}

TEST(XmlRpc, CarriageReturnSurvives) {
  std::string body = xmlrpc::format_response(RpcResult::success(Value("a\r\nb\rc")));
  EXPECT_EQ(xmlrpc::parse_response(body).value, Value("a\r\nb\rc"));
}

TEST(XmlRpc, FaultResponse) {
  std::string body = R"(<?xml version="1.0"?><methodResponse><fault><value><struct>
    <member><name>faultCode</name><value><int>4</int></value></member>
    <member><name>faultString</name><value>Too many params</value></member>
    </struct></value></fault></methodResponse>)";
  RpcResult r = xmlrpc::parse_response(body);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error_description, (std::vector<std::string>{"XMLRPC_FAULT", "4", "Too many params"}));
}

TEST(XmlRpc, NonEnvelopeResponseIsAPlainValue) {
  RpcResult r = xmlrpc::parse_response(
      "<methodResponse><params><param><value><i4>3</i4></value></param></params></methodResponse>");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.value, Value(3));
}

namespace {
void expect_xml_error(const std::string& body) {
  try {
    xmlrpc::parse_request(body);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), wire_errors::XMLRPC_UNMARSHAL_FAILURE) << body;
    EXPECT_EQ(e.params().size(), 2u);
  }
}
}  // namespace

TEST(XmlRpc, MalformedRequests) {
  expect_xml_error("");
  expect_xml_error("not xml at all");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value>");  // truncated
  expect_xml_error("<methodCall><methodName>x</methodName></methodCal>");
  expect_xml_error("<methodResponse/>");
  expect_xml_error("<methodCall/>");
  expect_xml_error("<methodCall><methodName></methodName></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><foo/></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><int>abc</int></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><int>99999999999999999999</int></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><double>1.2.3</double></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><blob/></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><int>1</int><int>2</int></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value><array><value/></array></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName>x</methodName><params><param><value>text<int>1</int></value></param></params></methodCall>");
  expect_xml_error("<methodCall><methodName><b>x</b></methodName></methodCall>");
}

TEST(XmlRpc, DeepNestingIsRejectedNotAStackOverflow) {
  for (int depth : {200, 100000}) {
    std::string body = "<methodCall><methodName>x</methodName><params><param>";
    for (int i = 0; i < depth; ++i) body += "<value><array><data>";
    for (int i = 0; i < depth; ++i) body += "</data></array></value>";
    body += "</param></params></methodCall>";
    expect_xml_error(body);
  }
  // Within the limit is fine.
  std::string body = "<methodCall><methodName>x</methodName><params><param>";
  for (int i = 0; i < 50; ++i) body += "<value><array><data>";
  for (int i = 0; i < 50; ++i) body += "</data></array></value>";
  body += "</param></params></methodCall>";
  EXPECT_NO_THROW(xmlrpc::parse_request(body));
}

TEST(XmlRpc, MalformedResponses) {
  for (const char* b : {"", "<methodResponse/>", "<methodResponse><params/></methodResponse>",
                        "<methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member></struct></value></param></params></methodResponse>",
                        "<methodCall/>"}) {
    EXPECT_THROW(xmlrpc::parse_response(b), ApiError) << b;
  }
}

// ---------------------------------------------------------------- JSON-RPC

TEST(JsonRpc, RequestRoundTrip) {
  Array params{Value("OpaqueRef:abc"), sample(), Value(7)};
  std::string body = jsonrpc::format_request("VM.get_record", params, 42);
  RpcCall c = jsonrpc::parse_request(body);
  EXPECT_EQ(c.method, "VM.get_record");
  EXPECT_TRUE(c.jsonrpc_v2);
  EXPECT_EQ(c.id, Value(42));
  ASSERT_EQ(c.params.size(), 3u);
  EXPECT_EQ(c.params[1], datetimes_as_strings(sample()));
  EXPECT_TRUE(c.params[1]["double"].is_double());
  EXPECT_TRUE(c.params[1]["whole_double"].is_double());
  EXPECT_TRUE(c.params[1]["int"].is_int());
}

TEST(JsonRpc, V1AndV2Requests) {
  RpcCall v1 = jsonrpc::parse_request(R"({"method":"session.login_with_password","params":["root","pw"],"id":"abc"})");
  EXPECT_FALSE(v1.jsonrpc_v2);
  EXPECT_EQ(v1.id, Value("abc"));
  EXPECT_EQ(v1.params.size(), 2u);
  RpcCall v2 = jsonrpc::parse_request(R"({"jsonrpc":"2.0","method":"host.get_all","id":1})");
  EXPECT_TRUE(v2.jsonrpc_v2);
  EXPECT_TRUE(v2.params.empty());
  RpcCall v2obj = jsonrpc::parse_request(R"({"jsonrpc":"2.0","method":"m","params":{"a":1},"id":null})");
  ASSERT_EQ(v2obj.params.size(), 1u);
  EXPECT_EQ(v2obj.params[0]["a"], Value(1));
  EXPECT_TRUE(v2obj.id.is_nil());
}

TEST(JsonRpc, ResponseShapesMatchXapi) {
  RpcCall v1;
  v1.id = Value(5);
  RpcCall v2 = v1;
  v2.jsonrpc_v2 = true;
  EXPECT_EQ(jsonrpc::format_response(v1, RpcResult::success(Value("x"))), "{\"result\":\"x\",\"error\":null,\"id\":5}\n");
  EXPECT_EQ(jsonrpc::format_response(v2, RpcResult::success(Value("x"))), "{\"jsonrpc\":\"2.0\",\"result\":\"x\",\"id\":5}\n");
  ApiError e(errors::HANDLE_INVALID, {"VM", "OpaqueRef:x"});
  EXPECT_EQ(jsonrpc::format_response(v1, RpcResult::failure(e)),
            "{\"result\":null,\"error\":[\"HANDLE_INVALID\",\"VM\",\"OpaqueRef:x\"],\"id\":5}\n");
  EXPECT_EQ(jsonrpc::format_response(v2, RpcResult::failure(e)),
            "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"HANDLE_INVALID\",\"data\":[\"VM\",\"OpaqueRef:x\"]},\"id\":5}\n");
}

TEST(JsonRpc, ResponseRoundTripBothVersions) {
  for (bool v2 : {false, true}) {
    RpcCall c;
    c.id = Value("id-1");
    c.jsonrpc_v2 = v2;
    RpcResult ok = jsonrpc::parse_response(jsonrpc::format_response(c, RpcResult::success(sample())));
    ASSERT_TRUE(ok.ok);
    EXPECT_EQ(ok.value, datetimes_as_strings(sample()));
    ApiError e(errors::VM_BAD_POWER_STATE, {"OpaqueRef:1", "halted", "running"});
    RpcResult bad = jsonrpc::parse_response(jsonrpc::format_response(c, RpcResult::failure(e)));
    ASSERT_FALSE(bad.ok);
    EXPECT_EQ(bad.error_description, e.description());
    // Null result is still a success.
    RpcResult nil = jsonrpc::parse_response(jsonrpc::format_response(c, RpcResult::success(Value())));
    EXPECT_TRUE(nil.ok);
    EXPECT_TRUE(nil.value.is_nil());
  }
}

TEST(JsonRpc, EscapingAndUnicode) {
  std::string s = "quote\" backslash\\ ctl\x01\x1f nl\n tab\t \xC3\xA9\xF0\x9F\x98\x80 bad\xC3";
  RpcCall c;
  c.id = Value(1);
  std::string body = jsonrpc::format_response(c, RpcResult::success(Value(s)));
  EXPECT_NE(body.find("\\u0001"), std::string::npos);
  RpcResult r = jsonrpc::parse_response(body);
  EXPECT_EQ(r.value, Value("quote\" backslash\\ ctl\x01\x1f nl\n tab\t \xC3\xA9\xF0\x9F\x98\x80 bad\xEF\xBF\xBD"));
  // \u escapes (incl. surrogate pairs) decode.
  RpcCall p = jsonrpc::parse_request(R"({"method":"m","params":["\u00e9\ud83d\ude00"],"id":1})");
  EXPECT_EQ(p.params[0], Value("\xC3\xA9\xF0\x9F\x98\x80"));
}

TEST(JsonRpc, Numbers) {
  RpcCall c = jsonrpc::parse_request(
      R"({"method":"m","params":[1, -1, 9223372036854775807, -9223372036854775808, 18446744073709551615, 1.5, 1e3, 0.0],"id":1})");
  EXPECT_EQ(c.params[0], Value(1));
  EXPECT_EQ(c.params[1], Value(-1));
  EXPECT_EQ(c.params[2], Value(INT64_MAX));
  EXPECT_EQ(c.params[3], Value(INT64_MIN));
  EXPECT_TRUE(c.params[4].is_double());
  EXPECT_EQ(c.params[5], Value(1.5));
  EXPECT_EQ(c.params[6], Value(1000.0));
  EXPECT_EQ(c.params[7], Value(0.0));
  RpcCall r;
  std::string out = jsonrpc::format_response(r, RpcResult::success(Value(Array{Value(NAN), Value(2.0), Value(1e-7)})));
  EXPECT_NE(out.find("[null,2.0,1e-07]"), std::string::npos) << out;
}

namespace {
void expect_json_error(const std::string& body) {
  try {
    jsonrpc::parse_request(body);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), wire_errors::JSONRPC_UNMARSHAL_FAILURE) << body;
    ASSERT_EQ(e.params().size(), 1u);
    EXPECT_FALSE(e.params()[0].empty());
  }
}
}  // namespace

TEST(JsonRpc, MalformedRequests) {
  expect_json_error("");
  expect_json_error("{");
  expect_json_error("{\"method\":\"m\",\"params\":[1,2");
  expect_json_error("[1,2,3]");
  expect_json_error("\"just a string\"");
  expect_json_error("{\"params\":[]}");
  expect_json_error("{\"method\":5,\"params\":[]}");
  expect_json_error("{\"method\":\"m\"}");  // v1 needs params
  expect_json_error("{\"method\":\"m\",\"params\":{}}");  // v1 params must be an array
  expect_json_error("{\"jsonrpc\":\"3.0\",\"method\":\"m\"}");
  expect_json_error("{\"method\":\"m\",\"params\":[],\"id\":[1]}");
  expect_json_error("{\"method\":\"m\",\"params\":[]} trailing");
  expect_json_error("{\"method\":\"m\",\"params\":[\"\\ud800\"]}");  // lone surrogate
  expect_json_error(std::string("{\"method\":\"m\",\"params\":[\"\xff\"]}"));  // invalid UTF-8
}

TEST(JsonRpc, DeepNestingIsRejectedNotAStackOverflow) {
  for (int depth : {200, 1000000}) {
    std::string body = "{\"method\":\"m\",\"params\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
    expect_json_error(body);
  }
  std::string ok = "{\"method\":\"m\",\"params\":" + std::string(50, '[') + std::string(50, ']') + "}";
  EXPECT_NO_THROW(jsonrpc::parse_request(ok));
}

TEST(JsonRpc, MalformedResponses) {
  for (const char* b : {"", "[]", "{}", "{\"error\":{\"code\":1}}", "{\"error\":[]}", "nope"})
    EXPECT_THROW(jsonrpc::parse_response(b), ApiError) << b;
}

TEST(XmlRpc, DateTimeForms) {
  auto parse = [](const std::string& text) {
    RpcCall c = xmlrpc::parse_request("<methodCall><methodName>m</methodName><params><param><value><dateTime.iso8601>" +
                                      text + "</dateTime.iso8601></value></param></params></methodCall>");
    return c.params.at(0).as_datetime().epoch;
  };
  const int64_t expected = 1795431495;  // 2026-11-23 10:58:15 UTC
  EXPECT_EQ(parse("20261123T10:58:15Z"), expected);   // xapi
  EXPECT_EQ(parse("20261123T10:58:15"), expected);    // Python xmlrpc.client
  EXPECT_EQ(parse("2026-11-23T10:58:15Z"), expected);
  EXPECT_EQ(parse("20261123T105815"), expected);
  EXPECT_EQ(parse(" 20261123T10:58:15.250Z\n"), expected);
  for (const char* bad : {"20261323T10:58:15Z", "20261100T10:58:15Z", "20261123T24:00:00Z", "20261123T10:60:15Z",
                          "2026112T10:58:15Z", "20261123 10:58:15", "20261123T10:58:15ZZ", "20261123T10:58:15+01:00",
                          "2026-1123T10:58:15", "20261123T10:58:15.", "", "x"}) {
    EXPECT_THROW(parse(bad), ApiError) << bad;
  }
  // Encoding uses xapi's form and round-trips.
  std::string body = xmlrpc::format_response(RpcResult::success(Value(DateTime{expected})));
  EXPECT_NE(body.find("<dateTime.iso8601>20261123T10:58:15Z</dateTime.iso8601>"), std::string::npos);
  EXPECT_EQ(xmlrpc::parse_response(body).value, Value(DateTime{expected}));
  // Years before 1000 keep four digits, so the answer parses (found by fuzzing).
  const int64_t early = parse("02621123T105815");
  body = xmlrpc::format_response(RpcResult::success(Value(DateTime{early})));
  EXPECT_NE(body.find("<dateTime.iso8601>02621123T10:58:15Z</dateTime.iso8601>"), std::string::npos) << body;
  EXPECT_EQ(xmlrpc::parse_response(body).value, Value(DateTime{early}));
}

TEST(XmlRpc, EnvelopeVariants) {
  // A Success envelope is unwrapped, even with members in another order.
  RpcResult r = xmlrpc::parse_response(
      "<methodResponse><params><param><value><struct>"
      "<member><name>Value</name><value><array><data><value>a</value></data></array></value></member>"
      "<member><name>Status</name><value><string>Success</string></value></member>"
      "</struct></value></param></params></methodResponse>");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.value, Value(Array{Value("a")}));
  // Failure with a single string ErrorDescription (some servers do that).
  r = xmlrpc::parse_response(
      "<methodResponse><params><param><value><struct>"
      "<member><name>Status</name><value>Failure</value></member>"
      "<member><name>ErrorDescription</name><value>SESSION_INVALID</value></member>"
      "</struct></value></param></params></methodResponse>");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error_description, std::vector<std::string>{"SESSION_INVALID"});
  // Void results travel as nil, like xapi's Rpc.Null.
  std::string body = xmlrpc::format_response(RpcResult::success(Value()));
  EXPECT_NE(body.find("<name>Value</name><value><nil/></value>"), std::string::npos) << body;
  EXPECT_TRUE(xmlrpc::parse_response(body).value.is_nil());
}

TEST(Codecs, AppendResponseMatchesFormatResponse) {
  RpcResult ok = RpcResult::success(Value(Struct{{"a", Value(Array{Value(1), Value("x")})}}));
  RpcResult bad = RpcResult::failure(ApiError("CODE", {"p"}));
  RpcCall call;
  call.id = Value("i");
  for (const RpcResult* r : {&ok, &bad}) {
    std::string out = "keep|";
    xmlrpc::append_response(out, *r);
    EXPECT_EQ(out, "keep|" + xmlrpc::format_response(*r));
    out = "keep|";
    jsonrpc::append_response(out, call, *r);
    EXPECT_EQ(out, "keep|" + jsonrpc::format_response(call, *r));
  }
}
