// VM record verbs: create, destroy, clone/copy (disks copied by their SRs'
// drivers), provision (a template's other_config:disks becomes real VDIs),
// and the setters with checks (memory limits, VCPUs, is_a_template).
#pragma once

#include <string>

#include "model/store.h"

namespace vmstack::ops {

class Dispatcher;
class Domains;
class Journal;
class Networks;
class Storage;
class VmPower;

class VmAdmin {
 public:
  // Copies, provisioning and destruction are journaled (ops/journal.h).
  VmAdmin(model::Store& store, Storage& storage, Networks& networks, VmPower& power, Journal& journal, Domains& domains)
      : store_(store), storage_(storage), networks_(networks), power_(power), journal_(journal), domains_(domains) {}

  std::string create(const Struct& record);
  void destroy(const std::string& vm);
  // A copy of a halted VM or template: disks copied into `sr_override`, or
  // each into its own SR when it is empty; VIFs with fresh MACs unless
  // pinned. Nothing half-made is left behind on failure.
  std::string copy(const std::string& vm, const std::string& name, const std::string& sr_override);
  void provision(const std::string& vm);
  // static_min <= dynamic_min <= dynamic_max <= static_max, as xapi enforces;
  // a running VM's balloon follows dynamic_max.
  void set_memory(const std::string& vm, int64_t smin, int64_t smax, int64_t dmin, int64_t dmax);
  void set_vcpus_max(const std::string& vm, int64_t n);
  void set_vcpus_at_startup(const std::string& vm, int64_t n);
  void set_is_a_template(const std::string& vm, bool value);

 private:
  model::Store& store_;
  Storage& storage_;
  Networks& networks_;
  VmPower& power_;
  Journal& journal_;
  Domains& domains_;
};

void bind_vm_admin(Dispatcher& d, VmAdmin& admin, model::Store& store);

}  // namespace vmstack::ops
