// docs/api-reference.md is generated from the declarations and checked in;
// this fails when someone changed the datamodel and forgot to regenerate it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "model/datamodel.h"

TEST(ApiReference, CheckedInCopyIsCurrent) {
  const std::string path = std::string(VMSTACK_SOURCE_DIR) + "/docs/api-reference.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " is missing: run build/bin/vmstack-gen-docs > docs/api-reference.md";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_TRUE(ss.str() == vmstack::model::api_reference_markdown())
      << path << " is stale: run build/bin/vmstack-gen-docs > docs/api-reference.md and commit it";
}

TEST(ApiReference, DocumentsMessagesWithTheirRules) {
  auto md = vmstack::model::api_reference_markdown();
  EXPECT_NE(md.find("#### VM.start"), std::string::npos);
  EXPECT_NE(md.find("- Lifecycle: operation `start`, allowed when halted"), std::string::npos);
  EXPECT_NE(md.find("| VM.get_record | self: VM ref | VM record |"), std::string::npos);
  EXPECT_NE(md.find("may be omitted; default 1.1"), std::string::npos);
}
