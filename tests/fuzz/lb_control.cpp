// What vmstack-lbd's control socket does with a request (src/lb/daemon.cpp,
// minus the socket): each command ({"cmd": ...} or every one of a
// {"batch": [...]}) is read by command_from_json, checked by
// validate_command and, if it passes, executed against a rule table. The
// rules that result must save to a state file that loads back completely and
// identically: an attacker once stored a rule through the socket that made
// the next start reject the whole file.
#include "fuzz_util.h"
#include "lb/ipvsadm.h"

using namespace vmstack;
using namespace vmstack::lb;
using json = nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json request = json::parse(data, data + size, nullptr, false);
  if (!request.is_object()) return 0;  // the daemon answers "bad request"
  std::vector<json> commands;
  if (auto cmd = request.find("cmd"); cmd != request.end()) commands.push_back(*cmd);
  if (auto batch = request.find("batch"); batch != request.end() && batch->is_array())
    commands.insert(commands.end(), batch->begin(), batch->end());

  ServiceTable table;
  for (const json& j : commands) {
    Command c;
    try {
      c = command_from_json(j);
    } catch (const LbError&) {
      continue;  // refused with the CLI's message
    }
    if (!validate_command(c).empty()) continue;
    execute_command(table, c);  // refusals are answers, not exceptions
  }
  const std::string saved = save_state(table);
  ServiceTable again;
  LoadReport rep = load_state(again, saved);
  FUZZ_CHECK(rep.ok(), "the socket stored rules whose state file does not load: " + rep.skipped.front() +
                           "\n" + saved);
  FUZZ_CHECK(save_state(again) == saved, saved + "\nthen\n" + save_state(again));
  return 0;
}
