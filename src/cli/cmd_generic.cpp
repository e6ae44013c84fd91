// The commands xe generates for every class of the datamodel that has a
// cli_prefix: <prefix>-list, -param-list, -param-get, -param-set,
// -param-add, -param-remove, -param-clear. Nothing here names a field: the
// parameter tables come from cli_fields().
#include <charconv>
#include <cmath>

#include "cli/commands.h"
#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

// A "view" of a class under an xe prefix: vm, template and snapshot are
// three views of VM with different default filters.
struct View {
  std::string prefix;
  const model::ClassDef* cls;
  std::vector<Filter> default_filters;
  // Default filters the user may override by giving the same key.
  std::vector<Filter> soft_filters;
  std::vector<std::string> columns;  // default params of <prefix>-list
};

// The columns xe's <class>-list prints by default. Names that the class
// does not have are simply skipped, so the datamodel stays the authority.
std::vector<std::string> default_columns(const std::string& prefix) {
  static const std::map<std::string, std::vector<std::string>> cols = {
      {"vm", {"uuid", "name-label", "power-state"}},
      {"template", {"uuid", "name-label", "name-description"}},
      {"snapshot", {"uuid", "name-label", "name-description", "snapshot-of", "snapshot-time"}},
      {"pool", {"uuid", "name-label", "name-description", "master", "default-SR"}},
      {"host", {"uuid", "name-label", "name-description"}},
      {"sr", {"uuid", "name-label", "name-description", "type", "content-type"}},
      {"vdi", {"uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"}},
      {"vbd", {"uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty"}},
      {"pbd", {"uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"}},
      {"network", {"uuid", "name-label", "name-description", "bridge"}},
      {"vif", {"uuid", "device", "vm-uuid", "network-uuid"}},
      {"console", {"uuid", "vm-uuid", "vm-name-label", "protocol", "location"}},
      {"task", {"uuid", "name-label", "name-description", "status", "progress"}},
  };
  auto it = cols.find(prefix);
  if (it != cols.end()) return it->second;
  return {"uuid", "name-label", "name-description"};
}

std::vector<View> views() {
  std::vector<View> out;
  for (const auto& c : model::datamodel().classes) {
    if (c.cli_prefix.empty() || !c.stored || !c.field("uuid") || !c.get_all) continue;
    if (c.name == "VM") {
      // vm-list hides templates and the control domain (the latter can be
      // asked for with is-control-domain=true).
      out.push_back({"vm", &c, {{"is-a-template", "false"}}, {{"is-control-domain", "false"}}, default_columns("vm")});
      out.push_back({"template", &c, {{"is-a-template", "true"}, {"is-a-snapshot", "false"}}, {}, default_columns("template")});
      out.push_back({"snapshot", &c, {{"is-a-snapshot", "true"}}, {}, default_columns("snapshot")});
      continue;
    }
    out.push_back({c.cli_prefix, &c, {}, {}, default_columns(c.cli_prefix)});
  }
  return out;
}

std::string plural(const std::string& prefix) { return prefix + "s"; }

// ---- value conversion: xe text -> the API value of a field.

Value parse_scalar(model::Kind kind, const std::string& cli_name, const model::ClassDef* target,
                   const std::string& text, Session& s) {
  switch (kind) {
    case model::Kind::Int:
      // Sizes are accepted with xe's suffixes (memory-static-max=512MiB).
      try {
        return parse_size(cli_name, text);
      } catch (const CliError&) {
        int64_t n = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec == std::errc() && p == text.data() + text.size()) return n;
        throw failure("Parameter " + cli_name + " must be an integer");
      }
    case model::Kind::Float: {
      try {
        size_t used = 0;
        double d = std::stod(text, &used);
        if (used == text.size() && std::isfinite(d)) return d;
      } catch (const std::exception&) {
      }
      throw failure("Parameter " + cli_name + " must be a floating-point number");
    }
    case model::Kind::Bool: {
      std::string l;
      for (char c : text) l.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (l == "true" || l == "yes" || l == "on" || l == "1") return true;
      if (l == "false" || l == "no" || l == "off" || l == "0") return false;
      throw failure("Parameter " + cli_name + " must be a boolean (true or false)");
    }
    case model::Kind::DateTime: {
      DateTime dt;
      if (!DateTime::parse(text, dt)) throw failure("Parameter " + cli_name + " must be a date (YYYYMMDDTHH:MM:SSZ)");
      return dt;
    }
    case model::Kind::Ref:
      // References are given as uuids; an empty value clears them.
      if (text.empty() || text == "OpaqueRef:NULL") return std::string("OpaqueRef:NULL");
      if (!target) return text;
      return s.call(target->name + ".get_by_uuid", Array{text});
    default:
      return text;  // strings and enums (the daemon checks enum values)
  }
}

