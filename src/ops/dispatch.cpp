#include "ops/dispatch.h"

#include <algorithm>
#include <stdexcept>

#include "core/error.h"
#include "core/strings.h"
#include "ops/tasks.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

using model::Impl;
using model::Kind;

// ---- Args

const Value& Args::get(std::string_view name, std::initializer_list<Kind> kinds) const {
  for (size_t i = 0; i < m_.params.size(); ++i) {
    if (m_.params[i].name != name) continue;
    if (std::find(kinds.begin(), kinds.end(), m_.params[i].type.kind) == kinds.end())
      throw std::logic_error(m_.wire_name() + ": parameter " + std::string(name) + " read with the wrong type");
    return values_.at(i);
  }
  throw std::logic_error(m_.wire_name() + " has no parameter " + std::string(name));
}

const std::string& Args::ref(std::string_view n) const { return get(n, {Kind::Ref}).as_string(); }
const std::string& Args::str(std::string_view n) const { return get(n, {Kind::String, Kind::Enum}).as_string(); }
int64_t Args::i64(std::string_view n) const { return get(n, {Kind::Int}).as_int(); }
double Args::flt(std::string_view n) const { return get(n, {Kind::Float}).as_double(); }
bool Args::boolean(std::string_view n) const { return get(n, {Kind::Bool}).as_bool(); }
const Struct& Args::map(std::string_view n) const { return get(n, {Kind::Map, Kind::Record}).as_struct(); }
const Array& Args::set(std::string_view n) const { return get(n, {Kind::Set}).as_array(); }
const Value& Args::value(std::string_view n) const {
  return get(n, {Kind::String, Kind::Int, Kind::Float, Kind::Bool, Kind::DateTime, Kind::Enum, Kind::Ref, Kind::Set,
                 Kind::Map, Kind::Record, Kind::Any});
}

// ---- Dispatcher

Dispatcher::Dispatcher(const model::Datamodel& dm, model::Store& store, Tasks& tasks,
                       std::function<void(const std::string&)> check_session)
    : dm_(dm), store_(store), tasks_(tasks), check_session_(std::move(check_session)) {
  for (const auto& c : dm_.classes)
    for (const auto& m : c.messages) messages_.emplace(m.wire_name(), &m);
}

void Dispatcher::bind(const std::string& wire_name, Handler h) {
  auto it = messages_.find(wire_name);
  if (it == messages_.end()) throw std::logic_error("bind: " + wire_name + " is not declared in the datamodel");
  if (it->second->impl != Impl::custom) throw std::logic_error("bind: " + wire_name + " is a generated accessor");
  if (!handlers_.emplace(it->second, std::move(h)).second) throw std::logic_error("bind: " + wire_name + " bound twice");
}

std::vector<std::string> Dispatcher::unbound() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : messages_)
    if (m->impl == Impl::custom && !handlers_.count(m)) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Dispatcher::method_names() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : messages_) {
    out.push_back(name);
    if (m->async) out.push_back("Async." + name);
  }
  out.push_back("system.listMethods");
  std::sort(out.begin(), out.end());
  return out;
}

const model::Message* Dispatcher::find(const std::string& method, bool& async) const {
  std::string name = method;
  async = starts_with(name, "Async.");
  if (async) name = name.substr(6);
  auto it = messages_.find(name);
  if (it == messages_.end() && !async && name.find('.') == std::string::npos) {
    // xapi also answers Class_message (VM_get_all, event_from): the class is
    // the longest declared prefix before an underscore.
    for (size_t us = name.rfind('_'); us != std::string::npos && us > 0; us = name.rfind('_', us - 1)) {
      auto alt = messages_.find(name.substr(0, us) + "." + name.substr(us + 1));
      if (alt != messages_.end()) {
        it = alt;
        break;
      }
    }
  }
  if (it == messages_.end() || (async && !it->second->async)) return nullptr;
  return it->second;
}

bool Dispatcher::admit_large_body(const api::CallHead& head) const {
  if (!head.method.empty()) {
    if (head.method == "system.listMethods") return false;
    bool async = false;
    const model::Message* m = find(head.method, async);
    if (!m) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {head.method});
    if (!m->session) return false;  // session.login_with_password and friends: small bodies only
  }
  if (!head.first_param) return false;
  check_session_(*head.first_param);  // SESSION_INVALID [ref]
  return true;
}

