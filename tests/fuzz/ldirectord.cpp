// vmstack-lb's ldirectord.cf parser (src/lb/ldirectord_config.cpp): any text
// gives a config or a ConfigError with a line number, never a crash, leak,
// UB or another exception.
#include "fuzz_util.h"
#include "lb/ldirectord_config.h"

using namespace vmstack;
using namespace vmstack::lb::ha;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fuzz::input(data, size);
  try {
    LdirectordConfig c = parse_ldirectord_config(text, "fuzz.cf");
    // Addresses are kept canonical: what is printed parses back the same.
    auto canonical = [](const HostPort& h) { return h.port == 0 || parse_hostport(h.str()) == h; };
    for (const auto& v : c.virtuals) {
      FUZZ_CHECK(canonical(v.vip), v.vip.str());
      for (const auto& r : v.reals) FUZZ_CHECK(canonical(r.ep), r.ep.str());
    }
  } catch (const ConfigError& e) {
    FUZZ_CHECK(e.line() >= 0, e.what());
  }
  return 0;
}
