// Local-user passwords: salted slow hash (yescrypt via libcrypt) and a
// constant-time comparison.
#pragma once
#include <string>

namespace vmstack::api {
std::string hash_password(const std::string& password);  // "$y$..."
bool verify_password(const std::string& password, const std::string& hash);
}  // namespace vmstack::api
