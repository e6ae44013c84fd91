#include "test_daemon.h"

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <pugixml.hpp>

#include "core/error.h"

namespace vmstack::cli::testing {

namespace fs = std::filesystem;

namespace {

fs::path make_temp_dir() {
  char tmpl[] = "/tmp/vmstack-cli-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// The default console: a banner, then every line read comes back upper-cased
// until "quit" or EOF.
void echo_console(const std::string& target, int fd) {
  write_all(fd, "console of " + target.substr(target.find("ref=") + 4, 20) + "\r\n");
  char buf[1024];
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    std::string chunk(buf, static_cast<size_t>(n));
    std::string up = chunk;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    write_all(fd, up);
    line += chunk;
    if (line.find("quit") != std::string::npos) return;
  }
}

}  // namespace

TestDaemon::TestDaemon() : dir_(make_temp_dir()), socket_((dir_ / "xapi.sock").string()), db_(":memory:") {
  seed();
  console_handler = echo_console;
  server_ = std::make_unique<api::Server>(api::ServerConfig{socket_, "", 0, 2},
                                          [this](const api::RpcCall& c) { return dispatch(c); });
  server_->add_stream_route("/console", [this](const std::string& target, int fd) { console_handler(target, fd); });
  server_->start();
}

TestDaemon::~TestDaemon() {
  server_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> TestDaemon::calls() {
  std::lock_guard lk(mu_);
  return calls_;
}

void TestDaemon::clear_calls() {
  std::lock_guard lk(mu_);
  calls_.clear();
}

size_t TestDaemon::live_sessions() const { return db_.all("session").size(); }

void TestDaemon::seed() {
  auto& db = db_;
  pool = db.create("pool", {{"name_label", "pool0"}});
  host = db.create("host", {{"name_label", "host0"}, {"hostname", "host0"}, {"enabled", true}});
  sr = db.create("SR", {{"name_label", "Local storage"}, {"type", "file"}, {"physical_size", int64_t{1} << 40}});
  db.update("pool", pool, {{"master", host}, {"default_SR", sr}});
  network = db.create("network", {{"name_label", "Pool-wide network"}, {"bridge", "xenbr0"}});
  dom0 = db.create("VM", {{"name_label", "Control domain on host: host0"},
                          {"is_control_domain", true},
                          {"power_state", "Running"},
                          {"resident_on", host}});
  tmpl = db.create("VM", {{"name_label", "Debian Template"},
                          {"name_description", "a template, with a comma"},
                          {"is_a_template", true},
                          {"other_config", Struct{{"disks", "<provision><disk device=\"0\" size=\"1048576\" "
                                                            "sr=\"\" bootable=\"true\" type=\"system\"/></provision>"}}}});
  alpha = db.create("VM", {{"name_label", "alpha"}, {"power_state", "Halted"},
                           {"other_config", Struct{{"owner", "ops"}, {"tier", "gold"}}},
                           {"tags", Array{"web"}}});
  beta = db.create("VM", {{"name_label", "beta"}, {"power_state", "Running"}, {"resident_on", host}, {"domid", 7}});
  beta_vdi = db.create("VDI", {{"name_label", "beta disk"}, {"SR", sr}, {"virtual_size", int64_t{8} << 30}});
  beta_vbd = db.create("VBD", {{"VM", beta}, {"VDI", beta_vdi}, {"userdevice", "0"}, {"device", "xvda"},
                               {"bootable", true}, {"type", "Disk"}});
  beta_console = db.create("console", {{"VM", beta}, {"protocol", "vt100"}, {"location", "unix:/dev/null"}});
  db.create("VIF", {{"VM", beta}, {"network", network}, {"device", "0"}, {"MAC", "aa:bb:cc:dd:ee:ff"}});
}

Value TestDaemon::dispatch(const api::RpcCall& c) {
  {
    std::lock_guard lk(mu_);
    calls_.push_back(c.method);
  }
  auto& db = db_;
  const Array& p = c.params;
  if (c.method == "session.login_with_password") {
    std::string user = p.at(0).as_string(), pass = p.at(1).as_string();
    bool local_root = user == "root" && pass.empty() && c.peer_uid == 0;
    if (!local_root && !(user == kUser && pass == kPassword))
      throw ApiError(errors::SESSION_AUTHENTICATION_FAILED, {user, "Authentication failure"});
    return Value(db.create("session", {{"auth_user_name", user}, {"originator", p.size() > 3 ? p[3] : Value("")},
                                       {"this_host", host}}));
  }
  if (p.empty() || !p[0].is_string() || !db.exists("session", p[0].as_string()))
    throw ApiError(errors::SESSION_INVALID, {p.empty() ? "" : p[0].to_display()});
  Array a(p.begin() + 1, p.end());
  if (c.method == "session.logout") {
    db.destroy("session", p[0].as_string());
    return Value();
  }
  if (c.method == "event.from") {
    std::set<std::string> classes;
    for (const auto& v : a.at(0).as_array()) classes.insert(v.as_string());
    const auto& tok = a.at(1).as_string();
    uint64_t token = tok.empty() ? 0 : std::stoull(tok);
    auto b = db.events_from(classes, token,
                            std::chrono::milliseconds(static_cast<int64_t>(a.at(2).as_double() * 1000)));
    Array evs;
    for (const auto& e : b.events) {
      Struct r{{"id", static_cast<int64_t>(e.id)}, {"class", lower(e.cls)}, {"operation", e.operation},
               {"ref", e.ref}, {"obj_uuid", e.obj_uuid}};
      if (!e.snapshot.is_nil()) r["snapshot"] = e.snapshot;
      evs.emplace_back(std::move(r));
    }
    return Value(Struct{{"events", evs}, {"valid_ref_counts", Struct{}}, {"token", std::to_string(b.token)}});
  }

  auto dot = c.method.find('.');
  if (dot == std::string::npos) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {c.method});
  std::string cls = c.method.substr(0, dot), op = c.method.substr(dot + 1);
  const model::ClassDef* def = db.dm().cls(cls);
  if (!def) throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {c.method});

