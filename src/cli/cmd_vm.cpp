// The VM verbs: each selects VMs the way xe does (vm=<name|uuid>, uuid=,
// or any field=value; several matches need --multiple) and makes the
// XenAPI calls a script would make. No decisions are taken here that the
// daemon does not also check.
#include <pugixml.hpp>

#include <sstream>

#include "cli/commands.h"
#include "core/strings.h"
#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

const model::ClassDef& vm_class() { return *model::datamodel().cls("VM"); }

struct VmOpts {
  bool include_templates = false;
  bool include_control = false;
  bool multiple = true;  // false: the operation takes exactly one VM
};

std::vector<Object> select_vms(Context& ctx, const std::vector<std::string>& own, const VmOpts& o) {
  const auto& cls = vm_class();
  auto fields = cli_fields(cls);
  std::vector<Filter> filters;
  if (!o.include_control) filters.push_back({"is-control-domain", "false"});
  if (!o.include_templates) filters.push_back({"is-a-template", "false"});
  std::vector<std::string> skip = own;
  skip.push_back("vm");
  auto user = filters_from(ctx.args, skip);
  for (const auto& f : user) {
    std::string stem = f.key.substr(0, f.key.find(':'));
    if (!find_field(fields, f.key) && !find_field(fields, stem))
      throw failure("Parameter '" + f.key + "' is not a field of the VM class. Failed to select VM for operation.");
  }
  filters.insert(filters.end(), user.begin(), user.end());
  auto vms = select(ctx.objects(), cls, fields, filters);
  if (auto v = ctx.args.get("vm")) {
    // The pseudo-field vm= matches either the uuid or the name-label.
    std::vector<Object> keep;
    for (auto& o : vms)
      if (o.record["uuid"].to_display() == *v || o.record["name_label"].to_display() == *v) keep.push_back(std::move(o));
    vms = std::move(keep);
  }
  return vms;
}

std::string uuid_of(const Object& o) { return o.record.count("uuid") ? o.record.at("uuid").to_display() : o.ref; }

std::string error_text(const ApiError& e, ObjectCache& objects) {
  return format_api_error(e.description(), [&](const std::string& name, const std::string& value) {
    return objects.describe(value, name);
  });
}

// Runs `op` on the selected VMs with xe's rules for zero / one / several.
void do_vm_op(Context& ctx, const std::vector<std::string>& own, const VmOpts& o,
              const std::function<void(const Object&)>& op) {
  auto vms = select_vms(ctx, own, o);
  if (vms.empty()) throw failure("No matching VMs found");
  if (vms.size() == 1) return op(vms.front());
  if (!o.multiple)
    throw failure("Multiple matches VMs found. Operation can only be performed on one VM at a time");
  if (!ctx.args.flag("multiple"))
    throw failure("Multiple matches VMs found. --multiple required to complete the operation");
  MultipleFailure fails;
  for (const auto& vm : vms) {
    try {
      op(vm);
    } catch (const ApiError& e) {
      fails.failures.emplace_back(uuid_of(vm), error_text(e, ctx.objects()));
    } catch (const CliError& e) {
      fails.failures.emplace_back(uuid_of(vm), e.text());
    }
  }
  if (!fails.failures.empty()) throw fails;
}

using Verb = std::function<void(Context&, const Object&)>;

// A power verb: selectors, optional own params, one API call per VM.
Command power_verb(std::string name, std::vector<std::string> optn, std::string help, std::vector<std::string> api,
                   Verb verb, unsigned flags = 0) {
  std::vector<std::string> own = optn;
  Command c;
  c.api = std::move(api);
  c.name = std::move(name);
  optn.push_back("vm");
  c.optn = std::move(optn);
  c.help = std::move(help);
  c.flags = kVmSelectors | flags;
  c.cls = &vm_class();
  c.keys = KeySource::Filters;
  c.run = [own, verb](Context& ctx) {
    do_vm_op(ctx, own, {}, [&](const Object& vm) { verb(ctx, vm); });
    return 0;
  };
  return c;
}