Value parse_field_value(const CliField& f, const std::string& text, Session& s) {
  const auto& t = f.field->type;
  if (t.kind == model::Kind::Set) {
    // xe takes sets as comma-separated lists.
    Array out;
    size_t start = 0;
    while (start <= text.size() && !text.empty()) {
      size_t comma = text.find(',', start);
      std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      out.push_back(parse_scalar(t.elem, f.name, f.target, item, s));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  }
  return parse_scalar(t.kind, f.name, f.target, text, s);
}

struct Target {
  std::string ref;
  Struct record;
};

Target lookup(Context& ctx, const model::ClassDef& cls) {
  std::string uuid = *ctx.args.get("uuid");
  std::string ref = ctx.session().call(cls.name + ".get_by_uuid", Array{uuid}).as_string();
  Struct rec = ctx.session().call(cls.name + ".get_record", Array{ref}).as_struct();
  return {ref, std::move(rec)};
}

const CliField& field_or_missing(const std::vector<CliField>& fields, const std::string& name) {
  const CliField* f = find_field(fields, name);
  if (!f) throw unknown_field(name);
  return *f;
}

std::string api(const CliField& f) { return f.field->name; }

// ---- the commands

int do_list(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  std::vector<Filter> filters = v.default_filters;
  auto user = filters_from(ctx.args, {});
  for (const auto& soft : v.soft_filters) {
    bool overridden = false;
    for (const auto& u : user)
      if (u.key == soft.key) overridden = true;
    if (!overridden) filters.push_back(soft);
  }
  filters.insert(filters.end(), user.begin(), user.end());
  auto objs = select_cached(ctx.objects(), *v.cls, fields, filters);

  std::vector<std::string> params = v.columns;
  if (auto p = ctx.args.get("params")) {
    params.clear();
    if (*p != "all") {
      size_t start = 0;
      for (;;) {
        size_t comma = p->find(',', start);
        params.push_back(p->substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
  }
  std::vector<PrintedRecord> out;
  for (const auto* o : objs)
    out.push_back(print_record(o->second, fields, ctx.objects(), params.empty() ? nullptr : &params));
  ctx.printer.table(out);
  return 0;
}

int do_param_list(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  ctx.printer.table({print_record(t.record, fields, ctx.objects())});
  return 0;
}

int do_param_get(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  const CliField& f = field_or_missing(fields, *ctx.args.get("param-name"));
  if (auto key = ctx.args.get("param-key"); key && f.is_map()) {
    const Struct* src = source_record(f, t.record, ctx.objects());
    const Value m = src && src->count(f.field->name) ? src->at(f.field->name) : Value();
    if (!m.is_struct() || !m.as_struct().count(*key)) throw failure("Key " + *key + " not found in map");
    ctx.printer.line(m.as_struct().at(*key).to_display());
    return 0;
  }
  ctx.printer.line(display(f, t.record, ctx.objects()));
  return 0;
}

int do_param_set(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  Session& s = ctx.session();
  const std::string cls = v.cls->name;
  // Validate everything before changing anything: a typo in the third
  // key=value must not leave the first two applied.
  struct Change {
    const CliField* f;
    std::string key;  // map key ("" for a plain field)
    Value value;
  };
  std::vector<Change> changes;
  for (const auto& [k, text] : ctx.args.params) {
    if (k == "uuid" || is_std_param(k)) continue;
    if (const CliField* f = find_field(fields, k)) {
      if (f->is_set()) throw failure("Cannot param-set on set fields");
      if (!f->writable()) {
        if (f->is_map()) throw failure("Field '" + f->name + "' is a map or set. use the 'name:key=value' syntax.");
        throw failure("Field '" + k + "' is read-only.");
      }
      if (f->is_map()) throw failure("Field '" + f->name + "' is a map or set. use the 'name:key=value' syntax.");
      changes.push_back({f, "", parse_field_value(*f, text, s)});
      continue;
    }
    auto colon = k.find(':');
    const CliField* f = colon == std::string::npos ? nullptr : find_field(fields, k.substr(0, colon));
    if (!f) throw failure("Unknown field '" + k + "'");
    if (f->is_set()) throw failure("Cannot param-set on set fields");
    if (!f->is_map()) throw failure("Field '" + f->name + "' is not a set or map");
    if (!f->writable()) throw failure("Map field '" + f->name + "' is read-only.");
    changes.push_back({f, k.substr(colon + 1), Value(text)});
  }
  for (auto& c : changes) {
    if (c.key.empty()) {
      s.call(cls + ".set_" + api(*c.f), Array{t.ref, c.value});
      continue;
    }
    // As xe: replace the key (remove, then add) and leave the others alone.
    const auto& m = t.record[api(*c.f)];
    if (m.is_struct() && m.as_struct().count(c.key)) s.call(cls + ".remove_from_" + api(*c.f), Array{t.ref, c.key});
    s.call(cls + ".add_to_" + api(*c.f), Array{t.ref, c.key, c.value});
    t.record[api(*c.f)].as_struct()[c.key] = c.value;
  }
  return 0;
}

int do_param_add(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  Session& s = ctx.session();
  const CliField& f = field_or_missing(fields, *ctx.args.get("param-name"));
  const std::string cls = v.cls->name;
  if ((f.is_set() || f.is_map()) && !f.writable()) throw failure("Parameter is read-only");
  if (f.is_set()) {
    auto key = ctx.args.get("param-key");
    if (!key)
      throw failure("When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>");
    s.call(cls + ".add_" + api(f), Array{t.ref, parse_scalar(f.field->type.elem, f.name, f.target, *key, s)});
    return 0;
  }
  if (f.is_map()) {
    for (const auto& [k, val] : ctx.args.params) {
      if (k == "uuid" || k == "param-name" || k == "param-key" || is_std_param(k)) continue;
      s.call(cls + ".add_to_" + api(f), Array{t.ref, k, val});
    }
    return 0;
  }
  throw failure("Can only add to parameters of type Set or Map");
}

int do_param_remove(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  Session& s = ctx.session();
  const CliField& f = field_or_missing(fields, *ctx.args.get("param-name"));
  const std::string key = *ctx.args.get("param-key");
  const std::string cls = v.cls->name;
  const Value& cur = t.record[api(f)];
  if (f.is_set()) {
    if (!f.writable()) throw failure("Cannot remove parameters from read-only map");
    bool present = false;
    if (cur.is_array())
      for (const auto& e : cur.as_array())
        if (e.to_display() == key) present = true;
    if (!present) throw failure("Key " + key + " is not in the set");
    s.call(cls + ".remove_" + api(f), Array{t.ref, key});
    return 0;
  }
  if (f.is_map()) {
    if (!f.writable()) throw failure("Cannot remove parameters from read-only map");
    if (!cur.is_struct() || !cur.as_struct().count(key)) throw failure("Key " + key + " is not in map");
    s.call(cls + ".remove_from_" + api(f), Array{t.ref, key});
    return 0;
  }
  throw failure("Can only remove from parameters of type Set or Map");
}

int do_param_clear(Context& ctx, const View& v) {
  auto fields = cli_fields(*v.cls);
  auto t = lookup(ctx, *v.cls);
  Session& s = ctx.session();
  const CliField& f = field_or_missing(fields, *ctx.args.get("param-name"));
  const std::string cls = v.cls->name;
  if (!f.writable()) throw failure("Can only clear RW parameters");
  if (f.is_set()) {
    s.call(cls + ".set_" + api(f), Array{t.ref, Array{}});
    return 0;
  }
  if (f.is_map()) {
    s.call(cls + ".set_" + api(f), Array{t.ref, Struct{}});
    return 0;
  }
  if (f.field->type.kind != model::Kind::String) throw failure("Cannot clear this parameter");
  s.call(cls + ".set_" + api(f), Array{t.ref, ""});
  return 0;
}

}  // namespace

void add_generic_commands(CommandTable& t) {
  for (const auto& v : views()) {
    const auto& c = *v.cls;
    auto fields = cli_fields(c);
    std::vector<std::string> all_names, settable, clearable, addable;
    for (const auto& f : fields) {
      all_names.push_back(f.name);
      if (!f.writable()) continue;
      clearable.push_back(f.name);
      if (f.is_map()) settable.push_back(f.name + ":");
      else if (!f.is_set()) settable.push_back(f.name);
      if (f.is_map() || f.is_set()) addable.push_back(f.name);
    }
    all_names.insert(all_names.begin(), "params");
    const std::string p = v.prefix;
    bool standard = p == "vm" || p == "sr" || p == "network";

    t.add({p + "-list", {}, all_names,
           "Lists all the " + plural(p) + ", filtering on the optional arguments. To filter on map parameters, use "
           "the syntax 'map-param:key=value'.",
           standard ? kStandard : 0u, &c, KeySource::Filters, [v](Context& ctx) { return do_list(ctx, v); }});
    t.add({p + "-param-list", {"uuid"}, {}, "Lists all the parameters of the object specified by the uuid.", 0, &c,
           KeySource::Fixed, [v](Context& ctx) { return do_param_list(ctx, v); }});
    t.add({p + "-param-get", {"uuid", "param-name"}, {"param-key"},
           "Gets the parameter specified of the object. If the parameter is a map of key=value pairs, use "
           "'param-key=<key>' to get the value associated with a particular key.",
           0, &c, KeySource::Fixed, [v](Context& ctx) { return do_param_get(ctx, v); }});
    if (!settable.empty())
      t.add({p + "-param-set", {"uuid"}, settable,
             "Sets the parameter specified. If param-value is not given, the parameter is set to a null value. To "
             "set a (key,value) pair in a map parameter, use the syntax 'map-param:key=value'.",
             0, &c, KeySource::Settable, [v](Context& ctx) { return do_param_set(ctx, v); }});
    if (!addable.empty()) {
      t.add({p + "-param-add", {"uuid", "param-name"}, {"param-key"},
             "Adds to a set or map parameter. If the parameter is a set, use param-key=<key to add>. If the "
             "parameter is a map, pass the values to add as 'key=value' pairs.",
             0, &c, KeySource::Fixed, [v](Context& ctx) { return do_param_add(ctx, v); }});
      t.add({p + "-param-remove", {"uuid", "param-name", "param-key"}, {},
             "Removes a member or a key,value pair from a set/map respectively.", 0, &c, KeySource::Fixed,
             [v](Context& ctx) { return do_param_remove(ctx, v); }});
    }
    if (!clearable.empty()) {
      std::string names;
      for (const auto& n : clearable) names += (names.empty() ? "" : ",") + n;
      t.add({p + "-param-clear", {"uuid", "param-name"}, {},
             "Clears the specified parameter (param-name can be " + names + ").", 0, &c, KeySource::Fixed,
             [v](Context& ctx) { return do_param_clear(ctx, v); }});
    }
  }
}

}  // namespace vmstack::cli
