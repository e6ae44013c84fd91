#include "ops/messages.h"

#include "core/error.h"
#include "core/strings.h"
#include "ops/dispatch.h"

namespace vmstack::ops {

namespace {

// message.cls names the class as xapi's enum spells it ("Host", "Pool").
const char* class_of(const std::string& cls) {
  if (cls == "Host") return "host";
  if (cls == "Pool") return "pool";
  if (cls == "VM" || cls == "SR" || cls == "VDI") return cls.c_str();
  return nullptr;  // VMPP, VMSS, PVS_proxy: classes vmstack lacks
}

Struct since(model::Store& store, const DateTime& t, const std::string& cls = {}, const std::string& uuid = {}) {
  Struct out;
  for (auto& [ref, rec] : store.all_records("message")) {
    if (rec["timestamp"].as_datetime().epoch <= t.epoch) continue;
    if (!cls.empty() && (rec["cls"].as_string() != cls || rec["obj_uuid"].as_string() != uuid)) continue;
    out[ref] = std::move(rec);
  }
  return out;
}

}  // namespace

void bind_messages(Dispatcher& d, model::Store& store) {
  d.bind("message.create", [&store](const Call&, const Args& a) {
    const auto& cls = a.str("cls");
    const char* model_cls = class_of(cls);
    // The object must exist, as xapi checks (UUID_INVALID [class, uuid]).
    if (!model_cls) throw ApiError(errors::UUID_INVALID, {cls, a.str("obj_uuid")});
    try {
      store.ref_by_uuid(model_cls, a.str("obj_uuid"));
    } catch (const ApiError&) {
      throw ApiError(errors::UUID_INVALID, {cls, a.str("obj_uuid")});  // "Host", as the caller spelled it
    }
    if (a.str("name").empty()) throw ApiError(errors::INVALID_VALUE, {"name", ""});
    return Value(store.create("message", {{"name", a.str("name")},
                                          {"priority", a.i64("priority")},
                                          {"cls", cls},
                                          {"obj_uuid", a.str("obj_uuid")},
                                          {"timestamp", DateTime::now()},
                                          {"body", a.str("body")}}));
  });
  d.bind("message.destroy", [&store](const Call&, const Args& a) {
    store.destroy("message", a.ref("self"));
    return Value();
  });
  d.bind("message.get", [&store](const Call&, const Args& a) {
    return Value(since(store, a.value("since").as_datetime(), a.str("cls"), a.str("obj_uuid")));
  });
  d.bind("message.get_since", [&store](const Call&, const Args& a) {
    return Value(since(store, a.value("since").as_datetime()));
  });
}

}  // namespace vmstack::ops
