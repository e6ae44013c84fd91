// Shell completion, answered by the binary itself (`xe --complete <words>`)
// so the bash script never duplicates the command table or the datamodel.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/session.h"

namespace vmstack::cli {

// `words`: what follows "xe" on the command line up to the cursor; the last
// one is the word being completed (empty after a space). Returns the full
// candidate words ("vm-start", "vm=", "vm=debian"). `connect` is called at
// most once, only when a value needs the daemon (uuids, name-labels); it
// returns null when no daemon is reachable.
std::vector<std::string> complete(const std::vector<std::string>& words,
                                  const std::function<Session*(const ConnOptions&)>& connect);

}  // namespace vmstack::cli
