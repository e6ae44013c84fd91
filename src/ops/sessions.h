// Local users and XenAPI sessions. Passwords are stored as yescrypt hashes in
// the store's settings; sessions are (non-persistent) session objects.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "model/store.h"

namespace vmstack::ops {

class Dispatcher;

class Sessions {
 public:
  explicit Sessions(model::Store& store) : store_(store) {}

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
  // local root logins); any non-empty password is always checked.
  std::string login(const std::string& user, const std::string& password, const std::string& originator, int peer_uid);
  void logout(const std::string& session);
  // session.change_password: the old password is checked unless the session
  // is the local superuser's.
  void change_password(const std::string& session, const std::string& old_pw, const std::string& new_pw);
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

  model::Store& store_;
  std::string host_;
  std::chrono::seconds timeout_{std::chrono::hours(24)};
  size_t max_per_user_ = 500;
  // Order of last use (finer than last_active's seconds), for the cap's
  // least recently used choice; under mu_.
  std::map<std::string, uint64_t> last_use_;
  uint64_t uses_ = 0;
  std::mutex mu_;
  struct Subscription {
    std::set<std::string> classes;
    uint64_t token = 0;
  };
  std::map<std::string, Subscription> subs_;
};

// session.* and event.*
void bind_sessions(Dispatcher& d, Sessions& sessions, model::Store& store);

}  // namespace vmstack::ops
