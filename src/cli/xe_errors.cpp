#include "cli/xe_errors.h"

#include <algorithm>
#include <map>

namespace vmstack::cli {

namespace {

struct ErrorDoc {
  std::vector<std::string> params;
  std::string doc;
};

// The documentation xe prints for the codes vmstackd produces. The texts
// and parameter names are xapi's (they are part of xe's observable output:
// scripts grep for them), the table itself is ours.
const std::map<std::string, ErrorDoc>& docs() {
  static const std::map<std::string, ErrorDoc> table = {
      {"INTERNAL_ERROR",
       {{"message"},
        "The server failed to handle your request, due to an internal error. The given message may give details "
        "useful for debugging the problem."}},
      {"PERMISSION_DENIED", {{"message"}, "Caller not allowed to perform this operation."}},
      {"UUID_INVALID", {{"type", "uuid"}, "The uuid you supplied was invalid."}},
      {"MAP_DUPLICATE_KEY",
       {{"type", "param_name", "uuid", "key"},
        "You tried to add a key-value pair to a map, but that key is already there."}},
      {"XMLRPC_UNMARSHAL_FAILURE",
       {{"expected", "received"},
        "The server failed to unmarshal the XMLRPC message; it was expecting one element and received something "
        "else."}},
      {"MESSAGE_METHOD_UNKNOWN",
       {{"method"}, "You tried to call a method that does not exist. The method name that you used is echoed."}},
      {"MESSAGE_PARAMETER_COUNT_MISMATCH",
       {{"method", "expected", "received"},
        "You tried to call a method with the incorrect number of parameters. The fully-qualified method name that "
        "you used, and the number of received and expected parameters are returned."}},
      {"INVALID_VALUE", {{"field", "value"}, "The value given is invalid"}},
      {"FIELD_TYPE_ERROR", {{"field"}, "The value specified is of the wrong type"}},
      {"OPERATION_NOT_ALLOWED", {{"reason"}, "You attempted an operation that was not allowed."}},
      {"OPERATION_BLOCKED",
       {{"ref", "code"},
        "You attempted an operation that was explicitly blocked (see the blocked_operations field of the given "
        "object)."}},
      {"NOT_IMPLEMENTED", {{"function"}, "The function is not implemented"}},
      {"HANDLE_INVALID",
       {{"class", "handle"},
        "You gave an invalid object reference. The object may have recently been deleted. The class parameter "
        "gives the type of reference given, and the handle parameter echoes the bad value given."}},
      {"MEMORY_CONSTRAINT_VIOLATION",
       {{"constraint"}, "The dynamic memory range does not satisfy the following constraint."}},
      {"SESSION_INVALID",
       {{"handle"},
        "You gave an invalid session reference. It may have been invalidated by a server restart, or timed out. "
        "You should get a new session handle, using one of the session.login_ calls. This error does not "
        "invalidate the current connection. The handle parameter echoes the bad value given."}},
      {"VM_BAD_POWER_STATE",
       {{"vm", "expected", "actual"},
        "You attempted an operation on a VM that was not in an appropriate power state at the time; for example, "
        "you attempted to start a VM that was already running. The parameters returned are the VM's handle, and "
        "the expected and actual VM state at the time of the call."}},
      {"VM_IS_TEMPLATE", {{"vm"}, "The operation attempted is not valid for a template VM"}},
      {"VM_MISSING_PV_DRIVERS",
       {{"vm"},
        "You attempted an operation on a VM which requires PV drivers to be installed but the drivers were not "
        "detected."}},
      {"VM_HVM_REQUIRED", {{"vm"}, "HVM is required for this operation"}},
      {"VM_REQUIRES_SR",
       {{"vm", "sr"}, "You attempted to run a VM on a host which doesn't have access to an SR needed by the VM."}},
      {"VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT",
       {{"vm"}, "VM didn't acknowledge the need to shutdown."}},
      {"VM_NO_VCPUS", {{"vm"}, "You need at least 1 VCPU to start a VM"}},
      {"VM_MEMORY_SIZE_TOO_LOW", {{"vm"}, "The specified VM has too little memory to be started."}},
      {"VM_CANNOT_DELETE_DEFAULT_TEMPLATE", {{"vm"}, "You cannot delete the specified default template."}},
      {"OTHER_OPERATION_IN_PROGRESS",
       {{"class", "object"}, "Another operation involving the object is currently in progress"}},
      {"HOST_NOT_ENOUGH_FREE_MEMORY",
       {{"needed", "available"}, "Not enough server memory is available to perform this operation."}},
      {"HOST_STILL_BOOTING", {{}, "The host toolstack is still initialising. Please wait."}},
      {"SR_BACKEND_FAILURE", {{"status", "stdout", "stderr"}, "There was an SR backend failure."}},
      {"SR_FULL", {{"requested", "maximum"}, "The SR is full. Requested new size exceeds the maximum size"}},
      {"VDI_IN_USE", {{"vdi", "operation"}, "This operation cannot be performed because this VDI is in use by some other operation"}},
      {"DEVICE_ALREADY_EXISTS", {{"device"}, "The device name is already in use."}},
      {"EVENTS_LOST",
       {{},
        "Some events have been lost from the queue and cannot be retrieved."}},
      {"TASK_CANCELLED", {{"task"}, "The request was asynchronously canceled."}},
      {"RBAC_PERMISSION_DENIED", {{"permission", "message"}, "RBAC permission denied."}},
      {"XENAPI_MISSING_PLUGIN", {{"name"}, "The requested plugin could not be found."}},
  };
  return table;
}

std::string usage_hint() { return "For usage run: 'xe help'"; }

}  // namespace

CliError param_error(const std::string& what, const std::string& detail) {
  return CliError((what.empty() ? detail : what + ": " + detail) + "\n" + usage_hint());
}

CliError unknown_command(const std::string& cmd) { return param_error("Unknown command", cmd); }
CliError missing_param(const std::string& name) { return param_error("Required parameter not found", name); }
CliError syntax_error(const std::string& detail) { return param_error("Syntax error", detail); }
CliError failure(const std::string& msg) { return CliError("Error: " + msg); }
CliError unknown_field(const std::string& name) {
  // xapi raises CLI_failed_to_find_param, which xe shows as an unknown code.
  return CliError(format_api_error({"Missing parameter", name}, nullptr));
}

const std::vector<std::string>* error_param_names(const std::string& code) {
  auto it = docs().find(code);
  return it == docs().end() ? nullptr : &it->second.params;
}

std::string format_api_error(const std::vector<std::string>& description, const RefConvert& ref_convert,
                             bool had_username) {
  if (description.empty()) return format_api_error({"INTERNAL_ERROR", "empty error description"}, ref_convert);
  const std::string& code = description.front();
  std::vector<std::string> params(description.begin() + 1, description.end());
  if (code == "SESSION_AUTHENTICATION_FAILED")
    return param_error("", had_username ? "Authentication failed" : "Username/password must be specified").text();

  auto it = docs().find(code);
  if (it == docs().end()) {
    std::string out = "Error code: " + code + "\nError parameters: ";
    for (size_t i = 0; i < params.size(); ++i) {
      if (i) out += ", ";
      out += ref_convert ? ref_convert("", params[i]) : params[i];
    }
    return out;
  }
  // As xe: the documentation line, then one "name: value" line per
  // parameter; surplus values are <extra>, missing ones <unknown>.
  const auto& names = it->second.params;
  std::string out = it->second.doc;
  size_t n = std::max(names.size(), params.size());
  for (size_t i = 0; i < n; ++i) {
    std::string name = i < names.size() ? names[i] : "<extra>";
    std::string value = i < params.size() ? (ref_convert ? ref_convert(name, params[i]) : params[i]) : "<unknown>";
    out += "\n" + name + ": " + value;
  }
  return out;
}

}  // namespace vmstack::cli
