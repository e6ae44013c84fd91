#include "ops/boot_files.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "core/fd.h"
#include "core/strings.h"

namespace vmstack::ops {

namespace {

std::string real_path(const std::string& p) {
  std::unique_ptr<char, decltype(&std::free)> r(::realpath(p.c_str(), nullptr), &std::free);
  return r ? std::string(r.get()) : std::string();
}

}  // namespace

std::string resolve_boot_file(const std::vector<std::string>& dirs, const std::string& field, const std::string& path) {
  auto refuse = [&]() -> ApiError {
    return ApiError(errors::INVALID_VALUE,
                    {field, path, "not a regular file in an allowed boot directory (" + join(dirs, ", ") + ")"});
  };
  std::string real = path.empty() || path[0] != '/' ? std::string() : real_path(path);
  struct stat st{};
  if (real.empty() || ::stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) throw refuse();
  for (const auto& d : dirs) {
    std::string dir = real_path(d);
    if (!dir.empty() && starts_with(real, dir + "/")) return real;
  }
  throw refuse();
}

std::vector<std::string> operator_qemu_args(const std::string& dir, const std::string& vm_uuid) {
  // Root's alone: the directory (nobody else may add or swap a file in it)
  // and the file itself, checked on the descriptor read (no symlink, no
  // window between the check and the read).
  auto roots_alone = [](const struct stat& st) { return st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH)); };
  const std::string path = dir + "/" + vm_uuid + ".args";
  struct stat dst{}, st{};
  if (::stat(dir.c_str(), &dst) != 0) return {};
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd && errno == ENOENT) return {};
  if (!S_ISDIR(dst.st_mode) || !roots_alone(dst) || !fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      !roots_alone(st)) {
    spdlog::warn("ignoring {}: extra QEMU arguments are read only from a regular file (not a symlink) owned by root "
                 "and writable by root alone, in a directory of the same kind",
                 path);
    return {};
  }
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  std::vector<std::string> args;
  for (const auto& raw : split(text, '\n')) {
    std::string line = trim(raw);
    if (!line.empty() && line[0] != '#') args.push_back(line);
  }
  if (!args.empty()) spdlog::info("VM {}: extra QEMU arguments from {}: {}", vm_uuid, path, join(args, " "));
  return args;
}

}  // namespace vmstack::ops
