#include "cli/fields.h"
#include "core/strings.h"

#include <cctype>

namespace vmstack::cli {

namespace {

}  // namespace

std::string CliField::qualifier() const {
  bool rw = writable();
  if (is_set()) return rw ? "(SRW)" : "(SRO)";
  if (is_map()) return rw ? "(MRW)" : "(MRO)";
  return rw ? "( RW)" : "( RO)";
}

std::vector<CliField> cli_fields(const model::ClassDef& c, const model::Datamodel& dm) {
  std::vector<CliField> out;
  for (const auto& f : c.fields) {
    const model::ClassDef* target = nullptr;
    bool ref = f.type.kind == model::Kind::Ref;
    if (ref || (f.type.kind == model::Kind::Set && f.type.elem == model::Kind::Ref)) target = dm.cls(f.type.target);
    // A reference named after its class (VBD.VM, VDI.SR, PBD.host) is shown
    // as xe does: <prefix>-uuid, and <prefix>-name-label when the target has
    // a name. Other references keep their own name (resident-on, master).
    if (ref && target && iequal(f.name, target->name) && !target->cli_prefix.empty()) {
      out.push_back({target->cli_prefix + "-uuid", &f, CliField::Via::RefUuid, target});
      if (target->has_name_label())
        out.push_back({target->cli_prefix + "-name-label", &f, CliField::Via::RefNameLabel, target});
      continue;
    }
    out.push_back({model::cli_name(f.name), &f, CliField::Via::Direct, target});
  }
  if (c.name == "VM") {
    const model::ClassDef* gm = dm.cls("VM_guest_metrics");
    const model::Field* ref = c.field("guest_metrics");
    if (gm && ref)
      for (const char* name : {"os_version", "PV_drivers_version", "networks"})
        if (const model::Field* f = gm->field(name))
          out.push_back({model::cli_name(f->name), f, CliField::Via::Through, gm, ref});
  }
  return out;
}

const CliField* find_field(const std::vector<CliField>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.name == name) return &f;
  // API spelling (name_label, VM) or the plain field name of a reference
  // that xe renames (VM for vm-uuid).
  for (const auto& f : fields)
    if (f.field->name == name && f.via != CliField::Via::RefNameLabel) return &f;
  return nullptr;
}

const model::ClassDef* class_for_prefix(std::string_view prefix, const model::Datamodel& dm) {
  for (const auto& c : dm.classes)
    if (!c.cli_prefix.empty() && c.cli_prefix == prefix) return &c;
  return nullptr;
}

}  // namespace vmstack::cli
