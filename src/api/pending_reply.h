// A deferred answer: how a dispatcher answers a call later without holding a
// server worker while it waits (a long poll such as event.from waiting for
// changes). The dispatcher takes one from RpcCall::defer, keeps it wherever
// it waits, and completes it from any thread; the server parks the
// connection meanwhile and sends the answer once it is completed.
#pragma once

#include <functional>
#include <mutex>

#include "api/rpc.h"

namespace vmstack::api {

class PendingReply {
 public:
  // `deliver` is the server's: it receives the result exactly once.
  explicit PendingReply(std::function<void(RpcResult)> deliver) : deliver_(std::move(deliver)) {}
  PendingReply(const PendingReply&) = delete;
  PendingReply& operator=(const PendingReply&) = delete;

  // Answers the call. The first of complete() and abandon() wins; later
  // calls do nothing. Cheap (the server's workers encode and send it).
  void complete(RpcResult r);
  void complete(Value v);
  // Nobody waits for an answer any more (the client hung up, the server is
  // stopping): whoever holds the reply may drop it. Returns false if it had
  // already been completed or abandoned.
  bool abandon();
  // Completed or abandoned.
  bool settled() const;

 private:
  mutable std::mutex mu_;
  std::function<void(RpcResult)> deliver_;  // empty once settled
};

}  // namespace vmstack::api
