// Local users and XenAPI sessions. Passwords are stored as yescrypt hashes in
// the store's settings; sessions are (non-persistent) session objects.
#pragma once

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
  // Throws SESSION_INVALID [ref] unless `session` is a live session.
  void check(const std::string& session) const;

  // Legacy event.register / event.next subscriptions, per session.
  void subscribe(const std::string& session, const std::set<std::string>& classes);
  void unsubscribe(const std::string& session, const std::set<std::string>& classes);
  std::set<std::string> subscriptions(const std::string& session, uint64_t& token);
  void set_token(const std::string& session, uint64_t token);

 private:
  model::Store& store_;
  std::string host_;
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
