// The file SR: a directory of image files, one per VDI, named
// "<vdi uuid>.<format>" (qcow2 for disks, made with qemu-img; raw
// ".suspend" files for suspend images). VDI.location is the file's name in
// the directory; the directory comes from the PBD's device_config:location.
#pragma once

#include "storage/sr_driver.h"

namespace vmstack::storage {

class FileSr final : public SrDriver {
 public:
  std::string type() const override { return "file"; }
  void create(SrContext& sr) override;
  void attach(const SrContext& sr) override;
  SrUsage usage(const SrContext& sr) override;
  VdiImage vdi_create(const SrContext& sr, const std::string& vdi_uuid, int64_t virtual_size, VdiKind kind) override;
  void vdi_destroy(const SrContext& sr, const std::string& location) override;
  VdiImage vdi_copy(const SrContext& from, const std::string& location, const SrContext& to,
                    const std::string& new_uuid) override;
  VdiImage vdi_clone(const SrContext& sr, const std::string& location, const std::string& new_uuid) override;
  VdiImage vdi_stat(const SrContext& sr, const std::string& location) override;
  DiskSource vdi_source(const SrContext& sr, const std::string& location) override;
  void vdi_cleanup(const SrContext& sr, const std::string& vdi_uuid) override;
  void vdi_export(const SrContext& sr, const std::string& location, const std::string& format,
                  const std::string& to_path) override;
  void vdi_import(const SrContext& sr, const std::string& location, const std::string& from_path,
                  const std::string& format) override;

  // The SR's directory (device_config:location); throws SR_BACKEND_FAILURE if unset.
  static std::string dir_of(const SrContext& sr);
};

}  // namespace vmstack::storage
