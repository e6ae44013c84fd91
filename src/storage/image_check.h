// What qemu-img says of an image a client sent (an upload to
// /import_raw_vdi): its format is given, never probed, and an image that
// names other files (a qcow2 backing file or external data file) is refused,
// since opening it would read whatever host file it names.
#pragma once

#include <cstdint>
#include <string>

namespace vmstack::storage {

// qemu-img's name for an API format: raw, vhd (qemu-img's "vpc"), qcow2;
// throws ApiError(INVALID_VALUE, ["format", f]) for any other.
std::string qemu_format(const std::string& api_format);

// The image's virtual size, after checking it is a `qemu_fmt` image that
// refers to no other file. Throws ApiError VDI_IO_ERROR [why] otherwise.
int64_t checked_upload_size(const std::string& path, const std::string& qemu_fmt);

}  // namespace vmstack::storage
