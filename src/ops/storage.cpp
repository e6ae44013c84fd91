#include "ops/storage.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>

#include "core/error.h"
#include "core/process.h"
#include "core/uuid.h"
#include "ops/xapi.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

namespace {

void check(const CommandResult& r, const std::string& what) {
  if (!r.ok())
    throw ApiError(errors::SR_BACKEND_FAILURE,
                   {what + (r.timed_out ? " timed out" : " failed: exit " + std::to_string(r.exit_code)), r.out, r.err});
}

int64_t file_usage(const std::string& path) {
  std::error_code ec;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  (void)ec;
  return static_cast<int64_t>(st.st_blocks) * 512;
}

}  // namespace

std::string Storage::ensure_default_sr(const std::string& host) {
  auto& db = x_.db();
  auto pool = db.all("pool").at(0);
  auto existing = db.get_field("pool", pool, "default_SR").as_string();
  if (db.exists("SR", existing)) return existing;
  auto uuid = make_uuid();
  fs::path dir = fs::path(x_.config().state_dir) / "sr" / uuid;
  fs::create_directories(dir);
  struct statvfs sv {};
  int64_t size = ::statvfs(dir.c_str(), &sv) == 0 ? static_cast<int64_t>(sv.f_blocks) * static_cast<int64_t>(sv.f_frsize) : 0;
  auto sr = db.create("SR", {{"uuid", uuid},
                             {"name_label", "Local storage"},
                             {"name_description", "qcow2 image files in " + dir.string()},
                             {"type", "file"},
                             {"content_type", "user"},
                             {"physical_size", size},
                             {"allowed_operations", Array{"scan", "vdi_create", "vdi_destroy", "vdi_clone", "vdi_snapshot", "vdi_resize"}},
                             {"sm_config", Struct{{"format", "qcow2"}}}});
  db.create("PBD", {{"host", host}, {"SR", sr}, {"device_config", Struct{{"location", dir.string()}}}, {"currently_attached", true}});
  db.update("pool", pool, {{"default_SR", sr}, {"suspend_image_SR", sr}, {"crash_dump_SR", sr}});
  db.update("host", host, {{"suspend_image_sr", sr}, {"crash_dump_sr", sr}});
  return sr;
}

std::string Storage::sr_path(const std::string& sr) const {
  auto& db = x_.db();
  for (const auto& pbd : db.find("PBD", "SR", sr)) {
    auto loc = db.get_field("PBD", pbd, "device_config")["location"];
    if (loc.is_string()) return loc.as_string();
  }
  throw ApiError(errors::SR_BACKEND_FAILURE, {"SR has no attached PBD with a location", "", sr});
}

std::string Storage::vdi_create(const std::string& sr, const std::string& name, int64_t virtual_size,
                                const std::string& type, const std::string& format) {
  if (virtual_size <= 0) throw ApiError(errors::INVALID_VALUE, {"virtual_size", std::to_string(virtual_size)});
  if (format != "qcow2" && format != "raw") throw ApiError(errors::INVALID_VALUE, {"sm_config:format", format});
  auto uuid = make_uuid();
  auto path = (fs::path(sr_path(sr)) / (uuid + "." + format)).string();
  check(run_command({"qemu-img", "create", "-q", "-f", format, path, std::to_string(virtual_size)}), "qemu-img create");
  auto vdi = x_.db().create("VDI", {{"uuid", uuid},
                                    {"name_label", name},
                                    {"SR", sr},
                                    {"virtual_size", virtual_size},
                                    {"physical_utilisation", file_usage(path)},
                                    {"type", type},
                                    {"location", path},
                                    {"sm_config", Struct{{"format", format}}},
                                    {"allowed_operations", Array{"clone", "copy", "destroy", "resize", "snapshot"}}});
  refresh_usage(sr);
  return vdi;
}

