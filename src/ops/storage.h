// The storage records (SR, PBD, VDI, VBD) kept in step with the SR drivers
// (src/storage/): every VDI operation asks the driver of its SR's type, and
// what a disk's image is comes from the driver, never from a record field.
#pragma once

#include <string>

#include "model/store.h"
#include "storage/sr_driver.h"

namespace vmstack::ops {

class Dispatcher;
class Journal;

class Storage {
 public:
  // Every image it has a driver make is journaled first ("vdi_file"), so an
  // interrupted creation or copy leaves no file nothing refers to.
  Storage(model::Store& store, storage::SrDrivers& drivers, Journal& journal, std::string state_dir)
      : store_(store), drivers_(drivers), journal_(journal), state_dir_(std::move(state_dir)) {}

  void set_host(const std::string& host_ref) { host_ = host_ref; }

  // "Local storage" (a file SR at <state>/sr/<uuid>), created on first start
  // and made the pool's default, suspend and crash-dump SR.
  std::string ensure_default_sr();
  // Databases from before the drivers kept full paths in VDI.location: make
  // them the driver's names again.
  void migrate_locations();
  // Every SR with a PBD on this host checked by its driver (directory there,
  // private); PBD.currently_attached says how it went.
  void attach_all();

  storage::SrContext sr_context(const std::string& sr) const;
  storage::SrDriver& driver(const std::string& sr) const;

  // The creators take the new VDI's uuid when a verb has journaled it first
  // (so a crash right after the creation leaves nothing recovery cannot
  // find); empty = a fresh one.
  std::string vdi_create(const std::string& sr, const std::string& name, int64_t virtual_size, const std::string& type,
                         const std::string& uuid = {});
  // Refused (VDI_IN_USE) while a running VM has it attached.
  void vdi_destroy(const std::string& vdi);
  // A full copy into `sr` (the same driver type as the source's SR).
  std::string vdi_copy(const std::string& vdi, const std::string& sr, const std::string& name,
                       const std::string& uuid = {});
  std::string vdi_clone(const std::string& vdi);
  // A suspend image for a VM's memory in `sr`; its size is filled in by
  // vdi_refresh once the hypervisor has written it.
  std::string suspend_vdi_create(const std::string& sr, const std::string& vm_name, const std::string& uuid = {});
  void vdi_refresh(const std::string& vdi);
  void refresh_usage(const std::string& sr);
  // What the hypervisor opens for the VDI (path, format), from its SR's driver.
  storage::DiskSource disk_source(const std::string& vdi) const;
  // Recovery: the image of `vdi_uuid` in `sr`, if no VDI record claims it.
  void forget_unrecorded_image(const std::string& sr, const std::string& vdi_uuid);

 private:
  model::Store& store_;
  storage::SrDrivers& drivers_;
  Journal& journal_;
  std::string state_dir_;
  std::string host_;
};

void bind_storage(Dispatcher& d, Storage& storage, model::Store& store);

}  // namespace vmstack::ops
