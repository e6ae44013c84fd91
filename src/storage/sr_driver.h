// The storage driver interface: one SrDriver per SR.type, as xapi's SM
// plugins and libvirt's storage backends. A driver owns the bytes (image
// files, volumes); the toolstack (ops/) owns the records and asks the driver
// of the SR's type for everything that touches storage. What a VDI's image
// is (its path and format) is the driver's fact, derived from the SR it
// controls, never read from a field an API caller can write.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/value.h"

namespace vmstack::storage {

// What a driver is told of an SR: its identity and the PBD's device_config.
struct SrContext {
  std::string uuid;
  Struct device_config;  // e.g. location=<dir> for file SRs
};

struct SrUsage {
  int64_t physical_size = 0;
  int64_t physical_utilisation = 0;
};

enum class VdiKind {
  disk,           // a guest disk (format: the driver's default)
  suspend_image,  // a VM's saved memory (raw bytes, written by the hypervisor)
};

// A VDI's image as the driver made or found it.
struct VdiImage {
  std::string location;  // the driver's name for it (VDI.location)
  std::string format;    // qcow2 | raw
  int64_t virtual_size = 0;
  int64_t physical_utilisation = 0;
};

// What the hypervisor opens for a VDI.
struct DiskSource {
  std::string path;
  std::string format;  // qcow2 | raw
};

class SrDriver {
 public:
  virtual ~SrDriver() = default;
  virtual std::string type() const = 0;  // the SR.type it serves
  virtual std::string content_type() const { return "user"; }

  // Makes the SR's storage; may add defaults to device_config (sr.create).
  virtual void create(SrContext& sr) = 0;
  // Checks the SR's storage is there and usable (PBD plug); throws SR_BACKEND_FAILURE.
  virtual void attach(const SrContext& sr) = 0;
  virtual SrUsage usage(const SrContext& sr) = 0;

  // All throw ApiError SR_BACKEND_FAILURE [code, stdout, stderr] on failure.
  virtual VdiImage vdi_create(const SrContext& sr, const std::string& vdi_uuid, int64_t virtual_size, VdiKind kind) = 0;
  virtual void vdi_destroy(const SrContext& sr, const std::string& location) = 0;
  // A full copy into `to` (an SR of the same driver type).
  virtual VdiImage vdi_copy(const SrContext& from, const std::string& location, const SrContext& to,
                            const std::string& new_uuid) = 0;
  virtual VdiImage vdi_clone(const SrContext& sr, const std::string& location, const std::string& new_uuid) = 0;
  // The image's current size and usage (after the hypervisor wrote to it).
  virtual VdiImage vdi_stat(const SrContext& sr, const std::string& location) = 0;
  // What to open; throws SR_BACKEND_FAILURE when the image is not in this SR.
  virtual DiskSource vdi_source(const SrContext& sr, const std::string& location) = 0;
  // The image's contents written to `to_path` (a new file) as `format`:
  // "raw" (sparse), "vhd" (dynamic) or "qcow2" (xapi's /export_raw_vdi).
  virtual void vdi_export(const SrContext& sr, const std::string& location, const std::string& format,
                          const std::string& to_path) = 0;
  // The image's contents replaced by the image at `from_path` (raw, vhd or
  // qcow2, as an untrusted client sent it: one with a backing or data file
  // is refused), its virtual size kept: a larger one is VDI_TOO_SMALL
  // [vdi_uuid, size]. All or nothing: a failure leaves the old contents.
  virtual void vdi_import(const SrContext& sr, const std::string& location, const std::string& from_path,
                          const std::string& format) = 0;
  // Removes whatever image vdi_create/vdi_copy/vdi_clone may have left for
  // `vdi_uuid` (a verb interrupted before its record was written).
  virtual void vdi_cleanup(const SrContext& sr, const std::string& vdi_uuid) = 0;
};

// The drivers this host has, by SR.type.
class SrDrivers {
 public:
  void add(std::unique_ptr<SrDriver> d);
  // Throws SR_UNKNOWN_DRIVER [type] when no driver serves `type`.
  SrDriver& get(const std::string& type) const;
  std::vector<std::string> types() const;

 private:
  std::vector<std::unique_ptr<SrDriver>> drivers_;
};

}  // namespace vmstack::storage
