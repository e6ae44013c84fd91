#include "ops/boot_files.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "core/error.h"
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
  std::string path = dir + "/" + vm_uuid + ".args";
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    spdlog::warn("ignoring {}: extra QEMU arguments are read only from a regular file owned by root and "
                 "writable by root alone",
                 path);
    return {};
  }
  std::ifstream in(path);
  std::vector<std::string> args;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (!line.empty() && line[0] != '#') args.push_back(line);
  }
  if (!args.empty()) spdlog::info("VM {}: extra QEMU arguments from {}: {}", vm_uuid, path, join(args, " "));
  return args;
}

}  // namespace vmstack::ops
