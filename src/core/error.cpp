#include "core/error.h"

namespace vmstack {

namespace {
std::string what_of(const std::string& code, const std::vector<std::string>& params) {
  std::string s = code;
  for (const auto& p : params) s += " " + p;
  return s;
}
}  // namespace

ApiError::ApiError(std::string code, std::vector<std::string> params)
    : std::runtime_error(what_of(code, params)) {
  description_.reserve(params.size() + 1);
  description_.push_back(std::move(code));
  for (auto& p : params) description_.push_back(std::move(p));
}

}  // namespace vmstack
