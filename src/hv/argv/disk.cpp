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

std::vector<std::string> blockdev_nodes(const DiskSpec& d) {
  if (d.format != "qcow2" && d.format != "raw")
    throw std::invalid_argument("DiskSpec " + d.id + ": unsupported format '" + d.format + "'");
  if (d.path.empty()) throw std::invalid_argument("DiskSpec " + d.id + ": no image path");
  bool ro = d.readonly || d.cdrom;
  json file{{"driver", "file"}, {"filename", d.path}, {"node-name", file_node_name(d)}, {"read-only", ro}};
  json fmt{{"driver", d.format}, {"file", file_node_name(d)}, {"node-name", node_name(d)}, {"read-only", ro}};
  if (!ro) {
    // Guests' TRIM frees space in the image (thin qcow2 files stay thin).
    file["discard"] = "unmap";
    fmt["discard"] = "unmap";
  }
  // Host page cache on, flushes honoured: safe and fast for image files.
  file["cache"] = json{{"direct", false}, {"no-flush", false}};
  return {file.dump(), fmt.dump()};
}

void disk(Args& a, const DiskSpec& d, const Machine& m, size_t& cd_index) {
  if (d.id.empty()) throw std::invalid_argument("DiskSpec: no device id");
  if (d.cdrom) {
    if (m.microvm) throw std::invalid_argument("DiskSpec " + d.id + ": a CD drive needs an IDE/AHCI machine (not microvm)");
    std::string dev = "ide-cd,id=" + d.id;
    if (!d.path.empty()) {
      for (auto& node : blockdev_nodes(d)) a.insert(a.end(), {"-blockdev", node});
      dev += ",drive=" + node_name(d);
    }
    // q35's AHCI has one unit per bus; the PIIX IDE controller two.
    dev += m.piix ? ",bus=ide." + std::to_string(cd_index / 2) + ",unit=" + std::to_string(cd_index % 2)
                  : ",bus=ide." + std::to_string(cd_index);
    a.insert(a.end(), {"-device", dev});
    ++cd_index;
    return;
  }
  for (auto& node : blockdev_nodes(d)) a.insert(a.end(), {"-blockdev", node});
  std::string dev = "virtio-blk-pci,id=" + d.id + ",drive=" + node_name(d);
  // A disk hotplugged earlier keeps its root port when the guest is
  // relaunched from saved state: the device layout must match the image.
  if (!d.port.empty()) dev += ",bus=" + d.port;
  a.insert(a.end(), {"-device", dev});
}

}  // namespace vmstack::hv::argv
