// XML-RPC codec (src/api/xmlrpc.cpp), request and response parsers: any body
// gives a call/result or an ApiError (never a crash, leak, UB or another
// exception), and what they decode encodes stably.
#include "api/rpc.h"
#include "fuzz_util.h"

using namespace vmstack;
using namespace vmstack::api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body = fuzz::input(data, size);
  try {
    RpcCall call = xmlrpc::parse_request(body);
    fuzz::check_stable_encoding(
        call, [](const std::string& s) { return xmlrpc::parse_request(s); },
        [](const RpcCall& c) { return xmlrpc::format_request(c.method, c.params); });
  } catch (const ApiError&) {
  }
  try {
    RpcResult r = xmlrpc::parse_response(body);
    fuzz::check_stable_encoding(
        r, [](const std::string& s) { return xmlrpc::parse_response(s); },
        [](const RpcResult& x) { return xmlrpc::format_response(x); });
  } catch (const ApiError&) {
  }
  return 0;
}
