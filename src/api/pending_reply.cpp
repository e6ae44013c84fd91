#include "api/pending_reply.h"

namespace vmstack::api {

void PendingReply::complete(RpcResult r) {
  // Delivered under the lock, so an abandon() that returns true can be sure
  // no delivery is still running.
  std::lock_guard lk(mu_);
  if (!deliver_) return;
  auto deliver = std::move(deliver_);
  deliver_ = nullptr;
  deliver(std::move(r));
}

void PendingReply::complete(Value v) {
  RpcResult r;
  r.value = std::move(v);
  complete(std::move(r));
}

bool PendingReply::abandon() {
  std::lock_guard lk(mu_);
  if (!deliver_) return false;
  deliver_ = nullptr;
  return true;
}

bool PendingReply::settled() const {
  std::lock_guard lk(mu_);
  return !deliver_;
}

}  // namespace vmstack::api
