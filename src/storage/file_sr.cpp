#include "storage/file_sr.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/crash_point.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/process.h"
#include "core/strings.h"
#include "storage/image_check.h"

namespace vmstack::storage {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& out = {}, const std::string& err = {}) {
  throw ApiError(errors::SR_BACKEND_FAILURE, {what, out, err});
}

void check(const CommandResult& r, const std::string& what) {
  if (!r.ok()) fail(what + (r.timed_out ? " timed out" : " failed: exit " + std::to_string(r.exit_code)), r.out, r.err);
}

std::string format_of(const std::string& location) {
  if (ends_with(location, ".qcow2")) return "qcow2";
  return "raw";  // .raw disks, .suspend images
}

// A location is a plain file name made by this driver: never a path that
// could reach outside the SR's directory.
void check_location(const std::string& location) {
  bool ok = !location.empty() && location.find('/') == std::string::npos && location[0] != '.' &&
            (ends_with(location, ".qcow2") || ends_with(location, ".raw") || ends_with(location, ".suspend"));
  if (!ok) fail("not an image of this file SR: '" + location + "'");
}

int64_t allocated(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_blocks) * 512;
}

// The guest-visible size: qcow2 keeps it big-endian at offset 24 of its
// header; a raw image is as big as its file.
int64_t virtual_size_of(const std::string& path, const std::string& format) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) fail("cannot stat " + path, "", std::strerror(errno));
  if (format != "qcow2") return static_cast<int64_t>(st.st_size);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char h[32];
  if (!fd || ::pread(fd.get(), h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || std::memcmp(h, "QFI\xfb", 4) != 0)
    fail("not a qcow2 image: " + path);
  uint64_t size = 0;
  for (int i = 24; i < 32; ++i) size = (size << 8) | h[i];
  return static_cast<int64_t>(size);
}

}  // namespace

std::string FileSr::dir_of(const SrContext& sr) {
  auto it = sr.device_config.find("location");
  if (it == sr.device_config.end() || !it->second.is_string() || it->second.as_string().empty())
    fail("file SR " + sr.uuid + " has no device_config:location");
  return it->second.as_string();
}

void FileSr::create(SrContext& sr) {
  std::string dir = dir_of(sr);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create SR directory " + dir, "", ec.message());
  ::chmod(dir.c_str(), 0700);  // guest disks are private to the host's root
}

void FileSr::attach(const SrContext& sr) {
  std::string dir = dir_of(sr);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) fail("SR directory " + dir + " is missing");
  // Guest disks are private to the host's root, also in SRs made by older
  // versions: the directory and every image in it.
  ::chmod(dir.c_str(), 0700);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) {
      // An import's staging image left by a crash (vdi_import) is not a disk.
      auto name = it->path().filename().string();
      if (name[0] == '.' && ends_with(name, ".import")) ::unlink(it->path().c_str());
      else ::chmod(it->path().c_str(), 0600);
    }
}

SrUsage FileSr::usage(const SrContext& sr) {
  std::string dir = dir_of(sr);
  SrUsage u;
  struct statvfs sv{};
  if (::statvfs(dir.c_str(), &sv) == 0) u.physical_size = static_cast<int64_t>(sv.f_blocks) * static_cast<int64_t>(sv.f_frsize);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    u.physical_utilisation += allocated(it->path().string());
  return u;
}

VdiImage FileSr::vdi_create(const SrContext& sr, const std::string& vdi_uuid, int64_t virtual_size, VdiKind kind) {
  std::string dir = dir_of(sr);
  VdiImage img;
  if (kind == VdiKind::suspend_image) {
    img.location = vdi_uuid + ".suspend";
    img.format = "raw";
    std::string path = dir + "/" + img.location;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) fail("cannot create " + path, "", std::strerror(errno));
    return img;
  }
  if (virtual_size <= 0) throw ApiError(errors::INVALID_VALUE, {"virtual_size", std::to_string(virtual_size)});
  img.location = vdi_uuid + ".qcow2";
  img.format = "qcow2";
  std::string path = dir + "/" + img.location;
  SpawnOptions o;
  o.die_with_parent = true;
  check(run_command({"qemu-img", "create", "-q", "-f", "qcow2", path, std::to_string(virtual_size)},
                    std::chrono::seconds(60), {}, o),
        "qemu-img create");
  ::chmod(path.c_str(), 0600);
  img.virtual_size = virtual_size;
  img.physical_utilisation = allocated(path);
  return img;
}

void FileSr::vdi_destroy(const SrContext& sr, const std::string& location) {
  check_location(location);
  std::string path = dir_of(sr) + "/" + location;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail("cannot remove " + path, "", std::strerror(errno));
}