Value Dispatcher::dispatch(const api::RpcCall& call) {
  if (call.method == "system.listMethods") {
    Array out;
    for (auto& n : method_names()) out.emplace_back(std::move(n));
    return out;
  }
  bool async = false;
  const model::Message* found = find(call.method, async);
  if (!found) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {call.method});
  const model::Message& m = *found;
  if (m.impl == Impl::refused) {
    // Whatever the arguments: the session still has to be valid, so the
    // answer tells nothing to a caller that has not logged in.
    if (call.params.empty() || !call.params[0].is_string())
      throw ApiError(errors::SESSION_INVALID, {call.params.empty() ? "" : call.params[0].to_display()});
    check_session_(call.params[0].as_string());
    throw ApiError(errors::OPERATION_NOT_ALLOWED, {m.wire_name() + ": " + m.refusal});
  }

  // Arity as xapi counts it: parameters after the session, trailing ones
  // with defaults optional; "received" excludes the session too.
  const size_t lead = m.session ? 1 : 0;
  const size_t n = call.params.size();
  const size_t required = m.required_params();
  if (n < required + lead || n > m.params.size() + lead)
    throw ApiError(errors::MESSAGE_PARAMETER_COUNT_MISMATCH,
                   {call.method, std::to_string(required), std::to_string(static_cast<long>(n) - static_cast<long>(lead))});

  std::string session;
  if (m.session) {
    if (!call.params[0].is_string()) throw ApiError(errors::SESSION_INVALID, {call.params[0].to_display()});
    session = call.params[0].as_string();
    check_session_(session);
  }
  Array values;
  values.reserve(m.params.size());
  for (size_t i = 0; i < m.params.size(); ++i) {
    const auto& p = m.params[i];
    if (lead + i < n) values.push_back(dm_.coerce(p.type, p.name, call.params[lead + i]));
    else values.push_back(*p.default_value);
  }

  const Handler* h = nullptr;
  if (m.impl == Impl::custom) {
    auto hit = handlers_.find(&m);
    // Declared but not implemented: a specific error, never a crash.
    if (hit == handlers_.end()) throw ApiError(errors::NOT_IMPLEMENTED, {m.wire_name()});
    h = &hit->second;
  }
  Call c{m, session, {}, call.peer_uid, call.peer_address, {}};
  if (!async) {
    c.defer = call.defer;
    Value v = run(m, h, c, Args(m, std::move(values)));
    // xapi answers void calls with an empty string, not <nil/>: older SDKs
    // (and XML-RPC libraries without the nil extension) expect that.
    if (v.is_nil()) return std::string();
    return v;
  }
  auto task = tasks_.create("Async." + m.wire_name(), session);
  c.task = task;
  tasks_.run(task, [this, &m, h, c, args = Args(m, std::move(values))] { return run(m, h, c, args); });
  return Value(task);
}

Value Dispatcher::run(const model::Message& m, const Handler* h, const Call& c, const Args& a) {
  if (!h) return m.cls == "session" ? own_session(m, c, a) : generic(m, a);
  if (m.operation.empty()) return (*h)(c, a);
  // A lifecycle verb: its first parameter is the VM. The lock checks the
  // lifecycle table and records the operation while the handler runs.
  OpLock lock(store_, a.all().at(0).as_string(), m.operation, c.task);
  return (*h)(c, a);
}

// A session reference is a bearer credential: a caller sees its own session
// record and no other, as if the others did not exist.
Value Dispatcher::own_session(const model::Message& m, const Call& c, const Args& a) {
  switch (m.impl) {
    case Impl::get_by_uuid: {
      const auto& uuid = a.str("uuid");
      std::string ref;
      try {
        ref = store_.ref_by_uuid("session", uuid);
      } catch (const ApiError&) {
      }
      if (ref != c.session) throw ApiError(errors::UUID_INVALID, {"session", uuid});
      return ref;
    }
    default: {
      const auto& self = a.all().at(0).as_string();
      if (self != c.session) throw ApiError(errors::HANDLE_INVALID, {"session", self});
      return generic(m, a);
    }
  }
}

Value Dispatcher::generic(const model::Message& m, const Args& a) {
  const std::string& cls = m.cls;
  auto self = [&]() -> const std::string& { return a.all().at(0).as_string(); };
  switch (m.impl) {
    case Impl::get_all: {
      Array out;
      for (auto& r : store_.all(cls)) out.emplace_back(std::move(r));
      return out;
    }
    case Impl::get_all_records: {
      Struct out;
      store_.for_each(cls, [&](const std::string& ref, const Struct& rec) { out.emplace(ref, rec); });
      return out;
    }
    case Impl::get_record: return store_.get_record(cls, self());
    case Impl::get_by_uuid: return store_.ref_by_uuid(cls, a.str("uuid"));
    case Impl::get_by_name_label: {
      Array out;
      for (auto& r : store_.refs_by_name_label(cls, a.str("label"))) out.emplace_back(std::move(r));
      return out;
    }
    case Impl::get_field: return store_.get_field(cls, self(), m.field->name);
    case Impl::set_field: store_.set_field(cls, self(), m.field->name, a.value("value")); return {};
    case Impl::add_to_map: {
      const auto& key = a.str("key");
      const Value& v = a.value("value");
      // One atomic write: two clients adding keys at once both land.
      store_.modify(cls, self(), [&](Struct& rec) {
        auto& map = rec[m.field->name].as_struct();
        if (map.count(key)) throw ApiError(errors::MAP_DUPLICATE_KEY, {cls, m.field->name, self(), key});
        map[key] = v;
      });
      return {};
    }
    case Impl::remove_from_map: {
      const auto& key = a.str("key");
      store_.modify(cls, self(), [&](Struct& rec) { rec[m.field->name].as_struct().erase(key); });
      return {};
    }
    case Impl::add_to_set: {
      const Value& v = a.value("value");
      store_.modify(cls, self(), [&](Struct& rec) {
        auto& arr = rec[m.field->name].as_array();
        if (std::find(arr.begin(), arr.end(), v) == arr.end()) arr.push_back(v);
      });
      return {};
    }
    case Impl::remove_from_set: {
      const Value& v = a.value("value");
      store_.modify(cls, self(), [&](Struct& rec) {
        auto& arr = rec[m.field->name].as_array();
        arr.erase(std::remove(arr.begin(), arr.end(), v), arr.end());
      });
      return {};
    }
    case Impl::custom:
    case Impl::refused: break;
  }
  throw std::logic_error("generic: " + m.wire_name() + " has no generic implementation");
}

}  // namespace vmstack::ops
