#include "storage/image_check.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/process.h"

namespace vmstack::storage {

std::string qemu_format(const std::string& api_format) {
  if (api_format == "raw" || api_format == "qcow2") return api_format;
  if (api_format == "vhd") return "vpc";
  throw ApiError(errors::INVALID_VALUE, {"format", api_format});
}

int64_t checked_upload_size(const std::string& path, const std::string& qemu_fmt) {
  SpawnOptions o;
  o.die_with_parent = true;
  // -f: the format the client named, never probed (a raw upload that looks
  // like qcow2 stays raw bytes); -U: nothing else has it open anyway.
  auto r = run_command({"qemu-img", "info", "-U", "--output=json", "-f", qemu_fmt, path}, std::chrono::seconds(60),
                       {}, o);
  if (!r.ok()) throw ApiError(errors::VDI_IO_ERROR, {"not a " + qemu_fmt + " image: " + r.err});
  auto info = nlohmann::json::parse(r.out, nullptr, false);
  if (info.is_discarded() || !info.is_object() || !info.contains("virtual-size"))
    throw ApiError(errors::VDI_IO_ERROR, {"qemu-img info gave no virtual size"});
  if (info.contains("backing-filename") || info.contains("full-backing-filename"))
    throw ApiError(errors::VDI_IO_ERROR, {"the image names a backing file, which an upload may not"});
  auto data_file = info.value("/format-specific/data/data-file"_json_pointer, std::string());
  if (!data_file.empty()) throw ApiError(errors::VDI_IO_ERROR, {"the image names an external data file, which an upload may not"});
  return info["virtual-size"].get<int64_t>();
}

}  // namespace vmstack::storage
