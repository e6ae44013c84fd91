// JSON-RPC codec (src/api/jsonrpc.cpp), request and response parsers: any
// body gives a call/result or an ApiError (never a crash, leak, UB or another
// exception), and what they decode encodes stably.
#include "api/rpc.h"
#include "fuzz_util.h"

using namespace vmstack;
using namespace vmstack::api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body = fuzz::input(data, size);
  try {
    RpcCall call = jsonrpc::parse_request(body);
    fuzz::check_stable_encoding(
        call, [](const std::string& s) { return jsonrpc::parse_request(s); },
        [](const RpcCall& c) { return jsonrpc::format_request(c.method, c.params, 1); });
    // The server's answer echoes the request's id and version.
    fuzz::check_stable_encoding(
        RpcResult::success(Value(call.params)), [](const std::string& s) { return jsonrpc::parse_response(s); },
        [&](const RpcResult& x) { return jsonrpc::format_response(call, x); });
  } catch (const ApiError&) {
  }
  try {
    RpcResult r = jsonrpc::parse_response(body);
    RpcCall v2;
    v2.jsonrpc_v2 = true;
    fuzz::check_stable_encoding(
        r, [](const std::string& s) { return jsonrpc::parse_response(s); },
        [&](const RpcResult& x) { return jsonrpc::format_response(v2, x); });
  } catch (const ApiError&) {
  }
  return 0;
}
