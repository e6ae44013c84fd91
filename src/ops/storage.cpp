#include "ops/storage.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/error.h"
#include "core/strings.h"
#include "core/uuid.h"
#include "ops/dispatch.h"
#include "ops/journal.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

std::string Storage::ensure_default_sr() {
  auto pool = store_.all("pool").at(0);
  auto existing = store_.get_field("pool", pool, "default_SR").as_string();
  if (store_.exists("SR", existing)) return existing;
  auto uuid = make_uuid();
  storage::SrContext ctx{uuid, Struct{{"location", (fs::path(state_dir_) / "sr" / uuid).string()}}};
  auto& drv = drivers_.get("file");
  drv.create(ctx);
  auto usage = drv.usage(ctx);
  auto sr = store_.create("SR", {{"uuid", uuid},
                                 {"name_label", "Local storage"},
                                 {"name_description", "qcow2 image files in " + ctx.device_config["location"].as_string()},
                                 {"type", drv.type()},
                                 {"content_type", drv.content_type()},
                                 {"physical_size", usage.physical_size},
                                 {"allowed_operations", Array{"scan", "vdi_create", "vdi_destroy", "vdi_clone", "vdi_snapshot", "vdi_resize"}},
                                 {"sm_config", Struct{{"format", "qcow2"}}}});
  store_.create("PBD", {{"host", host_}, {"SR", sr}, {"device_config", ctx.device_config}, {"currently_attached", true}});
  store_.update("pool", pool, {{"default_SR", sr}, {"suspend_image_SR", sr}, {"crash_dump_SR", sr}});
  store_.update("host", host_, {{"suspend_image_sr", sr}, {"crash_dump_sr", sr}});
  return sr;
}

void Storage::migrate_locations() {
  for (const auto& vdi : store_.all("VDI")) {
    auto loc = store_.get_field("VDI", vdi, "location").as_string();
    if (loc.empty() || loc[0] != '/') continue;
    auto sr = store_.get_field("VDI", vdi, "SR").as_string();
    if (!store_.exists("SR", sr) || store_.get_field("SR", sr, "type").as_string() != "file") continue;
    auto ctx = sr_context(sr);
    fs::path p(loc);
    if (p.parent_path() == fs::path(ctx.device_config["location"].as_string()))
      store_.set_field("VDI", vdi, "location", p.filename().string());
  }
}

void Storage::attach_all() {
  for (const auto& pbd : store_.all("PBD")) {
    auto rec = store_.get_record("PBD", pbd);
    if (!host_.empty() && rec["host"].as_string() != host_) continue;
    const auto& sr = rec["SR"].as_string();
    bool ok = true;
    try {
      driver(sr).attach(sr_context(sr));
    } catch (const ApiError& e) {
      ok = false;
      spdlog::error("SR {}: cannot attach: {}", sr, join(e.description(), " "));
    }
    if (rec["currently_attached"].as_bool() != ok) store_.set_field("PBD", pbd, "currently_attached", ok);
  }
}

storage::SrContext Storage::sr_context(const std::string& sr) const {
  storage::SrContext ctx;
  ctx.uuid = store_.get_field("SR", sr, "uuid").as_string();
  for (const auto& pbd : store_.find("PBD", "SR", sr)) {
    auto rec = store_.get_record("PBD", pbd);
    if (host_.empty() || rec["host"].as_string() == host_) {
      ctx.device_config = rec["device_config"].as_struct();
      return ctx;
    }
  }
  throw ApiError(errors::SR_BACKEND_FAILURE, {"SR has no PBD on this host", "", sr});
}

storage::SrDriver& Storage::driver(const std::string& sr) const {
  return drivers_.get(store_.get_field("SR", sr, "type").as_string());
}