Value new_vm_uuid(Context& ctx, const Value& ref) { return ctx.session().call("VM.get_uuid", Array{ref}); }

// vm-install: clone the template, point its provisioning spec at the SR
// asked for, provision the disks, and make the copy a VM.
int vm_install(Context& ctx) {
  auto& s = ctx.session();
  std::string name = *ctx.args.get("new-name-label");
  std::string want;
  if (auto t = ctx.args.get("template")) want = *t;
  else if (auto t = ctx.args.get("template-uuid")) want = *t;
  else if (auto t = ctx.args.get("template-name-label")) want = *t;
  else throw missing_param("template");

  std::vector<std::string> matches;
  for (const auto& [ref, rec] : ctx.objects().all("VM")) {
    if (!rec.count("is_a_template") || !rec.at("is_a_template").as_bool()) continue;
    if (rec.at("uuid").to_display() == want || rec.at("name_label").to_display() == want) matches.push_back(ref);
  }
  if (matches.empty()) throw failure("Template not found");
  if (matches.size() > 1) throw failure("More than one matching template found");

  std::string sr_ref;
  if (auto u = ctx.args.get("sr-uuid")) sr_ref = s.call("SR.get_by_uuid", Array{*u}).as_string();
  else if (auto l = ctx.args.get("sr-name-label")) {
    auto srs = s.call("SR.get_by_name_label", Array{*l}).as_array();
    if (srs.empty()) throw failure("No SR found with name-label " + *l);
    if (srs.size() > 1) throw failure("Multiple SRs found with name-label " + *l);
    sr_ref = srs.front().as_string();
  }

  Value vm = s.call("VM.clone", Array{matches.front(), name});
  try {
    if (!sr_ref.empty()) {
      std::string sr_uuid = s.call("SR.get_uuid", Array{sr_ref}).as_string();
      Value oc = s.call("VM.get_other_config", Array{vm});
      const Value& disks = oc["disks"];
      if (disks.is_string()) {
        pugi::xml_document doc;
        if (doc.load_string(disks.as_string().c_str())) {
          for (auto d : doc.child("provision").children("disk")) {
            auto a = d.attribute("sr");
            if (!a) a = d.append_attribute("sr");
            a.set_value(sr_uuid.c_str());
          }
          std::ostringstream xml;
          doc.save(xml, "", pugi::format_raw | pugi::format_no_declaration);
          s.call("VM.remove_from_other_config", Array{vm, "disks"});
          s.call("VM.add_to_other_config", Array{vm, "disks", xml.str()});
        }
      }
    }
    if (auto d = ctx.args.get("new-name-description")) s.call("VM.set_name_description", Array{vm, *d});
    s.call("VM.provision", Array{vm});
    s.call("VM.set_is_a_template", Array{vm, false});
  } catch (...) {
    // Do not leave a half-installed copy of the template behind.
    try {
      s.call("VM.destroy", Array{vm});
    } catch (const std::exception&) {
    }
    throw;
  }
  ctx.printer.line(new_vm_uuid(ctx, vm).as_string());
  return 0;
}

int vm_clone_or_copy(Context& ctx, bool copy) {
  auto& s = ctx.session();
  std::string name = *ctx.args.get("new-name-label");
  std::string sr = "OpaqueRef:NULL";
  if (copy)
    if (auto u = ctx.args.get("sr-uuid")) sr = s.call("SR.get_by_uuid", Array{*u}).as_string();
  std::vector<std::string> own = {"new-name-label", "new-name-description", "sr-uuid"};
  VmOpts o;
  o.include_templates = true;
  o.multiple = false;
  do_vm_op(ctx, own, o, [&](const Object& vm) {
    Value nvm = copy ? s.call("VM.copy", Array{vm.ref, name, sr}) : s.call("VM.clone", Array{vm.ref, name});
    if (auto d = ctx.args.get("new-name-description")) s.call("VM.set_name_description", Array{nvm, *d});
    ctx.printer.line(new_vm_uuid(ctx, nvm).as_string());
  });
  return 0;
}

