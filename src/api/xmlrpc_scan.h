// Internal to the XML-RPC codec (and its tests): a single-pass scanner for
// well-formed methodResponse bodies in the plain dialect xapi and vmstackd
// write. It builds the Value directly, without pugixml's DOM, which halves
// the client's memory and time on a large get_all_records answer (every
// page of heap costs a fault on these machines). Anything it does not
// recognise (faults, comments, CDATA, attributes, '\r', unknown entities,
// base64, malformed XML) yields nullopt, and the DOM decoder, which gives the
// precise XMLRPC_UNMARSHAL_FAILURE, runs instead.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/rpc.h"

namespace vmstack::api::xmlrpc {

// The <value> of methodResponse/params/param, or nullopt (see above).
std::optional<Value> scan_response_value(std::string_view body);

// parse_response through the DOM only: the reference the scanner is tested
// against.
RpcResult parse_response_dom(const std::string& body);

}  // namespace vmstack::api::xmlrpc
