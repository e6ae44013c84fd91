// Disks and CD drives: a -blockdev protocol node (the file), a -blockdev
// format node over it, and the guest-visible -device. Nodes are JSON so a
// path needs no QemuOpts escaping, and the same objects serve QMP's
// blockdev-add when a disk is hotplugged.
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hv/qemu_argv.h"

namespace vmstack::hv::argv {

using json = nlohmann::json;

std::string node_name(const DiskSpec& d) { return "drive-" + d.id; }
std::string file_node_name(const DiskSpec& d) { return "file-" + d.id; }

int disk_fd(size_t i) { return kFirstDiskFd + static_cast<int>(i); }
int disk_fdset(size_t i) { return static_cast<int>(i) + 1; }

std::string disk_filename(const DomainSpec& s, size_t i) {
  return s.uid >= 0 ? "/dev/fdset/" + std::to_string(disk_fdset(i)) : s.disks.at(i).path;
}

std::vector<std::string> blockdev_nodes(const DiskSpec& d, const std::string& filename) {
  if (d.format != "qcow2" && d.format != "raw")
    throw std::invalid_argument("DiskSpec " + d.id + ": unsupported format '" + d.format + "'");
  if (d.path.empty()) throw std::invalid_argument("DiskSpec " + d.id + ": no image path");
  bool ro = d.readonly || d.cdrom;
  json file{{"driver", "file"}, {"filename", filename}, {"node-name", file_node_name(d)}, {"read-only", ro}};
  json fmt{{"driver", d.format}, {"file", file_node_name(d)}, {"node-name", node_name(d)}, {"read-only", ro}};
  // Our images never have backing files; a header naming one (an imported
  // or hostile image) must not make QEMU open another file by name.
  if (d.format == "qcow2") fmt["backing"] = nullptr;
  if (!ro) {
    // Guests' TRIM frees space in the image (thin qcow2 files stay thin).
    file["discard"] = "unmap";
    fmt["discard"] = "unmap";
  }
  // Host page cache on, flushes honoured: safe and fast for image files.
  file["cache"] = json{{"direct", false}, {"no-flush", false}};
  return {file.dump(), fmt.dump()};
}

void disk(Args& a, const DomainSpec& s, size_t index, const Machine& m, size_t& cd_index) {
  const DiskSpec& d = s.disks.at(index);
  if (d.id.empty()) throw std::invalid_argument("DiskSpec: no device id");
  auto nodes = [&] {
    if (s.uid >= 0)
      a.insert(a.end(), {"-add-fd", "fd=" + std::to_string(disk_fd(index)) + ",set=" + std::to_string(disk_fdset(index)) +
                                        ",opaque=" + d.id});
    return blockdev_nodes(d, disk_filename(s, index));
  };
  if (d.cdrom) {
    if (m.microvm) throw std::invalid_argument("DiskSpec " + d.id + ": a CD drive needs an IDE/AHCI machine (not microvm)");
    std::string dev = "ide-cd,id=" + d.id;
    if (!d.path.empty()) {
      for (auto& node : nodes()) a.insert(a.end(), {"-blockdev", node});
      dev += ",drive=" + node_name(d);
    }
    // q35's AHCI has one unit per bus; the PIIX IDE controller two.
    dev += m.piix ? ",bus=ide." + std::to_string(cd_index / 2) + ",unit=" + std::to_string(cd_index % 2)
                  : ",bus=ide." + std::to_string(cd_index);
    a.insert(a.end(), {"-device", dev});
    ++cd_index;
    return;
  }
  for (auto& node : nodes()) a.insert(a.end(), {"-blockdev", node});
  std::string dev = "virtio-blk-pci,id=" + d.id + ",drive=" + node_name(d);
  // A disk hotplugged earlier keeps its root port when the guest is
  // relaunched from saved state: the device layout must match the image.
  if (!d.port.empty()) dev += ",bus=" + d.port;
  a.insert(a.end(), {"-device", dev});
}

}  // namespace vmstack::hv::argv
