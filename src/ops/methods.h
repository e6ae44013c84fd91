// The RPC method table: name -> handler, with XenAPI's parameter-count
// checking. Generic accessors are generated from the datamodel (generic.cpp);
// verbs with side effects register themselves (vm_ops.cpp, ...).
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/rpc.h"
#include "core/value.h"

namespace vmstack::ops {

class Xapi;

struct CallCtx {
  Xapi& xapi;
  const api::RpcCall& call;
  std::string session;  // validated session ref (empty for login)
  std::string task;     // set when running as Async.*
};

using Handler = std::function<Value(CallCtx&, const Array& args)>;

struct Method {
  Handler fn;
  size_t arity = 0;        // arguments after the session ref
  bool session = true;     // first parameter is a session ref
  bool async_ok = true;    // may be called as Async.<name>
  size_t min_arity = 0;    // older clients may omit trailing args (e.g. VM.start's force)
};

class MethodTable {
 public:
  void add(const std::string& name, size_t arity, Handler fn);
  void add(const std::string& name, Method m);
  const Method* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::unordered_map<std::string, Method> methods_;
};

}  // namespace vmstack::ops
