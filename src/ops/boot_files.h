// What a VM record may make QEMU read from the host: boot files only from
// the operator's boot directories, and extra arguments only from root's own
// files. Anything an API caller sets reaches the host only through these.
#pragma once

#include <string>
#include <vector>

namespace vmstack::ops {

// The real path of `path` if it is a regular file inside one of `dirs`
// (both resolved: symlinks cannot lead out); else INVALID_VALUE
// [field, path, reason] with the same reason whether or not the file exists,
// so the error never tells a caller which host files there are.
std::string resolve_boot_file(const std::vector<std::string>& dirs, const std::string& field, const std::string& path);

// The operator's extra QEMU arguments for a VM: <dir>/<vm uuid>.args, one
// argument per line ('#' comments, blank lines ignored). Empty when there is
// no such file; a file that root does not own, or that others can write, is
// ignored with a warning in the log.
std::vector<std::string> operator_qemu_args(const std::string& dir, const std::string& vm_uuid);

}  // namespace vmstack::ops