std::string Storage::vdi_create(const std::string& sr, const std::string& name, int64_t virtual_size,
                                const std::string& type, const std::string& chosen_uuid) {
  if (!store_.exists("SR", sr)) throw ApiError(errors::HANDLE_INVALID, {"SR", sr});
  if (virtual_size <= 0) throw ApiError(errors::INVALID_VALUE, {"virtual_size", std::to_string(virtual_size)});
  auto uuid = chosen_uuid.empty() ? make_uuid() : chosen_uuid;
  auto intent = journal_.begin("vdi_file", uuid);
  intent.set("sr", sr);
  auto img = driver(sr).vdi_create(sr_context(sr), uuid, virtual_size, storage::VdiKind::disk);
  crash_point("vdi_create.after_image");
  auto vdi = store_.create("VDI", {{"uuid", uuid},
                                   {"name_label", name},
                                   {"SR", sr},
                                   {"virtual_size", img.virtual_size},
                                   {"physical_utilisation", img.physical_utilisation},
                                   {"type", type},
                                   {"location", img.location},
                                   {"sm_config", Struct{{"format", img.format}}},
                                   {"allowed_operations", Array{"clone", "copy", "destroy", "resize", "snapshot"}}});
  refresh_usage(sr);
  return vdi;
}

void Storage::vdi_destroy(const std::string& vdi) {
  check_not_held(vdi);
  auto rec = store_.get_record("VDI", vdi);
  for (const auto& vbd : rec["VBDs"].as_array())
    if (store_.get_field("VBD", vbd.as_string(), "currently_attached").as_bool())
      throw ApiError(errors::VDI_IN_USE, {vdi, "destroy"});
  const auto& sr = rec["SR"].as_string();
  // The record goes first, then the image: a crash between the two leaves an
  // image no record claims, which this intent removes at the next start (the
  // other order would leave a VDI whose image is gone).
  auto intent = journal_.begin("vdi_file", rec["uuid"].as_string());
  intent.set("sr", sr);
  // As xapi: the (unplugged) VBDs go with their disk, and a VM whose
  // suspend image it was has none any more.
  for (const auto& vbd : rec["VBDs"].as_array()) store_.destroy("VBD", vbd.as_string());
  for (const auto& vm : store_.find("VM", "suspend_VDI", vdi))
    store_.update("VM", vm, {{"suspend_VDI", std::string(kNullRef)}});
  store_.destroy("VDI", vdi);
  crash_point("vdi_destroy.after_record");
  if (!rec["location"].as_string().empty()) driver(sr).vdi_destroy(sr_context(sr), rec["location"].as_string());
  refresh_usage(sr);
}

std::string Storage::vdi_copy(const std::string& vdi, const std::string& sr, const std::string& name,
                              const std::string& chosen_uuid) {
  check_not_held(vdi);
  auto rec = store_.get_record("VDI", vdi);
  const auto& from = rec["SR"].as_string();
  if (!store_.exists("SR", sr)) throw ApiError(errors::HANDLE_INVALID, {"SR", sr});
  auto& drv = driver(from);
  if (&driver(sr) != &drv)
    throw ApiError(errors::SR_BACKEND_FAILURE, {"copy between SRs of different types is not supported yet", "", sr});
  auto uuid = chosen_uuid.empty() ? make_uuid() : chosen_uuid;
  auto intent = journal_.begin("vdi_file", uuid);
  intent.set("sr", sr);
  auto img = drv.vdi_copy(sr_context(from), rec["location"].as_string(), sr_context(sr), uuid);
  Struct fields{{"uuid", uuid},
                {"name_label", name},
                {"name_description", rec["name_description"]},
                {"SR", sr},
                {"virtual_size", img.virtual_size},
                {"physical_utilisation", img.physical_utilisation},
                {"type", rec["type"]},
                {"sharable", rec["sharable"]},
                {"read_only", rec["read_only"]},
                {"location", img.location},
                {"sm_config", Struct{{"format", img.format}}},
                {"other_config", rec["other_config"]},
                {"allowed_operations", rec["allowed_operations"]}};
  auto out = store_.create("VDI", std::move(fields));
  refresh_usage(sr);
  return out;
}

std::string Storage::vdi_clone(const std::string& vdi) {
  auto rec = store_.get_record("VDI", vdi);
  return vdi_copy(vdi, rec["SR"].as_string(), rec["name_label"].as_string());
}

