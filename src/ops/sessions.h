// Local users and XenAPI sessions. Passwords are stored as yescrypt hashes in
// the store's settings; sessions are (non-persistent) session objects.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "api/throttle.h"
#include "model/store.h"

namespace vmstack::ops {

class Dispatcher;

// How password checks are throttled (see api/throttle.h): per source
// (client IP, or unix uid) failures back off, and at most `hash_slots`
// password hashes run at once (yescrypt takes ~16 MiB each); up to
// `hash_waiters` more logins wait `hash_wait` for a slot, any others are
// refused at once. The local superuser (uid 0 on the unix socket, empty
// password) never hashes and is never throttled.
struct LoginLimits {
  api::FailureBackoff::Policy backoff;
  unsigned hash_slots = 2;
  unsigned hash_waiters = 16;
  std::chrono::milliseconds hash_wait{2000};
};

class Sessions {
 public:
  explicit Sessions(model::Store& store, LoginLimits limits = {})
      : store_(store), backoff_(limits.backoff), hashing_(limits.hash_slots, limits.hash_waiters, limits.hash_wait) {}

  void set_host(const std::string& host_ref) { host_ = host_ref; }
  // Sessions unused for `timeout` are gone; a user with `max_per_user`
  // sessions who logs in again loses the least recently used one (xapi's
  // limit: 500), so forgotten logins cannot pile up.
  void set_limits(std::chrono::seconds timeout, size_t max_per_user) {
    timeout_ = timeout;
    max_per_user_ = max_per_user;
  }

  // On first start: creates "root" with `password`, or a random one written
  // to `password_file` (0600) when none is given. Returns the password when it
  // generated one.
  std::string ensure_root_user(const std::string& password, const std::string& password_file);
  void set_password(const std::string& user, const std::string& password);

  // session.login_with_password. A local unix-socket peer running as uid 0
  // that sends an empty password is the host's superuser (as with xapi's
  // local root logins); any non-empty password is always checked, within
  // the LoginLimits of the caller's source (peer_uid, peer_address as in
  // api::RpcCall). Every refusal is SESSION_AUTHENTICATION_FAILED [user,
  // why].
  std::string login(const std::string& user, const std::string& password, const std::string& originator, int peer_uid,
                    const std::string& peer_address);
  void logout(const std::string& session);
  // session.change_password: the old password is checked (throttled like a
  // login) unless the session is a password-less local root login (uid 0 on
  // the unix socket), which has no password to give.
  void change_password(const std::string& session, const std::string& old_pw, const std::string& new_pw, int peer_uid,
                       const std::string& peer_address);
  // Throws SESSION_INVALID [ref] unless `session` is a live session (an
  // expired one is removed); marks it used.
  void check(const std::string& session);

  // Legacy event.register / event.next subscriptions, per session.
  void subscribe(const std::string& session, const std::set<std::string>& classes);
  void unsubscribe(const std::string& session, const std::set<std::string>& classes);
  std::set<std::string> subscriptions(const std::string& session, uint64_t& token);
  void set_token(const std::string& session, uint64_t token);

 private:
  // Removes expired sessions and, past the cap, `user`'s least recently
  // used ones, making room for one more.
  void sweep(const std::string& user);
  // Checks `password` against `hash` within the throttles; throws
  // SESSION_AUTHENTICATION_FAILED [user, why] unless it matches.
  void verify(const std::string& user, const std::string& password, const std::optional<std::string>& hash,
              int peer_uid, const std::string& peer_address);

  model::Store& store_;
  api::FailureBackoff backoff_;
  api::ConcurrencyGate hashing_;
  std::string host_;
  std::chrono::seconds timeout_{std::chrono::hours(24)};
  size_t max_per_user_ = 500;
  // Order of last use (finer than last_active's seconds), for the cap's
  // least recently used choice; under mu_.
  std::map<std::string, uint64_t> last_use_;
  uint64_t uses_ = 0;
  // Sessions of uid 0 on the unix socket that logged in without a password:
  // the only ones change_password lets skip the old password (a root
  // session from TCP may have been stolen off the wire); under mu_.
  std::set<std::string> passwordless_;
  // A hash an unknown user's password is checked against, so that a login
  // takes as long whether or not the user exists; made on first need.
  std::once_flag dummy_once_;
  std::string dummy_hash_;
  std::mutex mu_;
  struct Subscription {
    std::set<std::string> classes;
    uint64_t token = 0;
  };
  std::map<std::string, Subscription> subs_;
};

class LongPolls;
// session.* and event.* (event.from / event.next park in `polls`)
void bind_sessions(Dispatcher& d, Sessions& sessions, model::Store& store, LongPolls& polls);

}  // namespace vmstack::ops
