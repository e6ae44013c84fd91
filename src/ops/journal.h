// The intent journal: what a verb is about to do, written durably (in the
// store's settings, "intent:<id>") before it does it and updated as it goes,
// so that a daemon killed in the middle finishes or undoes the verb at its
// next start (ops/recovery.h) instead of leaving orphan processes, files
// nothing refers to, or a VM whose record and processes disagree.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/value.h"
#include "core/crash_point.h"
#include "model/store.h"

namespace vmstack::ops {

class Journal {
 public:
  explicit Journal(model::Store& store) : store_(store) {}

  // One verb's intent; removed from the journal when the verb ends, whether
  // it succeeded or failed (its own error handling cleans up then).
  class Entry {
   public:
    Entry(Journal& j, std::string id, Struct facts);
    Entry(Entry&& o) noexcept;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();
    // Records a fact durably before the step it announces.
    void set(const std::string& key, const Value& v);
    // Appends to a list fact ("vdis", ...).
    void add(const std::string& key, const std::string& item);
    const Struct& facts() const { return facts_; }

   private:
    void write();
    Journal* j_;
    std::string id_;
    Struct facts_;
  };

  // Starts an entry: `op` (e.g. "start") on `target` (a ref or uuid).
  Entry begin(const std::string& op, const std::string& target);
  // What an earlier daemon left unfinished: (id, facts with "op", "target").
  std::vector<std::pair<std::string, Struct>> pending() const;
  void erase(const std::string& id);

 private:
  model::Store& store_;
};

}  // namespace vmstack::ops
