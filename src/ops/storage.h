// The local file SR: each VDI is a qcow2 (or raw) image file in the SR's
// directory, created and copied with qemu-img. The SR/PBD/VDI/VBD objects are
// the full XenAPI ones so more SR drivers (ISO library, LVM) can slot in.
#pragma once

#include <string>

namespace vmstack::ops {

class Xapi;

class Storage {
 public:
  explicit Storage(Xapi& x) : x_(x) {}

  // "Local storage" at <state>/sr/<uuid>, created on first start; its PBD
  // device_config:location is the directory.
  std::string ensure_default_sr(const std::string& host);
  std::string sr_path(const std::string& sr) const;

  std::string vdi_create(const std::string& sr, const std::string& name, int64_t virtual_size,
                         const std::string& type, const std::string& format = "qcow2");
  void vdi_destroy(const std::string& vdi);
  // Full copy (reflinked where the filesystem allows) into `sr`.
  std::string vdi_copy(const std::string& vdi, const std::string& sr, const std::string& name);
  // A VDI of type suspend for a VM's memory image, beside its disks.
  std::string suspend_vdi_create(const std::string& sr, const std::string& vm_name);
  void refresh_usage(const std::string& sr);

 private:
  Xapi& x_;
};

}  // namespace vmstack::ops
