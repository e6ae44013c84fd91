#include "lb/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/fd.h"

namespace vmstack::lb {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}
}  // namespace

StateFile::StateFile(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/rules") {}

void StateFile::prepare() {
  std::error_code ec;
  if (fs::exists(dir_, ec)) return;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("state dir " + dir_ + ": " + ec.message());
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
}

std::optional<std::string> StateFile::read() const {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    fail("read " + path_);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void StateFile::write(const std::string& text) {
  const std::string tmp = path_ + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) fail("write " + tmp);
    for (size_t off = 0; off < text.size();) {
      ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::unlink(tmp.c_str());
        errno = e;
        fail("write " + tmp);
      }
      off += size_t(n);
    }
    if (::fsync(fd.get()) != 0) fail("fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) fail("rename " + tmp);
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());  // the rename itself must reach the disk
}

std::string StateFile::set_aside() const {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string copy = path_ + ".rejected-" + stamp;
  std::error_code ec;
  fs::copy_file(path_, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) throw std::runtime_error("copy " + path_ + ": " + ec.message());
  return copy;
}

}  // namespace vmstack::lb