  static const std::set<std::string> kVmVerbs = {
      "start", "clean_shutdown", "hard_shutdown", "clean_reboot", "hard_reboot", "suspend", "resume", "pause",
      "unpause", "destroy", "clone", "copy", "provision", "set_memory_limits"};
  if (cls == "VM" && kVmVerbs.count(op)) return dispatch_vm(op, a.at(0).as_string(), a);
  if (cls == "VDI" && op == "destroy") {
    const auto& vdi = a.at(0).as_string();
    if (!db.exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
    for (const auto& vbd : db.find("VBD", "VDI", vdi)) db.destroy("VBD", vbd);
    db.destroy("VDI", vdi);
    return Value();
  }

  if (op == "get_all_records") {
    Struct out;
    for (auto& [ref, rec] : db.all_records(cls)) out.emplace(ref, std::move(rec));
    return Value(std::move(out));
  }
  if (op == "get_record") return Value(db.get_record(cls, a.at(0).as_string()));
  if (op == "get_by_uuid") return Value(db.ref_by_uuid(cls, a.at(0).as_string()));
  if (op == "get_by_name_label") {
    Array out;
    for (auto& r : db.refs_by_name_label(cls, a.at(0).as_string())) out.emplace_back(r);
    return Value(std::move(out));
  }
  auto field_of = [&](const std::string& prefix) -> const model::Field* {
    if (op.rfind(prefix, 0) != 0) return nullptr;
    return def->field(op.substr(prefix.size()));
  };
  if (const auto* f = field_of("get_")) return db.get_field(cls, a.at(0).as_string(), f->name);
  if (const auto* f = field_of("set_"); f && f->qual == model::Qual::RW) {
    db.set_field(cls, a.at(0).as_string(), f->name, db.dm().coerce(*def, *f, a.at(1)));
    return Value();
  }
  if (const auto* f = field_of("add_to_"); f && f->qual == model::Qual::RW && f->is_map()) {
    auto m = db.get_field(cls, a.at(0).as_string(), f->name);
    const auto& key = a.at(1).as_string();
    if (m.as_struct().count(key))
      throw ApiError(errors::MAP_DUPLICATE_KEY, {cls, f->name, a.at(0).as_string(), key});
    m.as_struct()[key] = a.at(2);
    db.set_field(cls, a.at(0).as_string(), f->name, std::move(m));
    return Value();
  }
  if (const auto* f = field_of("remove_from_"); f && f->qual == model::Qual::RW && f->is_map()) {
    auto m = db.get_field(cls, a.at(0).as_string(), f->name);
    m.as_struct().erase(a.at(1).as_string());
    db.set_field(cls, a.at(0).as_string(), f->name, std::move(m));
    return Value();
  }
  if (const auto* f = field_of("add_"); f && f->qual == model::Qual::RW && f->is_set()) {
    auto s = db.get_field(cls, a.at(0).as_string(), f->name);
    auto& arr = s.as_array();
    if (std::find(arr.begin(), arr.end(), a.at(1)) == arr.end()) arr.push_back(a.at(1));
    db.set_field(cls, a.at(0).as_string(), f->name, std::move(s));
    return Value();
  }
  if (const auto* f = field_of("remove_"); f && f->qual == model::Qual::RW && f->is_set()) {
    auto s = db.get_field(cls, a.at(0).as_string(), f->name);
    auto& arr = s.as_array();
    arr.erase(std::remove(arr.begin(), arr.end(), a.at(1)), arr.end());
    db.set_field(cls, a.at(0).as_string(), f->name, std::move(s));
    return Value();
  }
  throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {c.method});
}

