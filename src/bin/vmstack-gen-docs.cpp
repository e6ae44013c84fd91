// Prints docs/api-reference.md, generated from the datamodel declarations:
//   build/bin/vmstack-gen-docs > docs/api-reference.md
#include <cstdio>

#include "model/datamodel.h"

int main() {
  auto text = vmstack::model::api_reference_markdown();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
