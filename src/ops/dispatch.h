// The RPC dispatcher, driven by the datamodel's message declarations: it
// finds the message, checks the session, unpacks and type-checks the
// arguments into Args (MESSAGE_PARAMETER_COUNT_MISMATCH and FIELD_TYPE_ERROR
// with xapi's parameters), takes the VM operation lock for lifecycle verbs,
// runs Async.* calls as tasks, and calls the handler bound to the message.
// Generated accessors (get_/set_/add_to_/...) are served from the store
// without a handler; every declared message must have one bound
// (check_complete() at startup).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/call_head.h"
#include "api/pending_reply.h"
#include "api/rpc.h"
#include "core/value.h"
#include "model/datamodel.h"
#include "model/store.h"

namespace vmstack::ops {

class Tasks;

// The call a handler serves.
struct Call {
  const model::Message& message;
  std::string session;  // the validated session ref ("" for messages without one)
  std::string task;     // the task ref when running as Async.*
  int peer_uid = -1;    // the unix-socket peer's uid (-1 over TCP)
  std::string peer_address;
  // The server's way to answer later (api::RpcCall::defer); empty for
  // Async.* calls, which run on a task worker and answer with the task.
  std::function<std::shared_ptr<api::PendingReply>()> defer;
};

// The arguments of a call, checked against the message's declaration and
// looked up by the declared parameter name. Asking for a name the message
// does not declare, or with the wrong accessor, is a programming error
// (std::logic_error, which reaches the client as INTERNAL_ERROR and fails
// the dispatch tests).
class Args {
 public:
  Args(const model::Message& m, Array values) : m_(m), values_(std::move(values)) {}
  const std::string& ref(std::string_view name) const;  // Ref params
  const std::string& str(std::string_view name) const;  // String and Enum params
  int64_t i64(std::string_view name) const;
  double flt(std::string_view name) const;
  bool boolean(std::string_view name) const;
  const Struct& map(std::string_view name) const;    // Map and Record params
  const Array& set(std::string_view name) const;
  const Value& value(std::string_view name) const;   // any param, as unpacked
  const Array& all() const { return values_; }

 private:
  const Value& get(std::string_view name, std::initializer_list<model::Kind> kinds) const;
  const model::Message& m_;
  Array values_;
};

using Handler = std::function<Value(const Call&, const Args&)>;

class Dispatcher {
 public:
  // `check_session` throws SESSION_INVALID for a session that is not live.
  Dispatcher(const model::Datamodel& dm, model::Store& store, Tasks& tasks,
             std::function<void(const std::string& session)> check_session);

  // Binds a declared message ("VM.start"); throws std::logic_error for an
  // undeclared, generated or already bound name.
  void bind(const std::string& wire_name, Handler h);
  // Declared messages without a handler (empty when the daemon is complete).
  std::vector<std::string> unbound() const;

  // Serves one RPC call: Class.message, Class_message, Async.Class.message.
  // Throws ApiError for XenAPI failures.
  Value dispatch(const api::RpcCall& call);
  // Every wire name it answers (system.listMethods).
  std::vector<std::string> method_names() const;
  // The server's body admission (api::BodyAdmission): a call may send more
  // than the small unauthenticated body limit only if it names a live
  // session as its first parameter, and never to a message without a
  // session (session.login_with_password). Throws SESSION_INVALID [ref] or
  // MESSAGE_METHOD_UNKNOWN [method], as the full dispatch would; false
  // means "too large" (413). Quick and non-blocking: it runs on the
  // server's event thread.
  bool admit_large_body(const api::CallHead& head) const;

 private:
  // The message a wire name means (Class.message, Class_message,
  // Async.Class.message), or null.
  const model::Message* find(const std::string& method, bool& async) const;
  Value run(const model::Message& m, const Handler* h, const Call& c, const Args& a);
  Value generic(const model::Message& m, const Args& a);
  Value own_session(const model::Message& m, const Call& c, const Args& a);

  const model::Datamodel& dm_;
  model::Store& store_;
  Tasks& tasks_;
  std::function<void(const std::string&)> check_session_;
  std::unordered_map<std::string, const model::Message*> messages_;  // by wire name
  std::unordered_map<const model::Message*, Handler> handlers_;
};

}  // namespace vmstack::ops
