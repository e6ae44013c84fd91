// The storage records (SR, PBD, VDI, VBD) kept in step with the SR drivers
// (src/storage/): every VDI operation asks the driver of its SR's type, and
// what a disk's image is comes from the driver, never from a record field.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>

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

  // A VDI held for a transfer (xapi's /export_raw_vdi, /import_raw_vdi)
  // until the hold goes: while it lasts the VDI cannot be attached to a
  // starting VM, copied, destroyed or transferred again (VDI_IN_USE [vdi,
  // operation]). Taking it is refused while a VM using the VDI is not
  // halted or has an operation under way.
  class Hold {
   public:
    Hold(Hold&& o) noexcept : storage_(std::exchange(o.storage_, nullptr)), vdi_(std::move(o.vdi_)) {}
    Hold& operator=(Hold&&) = delete;
    ~Hold();

   private:
    friend class Storage;
    Hold(Storage* s, std::string vdi) : storage_(s), vdi_(std::move(vdi)) {}
    Storage* storage_;
    std::string vdi_;
  };
  Hold hold_for_transfer(const std::string& vdi, const std::string& operation);
  // The VDI's contents as `format` (raw, vhd, qcow2) in a new file at `to_path`.
  void vdi_export(const std::string& vdi, const std::string& format, const std::string& to_path);
  // The VDI's contents replaced by the image at `from_path` (held first).
  void vdi_import(const std::string& vdi, const std::string& from_path, const std::string& format);

 private:
  void check_not_held(const std::string& vdi) const;

  model::Store& store_;
  storage::SrDrivers& drivers_;
  Journal& journal_;
  std::string state_dir_;
  std::string host_;
  mutable std::mutex held_mu_;
  std::map<std::string, std::string> held_;  // VDI -> the transfer holding it
};

void bind_storage(Dispatcher& d, Storage& storage, model::Store& store);

}  // namespace vmstack::ops
