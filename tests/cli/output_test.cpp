// xe's output layout and error texts, independent of any daemon.
#include <gtest/gtest.h>

#include <sstream>

#include "cli/printer.h"
#include "cli/xe_errors.h"

using namespace vmstack::cli;

TEST(Printer, RecordNamesAreRightAlignedUnderTheFirst) {
  PrintedRecord r = {{"uuid ( RO)", "u-1"}, {"name-label ( RW)", "alpha"}, {"power-state ( RO)", "halted"}};
  // Width = longest name + 4; the first line is padded on the right, the
  // others on the left, so the colons line up.
  EXPECT_EQ(format_record(r),
            "uuid ( RO)           : u-1\n"
            "     name-label ( RW): alpha\n"
            "    power-state ( RO): halted\n");
}

TEST(Printer, TablePutsABlankLineAfterEachRecord) {
  std::ostringstream out;
  Printer p(out, false);
  p.table({{{"a ( RO)", "1"}}, {{"a ( RO)", "2"}}});
  p.flush();  // no-op outside minimal mode
  EXPECT_EQ(out.str(), "a ( RO)    : 1\n\na ( RO)    : 2\n\n");
}

TEST(Printer, MinimalPrintsFirstFieldsCommaSeparatedOnce) {
  std::ostringstream out;
  {
    Printer p(out, true);
    p.table({{{"uuid ( RO)", "u1"}, {"x ( RO)", "ignored"}}, {{"uuid ( RO)", "a,b"}}});
    EXPECT_EQ(out.str(), "");  // nothing until flushed
    p.flush();
    p.flush();
  }
  EXPECT_EQ(out.str(), "u1,a\\,b\n");
}

TEST(Printer, MinimalWithNothingPrintsAnEmptyLine) {
  std::ostringstream out;
  Printer p(out, true);
  p.table({});
  p.flush();
  EXPECT_EQ(out.str(), "\n");
}

TEST(Printer, MinimalIsNotPrintedWhenTheCommandFails) {
  std::ostringstream out;
  {
    Printer p(out, true);
    p.list({"x"});
  }  // destroyed without flush(): a failed command prints nothing
  EXPECT_EQ(out.str(), "");
}

TEST(Printer, EscapeCommas) {
  EXPECT_EQ(escape_commas("a,b\\c"), "a\\,b\\\\c");
  EXPECT_EQ(escape_commas("plain"), "plain");
}

TEST(Errors, KnownCodePrintsDocThenNamedParams) {
  auto text = format_api_error({"VM_BAD_POWER_STATE", "OpaqueRef:1", "halted", "running"},
                               [](const std::string& name, const std::string& v) {
                                 return name == "vm" ? "u-1 (alpha)" : v;
                               });
  EXPECT_EQ(text,
            "You attempted an operation on a VM that was not in an appropriate power state at the time; for "
            "example, you attempted to start a VM that was already running. The parameters returned are the VM's "
            "handle, and the expected and actual VM state at the time of the call.\n"
            "vm: u-1 (alpha)\nexpected: halted\nactual: running");
}

TEST(Errors, ExtraAndMissingParams) {
  auto extra = format_api_error({"HANDLE_INVALID", "VM", "OpaqueRef:x", "surplus"}, nullptr);
  EXPECT_NE(extra.find("\nclass: VM\nhandle: OpaqueRef:x\n<extra>: surplus"), std::string::npos) << extra;
  auto missing = format_api_error({"UUID_INVALID", "VM"}, nullptr);
  EXPECT_NE(missing.find("\ntype: VM\nuuid: <unknown>"), std::string::npos) << missing;
}

TEST(Errors, UnknownCodeUsesErrorCodeLines) {
  EXPECT_EQ(format_api_error({"SOMETHING_NEW", "a", "b"}, nullptr), "Error code: SOMETHING_NEW\nError parameters: a, b");
  EXPECT_EQ(format_api_error({"NO_PARAMS"}, nullptr), "Error code: NO_PARAMS\nError parameters: ");
}

TEST(Errors, AuthenticationTextDependsOnGivenUsername) {
  EXPECT_EQ(format_api_error({"SESSION_AUTHENTICATION_FAILED", "u", "x"}, nullptr, true),
            "Authentication failed\nFor usage run: 'xe help'");
  EXPECT_EQ(format_api_error({"SESSION_AUTHENTICATION_FAILED"}, nullptr, false),
            "Username/password must be specified\nFor usage run: 'xe help'");
}

TEST(Errors, CliTexts) {
  EXPECT_EQ(unknown_command("nope").text(), "Unknown command: nope\nFor usage run: 'xe help'");
  EXPECT_EQ(missing_param("uuid").text(), "Required parameter not found: uuid\nFor usage run: 'xe help'");
  EXPECT_EQ(failure("No matching VMs found").text(), "Error: No matching VMs found");
  EXPECT_EQ(unknown_field("bogus").text(), "Error code: Missing parameter\nError parameters: bogus");
  ASSERT_NE(error_param_names("VM_BAD_POWER_STATE"), nullptr);
  EXPECT_EQ(*error_param_names("VM_BAD_POWER_STATE"), (std::vector<std::string>{"vm", "expected", "actual"}));
  EXPECT_EQ(error_param_names("NOT_A_CODE"), nullptr);
}
