// session.* and event.* handlers.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/strings.h"
#include "ops/dispatch.h"
#include "ops/long_polls.h"
#include "ops/sessions.h"

namespace vmstack::ops {

namespace {

// Tokens are zero-padded to a fixed width, as xapi's: clients may compare
// an event.inject token with event.from's as strings.
std::string token_text(uint64_t token) { return fmt::format("{:020}", token); }

std::set<std::string> class_set(const Array& v) {
  std::set<std::string> out;
  for (const auto& c : v) out.insert(c.as_string());
  return out;
}

// Events about sessions other than the caller's are not the caller's to see
// (a session reference is a credential).
Array event_records(const model::EventBatch& b, const std::string& session) {
  Array out;
  for (const auto& e : b.events) {
    if (e.cls == "session" && e.ref != session) continue;
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

uint64_t parse_token(const std::string& s) {
  if (s.empty()) return 0;
  // xapi tokens look like "<gen>,<...>"; take the leading number.
  try {
    size_t used = 0;
    auto head = s.substr(0, s.find(','));
    uint64_t v = std::stoull(head, &used);
    if (used != head.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw ApiError("EVENT_FROM_TOKEN_PARSE_FAILURE", {s});
  }
}

constexpr double kMaxEventWaitS = 60.0;
constexpr std::chrono::seconds kEventNextWait{30};

}  // namespace

void bind_sessions(Dispatcher& d, Sessions& sessions, model::Store& store, LongPolls& polls) {
  auto login = [&sessions](const Call& c, const Args& a) {
    std::string originator;
    if (c.message.name == "login_with_password") originator = a.str("originator");
    return Value(sessions.login(a.str("uname"), a.str("pwd"), originator, c.peer_uid, c.peer_address));
  };
  d.bind("session.login_with_password", login);
  d.bind("session.slave_local_login_with_password", login);
  auto logout = [&sessions](const Call& c, const Args&) {
    sessions.logout(c.session);
    return Value();
  };
  d.bind("session.logout", logout);
  d.bind("session.local_logout", logout);
  // No external directory: no session has a subject identifier.
  d.bind("session.get_all_subject_identifiers", [](const Call&, const Args&) { return Value(Array{}); });
  d.bind("session.logout_subject_identifier", [](const Call&, const Args&) { return Value(); });
  d.bind("session.change_password", [&sessions](const Call& c, const Args& a) {
    sessions.change_password(c.session, a.str("old_pwd"), a.str("new_pwd"), c.peer_uid, c.peer_address);
    return Value();
  });

  // The long polls park (LongPolls): waiting for changes holds no worker.
  d.bind("event.from", [&polls](const Call& c, const Args& a) {
    double timeout = a.flt("timeout");
    // NaN passes std::clamp and its conversion below would be undefined.
    timeout = std::isnan(timeout) ? 0.0 : std::clamp(timeout, 0.0, kMaxEventWaitS);
    return polls.wait(c, class_set(a.set("classes")), parse_token(a.str("token")),
                      std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)),
                      [session = c.session](const model::EventBatch& b) {
                        Struct counts;
                        // A session sees only itself (see event_records).
                        for (const auto& [k, n] : b.valid_ref_counts)
                          counts[lower(k)] = k == "session" ? int64_t{1} : n;
                        return Value(Struct{{"events", event_records(b, session)},
                                            {"valid_ref_counts", std::move(counts)},
                                            {"token", token_text(b.token)}});
                      });
  });
  d.bind("event.get_current_id", [&store](const Call&, const Args&) {
    return Value(static_cast<int64_t>(store.generation()));
  });
  // XO's client takes its first event.from token from event.inject. The
  // token is the generation before the injected "mod": the next
  // event.from from it has that event (and nothing is lost before it).
  d.bind("event.inject", [&store](const Call& c, const Args& a) {
    const model::ClassDef* def = model::datamodel().cls_ci(a.str("class"));
    const std::string& ref = a.str("ref");
    auto actual = store.class_of(ref);
    // Another session does not exist for this one (a session ref is a credential).
    if (!def || !def->stored || !actual || *actual != def->name || (def->name == "session" && ref != c.session))
      throw ApiError(errors::HANDLE_INVALID, {a.str("class"), ref});
    uint64_t token = store.generation();
    store.update(def->name, ref, {});
    return Value(token_text(token));
  });
  d.bind("event.register", [&sessions](const Call& c, const Args& a) {
    sessions.subscribe(c.session, class_set(a.set("classes")));
    return Value();
  });
  d.bind("event.unregister", [&sessions](const Call& c, const Args& a) {
    sessions.unsubscribe(c.session, class_set(a.set("classes")));
    return Value();
  });
  d.bind("event.next", [&sessions, &polls](const Call& c, const Args&) {
    uint64_t token = 0;
    auto classes = sessions.subscriptions(c.session, token);
    return polls.wait(c, std::move(classes), token, kEventNextWait,
                      [&sessions, session = c.session](const model::EventBatch& b) {
                        sessions.set_token(session, b.token);
                        return Value(event_records(b, session));
                      });
  });
}

}  // namespace vmstack::ops
