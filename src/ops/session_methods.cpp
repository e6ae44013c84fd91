// session.* and event.* methods.
#include <algorithm>
#include <cctype>
#include <thread>

#include "core/error.h"
#include "ops/sessions.h"
#include "ops/xapi.h"

namespace vmstack::ops {

namespace {

std::set<std::string> class_set(const Value& v) {
  std::set<std::string> out;
  for (const auto& c : v.as_array()) out.insert(c.as_string());
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Array event_records(const model::EventBatch& b) {
  Array out;
  for (const auto& e : b.events) {
    Struct r{{"id", static_cast<int64_t>(e.id)},
             {"timestamp", DateTime{e.timestamp}.iso8601()},
             {"class", lower(e.cls)},
             {"operation", e.operation},
             {"ref", e.ref},
             {"obj_uuid", e.obj_uuid}};
    if (!e.snapshot.is_nil()) r["snapshot"] = e.snapshot;
    out.emplace_back(std::move(r));
  }
  return out;
}

uint64_t parse_token(const Value& v) {
  if (v.is_int()) return static_cast<uint64_t>(v.as_int());
  const auto& s = v.as_string();
  if (s.empty()) return 0;
  // xapi tokens look like "<gen>,<...>"; take the leading number.
  try {
    return std::stoull(s.substr(0, s.find(',')));
  } catch (const std::exception&) {
    throw ApiError("EVENT_FROM_TOKEN_PARSE_FAILURE", {s});
  }
}

constexpr double kMaxEventWaitS = 60.0;

}  // namespace

void register_session(MethodTable& t) {
  Method login;
  login.session = false;
  login.async_ok = false;
  login.arity = 4;
  login.min_arity = 2;
  login.fn = [](CallCtx& x, const Array& a) {
    std::string originator = a.size() > 3 ? a[3].as_string() : "";
    return Value(x.xapi.sessions().login(a.at(0).as_string(), a.at(1).as_string(), originator, x.call));
  };
  t.add("session.login_with_password", login);
  Method slave = login;  // accepted for clients of older API versions
  t.add("session.slave_local_login_with_password", slave);
  t.add("session.logout", Method{[](CallCtx& x, const Array&) {
                                   x.xapi.sessions().logout(x.session);
                                   return Value();
                                 },
                                 0, true, false, 0});
  t.add("session.local_logout", Method{[](CallCtx& x, const Array&) {
                                         x.xapi.sessions().logout(x.session);
                                         return Value();
                                       },
                                       0, true, false, 0});
  t.add("session.change_password", 2, [](CallCtx& x, const Array& a) {
    auto user = x.xapi.db().get_field("session", x.session, "auth_user_name").as_string();
    x.xapi.sessions().set_password(user, a.at(1).as_string());
    (void)a.at(0);
    return Value();
  });
}

void register_event(MethodTable& t) {
  Method from;
  from.arity = from.min_arity = 3;
  from.async_ok = false;
  from.fn = [](CallCtx& x, const Array& a) {
    double timeout = std::clamp(a.at(2).as_double(), 0.0, kMaxEventWaitS);
    auto b = x.xapi.db().events_from(class_set(a.at(0)), parse_token(a.at(1)),
                                     std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
    Struct counts;
    for (const auto& [k, n] : b.valid_ref_counts) counts[lower(k)] = n;
    return Value(Struct{{"events", event_records(b)},
                        {"valid_ref_counts", std::move(counts)},
                        {"token", std::to_string(b.token)}});
  };
  t.add("event.from", from);
  t.add("event.get_current_id", 0,
        [](CallCtx& x, const Array&) { return Value(static_cast<int64_t>(x.xapi.db().generation())); });
  t.add("event.register", 1, [](CallCtx& x, const Array& a) {
    x.xapi.sessions().subscribe(x.session, class_set(a.at(0)));
    return Value();
  });
  t.add("event.unregister", 1, [](CallCtx& x, const Array& a) {
    x.xapi.sessions().unsubscribe(x.session, class_set(a.at(0)));
    return Value();
  });
  Method next;
  next.async_ok = false;
  next.fn = [](CallCtx& x, const Array&) {
    uint64_t token = 0;
    auto classes = x.xapi.sessions().subscriptions(x.session, token);
    auto b = x.xapi.db().events_from(classes, token, std::chrono::seconds(30));
    x.xapi.sessions().set_token(x.session, b.token);
    return Value(event_records(b));
  };
  t.add("event.next", next);
}

}  // namespace vmstack::ops
