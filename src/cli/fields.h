// xe's parameter table of a class, derived from the datamodel (never
// declared here): one CliField per datamodel field in xe's spelling, plus
// the two columns xe shows for a reference to another object named after
// that class (VBD.VM -> vm-uuid, vm-name-label).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/datamodel.h"

namespace vmstack::cli {

struct CliField {
  enum class Via {
    Direct,        // the field itself (references shown as uuids)
    RefUuid,       // uuid of the object a Ref field points to (vm-uuid)
    RefNameLabel,  // its name-label (vm-name-label)
    Through,       // a field of the object `through` refers to (a VM's networks, from its VM_guest_metrics)
  };
  std::string name;                      // xe spelling: "name-label", "vm-uuid"
  const model::Field* field = nullptr;   // the datamodel field behind it
  Via via = Via::Direct;
  const model::ClassDef* target = nullptr;  // class referenced (Ref / Set of Ref; Through: the class `field` is of)
  const model::Field* through = nullptr;    // Through: the reference field of the record shown

  bool is_map() const { return (via == Via::Direct || via == Via::Through) && field->is_map(); }
  bool is_set() const { return (via == Via::Direct || via == Via::Through) && field->is_set(); }
  // Has a setter in the API (set_<field>, add_to_/remove_from_<map>, ...).
  bool writable() const { return via == Via::Direct && field->qual == model::Qual::RW; }
  // xe's qualifier column: "( RO)", "( RW)", "(MRO)", "(MRW)", "(SRO)", "(SRW)".
  std::string qualifier() const;
};

// The fields of `c` in datamodel order (which is the order xe prints them);
// a VM's also show what its guest reports, as xapi's xe does (networks,
// os-version, PV-drivers-version from VM_guest_metrics).
std::vector<CliField> cli_fields(const model::ClassDef& c, const model::Datamodel& dm = model::datamodel());

// Looks a field up by its xe name (exact), falling back to the API spelling
// (name_label) so both work on the command line.
const CliField* find_field(const std::vector<CliField>& fields, std::string_view name);

// The class behind an xe prefix ("vm" -> VM, "sr" -> SR); null if none.
const model::ClassDef* class_for_prefix(std::string_view prefix, const model::Datamodel& dm = model::datamodel());

}  // namespace vmstack::cli