void Storage::vdi_destroy(const std::string& vdi) {
  auto& db = x_.db();
  auto rec = db.get_record("VDI", vdi);
  for (const auto& vbd : rec["VBDs"].as_array())
    if (db.get_field("VBD", vbd.as_string(), "currently_attached").as_bool())
      throw ApiError(errors::VDI_IN_USE, {vdi, "destroy"});
  const auto& path = rec["location"].as_string();
  std::error_code ec;
  if (!path.empty()) fs::remove(path, ec);
  for (const auto& vbd : rec["VBDs"].as_array()) db.update("VBD", vbd.as_string(), {{"VDI", std::string(kNullRef)}, {"empty", true}});
  db.destroy("VDI", vdi);
  refresh_usage(rec["SR"].as_string());
}

std::string Storage::vdi_copy(const std::string& vdi, const std::string& sr, const std::string& name) {
  auto& db = x_.db();
  auto rec = db.get_record("VDI", vdi);
  auto format = rec["sm_config"]["format"].is_string() ? rec["sm_config"]["format"].as_string() : "qcow2";
  auto uuid = make_uuid();
  auto path = (fs::path(sr_path(sr)) / (uuid + "." + format)).string();
  check(run_command({"cp", "--reflink=auto", "--sparse=always", rec["location"].as_string(), path}, std::chrono::minutes(30)),
        "copy of " + rec["location"].as_string());
  Struct fields{{"uuid", uuid},
                {"name_label", name},
                {"name_description", rec["name_description"]},
                {"SR", sr},
                {"virtual_size", rec["virtual_size"]},
                {"physical_utilisation", file_usage(path)},
                {"type", rec["type"]},
                {"sharable", rec["sharable"]},
                {"read_only", rec["read_only"]},
                {"location", path},
                {"sm_config", rec["sm_config"]},
                {"other_config", rec["other_config"]},
                {"allowed_operations", rec["allowed_operations"]}};
  auto out = db.create("VDI", std::move(fields));
  refresh_usage(sr);
  return out;
}

std::string Storage::suspend_vdi_create(const std::string& sr, const std::string& vm_name) {
  auto uuid = make_uuid();
  auto path = (fs::path(sr_path(sr)) / (uuid + ".suspend")).string();
  return x_.db().create("VDI", {{"uuid", uuid},
                                {"name_label", "Suspend image of " + vm_name},
                                {"SR", sr},
                                {"type", "suspend"},
                                {"location", path},
                                {"sm_config", Struct{{"format", "raw"}}},
                                {"allowed_operations", Array{"destroy"}}});
}

void Storage::refresh_usage(const std::string& sr) {
  auto& db = x_.db();
  int64_t virt = 0, phys = 0;
  for (const auto& [ref, rec] : db.all_records("VDI")) {
    if (rec.at("SR").as_string() != sr) continue;
    virt += rec.at("virtual_size").as_int();
    phys += file_usage(rec.at("location").as_string());
  }
  db.update("SR", sr, {{"virtual_allocation", virt}, {"physical_utilisation", phys}});
}

