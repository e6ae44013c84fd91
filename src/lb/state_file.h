// The daemon's saved rules: <state dir>/rules, in `ipvsadm -S -n` format
// plus a --set line, replaced atomically (write, fsync, rename, fsync dir)
// so a crash leaves either the old or the new rules, never half a file.
#pragma once

#include <optional>
#include <string>

namespace vmstack::lb {

class StateFile {
 public:
  explicit StateFile(std::string dir);
  // Creates the directory (0700) if needed. Throws std::runtime_error.
  void prepare();
  // nullopt when there is no file yet. Throws on read errors.
  std::optional<std::string> read() const;
  // Throws std::runtime_error; the old file is intact on failure.
  void write(const std::string& text);
  // Keeps a copy of a file that could not be loaded (rules.rejected-<time>),
  // so the next save does not silently destroy it. Returns the copy's path.
  std::string set_aside() const;
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

}  // namespace vmstack::lb
