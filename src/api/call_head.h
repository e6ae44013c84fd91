// What a call says about itself in the first bytes of its body: the method
// and its first parameter (the session, for most XenAPI calls). The server
// reads this head before it accepts a large body, so a forged session is
// refused after a few KiB instead of after decoding 16 MiB (see
// BodyAdmission in api/server.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vmstack::api {

struct CallHead {
  // Empty when the prefix does not name it (JSON-RPC may put "method" after
  // a long "params").
  std::string method;
  // params[0] when it is a string; nullopt when the call has no parameters
  // or the first one is not a string.
  std::optional<std::string> first_param;
  int peer_uid = -1;         // as in RpcCall
  std::string peer_address;  // as in RpcCall
};

enum class HeadScan {
  found,       // `head` is filled in
  need_more,   // the prefix ends before the head does
  unreadable,  // not the plain form clients write; no head can be read from it
};

// Scans the start of an XML-RPC body. Only the plain dialect XenAPI clients
// write is read (an XML declaration, whitespace between elements, bare or
// <string> text with the five named entities); anything else (comments,
// CDATA, numeric references) is `unreadable`.
HeadScan scan_xmlrpc_head(std::string_view prefix, CallHead& head);
// Scans the start of a JSON-RPC body for params[0] and "method", in either
// order: `found` once params[0] is known (method stays empty when it comes
// after the prefix).
HeadScan scan_jsonrpc_head(std::string_view prefix, CallHead& head);

}  // namespace vmstack::api
