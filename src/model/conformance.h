// How far vmstack's declarations cover xapi's published datamodel: the names
// of xapi's classes, fields (with type and qualifier) and explicit messages,
// kept in tests/model/xapi_datamodel.txt (tools/xapi-names.py writes it from
// xapi's SDK JSON), compared with model::datamodel(). The conformance test
// holds the declarations to it; docs/api-coverage.md is generated from it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/datamodel.h"

namespace vmstack::model {

struct XapiField {
  std::string name, type, qualifier;  // "power_state", "enum vm_power_state", "RO/runtime"
};

struct XapiClass {
  std::string name;
  std::vector<XapiField> fields;
  std::vector<std::string> messages;  // explicit ones: start, clone, ...
};

// Parses the list's text; throws std::runtime_error naming the bad line.
std::vector<XapiClass> parse_xapi_names(std::string_view text);

struct ClassCoverage {
  std::string name;
  bool declared = false;
  size_t fields = 0, messages = 0;    // xapi's counts
  std::vector<std::string> missing_fields, missing_messages;
  std::vector<std::string> refused_messages;  // declared, answered with a reason
  // "VM.power_state: xapi enum vm_power_state, vmstack string"
  std::vector<std::string> type_mismatches;
  size_t fields_present() const { return fields - missing_fields.size(); }
  size_t messages_present() const { return messages - missing_messages.size(); }
};

std::vector<ClassCoverage> coverage(const Datamodel& dm, const std::vector<XapiClass>& xapi);

// docs/api-coverage.md: per class, fields and messages present, refused and
// missing, with the names.
std::string coverage_markdown(const std::vector<ClassCoverage>& cov);

}  // namespace vmstack::model
