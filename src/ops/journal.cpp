#include "ops/journal.h"

#include <nlohmann/json.hpp>

#include "core/uuid.h"

namespace vmstack::ops {

using json = nlohmann::json;

namespace {

constexpr const char* kPrefix = "intent:";

// Facts are strings and lists of strings.
json to_json(const Struct& facts) {
  json j = json::object();
  for (const auto& [k, v] : facts) {
    if (v.is_array()) {
      json a = json::array();
      for (const auto& e : v.as_array()) a.push_back(e.to_display());
      j[k] = a;
    } else {
      j[k] = v.to_display();
    }
  }
  return j;
}

Struct from_json(const std::string& text) {
  Struct out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_array()) {
      Array a;
      for (const auto& e : v)
        if (e.is_string()) a.emplace_back(e.get<std::string>());
      out[k] = std::move(a);
    } else if (v.is_string()) {
      out[k] = v.get<std::string>();
    }
  }
  return out;
}

}  // namespace

Journal::Entry::Entry(Journal& j, std::string id, Struct facts) : j_(&j), id_(std::move(id)), facts_(std::move(facts)) {
  write();
}

Journal::Entry::Entry(Entry&& o) noexcept : j_(o.j_), id_(std::move(o.id_)), facts_(std::move(o.facts_)) {
  o.j_ = nullptr;
}

Journal::Entry::~Entry() {
  if (!j_) return;
  try {
    j_->erase(id_);
  } catch (...) {
    // The next start finds the entry and reconciles it: harmless.
  }
}

void Journal::Entry::write() { j_->store_.put_setting(kPrefix + id_, to_json(facts_).dump()); }

void Journal::Entry::set(const std::string& key, const Value& v) {
  facts_[key] = v;
  write();
}

void Journal::Entry::add(const std::string& key, const std::string& item) {
  auto& v = facts_[key];
  if (!v.is_array()) v = Array{};
  v.as_array().emplace_back(item);
  write();
}

Journal::Entry Journal::begin(const std::string& op, const std::string& target) {
  return Entry(*this, make_uuid(), Struct{{"op", op}, {"target", target}});
}

std::vector<std::pair<std::string, Struct>> Journal::pending() const {
  std::vector<std::pair<std::string, Struct>> out;
  for (const auto& [key, value] : store_.settings_with_prefix(kPrefix))
    out.emplace_back(key.substr(std::string(kPrefix).size()), from_json(value));
  return out;
}

void Journal::erase(const std::string& id) { store_.erase_setting(kPrefix + id); }

}  // namespace vmstack::ops
