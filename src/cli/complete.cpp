#include "cli/complete.h"

#include <algorithm>
#include <set>

#include "cli/commands.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

struct Line {
  ConnOptions conn;
  std::string command;
  std::set<std::string> given;  // keys already on the line
  std::string current;
};

Line split_line(const std::vector<std::string>& words) {
  Line l;
  if (words.empty()) return l;
  l.current = words.back();
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& w = words[i];
    bool has_next = i + 2 < words.size();
    if ((w == "-s" || w == "-h" || w == "-p" || w == "-u" || w == "-pw" || w == "-pwf") && has_next) {
      const std::string& v = words[++i];
      if (w == "-s" || w == "-h") l.conn.server = v;
      else if (w == "-p") l.conn.port = static_cast<unsigned short>(std::atoi(v.c_str()));
      else if (w == "-u") l.conn.username = v;
      else if (w == "-pw") l.conn.password = v, l.conn.have_password = true;
      else l.conn.password_file = v;
      continue;
    }
    if (starts_with(w, "--")) {
      l.given.insert(w.substr(2));
      continue;
    }
    auto eq = w.find('=');
    if (eq == std::string::npos) {
      if (l.command.empty()) l.command = w;
      continue;
    }
    l.given.insert(w.substr(0, eq));
  }
  return l;
}

// Values that need the daemon: uuids and name-labels of a class.
class Lookup {
 public:
  Lookup(const ConnOptions& conn, const std::function<Session*(const ConnOptions&)>& connect)
      : conn_(conn), connect_(connect) {}

  // (uuid, name-label) of every object of `cls` passing `keep`.
  std::vector<std::pair<std::string, std::string>> objects(const std::string& cls,
                                                           const std::function<bool(const Struct&)>& keep = {}) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!tried_) {
      tried_ = true;
      session_ = connect_(conn_);
    }
    if (!session_) return out;
    try {
      Value all = session_->call(cls + ".get_all_records");
      for (const auto& [ref, rec] : all.as_struct()) {
        if (keep && !keep(rec.as_struct())) continue;
        out.emplace_back(rec["uuid"].to_display(), rec["name_label"].is_nil() ? "" : rec["name_label"].to_display());
      }
    } catch (const std::exception&) {
      // Completion never fails loudly.
    }
    return out;
  }

 private:
  ConnOptions conn_;
  const std::function<Session*(const ConnOptions&)>& connect_;
  bool tried_ = false;
  Session* session_ = nullptr;
};

bool is_template(const Struct& r) {
  auto it = r.find("is_a_template");
  return it != r.end() && it->second.is_bool() && it->second.as_bool();
}

std::vector<std::string> values_for(const Command& cmd, const std::string& key, Lookup& lookup) {
  std::vector<std::string> out;
  const auto& dm = model::datamodel();
  auto add_objects = [&](const std::string& cls, bool uuids, bool names, const std::function<bool(const Struct&)>& keep) {
    for (const auto& [uuid, name] : lookup.objects(cls, keep)) {
      if (uuids) out.push_back(uuid);
      if (names && !name.empty()) out.push_back(name);
    }
  };
  if (key == "vm") {
    add_objects("VM", true, true, [](const Struct& r) { return !is_template(r); });
    return out;
  }
  if (key == "template" || key == "template-uuid" || key == "template-name-label") {
    add_objects("VM", key != "template-name-label", key != "template-uuid", is_template);
    return out;
  }
  if (key == "class") {
    for (const auto& c : dm.classes)
      if (c.stored && !c.cli_prefix.empty()) out.push_back(c.cli_prefix);
    return out;
  }
  if (key == "param-name" && cmd.cls) {
    for (const auto& f : cli_fields(*cmd.cls)) out.push_back(f.name);
    return out;
  }
  if (key == "uuid" && cmd.cls) {
    bool templates = starts_with(cmd.name, "template-");
    add_objects(cmd.cls->name, true, false, [&](const Struct& r) {
      return cmd.cls->name != "VM" || is_template(r) == templates || starts_with(cmd.name, "snapshot-");
    });
    return out;
  }
  // <prefix>-uuid (sr-uuid=, vdi-uuid=): uuids of that class.
  if (key.size() > 5 && key.compare(key.size() - 5, 5, "-uuid") == 0)
    if (const auto* c = class_for_prefix(key.substr(0, key.size() - 5))) {
      add_objects(c->name, true, false, {});
      return out;
    }
  // A field of the command's class: booleans and enums have known values.
  if (cmd.cls && cmd.keys != KeySource::Fixed) {
    auto fields = cli_fields(*cmd.cls);
    if (const CliField* f = find_field(fields, key); f && f->via == CliField::Via::Direct) {
      const auto& t = f->field->type;
      if (t.kind == model::Kind::Bool) return {"true", "false"};
      if (t.kind == model::Kind::Enum)
        if (const auto* e = dm.enumeration(t.target))
          for (const auto& v : e->values) {
            std::string s = v;
            if (t.target == "vm_power_state")
              for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            out.push_back(s);
          }
    }
  }
  if (key == "paused" || key == "force" || key == "multiple" || key == "minimal") return {"true", "false"};
  return out;
}

std::vector<std::string> keys_for(const Command& cmd) {
  std::vector<std::string> keys;
  for (const auto& k : cmd.reqd) keys.push_back(k + "=");
  for (const auto& k : cmd.optn)
    if (!k.empty() && k.front() != '<') keys.push_back(k.back() == ':' ? k : k + "=");
  if (cmd.cls && cmd.keys == KeySource::Filters)
    for (const auto& f : cli_fields(*cmd.cls)) {
      keys.push_back(f.name + "=");
      if (f.is_map()) keys.push_back(f.name + ":");
    }
  if (cmd.flags & kVmSelectors) keys.push_back("--multiple");
  if (cmd.name.size() > 5 && cmd.name.compare(cmd.name.size() - 5, 5, "-list") == 0) keys.push_back("--minimal");
  for (const auto& k : cmd.optn)
    if (k == "force") keys.push_back("--force");
  return keys;
}

}  // namespace

std::vector<std::string> complete(const std::vector<std::string>& words,
                                  const std::function<Session*(const ConnOptions&)>& connect) {
  Line line = split_line(words.empty() ? std::vector<std::string>{""} : words);
  const auto& table = command_table();
  std::vector<std::string> out;
  auto offer = [&](const std::string& cand) {
    if (starts_with(cand, line.current) && std::find(out.begin(), out.end(), cand) == out.end()) out.push_back(cand);
  };

  if (line.command.empty() || line.command == "help") {
    if (line.current.find('=') != std::string::npos) return out;
    for (const auto& [name, c] : table.all())
      if (!(c.flags & kHidden)) offer(name);
    return out;
  }
  const Command* cmd = table.find(line.command);
  if (!cmd) return out;
  auto eq = line.current.find('=');
  if (eq != std::string::npos) {
    std::string key = line.current.substr(0, eq);
    Lookup lookup(line.conn, connect);
    for (const auto& v : values_for(*cmd, key, lookup)) offer(key + "=" + v);
    return out;
  }
  for (const auto& k : keys_for(*cmd)) {
    std::string bare = k;
    if (starts_with(bare, "--")) bare = bare.substr(2);
    else if (!bare.empty() && (bare.back() == '=')) bare.pop_back();
    // A key given already is not offered again (map keys can repeat).
    if (k.back() != ':' && line.given.count(bare)) continue;
    offer(k);
  }
  return out;
}

}  // namespace vmstack::cli
