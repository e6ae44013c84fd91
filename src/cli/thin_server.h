// The daemon's side of xe's thin CLI protocol (thin_protocol.h): POST /cli
// runs the command line in-process, its XenAPI calls going straight to the
// dispatcher as the connection's peer (so local root logs in as over the
// socket, and a TCP caller needs its password), and sends xe's output back.
#pragma once

#include "api/rpc.h"
#include "api/server.h"

namespace vmstack::cli {

void serve_thin_cli(const api::PostRequest& rq, int fd, const api::Dispatcher& dispatch);

}  // namespace vmstack::cli
