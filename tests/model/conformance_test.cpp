// The datamodel held to xapi's published names (tests/model/xapi_datamodel.txt):
// the classes clients read at connect exist, every field vmstack shares
// with xapi has xapi's type and qualifier, and docs/api-coverage.md (the
// per-class coverage README quotes) is current.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "model/conformance.h"
#include "model/datamodel.h"

namespace m = vmstack::model;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::vector<m::XapiClass>& xapi() {
  static const auto list = m::parse_xapi_names(slurp(std::string(VMSTACK_SOURCE_DIR) + "/tests/model/xapi_datamodel.txt"));
  return list;
}

const char* qual_text(m::Qual q) {
  switch (q) {
    case m::Qual::RO_runtime: return "RO/runtime";
    case m::Qual::RO_constructor: return "RO/constructor";
    case m::Qual::RW: return "RW";
  }
  return "?";
}

}  // namespace

TEST(Conformance, ListIsReadable) {
  ASSERT_GT(xapi().size(), 60u);
  EXPECT_THROW(m::parse_xapi_names("class VM\nfield host name_label string RW\n"), std::runtime_error);
  EXPECT_THROW(m::parse_xapi_names("message VM start\n"), std::runtime_error);
  auto one = m::parse_xapi_names("# c\nclass VM\nfield VM allowed_operations enum vm_operations set RO/runtime\nmessage VM start\n");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].fields[0].type, "enum vm_operations set");
  EXPECT_EQ(one[0].fields[0].qualifier, "RO/runtime");
  EXPECT_EQ(one[0].messages, std::vector<std::string>{"start"});
}

// The classes xapi's clients (Xen Orchestra, XenCenter, the SDKs) read at
// connect.
TEST(Conformance, ClassesClientsReadAtConnectAreDeclared) {
  for (const char* c : {"pool", "host", "host_cpu", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "VBD",
                        "VBD_metrics", "VDI", "SR", "PBD", "network", "VIF", "VIF_metrics", "PIF", "PIF_metrics",
                        "console", "task", "event", "message", "session", "user", "role", "subject", "secret", "blob",
                        "SM"})
    EXPECT_NE(m::datamodel().cls(c), nullptr) << c;
}

TEST(Conformance, SharedFieldsHaveXapisTypeAndQualifier) {
  for (const auto& xc : xapi()) {
    const auto* c = m::datamodel().cls(xc.name);
    if (!c) continue;
    for (const auto& xf : xc.fields) {
      const auto* f = c->field(xf.name);
      if (!f) continue;
      EXPECT_EQ(f->type.to_string(), xf.type) << xc.name << "." << xf.name;
      // Settable in both or in neither: xapi sets a field through its RW
      // qualifier or an explicit set_<field> message (VM.set_VCPUs_max on
      // an RO/constructor field), vmstack through a generated or declared
      // set_<field>.
      const std::string setter = "set_" + xf.name;
      const bool xapi_sets = xf.qualifier == "RW" || std::find(xc.messages.begin(), xc.messages.end(), setter) != xc.messages.end();
      EXPECT_EQ(c->message(setter) != nullptr, xapi_sets)
          << xc.name << "." << xf.name << ": xapi " << xf.qualifier << ", vmstack " << qual_text(f->qual);
    }
  }
}

TEST(Conformance, DeclaredClassesHaveEveryXapiFieldAndMessage) {
  for (const auto& c : m::coverage(m::datamodel(), xapi())) {
    if (!c.declared) continue;
    EXPECT_TRUE(c.missing_fields.empty()) << c.name << " lacks fields: " << ::testing::PrintToString(c.missing_fields);
    EXPECT_TRUE(c.missing_messages.empty())
        << c.name << " lacks messages: " << ::testing::PrintToString(c.missing_messages);
  }
}

TEST(Conformance, CoverageDocIsCurrent) {
  const std::string path = std::string(VMSTACK_SOURCE_DIR) + "/docs/api-coverage.md";
  EXPECT_TRUE(slurp(path) == m::coverage_markdown(m::coverage(m::datamodel(), xapi())))
      << path << " is stale: run build/bin/vmstack-gen-docs --coverage tests/model/xapi_datamodel.txt > "
                 "docs/api-coverage.md and commit it";
}