Value TestDaemon::dispatch_vm(const std::string& op, const std::string& vm, const Array& a) {
  auto& db = db_;
  auto rec = db.get_record("VM", vm);  // HANDLE_INVALID for bad refs
  std::string ps = rec["power_state"].as_string();
  auto need = [&](std::initializer_list<const char*> ok) {
    for (const char* s : ok)
      if (ps == s) return;
    throw ApiError(errors::VM_BAD_POWER_STATE, {vm, lower(*ok.begin()), lower(ps)});
  };
  auto set_state = [&](const char* s) { db.set_field("VM", vm, "power_state", std::string(s)); };
  if (rec["is_a_template"].as_bool() && (op == "start" || op == "clean_shutdown" || op == "hard_shutdown"))
    throw ApiError(errors::VM_IS_TEMPLATE, {vm});
  if (op == "start") {
    need({"Halted"});
    set_state(a.size() > 1 && a[1].as_bool() ? "Paused" : "Running");
    return Value();
  }
  if (op == "clean_shutdown") return need({"Running"}), set_state("Halted"), Value();
  if (op == "hard_shutdown") return need({"Running", "Paused", "Suspended"}), set_state("Halted"), Value();
  if (op == "clean_reboot") return need({"Running"}), Value();
  if (op == "hard_reboot") return need({"Running", "Paused"}), set_state("Running"), Value();
  if (op == "suspend") return need({"Running"}), set_state("Suspended"), Value();
  if (op == "resume") return need({"Suspended"}), set_state("Running"), Value();
  if (op == "pause") return need({"Running"}), set_state("Paused"), Value();
  if (op == "unpause") return need({"Paused"}), set_state("Running"), Value();
  if (op == "destroy") {
    need({"Halted", "Suspended"});
    for (const auto& v : db.find("VBD", "VM", vm)) db.destroy("VBD", v);
    for (const auto& v : db.find("VIF", "VM", vm)) db.destroy("VIF", v);
    for (const auto& v : db.find("console", "VM", vm)) db.destroy("console", v);
    db.destroy("VM", vm);
    return Value();
  }
  if (op == "clone" || op == "copy") {
    Struct f;
    for (const auto& field : db.dm().cls("VM")->fields)
      if (!field.derived() && field.name != "uuid" && rec.count(field.name)) f[field.name] = rec[field.name];
    f["name_label"] = a.at(1);
    f["power_state"] = std::string("Halted");
    return Value(db.create("VM", std::move(f)));
  }
  if (op == "provision") {
    need({"Halted"});
    auto oc = rec["other_config"];
    const auto& spec = oc["disks"];
    if (!spec.is_string()) return Value();
    pugi::xml_document doc;
    if (!doc.load_string(spec.as_string().c_str()))
      throw ApiError(errors::INVALID_VALUE, {"other_config:disks", spec.as_string()});
    for (auto d : doc.child("provision").children("disk")) {
      std::string sr_ref = db.get_field("pool", pool, "default_SR").as_string();
      if (std::string u = d.attribute("sr").as_string(); !u.empty()) sr_ref = db.ref_by_uuid("SR", u);
      auto vdi = db.create("VDI", {{"name_label", rec["name_label"].as_string() + " disk"}, {"SR", sr_ref},
                                   {"virtual_size", static_cast<int64_t>(d.attribute("size").as_llong())}});
      db.create("VBD", {{"VM", vm}, {"VDI", vdi}, {"userdevice", d.attribute("device").as_string("0")},
                        {"type", "Disk"}});
    }
    oc.as_struct().erase("disks");
    db.set_field("VM", vm, "other_config", oc);
    return Value();
  }
  if (op == "set_memory_limits") {
    int64_t smin = a.at(1).as_int(), smax = a.at(2).as_int(), dmin = a.at(3).as_int(), dmax = a.at(4).as_int();
    if (!(smin <= dmin && dmin <= dmax && dmax <= smax))
      throw ApiError(errors::MEMORY_CONSTRAINT_VIOLATION,
                     {"Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max"});
    db.update("VM", vm, {{"memory_static_min", smin}, {"memory_static_max", smax},
                         {"memory_dynamic_min", dmin}, {"memory_dynamic_max", dmax}});
    return Value();
  }
  throw ApiError(errors::MESSAGE_METHOD_UNKNOWN, {"VM." + op});
}

}  // namespace vmstack::cli::testing