std::string Storage::suspend_vdi_create(const std::string& sr, const std::string& vm_name,
                                        const std::string& chosen_uuid) {
  auto uuid = chosen_uuid.empty() ? make_uuid() : chosen_uuid;
  auto intent = journal_.begin("vdi_file", uuid);
  intent.set("sr", sr);
  auto img = driver(sr).vdi_create(sr_context(sr), uuid, 0, storage::VdiKind::suspend_image);
  return store_.create("VDI", {{"uuid", uuid},
                               {"name_label", "Suspend image of " + vm_name},
                               {"SR", sr},
                               {"type", "suspend"},
                               {"location", img.location},
                               {"sm_config", Struct{{"format", img.format}}},
                               {"allowed_operations", Array{"destroy"}}});
}

void Storage::vdi_refresh(const std::string& vdi) {
  auto rec = store_.get_record("VDI", vdi);
  const auto& sr = rec["SR"].as_string();
  auto img = driver(sr).vdi_stat(sr_context(sr), rec["location"].as_string());
  store_.update("VDI", vdi, {{"virtual_size", img.virtual_size}, {"physical_utilisation", img.physical_utilisation}});
  refresh_usage(sr);
}

void Storage::refresh_usage(const std::string& sr) {
  int64_t virt = 0;
  for (const auto& vdi : store_.find("VDI", "SR", sr)) virt += store_.get_field("VDI", vdi, "virtual_size").as_int();
  auto usage = driver(sr).usage(sr_context(sr));
  store_.update("SR", sr, {{"virtual_allocation", virt},
                           {"physical_utilisation", usage.physical_utilisation},
                           {"physical_size", usage.physical_size}});
}

void Storage::forget_unrecorded_image(const std::string& sr, const std::string& vdi_uuid) {
  try {
    store_.ref_by_uuid("VDI", vdi_uuid);
    return;  // recorded: the image is the VDI's
  } catch (const ApiError&) {
  }
  if (!store_.exists("SR", sr)) return;
  driver(sr).vdi_cleanup(sr_context(sr), vdi_uuid);
  spdlog::info("removed the image of VDI {} in SR {}: its creation was interrupted", vdi_uuid, sr);
}

storage::DiskSource Storage::disk_source(const std::string& vdi) const {
  check_not_held(vdi);
  auto rec = store_.get_record("VDI", vdi);
  const auto& sr = rec["SR"].as_string();
  return driver(sr).vdi_source(sr_context(sr), rec["location"].as_string());
}

void Storage::check_not_held(const std::string& vdi) const {
  std::lock_guard lk(held_mu_);
  if (auto it = held_.find(vdi); it != held_.end()) throw ApiError(errors::VDI_IN_USE, {vdi, it->second});
}

Storage::Hold::~Hold() {
  if (!storage_) return;
  std::lock_guard lk(storage_->held_mu_);
  storage_->held_.erase(vdi_);
}

