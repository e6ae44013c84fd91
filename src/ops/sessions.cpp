#include "ops/sessions.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <fstream>

#include <spdlog/spdlog.h>

#include "api/auth.h"
#include "core/error.h"
#include "core/uuid.h"

namespace vmstack::ops {

namespace {
std::string random_password() {
  static constexpr char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char c : b) out.push_back(alphabet[c % (sizeof alphabet - 1)]);
  return out;
}
}  // namespace

std::string Sessions::ensure_root_user(const std::string& password, const std::string& password_file) {
  if (store_.get_setting("user:root")) return {};
  std::string pw = password;
  std::string generated;
  if (pw.empty()) {
    pw = generated = random_password();
    std::ofstream f(password_file, std::ios::trunc);
    f << pw << "\n";
    f.close();
    ::chmod(password_file.c_str(), 0600);
  }
  store_.put_setting("user:root", api::hash_password(pw));
  return generated;
}

void Sessions::set_password(const std::string& user, const std::string& password) {
  store_.put_setting("user:" + user, api::hash_password(password));
}

void Sessions::verify(const std::string& user, const std::string& password, const std::optional<std::string>& hash,
                      int peer_uid, const std::string& peer_address) {
  auto refuse = [&](const std::string& why) { throw ApiError(errors::SESSION_AUTHENTICATION_FAILED, {user, why}); };
  const std::string source = api::throttle_source(peer_address, peer_uid);
  // A source that keeps failing is refused before any hashing.
  if (auto wait = backoff_.retry_after(source); wait.count() > 0)
    refuse("Too many failed logins from " + source + "; try again in " +
           std::to_string((wait.count() + 999) / 1000) + " s");
  bool ok = false;
  if (!password.empty()) {
    auto slot = hashing_.enter();
    if (!slot) refuse("Too many logins at once; try again shortly");
    if (hash) {
      ok = api::verify_password(password, *hash);
    } else {
      // No such user: hash anyway, so the answer's timing does not tell.
      std::call_once(dummy_once_, [&] { dummy_hash_ = api::hash_password(make_uuid()); });
      api::verify_password(password, dummy_hash_);
    }
  }
  if (ok) {
    backoff_.succeeded(source);
    return;
  }
  if (auto lockout = backoff_.failed(source); lockout.count() > 0)
    spdlog::warn("login: repeated failures from {} (last as '{}'); refusing it for {} ms", source, user,
                 lockout.count());
  refuse("Authentication failure");
}

std::string Sessions::login(const std::string& user, const std::string& password, const std::string& originator,
                            int peer_uid, const std::string& peer_address) {
  auto hash = store_.get_setting("user:" + user);
  // peer_uid is only known for unix-socket peers (-1 over TCP).
  bool local_root = peer_uid == 0 && password.empty();
  if (!local_root) verify(user, password, hash, peer_uid, peer_address);
  else if (!hash) throw ApiError(errors::SESSION_AUTHENTICATION_FAILED, {user, "Authentication failure"});
  sweep(user);
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto ref = store_.create("session", {{"this_host", host_.empty() ? std::string(kNullRef) : host_},
                                    {"last_active", DateTime{now}},
                                    {"is_local_superuser", local_root || user == "root"},
                                    {"auth_user_name", user},
                                    {"originator", originator}});
  std::lock_guard lk(mu_);
  last_use_[ref] = ++uses_;
  if (local_root) passwordless_.insert(ref);
  return ref;
}

void Sessions::logout(const std::string& session) {
  try {
    store_.destroy("session", session);
  } catch (const ApiError&) {
    throw ApiError(errors::SESSION_INVALID, {session});
  }
  std::lock_guard lk(mu_);
  subs_.erase(session);
  last_use_.erase(session);
  passwordless_.erase(session);
}

void Sessions::check(const std::string& session) {
  int64_t last = 0;
  try {
    last = store_.get_field("session", session, "last_active").as_datetime().epoch;
  } catch (const ApiError&) {
    throw ApiError(errors::SESSION_INVALID, {session});
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  {
    std::lock_guard lk(mu_);
    last_use_[session] = ++uses_;
  }
  if (now - last > timeout_.count()) {
    try {
      logout(session);
    } catch (const ApiError&) {
    }
    throw ApiError(errors::SESSION_INVALID, {session});
  }
  // Marked at most once a minute: every call writing the session would wake
  // every event.from waiter for nothing.
  if (now - last >= 60) {
    try {
      store_.set_field("session", session, "last_active", DateTime{now});
    } catch (const ApiError&) {
    }
  }
}

void Sessions::sweep(const std::string& user) {
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::vector<std::string> expired;
  std::vector<std::pair<uint64_t, std::string>> mine;  // (order of last use, ref)
  std::vector<std::pair<std::string, bool>> seen;      // (ref, this user's)
  store_.for_each("session", [&](const std::string& ref, const Struct& r) {
    if (now - r.at("last_active").as_datetime().epoch > timeout_.count()) expired.push_back(ref);
    else seen.emplace_back(ref, r.at("auth_user_name").as_string() == user);
  });
  {
    std::lock_guard lk(mu_);
    for (const auto& [ref, users] : seen)
      if (users) mine.emplace_back(last_use_.count(ref) ? last_use_[ref] : 0, ref);
  }
  if (mine.size() >= max_per_user_) {
    std::sort(mine.begin(), mine.end());
    for (size_t i = 0; i + max_per_user_ <= mine.size(); ++i) expired.push_back(mine[i].second);
  }
  for (const auto& ref : expired) {
    try {
      logout(ref);
    } catch (const ApiError&) {
      // logged out meanwhile
    }
  }
}

void Sessions::change_password(const std::string& session, const std::string& old_pw, const std::string& new_pw,
                               int peer_uid, const std::string& peer_address) {
  auto rec = store_.get_record("session", session);
  const auto& user = rec["auth_user_name"].as_string();
  bool passwordless;
  {
    std::lock_guard lk(mu_);
    passwordless = passwordless_.count(session) > 0;
  }
  if (!passwordless) verify(user, old_pw, store_.get_setting("user:" + user), peer_uid, peer_address);
  if (new_pw.empty()) throw ApiError(errors::INVALID_VALUE, {"new_pwd", ""});
  set_password(user, new_pw);
}

void Sessions::subscribe(const std::string& session, const std::set<std::string>& classes) {
  std::lock_guard lk(mu_);
  auto& s = subs_[session];
  if (s.classes.empty()) s.token = store_.generation();
  s.classes.insert(classes.begin(), classes.end());
}

void Sessions::unsubscribe(const std::string& session, const std::set<std::string>& classes) {
  std::lock_guard lk(mu_);
  auto it = subs_.find(session);
  if (it == subs_.end()) return;
  for (const auto& c : classes) it->second.classes.erase(c);
}

std::set<std::string> Sessions::subscriptions(const std::string& session, uint64_t& token) {
  std::lock_guard lk(mu_);
  auto it = subs_.find(session);
  if (it == subs_.end() || it->second.classes.empty())
    throw ApiError("SESSION_NOT_REGISTERED", {session});
  token = it->second.token;
  return it->second.classes;
}

void Sessions::set_token(const std::string& session, uint64_t token) {
  std::lock_guard lk(mu_);
  subs_[session].token = token;
}

}  // namespace vmstack::ops
