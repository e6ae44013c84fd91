// vmstack-ipvsadm's argument parser and the daemon's state file
// (src/lb/ipvsadm*.cpp). Each input line is one command line (words split on
// blanks; names are not resolved). Checked: a parsed command passes
// validate_command (the daemon's check) also after the trip through the
// control socket's JSON, and the whole input loaded as a state file saves to
// a file that loads back completely and identically, the property whose
// absence once cost a restart 20,007 rules.
#include <sstream>

#include "fuzz_util.h"
#include "lb/ipvsadm.h"

using namespace vmstack;
using namespace vmstack::lb;

namespace {

void check_command(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  ParseResult p = parse_ipvsadm_args(words, false);
  if (!p.cmd) return;
  FUZZ_CHECK(validate_command(*p.cmd).empty(), "parsed but invalid: " + validate_command(*p.cmd));
  nlohmann::json j = command_to_json(*p.cmd);
  Command back;
  try {
    back = command_from_json(j);
  } catch (const LbError& e) {
    FUZZ_CHECK(false, std::string("the daemon cannot read the CLI's JSON: ") + e.what() + "\n" + j.dump());
  }
  FUZZ_CHECK(validate_command(back).empty(), "the daemon refuses what the CLI sends: " + j.dump());
  FUZZ_CHECK(command_to_json(back) == j, j.dump() + "\n" + command_to_json(back).dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fuzz::input(data, size);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    check_command(line);
    parse_save_line(line, false);
  }
  ServiceTable table;
  load_state(table, text);
  const std::string saved = save_state(table);
  ServiceTable again;
  LoadReport rep = load_state(again, saved);
  FUZZ_CHECK(rep.ok(), "a saved state file does not load back: " + rep.skipped.front() + "\n" + saved);
  FUZZ_CHECK(save_state(again) == saved, saved + "\nthen\n" + save_state(again));
  return 0;
}
