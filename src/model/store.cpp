#include "model/store.h"

#include "core/error.h"

namespace vmstack::model {

std::map<std::string, Struct> Store::all_records(const std::string& cls) const {
  std::map<std::string, Struct> out;
  for_each(cls, [&](const std::string& ref, const Struct& rec) { out.emplace(ref, rec); });
  return out;
}

Struct Store::modify(const std::string& cls, const std::string& ref, const std::function<void(Struct& record)>& fn) {
  // Contention is short (each attempt is one in-memory read and one write),
  // so a generous bound only guards against a store that never commits.
  constexpr int kMaxAttempts = 10000;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Versioned v = read(cls, ref);
    Struct rec = v.record;
    fn(rec);
    Struct changes;
    for (const auto& [k, val] : rec) {
      auto it = v.record.find(k);
      if (it == v.record.end() || !(it->second == val)) changes.emplace(k, val);
    }
    if (changes.empty() || update_if(cls, ref, changes, v.generation)) return rec;
  }
  throw ApiError(errors::INTERNAL_ERROR, {"store: " + cls + " " + ref + " kept changing; update abandoned"});
}

}  // namespace vmstack::model