// vm-uninstall: the VM record and the disks only it uses. The VM goes
// first: VM.destroy checks the power state, so a running VM loses nothing.
int vm_uninstall(Context& ctx) {
  auto& s = ctx.session();
  auto& objs = ctx.objects();
  VmOpts o;
  o.include_templates = true;
  o.multiple = false;
  int failed = 0;
  do_vm_op(ctx, {}, o, [&](const Object& vm) {
    std::vector<std::pair<std::string, std::string>> vdis;  // ref, description
    const Value& vbds = vm.record.count("VBDs") ? vm.record.at("VBDs") : Value();
    if (vbds.is_array())
      for (const auto& vbd_ref : vbds.as_array()) {
        const Struct* vbd = objs.find("VBD", vbd_ref.as_string());
        if (!vbd) continue;
        // CD drives hold shared media (ISOs): never destroyed with a VM.
        if (vbd->count("type") && vbd->at("type").to_display() == "CD") continue;
        if (vbd->count("empty") && vbd->at("empty").as_bool()) continue;
        std::string vdi = vbd->count("VDI") ? vbd->at("VDI").as_string() : "";
        const Struct* vdi_rec = objs.find("VDI", vdi);
        if (!vdi_rec) continue;
        // A disk another VM also uses stays.
        bool shared = false;
        if (vdi_rec->count("VBDs") && vdi_rec->at("VBDs").is_array())
          for (const auto& other : vdi_rec->at("VBDs").as_array()) {
            const Struct* ov = objs.find("VBD", other.as_string());
            if (ov && ov->count("VM") && ov->at("VM").as_string() != vm.ref) shared = true;
          }
        if (!shared) vdis.emplace_back(vdi, objs.describe(vdi, "VDI"));
      }
    if (!ctx.args.flag("force")) {
      ctx.printer.line("The following items are about to be destroyed");
      ctx.printer.line("VM : " + objs.describe(vm.ref, "VM"));
      for (const auto& [ref, d] : vdis) ctx.printer.line("VDI: " + d);
      ctx.printer.line("Type 'yes' to continue");
      std::string answer;
      std::getline(ctx.io.in, answer);
      std::string trimmed = answer;
      while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
      while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) trimmed.erase(0, 1);
      if (lower(trimmed) != "yes") {
        ctx.printer.line("Aborted (you typed: '" + answer + "')");
        return;
      }
    }
    s.call("VM.destroy", Array{vm.ref});
    for (const auto& [ref, d] : vdis) {
      try {
        s.call("VDI.destroy", Array{ref});
      } catch (const ApiError& e) {
        // The VM is gone already; report the disk that stayed and go on.
        ctx.io.err << "Failed to destroy VDI " << d << ":\n" << error_text(e, objs) << "\n";
        ++failed;
      }
    }
    if (!failed) ctx.printer.line("All objects destroyed");
  });
  // A disk that stayed is a failure the caller's script must see.
  return failed ? 1 : 0;
}

// vm-destroy: xe takes uuid=; any VM selector works here too, but one is
// required (destroying "every VM" by omission is not a thing to allow).
int vm_destroy(Context& ctx) {
  if (!ctx.args.has("vm") && filters_from(ctx.args, {}).empty()) throw missing_param("uuid");
  VmOpts o;
  o.include_templates = true;
  o.include_control = true;  // to say why it cannot be destroyed
  do_vm_op(ctx, {}, o, [&](const Object& vm) {
    if (vm.record.count("is_control_domain") && vm.record.at("is_control_domain").as_bool())
      throw failure("Cannot destroy a control domain");
    ctx.session().call("VM.destroy", Array{vm.ref});
  });
  return 0;
}

int vm_memory_limits_set(Context& ctx) {
  auto& s = ctx.session();
  auto size = [&](const char* k) { return Value(parse_size(k, *ctx.args.get(k))); };
  Value smin = size("static-min"), smax = size("static-max"), dmin = size("dynamic-min"), dmax = size("dynamic-max");
  VmOpts o;
  o.include_templates = true;
  o.include_control = true;
  do_vm_op(ctx, {"static-min", "static-max", "dynamic-min", "dynamic-max"}, o, [&](const Object& vm) {
    s.call("VM.set_memory_limits", Array{vm.ref, smin, smax, dmin, dmax});
  });
  return 0;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t c = s.find(',', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) return out;
    start = c + 1;
  }
}

