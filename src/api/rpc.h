// The XenAPI wire layer's contract: codecs turn HTTP bodies into (method,
// params) and results/errors back into bodies. Nothing here knows about VMs.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/value.h"

namespace vmstack::api {

class PendingReply;  // api/pending_reply.h

struct RpcCall {
  std::string method;  // "VM.get_record", "Async.VM.start", "session.login_with_password"
  Array params;
  Value id;  // JSON-RPC id (nil for XML-RPC)
  // Who called: the server fills these from the connection. A unix-socket
  // peer with uid 0 is the host's superuser (xapi treats local root the same
  // way); TCP peers have peer_uid -1 and peer_address "ip:port".
  int peer_uid = -1;
  std::string peer_address;
  bool jsonrpc_v2 = false;  // request carried "jsonrpc": "2.0" (selects the response shape)
  // Set by a server that can answer later (empty otherwise: then block or
  // answer at once). A dispatcher that would wait (a long poll) calls it at
  // most once, during the dispatch, and completes the returned reply from
  // any thread; what the dispatcher returns is then ignored, and the
  // connection waits without a worker until the reply is completed. It
  // returns null when the server cannot defer now (it is stopping): answer
  // at once then.
  std::function<std::shared_ptr<PendingReply>()> defer;
};

// Codes the wire layer itself produces (besides INTERNAL_ERROR).
namespace wire_errors {
// Malformed XML-RPC request/response: [expected, received] (xapi's spelling).
inline constexpr const char* XMLRPC_UNMARSHAL_FAILURE = "XMLRPC_UNMARSHAL_FAILURE";
// Malformed JSON-RPC request/response: [detail].
inline constexpr const char* JSONRPC_UNMARSHAL_FAILURE = "JSONRPC_UNMARSHAL_FAILURE";
// Client-side transport failures: [detail].
inline constexpr const char* CONNECTION_FAILED = "CONNECTION_FAILED";
inline constexpr const char* PROTOCOL_ERROR = "PROTOCOL_ERROR";
}  // namespace wire_errors

// Result of dispatching one call: either a value or a XenAPI failure.
struct RpcResult {
  bool ok = true;
  Value value;                                 // when ok
  std::vector<std::string> error_description;  // [CODE, params...] when !ok
  static RpcResult success(Value v) { return {true, std::move(v), {}}; }
  static RpcResult failure(const ApiError& e) { return {false, {}, e.description()}; }
};

// The daemon's single entry point. Throws ApiError for XenAPI failures; the
// server turns any other exception into INTERNAL_ERROR.
using Dispatcher = std::function<Value(const RpcCall&)>;

// XML-RPC (POST /). XenAPI envelope: {Status: "Success", Value: v} or
// {Status: "Failure", ErrorDescription: [CODE, params...]}.
namespace xmlrpc {
RpcCall parse_request(const std::string& body);  // throws ApiError on malformed input
std::string format_response(const RpcResult& r);
// format_response appending to `out`, so a server can reuse one buffer per connection.
void append_response(std::string& out, const RpcResult& r);
std::string format_request(const std::string& method, const Array& params);
RpcResult parse_response(const std::string& body);  // throws ApiError on malformed input
}  // namespace xmlrpc

// JSON-RPC (POST /jsonrpc), versions 1.0 and 2.0 as xapi accepts them.
namespace jsonrpc {
RpcCall parse_request(const std::string& body);
std::string format_response(const RpcCall& call, const RpcResult& r);
void append_response(std::string& out, const RpcCall& call, const RpcResult& r);
std::string format_request(const std::string& method, const Array& params, int64_t id);
RpcResult parse_response(const std::string& body);
}  // namespace jsonrpc

}  // namespace vmstack::api
