// Runs xe in-process (cli::run, exactly what the binary's main calls) against
// a TestDaemon, capturing stdout/stderr.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "cli/xe.h"
#include "test_daemon.h"

namespace vmstack::cli::testing {

struct XeResult {
  int rc = -1;
  std::string out;
  std::string err;
};

inline XeResult run_xe(const TestDaemon& d, const std::vector<std::string>& argv, const std::string& input = {}) {
  std::ostringstream out, err;
  std::istringstream in(input);
  Io io{out, err, in, -1, -1};
  Environment env{d.socket_path().c_str(), nullptr};
  XeResult r;
  r.rc = run(argv, env, io);
  r.out = out.str();
  r.err = err.str();
  return r;
}

inline std::string uuid_of(TestDaemon& d, const std::string& cls, const std::string& ref) {
  return d.db().get_field(cls, ref, "uuid").as_string();
}

}  // namespace vmstack::cli::testing