int vm_disk_list(Context& ctx) {
  auto& objs = ctx.objects();
  const auto& dm = model::datamodel();
  auto vbd_fields = cli_fields(*dm.cls("VBD"));
  auto vdi_fields = cli_fields(*dm.cls("VDI"));
  auto params_of = [&](const char* key, std::vector<std::string> def) {
    auto p = ctx.args.get(key);
    if (!p) return def;
    if (*p == "all") return std::vector<std::string>{};
    return split_commas(*p);
  };
  auto vbd_params = params_of("vbd-params", {"uuid", "vm-name-label", "userdevice"});
  auto vdi_params = params_of("vdi-params", {"uuid", "name-label", "virtual-size", "sr-name-label"});
  VmOpts o;
  o.include_templates = true;
  do_vm_op(ctx, {"vbd-params", "vdi-params"}, o, [&](const Object& vm) {
    std::vector<std::pair<std::string, const Struct*>> disks;  // userdevice, VBD
    const Value& vbds = vm.record.count("VBDs") ? vm.record.at("VBDs") : Value();
    if (vbds.is_array())
      for (const auto& r : vbds.as_array())
        if (const Struct* vbd = objs.find("VBD", r.as_string()))
          if (vbd->count("type") && vbd->at("type").to_display() == "Disk")
            disks.emplace_back(vbd->count("userdevice") ? vbd->at("userdevice").to_display() : "", vbd);
    std::sort(disks.begin(), disks.end(), [](const auto& a, const auto& b) {
      return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.first < b.first;
    });
    int n = 0;
    for (const auto& [dev, vbd] : disks) {
      ctx.printer.message("Disk " + std::to_string(n) + " VBD:");
      ctx.printer.table({print_record(*vbd, vbd_fields, objs, vbd_params.empty() ? nullptr : &vbd_params)});
      const Struct* vdi = vbd->count("VDI") ? objs.find("VDI", vbd->at("VDI").as_string()) : nullptr;
      if (vdi) {
        ctx.printer.message("Disk " + std::to_string(n) + " VDI:");
        ctx.printer.table({print_record(*vdi, vdi_fields, objs, vdi_params.empty() ? nullptr : &vdi_params)});
      }
      ++n;
    }
  });
  return 0;
}

}  // namespace

// Shared with console (cmd_misc.cpp): one VM from the selectors.
Object select_one_vm(Context& ctx, const std::vector<std::string>& own) {
  Object out;
  VmOpts o;
  o.multiple = false;
  o.include_control = true;
  do_vm_op(ctx, own, o, [&](const Object& vm) { out = vm; });
  return out;
}

std::string api_error_text(const ApiError& e, ObjectCache& objects) { return error_text(e, objects); }

