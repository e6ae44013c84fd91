// The small vocabulary the declarations in src/model/classes/ are written in:
// one line per field, one builder chain per message. Internal to model/.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/datamodel.h"

namespace vmstack::model::declare {

using namespace types;

Field ro(std::string name, Type t, std::string doc, Value def = {});  // read-only, runtime
Field rc(std::string name, Type t, std::string doc, Value def = {});  // given to the constructor
Field rw(std::string name, Type t, std::string doc, Value def = {});  // settable
// A one-to-many set computed from the other class's reference field.
Field inv(std::string name, std::string other_class, std::string other_field, std::string doc);

Field uuid();
Field name_label();
Field name_description();
Field allowed_ops(std::string enum_name);
Field current_ops(std::string enum_name);
Field other_config();
Field tags();

// A message, declared as xapi's IDL declares a `call`:
//   msg("start", "Start the specified VM.")
//       .param(ref("VM"), "vm", "The VM to start")
//       .param(boolean(), "start_paused", "...")
//       .errors({"VM_BAD_POWER_STATE", ...}).operation("start")
class Msg {
 public:
  Msg(std::string name, std::string doc);
  Msg& param(Type t, std::string name, std::string doc);
  // A trailing parameter a client may omit (added after the first release).
  Msg& param(Type t, std::string name, std::string doc, Value default_value);
  Msg& returns(Type t);
  Msg& errors(std::vector<std::string> codes);
  Msg& no_session();
  Msg& no_async();
  // The vm_operations value whose lifecycle rule guards this message.
  Msg& operation(std::string op);
  operator Message() const { return m_; }

 private:
  Message m_;
};

// Messages xapi has and this host lacks, one reason for the group:
//   refused("pool", "HA needs a pool of hosts", {"enable_ha", "disable_ha"})
// Each answers OPERATION_NOT_ALLOWED ["<Class>.<message>: <reason>"].
void refused(Datamodel& dm, const std::string& cls, const std::string& reason, const std::vector<std::string>& names);

ClassDef cls(std::string name, std::string doc, std::string cli_prefix, std::vector<Field> fields,
             std::vector<Message> messages = {});

// One function per file in classes/, each adding its classes and enums.
void declare_session(Datamodel& dm);   // session, event, task
void declare_host(Datamodel& dm);      // pool, host
void declare_vm(Datamodel& dm);        // VM, console
void declare_storage(Datamodel& dm);   // SR, PBD, VDI, VBD
void declare_network(Datamodel& dm);   // network, VIF, PIF
void declare_metrics(Datamodel& dm);   // host_cpu, host_metrics, VM_metrics, VM_guest_metrics, *_metrics
void declare_access(Datamodel& dm);    // user, role, subject, secret
void declare_message(Datamodel& dm);   // message, blob
// Last: xapi's messages this host lacks, with the reason (refused.cpp).
void declare_refused(Datamodel& dm);

}  // namespace vmstack::model::declare
