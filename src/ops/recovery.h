// What a daemon killed in the middle of a verb left behind, reconciled at
// the next start: every unfinished intent in the journal is finished or
// undone from the facts (is the domain alive? is the image complete?), and
// any domain still running that no VM record accounts for is stopped.
// Afterwards: no orphan process, no image nothing refers to, every VM in a
// state its processes and files agree with.
#pragma once

#include <string>

#include "model/store.h"

namespace vmstack::ops {

class Domains;
class Journal;
class Networks;
class Storage;
class VmAdmin;

class Recovery {
 public:
  Recovery(model::Store& store, Journal& journal, Domains& domains, Storage& storage, Networks& networks,
           VmAdmin& admin)
      : store_(store), journal_(journal), domains_(domains), storage_(storage), networks_(networks), admin_(admin) {}

  // After Domains::reattach_all.
  void run();

 private:
  void start(const std::string& vm);
  void resume(const std::string& vm, const std::string& vdi);
  void suspend(const std::string& vm, const std::string& vdi, bool saved);
  void discard_image(const std::string& vm, const std::string& vdi);
  void copy(const std::string& new_uuid, const Array& vdis);
  void provision(const Array& vdis);
  // Domains no record accounts for, in every run dir.
  void stop_orphans();
  // Adopts a domain found alive in `vm`'s run dir; false if there is none.
  bool adopt_if_alive(const std::string& vm);
  void destroy_vdi(const std::string& vdi);

  model::Store& store_;
  Journal& journal_;
  Domains& domains_;
  Storage& storage_;
  Networks& networks_;
  VmAdmin& admin_;
};

}  // namespace vmstack::ops
