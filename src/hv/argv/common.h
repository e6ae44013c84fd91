// Helpers shared by the QEMU argv builders (internal to hv/argv).
#pragma once

#include <string>

namespace vmstack::hv::argv::detail {

// QemuOpts values: a ',' inside a value is written ",,".
std::string esc(const std::string& v);
// Letters, digits, '-', '_', '.': safe as an option value without escaping.
bool plain_word(const std::string& s);
// Letters and digits of a device name ("xvda" -> "xvda", "0" -> "0").
std::string id_fragment(const std::string& device);

}  // namespace vmstack::hv::argv::detail
