// xe network-create/-destroy and vif-create/-destroy, as xapi's xe takes
// them; network-create's mode=, subnet= and gateway= (vmstack's NAT and
// internal networks, beside xapi's parameters) go to other_config.
#include "cli/commands.h"
#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

std::string ref_of(Context& ctx, const char* cls, const std::string& uuid) {
  return ctx.session().call(std::string(cls) + ".get_by_uuid", {uuid}).as_string();
}

int network_create(Context& ctx) {
  Struct rec{{"name_label", *ctx.args.get("name-label")},
             {"name_description", ctx.args.get_or("name-description", "")},
             {"other_config", Struct{}}};
  if (auto mtu = ctx.args.get("MTU")) {
    try {
      rec["MTU"] = static_cast<int64_t>(std::stoll(*mtu));
    } catch (const std::exception&) {
      throw failure("MTU must be a number: " + *mtu);
    }
  }
  if (auto b = ctx.args.get("bridge")) rec["bridge"] = *b;
  Struct oc;
  for (const char* k : {"mode", "subnet", "gateway"})
    if (auto v = ctx.args.get(k)) oc[k] = *v;
  rec["other_config"] = oc;
  auto ref = ctx.session().call("network.create", {rec}).as_string();
  ctx.printer.line(ctx.session().call("network.get_uuid", {ref}).as_string());
  return 0;
}

int network_destroy(Context& ctx) {
  ctx.session().call("network.destroy", {ref_of(ctx, "network", *ctx.args.get("uuid"))});
  return 0;
}

int vif_create(Context& ctx) {
  auto vm = ref_of(ctx, "VM", *ctx.args.get("vm-uuid"));
  auto net = ref_of(ctx, "network", *ctx.args.get("network-uuid"));
  Struct rec{{"VM", vm},
             {"network", net},
             {"device", *ctx.args.get("device")},
             {"MTU", ctx.session().call("network.get_MTU", {net})},
             {"other_config", Struct{}},
             {"qos_algorithm_type", ""},
             {"qos_algorithm_params", Struct{}}};
  // xe's mac=random (or none) is a generated one.
  if (auto mac = ctx.args.get("mac"); mac && *mac != "random") rec["MAC"] = *mac;
  auto ref = ctx.session().call("VIF.create", {rec}).as_string();
  ctx.printer.line(ctx.session().call("VIF.get_uuid", {ref}).as_string());
  return 0;
}

int vif_destroy(Context& ctx) {
  ctx.session().call("VIF.destroy", {ref_of(ctx, "VIF", *ctx.args.get("uuid"))});
  return 0;
}

}  // namespace

void add_network_commands(CommandTable& t) {
  t.add({"network-create", {"name-label"}, {"name-description", "MTU", "bridge", "mode", "subnet", "gateway"},
         "Create a network: a bridge of vmstack's (the first free xenbrN unless bridge= names one). mode=nat with "
         "subnet=<CIDR> (gateway= defaults to its first address) gives it the host's address, DHCP and DNS "
         "(dnsmasq), forwarding and MASQUERADE; mode=internal with subnet= gives it DHCP and DNS but no way out. "
         "Prints the uuid of the new network.",
         kStandard, nullptr, KeySource::Fixed, network_create, {"network.create"}});
  t.add({"network-destroy", {"uuid"}, {}, "Destroy a network (refused while VIFs use it).", kStandard, nullptr,
         KeySource::Fixed, network_destroy, {"network.destroy"}});
  t.add({"vif-create", {"vm-uuid", "network-uuid", "device"}, {"mac"},
         "Create a VIF (a NIC) on a VM: device=0 is the first; mac= (default: generated, locally administered). "
         "Prints the uuid of the new VIF.",
         kStandard, nullptr, KeySource::Fixed, vif_create, {"VIF.create"}});
  t.add({"vif-destroy", {"uuid"}, {}, "Destroy a VIF (refused while its VM runs with it).", kStandard, nullptr,
         KeySource::Fixed, vif_destroy, {"VIF.destroy"}});
}

}  // namespace vmstack::cli
