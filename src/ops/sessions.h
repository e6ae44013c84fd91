// Local users and XenAPI sessions. Passwords are stored as yescrypt hashes in
// the settings table; sessions are (non-persistent) session objects.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "api/rpc.h"

namespace vmstack::ops {

class Xapi;

class Sessions {
 public:
  explicit Sessions(Xapi& x) : x_(x) {}

  // On first start: creates "root" with `password`, or a random one written
  // to `password_file` (0600) when none is given. Returns the password when it
  // generated one.
  std::string ensure_root_user(const std::string& password, const std::string& password_file);
  void set_password(const std::string& user, const std::string& password);

  // session.login_with_password. A local unix-socket peer running as uid 0
  // that sends an empty password is the host's superuser (as with xapi's
  // local root logins); any non-empty password is always checked.
  std::string login(const std::string& user, const std::string& password, const std::string& originator,
                    const api::RpcCall& call);
  void logout(const std::string& session);
  // Throws SESSION_INVALID [ref] unless `session` is a live session.
  void check(const std::string& session);

  // Legacy event.register / event.next subscriptions, per session.
  void subscribe(const std::string& session, const std::set<std::string>& classes);
  void unsubscribe(const std::string& session, const std::set<std::string>& classes);
  std::set<std::string> subscriptions(const std::string& session, uint64_t& token);
  void set_token(const std::string& session, uint64_t token);

 private:
  Xapi& x_;
  std::mutex mu_;
  struct Subscription {
    std::set<std::string> classes;
    uint64_t token = 0;
  };
  std::map<std::string, Subscription> subs_;
};

}  // namespace vmstack::ops