Storage::Hold Storage::hold_for_transfer(const std::string& vdi, const std::string& operation) {
  if (!store_.exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
  {
    std::lock_guard lk(held_mu_);
    if (auto it = held_.find(vdi); it != held_.end()) throw ApiError(errors::VDI_IN_USE, {vdi, it->second});
    held_.emplace(vdi, operation);
  }
  Hold hold(this, vdi);
  // Held first, then checked: a VM starting now either shows its operation
  // here or finds the hold when it opens its disks (disk_source).
  const Value vbds = store_.get_field("VDI", vdi, "VBDs");  // kept: the loop reads into it
  for (const auto& vbd : vbds.as_array()) {
    auto vm = store_.get_field("VBD", vbd.as_string(), "VM").as_string();
    if (!store_.exists("VM", vm)) continue;
    if (store_.get_field("VBD", vbd.as_string(), "currently_attached").as_bool() ||
        store_.get_field("VM", vm, "power_state").as_string() != "Halted" ||
        !store_.get_field("VM", vm, "current_operations").as_struct().empty())
      throw ApiError(errors::VDI_IN_USE, {vdi, operation});
  }
  return hold;
}

void Storage::vdi_export(const std::string& vdi, const std::string& format, const std::string& to_path) {
  auto rec = store_.get_record("VDI", vdi);
  const auto& sr = rec["SR"].as_string();
  driver(sr).vdi_export(sr_context(sr), rec["location"].as_string(), format, to_path);
}

void Storage::vdi_import(const std::string& vdi, const std::string& from_path, const std::string& format) {
  auto rec = store_.get_record("VDI", vdi);
  const auto& sr = rec["SR"].as_string();
  try {
    driver(sr).vdi_import(sr_context(sr), rec["location"].as_string(), from_path, format);
  } catch (const ApiError& e) {
    // The driver knows the image, not the record: the error names the VDI.
    if (e.code() == errors::VDI_TOO_SMALL && e.description().size() == 3)
      throw ApiError(errors::VDI_TOO_SMALL, {vdi, e.description()[2]});
    throw;
  }
  vdi_refresh(vdi);
}

void bind_storage(Dispatcher& d, Storage& storage, model::Store& store) {
  d.bind("SR.get_supported_types", [&store](const Call&, const Args&) {
    Array out;  // one SM record per SR driver (ops/metrics.cpp)
    for (const auto& sm : store.all("SM")) out.push_back(store.get_field("SM", sm, "type"));
    return Value(out);
  });
  d.bind("VDI.create", [&storage, &store](const Call&, const Args& a) {
    const auto& r = a.map("args");
    auto get = [&](const char* k) -> const Value& {
      static const Value nil;  // immutable sentinel
      auto it = r.find(k);
      return it == r.end() ? nil : it->second;
    };
    if (!get("SR").is_string()) throw ApiError(errors::FIELD_TYPE_ERROR, {"SR"});
    auto vdi = storage.vdi_create(get("SR").as_string(), get("name_label").is_nil() ? "" : get("name_label").as_string(),
                                  get("virtual_size").as_int(), get("type").is_nil() ? "user" : get("type").as_string());
    Struct extra;
    for (auto f : {"name_description", "sharable", "read_only", "other_config", "xenstore_data", "tags"})
      if (!get(f).is_nil()) extra[f] = get(f);
    if (!extra.empty()) store.update("VDI", vdi, extra);
    return Value(vdi);
  });
  d.bind("VDI.destroy", [&storage](const Call&, const Args& a) {
    storage.vdi_destroy(a.ref("self"));
    return Value();
  });
  d.bind("VDI.copy", [&storage, &store](const Call&, const Args& a) {
    const auto& vdi = a.ref("vdi");
    auto name = store.get_field("VDI", vdi, "name_label").as_string();
    return Value(storage.vdi_copy(vdi, a.ref("sr"), name));
  });
  d.bind("VDI.clone", [&storage](const Call&, const Args& a) { return Value(storage.vdi_clone(a.ref("vdi"))); });
  d.bind("SR.scan", [&storage](const Call&, const Args& a) {
    storage.refresh_usage(a.ref("sr"));
    return Value();
  });
  // Device records: created by clients (xe vbd-create, XenAPI scripts).
  d.bind("VBD.create", [&store](const Call&, const Args& a) {
    Struct f = a.map("args");
    auto ref_of = [&](const char* k) { return f.count(k) && f.at(k).is_string() ? f.at(k).as_string() : std::string(kNullRef); };
    auto vm = ref_of("VM");
    if (!store.exists("VM", vm)) throw ApiError(errors::HANDLE_INVALID, {"VM", vm});
    auto vdi = ref_of("VDI");
    bool empty = vdi == kNullRef;
    if (!empty && !store.exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
    f["VDI"] = vdi;
    f["empty"] = f.count("empty") ? f.at("empty").as_bool() || empty : empty;
    // Runtime fields are the daemon's.
    for (auto k : {"currently_attached", "status_code", "status_detail", "runtime_properties", "device",
                   "allowed_operations", "current_operations", "storage_lock", "uuid"})
      f.erase(k);
    return Value(store.create("VBD", std::move(f)));
  });
  d.bind("VBD.destroy", [&store](const Call&, const Args& a) {
    const auto& vbd = a.ref("self");
    if (store.get_field("VBD", vbd, "currently_attached").as_bool())
      throw ApiError(errors::OPERATION_NOT_ALLOWED, {"VBD is attached to a running VM"});
    store.destroy("VBD", vbd);
    return Value();
  });
}

}  // namespace vmstack::ops
