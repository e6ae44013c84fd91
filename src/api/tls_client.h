// HTTPS for the client side (xe -s, api::Client): the TLS connection is
// made and its certificate checked here, then a thread of its own relays
// it to the plain side of a socketpair, so every caller keeps working on a
// plain fd (as the server's TlsFront hands the server plain sockets).
#pragma once

#include <string>

#include "core/fd.h"

namespace vmstack::api {

// Wraps `tcp` (connected to `host`) in TLS 1.2 or later: the server's
// certificate must chain to the system's CAs or to the PEM certificates in
// `ca_file` (e.g. the self-signed one vmstackd makes at first start), and
// name `host` (a DNS name or an IP address). Returns the plain side; the
// relay ends when either side closes (the plain side closing sends TLS
// close_notify and then reads what the server still sends). Throws
// ApiError CONNECTION_FAILED [why] when the handshake or the check fails.
UniqueFd tls_connect(UniqueFd tcp, const std::string& host, const std::string& ca_file);

}  // namespace vmstack::api