void register_storage(MethodTable& t) {
  t.add("VDI.create", 1, [](CallCtx& x, const Array& a) {
    const auto& r = a.at(0);
    auto sr = r["SR"].as_string();
    auto format = r["sm_config"]["format"].is_string() ? r["sm_config"]["format"].as_string() : "qcow2";
    auto vdi = x.xapi.storage().vdi_create(sr, r["name_label"].is_nil() ? "" : r["name_label"].as_string(),
                                           r["virtual_size"].as_int(), r["type"].is_nil() ? "user" : r["type"].as_string(), format);
    Struct extra;
    for (auto f : {"name_description", "sharable", "read_only", "other_config", "xenstore_data", "tags"})
      if (!r[f].is_nil()) extra[f] = r[f];
    if (!extra.empty()) x.xapi.db().update("VDI", vdi, extra);
    return Value(vdi);
  });
  t.add("VDI.destroy", 1, [](CallCtx& x, const Array& a) {
    x.xapi.storage().vdi_destroy(a.at(0).as_string());
    return Value();
  });
  t.add("VDI.copy", 2, [](CallCtx& x, const Array& a) {
    const auto& vdi = a.at(0).as_string();
    auto name = x.xapi.db().get_field("VDI", vdi, "name_label").as_string();
    return Value(x.xapi.storage().vdi_copy(vdi, a.at(1).as_string(), name));
  });
  t.add("VDI.clone", 2, [](CallCtx& x, const Array& a) {
    const auto& vdi = a.at(0).as_string();
    auto rec = x.xapi.db().get_record("VDI", vdi);
    return Value(x.xapi.storage().vdi_copy(vdi, rec["SR"].as_string(), rec["name_label"].as_string()));
  });
  t.add("SR.scan", 1, [](CallCtx& x, const Array& a) {
    x.xapi.storage().refresh_usage(a.at(0).as_string());
    return Value();
  });
  // Device records: created by clients (xe vbd-create, XenAPI scripts).
  t.add("VBD.create", 1, [](CallCtx& x, const Array& a) {
    const auto& r = a.at(0).as_struct();
    auto vm = r.at("VM").as_string();
    if (!x.xapi.db().exists("VM", vm)) throw ApiError(errors::HANDLE_INVALID, {"VM", vm});
    auto vdi = r.count("VDI") ? r.at("VDI").as_string() : std::string(kNullRef);
    bool empty = vdi == kNullRef;
    if (!empty && !x.xapi.db().exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
    Struct f = r;
    f["empty"] = r.count("empty") ? r.at("empty").as_bool() || empty : empty;
    f["currently_attached"] = false;
    return Value(x.xapi.db().create("VBD", std::move(f)));
  });
  t.add("VBD.destroy", 1, [](CallCtx& x, const Array& a) {
    const auto& vbd = a.at(0).as_string();
    if (x.xapi.db().get_field("VBD", vbd, "currently_attached").as_bool())
      throw ApiError(errors::OPERATION_NOT_ALLOWED, {"VBD is attached to a running VM"});
    x.xapi.db().destroy("VBD", vbd);
    return Value();
  });
  t.add("network.create", 1, [](CallCtx& x, const Array& a) {
    return Value(x.xapi.db().create("network", a.at(0).as_struct()));
  });
  t.add("network.destroy", 1, [](CallCtx& x, const Array& a) {
    const auto& n = a.at(0).as_string();
    if (!x.xapi.db().get_field("network", n, "VIFs").as_array().empty())
      throw ApiError(errors::OPERATION_NOT_ALLOWED, {"network has VIFs"});
    x.xapi.db().destroy("network", n);
    return Value();
  });
  t.add("VIF.create", 1, [](CallCtx& x, const Array& a) {
    Struct f = a.at(0).as_struct();
    for (auto [cls, key] : {std::pair{"VM", "VM"}, std::pair{"network", "network"}})
      if (!f.count(key) || !x.xapi.db().exists(cls, f.at(key).as_string()))
        throw ApiError(errors::HANDLE_INVALID, {cls, f.count(key) ? f.at(key).to_display() : ""});
    if (!f.count("MAC") || f.at("MAC").as_string().empty()) {
      // Xen's locally administered prefix style: 02: + random bytes from a uuid.
      auto u = make_uuid();
      f["MAC"] = "02:" + u.substr(0, 2) + ":" + u.substr(2, 2) + ":" + u.substr(4, 2) + ":" + u.substr(6, 2) + ":" + u.substr(9, 2);
      f["MAC_autogenerated"] = true;
    }
    return Value(x.xapi.db().create("VIF", std::move(f)));
  });
  t.add("VIF.destroy", 1, [](CallCtx& x, const Array& a) {
    x.xapi.db().destroy("VIF", a.at(0).as_string());
    return Value();
  });
}

}  // namespace vmstack::ops
