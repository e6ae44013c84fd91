// The client's one-pass XML-RPC response scanner (src/api/xmlrpc_scan.cpp)
// against the DOM decoder it stands in for (differential): for every body the
// scanner accepts, xmlrpc::parse_response (scanner first) and the DOM-only
// decoder must give the same result, or fail with the same error (the
// XenAPI envelope is unwrapped after either decoder and may refuse both).
#include <variant>

#include "api/xmlrpc_scan.h"
#include "fuzz_util.h"

using namespace vmstack;
using namespace vmstack::api;

namespace {

using Outcome = std::variant<RpcResult, std::vector<std::string>>;

template <class F>
Outcome outcome(F f) {
  try {
    return f();
  } catch (const ApiError& e) {
    return e.description();
  }
}

std::string show(const Outcome& o) {
  if (auto* e = std::get_if<std::vector<std::string>>(&o)) return "error " + Value(Array(e->begin(), e->end())).to_display();
  const RpcResult& r = std::get<RpcResult>(o);
  return r.ok ? "value " + r.value.to_display() : "failure " + Value(Array(r.error_description.begin(), r.error_description.end())).to_display();
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.index() != b.index()) return false;
  if (a.index() == 1) return std::get<1>(a) == std::get<1>(b);
  const RpcResult &x = std::get<0>(a), &y = std::get<0>(b);
  return x.ok == y.ok && x.error_description == y.error_description && fuzz::same(x.value, y.value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body = fuzz::input(data, size);
  if (!xmlrpc::scan_response_value(body)) return 0;  // the DOM decoder alone (xmlrpc target)
  Outcome mine = outcome([&] { return xmlrpc::parse_response(body); });
  Outcome dom = outcome([&] { return xmlrpc::parse_response_dom(body); });
  FUZZ_CHECK(same(mine, dom), "scanner: " + show(mine) + "\nDOM:     " + show(dom));
  return 0;
}
