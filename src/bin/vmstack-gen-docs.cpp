// Prints docs generated from the datamodel declarations:
//   build/bin/vmstack-gen-docs > docs/api-reference.md
//   build/bin/vmstack-gen-docs --coverage tests/model/xapi_datamodel.txt > docs/api-coverage.md
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "model/conformance.h"
#include "model/datamodel.h"

int main(int argc, char** argv) {
  std::string text;
  if (argc == 3 && std::string(argv[1]) == "--coverage") {
    std::ifstream in(argv[2]);
    if (!in) {
      std::fprintf(stderr, "vmstack-gen-docs: cannot read %s\n", argv[2]);
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    namespace m = vmstack::model;
    text = m::coverage_markdown(m::coverage(m::datamodel(), m::parse_xapi_names(ss.str())));
  } else if (argc == 1) {
    text = vmstack::model::api_reference_markdown();
  } else {
    std::fprintf(stderr, "usage: vmstack-gen-docs [--coverage XAPI_NAMES_FILE]\n");
    return 2;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
