#include "ops/methods.h"

#include <algorithm>

namespace vmstack::ops {

void MethodTable::add(const std::string& name, size_t arity, Handler fn) {
  Method m;
  m.fn = std::move(fn);
  m.arity = m.min_arity = arity;
  methods_[name] = std::move(m);
}

void MethodTable::add(const std::string& name, Method m) {
  if (m.min_arity > m.arity) m.min_arity = m.arity;
  methods_[name] = std::move(m);
}

const Method* MethodTable::find(const std::string& name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : &it->second;
}

std::vector<std::string> MethodTable::names() const {
  std::vector<std::string> out;
  for (const auto& [n, m] : methods_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vmstack::ops
