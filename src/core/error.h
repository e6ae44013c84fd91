// XenAPI failures: an error code plus string parameters, exactly what goes in
// ErrorDescription on the wire. Thrown anywhere below the API layer; the API
// layer turns it into a Failure envelope, xe prints it as xe does.
#pragma once

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmstack {

class ApiError : public std::runtime_error {
 public:
  ApiError(std::string code, std::vector<std::string> params = {});
  const std::string& code() const { return description_.front(); }
  std::vector<std::string> params() const { return {description_.begin() + 1, description_.end()}; }
  // [code, param1, param2, ...]
  const std::vector<std::string>& description() const { return description_; }

 private:
  std::vector<std::string> description_;
};

// The codes used across the project, as xapi spells them.
namespace errors {
inline constexpr const char* HANDLE_INVALID = "HANDLE_INVALID";  // [class, ref]
inline constexpr const char* UUID_INVALID = "UUID_INVALID";      // [class, uuid]
inline constexpr const char* SESSION_AUTHENTICATION_FAILED = "SESSION_AUTHENTICATION_FAILED";
inline constexpr const char* SESSION_INVALID = "SESSION_INVALID";  // [session ref]
inline constexpr const char* MESSAGE_METHOD_UNKNOWN = "MESSAGE_METHOD_UNKNOWN";  // [method]
inline constexpr const char* MESSAGE_PARAMETER_COUNT_MISMATCH = "MESSAGE_PARAMETER_COUNT_MISMATCH";  // [method, expected, received]
inline constexpr const char* FIELD_TYPE_ERROR = "FIELD_TYPE_ERROR";  // [field]
inline constexpr const char* INTERNAL_ERROR = "INTERNAL_ERROR";      // [message]
inline constexpr const char* VM_BAD_POWER_STATE = "VM_BAD_POWER_STATE";  // [vm, expected, actual]
inline constexpr const char* VM_IS_TEMPLATE = "VM_IS_TEMPLATE";          // [vm]
inline constexpr const char* OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED";  // [reason]
inline constexpr const char* OTHER_OPERATION_IN_PROGRESS = "OTHER_OPERATION_IN_PROGRESS";  // [class, ref]
inline constexpr const char* MAP_DUPLICATE_KEY = "MAP_DUPLICATE_KEY";
inline constexpr const char* INVALID_VALUE = "INVALID_VALUE";  // [field, value]
inline constexpr const char* MEMORY_CONSTRAINT_VIOLATION = "MEMORY_CONSTRAINT_VIOLATION";  // [constraint]
inline constexpr const char* VM_HVM_REQUIRED = "VM_HVM_REQUIRED";
inline constexpr const char* SR_BACKEND_FAILURE = "SR_BACKEND_FAILURE";  // [code, stdout, stderr]
inline constexpr const char* VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT = "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT";  // [vm]
inline constexpr const char* VM_MISSING_PV_DRIVERS = "VM_MISSING_PV_DRIVERS";  // [vm]
inline constexpr const char* XENAPI_MISSING_PLUGIN = "XENAPI_MISSING_PLUGIN";
inline constexpr const char* NOT_IMPLEMENTED = "NOT_IMPLEMENTED";  // [what]
inline constexpr const char* EVENTS_LOST = "EVENTS_LOST";
inline constexpr const char* TASK_CANCELLED = "TASK_CANCELLED";
inline constexpr const char* HOST_STILL_BOOTING = "HOST_STILL_BOOTING";
inline constexpr const char* DEVICE_ALREADY_EXISTS = "DEVICE_ALREADY_EXISTS";
inline constexpr const char* VDI_IN_USE = "VDI_IN_USE";  // [vdi, operation]
inline constexpr const char* VDI_TOO_SMALL = "VDI_TOO_SMALL";  // [vdi, minimum size]
inline constexpr const char* VDI_IO_ERROR = "VDI_IO_ERROR";    // [reason]
inline constexpr const char* VM_REQUIRES_SR = "VM_REQUIRES_SR";
inline constexpr const char* RBAC_PERMISSION_DENIED = "RBAC_PERMISSION_DENIED";
inline constexpr const char* OPERATION_BLOCKED = "OPERATION_BLOCKED";  // [ref, code]
inline constexpr const char* HOST_DISABLED = "HOST_DISABLED";  // [host]
inline constexpr const char* NO_HOSTS_AVAILABLE = "NO_HOSTS_AVAILABLE";  // []
inline constexpr const char* HOST_NOT_ENOUGH_FREE_MEMORY = "HOST_NOT_ENOUGH_FREE_MEMORY";  // [needed, available]
}  // namespace errors

}  // namespace vmstack
