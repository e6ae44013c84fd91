#include <gtest/gtest.h>

#include "core/strings.h"

using namespace vmstack;

TEST(Strings, CaseFoldingIsAsciiOnly) {
  EXPECT_EQ(lower("VM_Metrics"), "vm_metrics");
  EXPECT_EQ(upper("xenbr0"), "XENBR0");
  EXPECT_EQ(lower("\xc3\x89t\xc3\xa9"), "\xc3\x89t\xc3\xa9");  // bytes beyond ASCII untouched
  EXPECT_TRUE(iequal("Halted", "halted"));
  EXPECT_FALSE(iequal("Halted", "halte"));
}

TEST(Strings, TrimSplitJoin) {
  EXPECT_EQ(trim(" \t a b \r\n"), "a b");
  EXPECT_EQ(trim_left("  x "), "x ");
  EXPECT_EQ(trim_right("  x \n"), "  x");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(split_words("  -no-reboot \t -S  "), (std::vector<std::string>{"-no-reboot", "-S"}));
  EXPECT_TRUE(split_words("   ").empty());
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(join({}, ","), "");
  EXPECT_TRUE(starts_with("OpaqueRef:x", "OpaqueRef:"));
  EXPECT_FALSE(starts_with("Opaque", "OpaqueRef:"));
  EXPECT_TRUE(ends_with("disk.qcow2", ".qcow2"));
  EXPECT_FALSE(ends_with("q", ".qcow2"));
}

TEST(Strings, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_TRUE(valid_utf8(std::string("a\0b", 3))) << "NUL is valid UTF-8; the datamodel refuses it separately";
}
