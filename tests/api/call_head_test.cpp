// Reading a call's method and session from the first bytes of its body.
#include <gtest/gtest.h>

#include "api/call_head.h"
#include "api/rpc.h"

using namespace vmstack;
using namespace vmstack::api;

namespace {

HeadScan xml(std::string_view s, CallHead& h) { return scan_xmlrpc_head(s, h); }
HeadScan json(std::string_view s, CallHead& h) { return scan_jsonrpc_head(s, h); }

}  // namespace

TEST(CallHead, XmlRpcAsClientsWriteIt) {
  std::string body = xmlrpc::format_request("VM.set_name_description",
                                            {Value("OpaqueRef:sess"), Value("OpaqueRef:vm"), Value(std::string(100000, 'x'))});
  CallHead h;
  ASSERT_EQ(xml(body, h), HeadScan::found);
  EXPECT_EQ(h.method, "VM.set_name_description");
  EXPECT_EQ(h.first_param, "OpaqueRef:sess");
  // Python's xmlrpc.client: declaration, newlines, <string>.
  std::string py =
      "<?xml version='1.0'?>\n<methodCall>\n<methodName>VM.get_all</methodName>\n<params>\n<param>\n"
      "<value><string>OpaqueRef:a&amp;b</string></value>\n</param>\n</params>\n</methodCall>\n";
  ASSERT_EQ(xml(py, h), HeadScan::found);
  EXPECT_EQ(h.method, "VM.get_all");
  EXPECT_EQ(h.first_param, "OpaqueRef:a&b");
}

TEST(CallHead, XmlRpcEveryPrefixNeedsMoreUntilTheHeadIsIn) {
  std::string body = xmlrpc::format_request("VM.get_all", {Value("OpaqueRef:sess"), Value("x")});
  std::size_t head_end = body.find("</value>") + 8;
  for (std::size_t n = 0; n < head_end; ++n) {
    CallHead h;
    HeadScan r = xml(std::string_view(body).substr(0, n), h);
    if (r == HeadScan::found) {
      // Only possible once the session's text has ended.
      EXPECT_EQ(h.first_param, "OpaqueRef:sess") << n;
      EXPECT_GE(n, body.find("</value>")) << n;
    } else {
      EXPECT_EQ(r, HeadScan::need_more) << "prefix of " << n << ": " << body.substr(0, n);
    }
  }
}

TEST(CallHead, XmlRpcWithoutAStringSessionOrParams) {
  CallHead h;
  ASSERT_EQ(xml("<methodCall><methodName>system.listMethods</methodName></methodCall>", h), HeadScan::found);
  EXPECT_EQ(h.method, "system.listMethods");
  EXPECT_FALSE(h.first_param);
  ASSERT_EQ(xml("<methodCall><methodName>m</methodName><params></params></methodCall>", h), HeadScan::found);
  EXPECT_FALSE(h.first_param);
  ASSERT_EQ(xml("<methodCall><methodName>m</methodName><params><param><value><int>4</int></value>", h), HeadScan::found);
  EXPECT_FALSE(h.first_param);
  ASSERT_EQ(xml("<methodCall><methodName>m</methodName><params><param><value>  <string>s</string>", h), HeadScan::found);
  EXPECT_EQ(h.first_param, "s");
}

TEST(CallHead, XmlRpcOddFormsAreUnreadable) {
  CallHead h;
  EXPECT_EQ(xml("<!-- hi --><methodCall>", h), HeadScan::unreadable);
  EXPECT_EQ(xml("<methodCall><methodName>m</methodName><params><param><value><![CDATA[x]]></value>", h),
            HeadScan::found);  // not a plain string: no session, which is the safe answer
  EXPECT_FALSE(h.first_param);
  EXPECT_EQ(xml("<methodCall><methodName>&#77;</methodName>", h), HeadScan::unreadable);
  EXPECT_EQ(xml("garbage", h), HeadScan::unreadable);
  EXPECT_EQ(xml("", h), HeadScan::need_more);
}

TEST(CallHead, JsonRpcInEitherOrder) {
  CallHead h;
  ASSERT_EQ(json(R"({"jsonrpc":"2.0","method":"VM.get_all","params":["OpaqueRef:s",1],"id":1})", h), HeadScan::found);
  EXPECT_EQ(h.method, "VM.get_all");
  EXPECT_EQ(h.first_param, "OpaqueRef:s");
  // params first, the method after a long second parameter that is cut off.
  std::string long_params = R"({"params":["OpaqueRef:s",")" + std::string(5000, 'x');
  ASSERT_EQ(json(long_params, h), HeadScan::found);
  EXPECT_EQ(h.method, "");
  EXPECT_EQ(h.first_param, "OpaqueRef:s");
  ASSERT_EQ(json(R"({"params":["OpaqueRef:s","x"],"method":"VM.get_all"})", h), HeadScan::found);
  EXPECT_EQ(h.method, "VM.get_all");
  // Nested values before params are skipped; a method key inside them is not the method.
  ASSERT_EQ(json(R"({"id":{"method":"no"},"method":"m","params":[{"a":"b"}]})", h), HeadScan::found);
  EXPECT_EQ(h.method, "m");
  EXPECT_FALSE(h.first_param);
}

TEST(CallHead, JsonRpcPrefixesAndGarbage) {
  std::string body = R"({"method":"VM.get_all","params":["OpaqueRef:sess"],"id":7})";
  std::size_t session_end = body.find("sess\"") + 5;
  for (std::size_t n = 0; n < session_end; ++n) {
    CallHead h;
    EXPECT_EQ(json(std::string_view(body).substr(0, n), h), HeadScan::need_more) << body.substr(0, n);
  }
  CallHead h;
  EXPECT_EQ(json(R"({"method":"m","params":[]})", h), HeadScan::found);
  EXPECT_FALSE(h.first_param);
  EXPECT_EQ(json(R"({"method":"m","params":{"session":"x"}})", h), HeadScan::found);
  EXPECT_FALSE(h.first_param);
  EXPECT_EQ(json(R"({"method":"m"})", h), HeadScan::found);
  EXPECT_EQ(json("{]", h), HeadScan::unreadable);
  EXPECT_EQ(json("<xml/>", h), HeadScan::unreadable);
}