void add_vm_commands(CommandTable& t) {
  auto call1 = [](const char* method) {
    return [method](Context& ctx, const Object& vm) { ctx.session().call(method, Array{vm.ref}); };
  };
  t.add(power_verb("vm-start", {"paused", "force"}, "Start the selected VM(s); paused=true leaves them paused. The optional "
                   "parameter '--force' will bypass any hardware-compatibility warnings.",
                   {"VM.start"},
                   [](Context& ctx, const Object& vm) {
                     ctx.session().call("VM.start", Array{vm.ref, ctx.args.flag("paused"), ctx.args.flag("force")});
                   },
                   kStandard));
  t.add(power_verb("vm-shutdown", {"force"}, "Shutdown the selected VM(s). The optional argument --force will forcibly shut "
                   "down the VM.",
                   {"VM.clean_shutdown", "VM.hard_shutdown"},
                   [](Context& ctx, const Object& vm) {
                     ctx.session().call(ctx.args.flag("force") ? "VM.hard_shutdown" : "VM.clean_shutdown",
                                        Array{vm.ref});
                   },
                   kStandard));
  t.add(power_verb("vm-reboot", {"force"}, "Reboot the selected VM(s). The optional argument --force will forcibly reboot the "
                   "VM.",
                   {"VM.clean_reboot", "VM.hard_reboot"},
                   [](Context& ctx, const Object& vm) {
                     ctx.session().call(ctx.args.flag("force") ? "VM.hard_reboot" : "VM.clean_reboot", Array{vm.ref});
                   },
                   kStandard));
  t.add(power_verb("vm-suspend", {}, "Suspend the selected VM(s).", {"VM.suspend"}, call1("VM.suspend")));
  t.add(power_verb("vm-resume", {"force"}, "Resume the selected VM(s).", {"VM.resume"}, [](Context& ctx, const Object& vm) {
    ctx.session().call("VM.resume", Array{vm.ref, false, ctx.args.flag("force")});
  }));
  t.add(power_verb("vm-pause", {}, "Pause a running VM. Note this operation does not free the associated memory "
                   "(see 'vm-suspend').",
                   {"VM.pause"}, call1("VM.pause")));
  t.add(power_verb("vm-unpause", {}, "Unpause a paused VM.", {"VM.unpause"}, call1("VM.unpause")));

  t.add({"vm-install", {"new-name-label"}, {"template", "template-uuid", "template-name-label", "sr-uuid",
         "sr-name-label", "new-name-description"},
         "Install a new VM from a template (template=<name-label or uuid>). The disks of the template's "
         "provisioning specification are created in the SR given by sr-uuid (default: the pool's default SR). "
         "Prints the uuid of the new VM.",
         kStandard, &vm_class(), KeySource::Fixed, vm_install, {"VM.clone", "VM.provision"}});
  t.add({"vm-clone", {"new-name-label"}, {"new-name-description", "vm"},
         "Clone an existing VM, using storage-level fast disk clone operation where available. Specify the name "
         "and the optional description for the resulting cloned VM using the new-name-label and "
         "new-name-description arguments. Prints the uuid of the new VM.",
         kVmSelectors, &vm_class(), KeySource::Filters, [](Context& ctx) { return vm_clone_or_copy(ctx, false); }, {"VM.clone"}});
  t.add({"vm-copy", {"new-name-label"}, {"new-name-description", "sr-uuid", "vm"},
         "Copy an existing VM, without using storage-level fast disk clone operation (even if this is available). "
         "The disk images of the copied VM are guaranteed to be 'full images' - that is, not part of a "
         "copy-on-write chain. Prints the uuid of the new VM.",
         kVmSelectors, &vm_class(), KeySource::Filters, [](Context& ctx) { return vm_clone_or_copy(ctx, true); }, {"VM.copy"}});
  t.add({"vm-uninstall", {}, {"force", "vm"},
         "Uninstall a VM. This operation will destroy those VDIs that are marked RW and connected to this VM only. "
         "To simply destroy the VM record, use vm-destroy.",
         kVmSelectors | kStandard, &vm_class(), KeySource::Filters, vm_uninstall, {"VM.destroy", "VDI.destroy"}});
  t.add({"vm-destroy", {}, {"uuid", "vm"},
         "Destroy the specified VM. This leaves the storage associated with the VM intact. To delete storage as "
         "well, use vm-uninstall.",
         kVmSelectors, &vm_class(), KeySource::Filters, vm_destroy, {"VM.destroy"}});
  t.add({"vm-memory-limits-set", {"static-min", "static-max", "dynamic-min", "dynamic-max"}, {"vm"},
         "Configure the memory limits of a VM (sizes in bytes or with a KiB/MiB/GiB/TiB suffix).", kVmSelectors,
         &vm_class(), KeySource::Filters, vm_memory_limits_set, {"VM.set_memory_limits"}});
  t.add({"vm-disk-list", {}, {"vbd-params", "vdi-params", "vm"}, "List the disks on the selected VM(s).",
         kVmSelectors, &vm_class(), KeySource::Filters, vm_disk_list});
}

}  // namespace vmstack::cli
