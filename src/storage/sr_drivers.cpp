#include "core/error.h"
#include "storage/sr_driver.h"

namespace vmstack::storage {

void SrDrivers::add(std::unique_ptr<SrDriver> d) { drivers_.push_back(std::move(d)); }

SrDriver& SrDrivers::get(const std::string& type) const {
  for (const auto& d : drivers_)
    if (d->type() == type) return *d;
  throw ApiError("SR_UNKNOWN_DRIVER", {type});
}

std::vector<std::string> SrDrivers::types() const {
  std::vector<std::string> out;
  for (const auto& d : drivers_) out.push_back(d->type());
  return out;
}

}  // namespace vmstack::storage
