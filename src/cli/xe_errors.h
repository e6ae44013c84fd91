// Error texts exactly as xe prints them (stderr, exit code 1).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmstack::cli {

// A failure detected by xe itself (bad syntax, missing parameter, no match).
// `text` is printed verbatim to stderr (a trailing newline is added).
class CliError : public std::runtime_error {
 public:
  explicit CliError(std::string text) : std::runtime_error(text) {}
  std::string text() const { return what(); }
};

// xe's param_error: "<what>: <detail>\nFor usage run: 'xe help'".
CliError param_error(const std::string& what, const std::string& detail);
CliError unknown_command(const std::string& cmd);
CliError missing_param(const std::string& name);
CliError syntax_error(const std::string& detail);
// xe's "Error: <msg>" (Cli_failure).
CliError failure(const std::string& msg);
// A field name that the class does not have (xe: "Missing parameter").
CliError unknown_field(const std::string& name);

// Turns an API error description into xe's text. Known codes print their
// documentation line and then "param: value" lines; unknown codes print
// "Error code: X\nError parameters: a, b". `ref_convert` turns an
// OpaqueRef into "uuid (name-label)" (xe does that for every parameter);
// may be null. `had_username` distinguishes xe's two authentication texts.
using RefConvert = std::function<std::string(const std::string& param_name, const std::string& value)>;
std::string format_api_error(const std::vector<std::string>& description, const RefConvert& ref_convert,
                             bool had_username = true);

// The documented parameter names of a known code (empty if unknown).
const std::vector<std::string>* error_param_names(const std::string& code);

}  // namespace vmstack::cli