VdiImage FileSr::vdi_copy(const SrContext& from, const std::string& location, const SrContext& to,
                          const std::string& new_uuid) {
  check_location(location);
  std::string src = dir_of(from) + "/" + location;
  VdiImage img;
  img.format = format_of(location);
  img.location = new_uuid + location.substr(location.rfind('.'));
  std::string dst = dir_of(to) + "/" + img.location;
  // Reflinked where the filesystem can (XFS, btrfs): instant and thin. The
  // copy dies with the daemon's thread: a daemon killed mid-copy leaves no
  // copy running on behind it (its next start removes the partial image).
  SpawnOptions o;
  o.die_with_parent = true;
  check(run_command({"cp", "--reflink=auto", "--sparse=always", src, dst}, std::chrono::minutes(30), {}, o,
                    [] { crash_point("vdi_copy.running"); }),
        "copy of " + src);
  ::chmod(dst.c_str(), 0600);
  img.virtual_size = virtual_size_of(dst, img.format);
  img.physical_utilisation = allocated(dst);
  return img;
}

VdiImage FileSr::vdi_clone(const SrContext& sr, const std::string& location, const std::string& new_uuid) {
  return vdi_copy(sr, location, sr, new_uuid);
}

VdiImage FileSr::vdi_stat(const SrContext& sr, const std::string& location) {
  check_location(location);
  std::string path = dir_of(sr) + "/" + location;
  VdiImage img;
  img.location = location;
  img.format = format_of(location);
  img.physical_utilisation = allocated(path);
  img.virtual_size = virtual_size_of(path, img.format);
  return img;
}

void FileSr::vdi_cleanup(const SrContext& sr, const std::string& vdi_uuid) {
  if (vdi_uuid.empty() || vdi_uuid.find('/') != std::string::npos || vdi_uuid[0] == '.') return;
  std::string dir = dir_of(sr);
  for (const char* ext : {".qcow2", ".raw", ".suspend"}) ::unlink((dir + "/" + vdi_uuid + ext).c_str());
}

void FileSr::vdi_export(const SrContext& sr, const std::string& location, const std::string& format,
                        const std::string& to_path) {
  check_location(location);
  std::string src = dir_of(sr) + "/" + location;
  std::vector<std::string> argv{"qemu-img", "convert", "-f", format_of(location), "-O", qemu_format(format)};
  // A dynamic VHD of exactly the disk's size (qemu would round it to a
  // CHS geometry otherwise), as xapi's vhd-tool writes them.
  if (format == "vhd") argv.insert(argv.end(), {"-o", "subformat=dynamic,force_size=on"});
  argv.insert(argv.end(), {src, to_path});
  SpawnOptions o;
  o.die_with_parent = true;
  check(run_command(argv, std::chrono::hours(2), {}, o), "qemu-img convert (export)");
}

void FileSr::vdi_import(const SrContext& sr, const std::string& location, const std::string& from_path,
                        const std::string& format) {
  check_location(location);
  const std::string dir = dir_of(sr), path = dir + "/" + location, fmt = format_of(location);
  const std::string qfmt = qemu_format(format);
  const int64_t size = virtual_size_of(path, fmt);
  const std::string uuid = location.substr(0, location.rfind('.'));
  int64_t incoming = checked_upload_size(from_path, qfmt);
  if (incoming > size) throw ApiError(errors::VDI_TOO_SMALL, {uuid, std::to_string(incoming)});
  // A fresh image of the same size takes the contents, then replaces the
  // old one in a rename: a failure or a crash part way leaves the old
  // contents (and at worst a dot file, removed at the SR's next attach).
  std::string staging = dir + "/." + location + ".import";
  ::unlink(staging.c_str());
  SpawnOptions o;
  o.die_with_parent = true;
  struct Unlink {
    std::string p;
    ~Unlink() { ::unlink(p.c_str()); }
  } cleanup{staging};
  if (fmt == "qcow2")
    check(run_command({"qemu-img", "create", "-q", "-f", "qcow2", staging, std::to_string(size)}, std::chrono::seconds(60), {}, o),
          "qemu-img create");
  else
    check(run_command({"truncate", "-s", std::to_string(size), staging}, std::chrono::seconds(60), {}, o), "truncate");
  ::chmod(staging.c_str(), 0600);
  check(run_command({"qemu-img", "convert", "-n", "-f", qfmt, from_path, "-O", fmt, staging}, std::chrono::hours(2), {}, o),
        "qemu-img convert (import)");
  crash_point("vdi_import.converted");
  if (::rename(staging.c_str(), path.c_str()) != 0) fail("cannot replace " + path, "", std::strerror(errno));
}

DiskSource FileSr::vdi_source(const SrContext& sr, const std::string& location) {
  check_location(location);
  return {dir_of(sr) + "/" + location, format_of(location)};
}

}  // namespace vmstack::storage
