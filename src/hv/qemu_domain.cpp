#include "hv/qemu_hypervisor.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "core/fd.h"
#include "core/process.h"
#include "core/strings.h"
#include "hv/qemu_argv.h"
#include "hv/qmp.h"

namespace vmstack::hv {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string read_tail(const std::string& path, off_t from, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return {};
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return {};
  off_t start = std::max<off_t>(from, st.st_size - static_cast<off_t>(max_bytes));
  if (start < 0) start = 0;
  std::string out(static_cast<size_t>(std::max<off_t>(st.st_size - start, 0)), '\0');
  ssize_t n = ::pread(fd.get(), out.data(), out.size(), start);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}


// Is pid the process listening on the unix socket at socket_path? Tells our
// QEMU from a recycled pid, or from a wrapper whose command line merely
// mentions the path: the kernel's table of unix sockets (/proc/net/unix:
// inode and path) against the socket inodes in /proc/<pid>/fd. The table
// shows the path as QEMU bound it: relative to its working directory (the
// guest dir, argv::kQmpSocket) for the QEMUs vmstackd starts, so then the
// process's working directory must be the socket's directory too.
bool serves_socket(pid_t pid, const std::string& socket_path) {
  const fs::path abs(socket_path);
  std::error_code ec;
  const bool in_dir = fs::equivalent("/proc/" + std::to_string(pid) + "/cwd", abs.parent_path(), ec);
  const std::string relative = abs.filename().string();
  std::ifstream table("/proc/net/unix");
  std::string line;
  std::vector<std::string> inodes;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    // Num RefCount Protocol Flags Type St Inode Path
    std::istringstream in(line);
    std::string num, ref, proto, flags, type, st, inode, path;
    if (!(in >> num >> ref >> proto >> flags >> type >> st >> inode)) continue;
    std::getline(in >> std::ws, path);  // the rest: paths may hold spaces
    if (path == socket_path || (in_dir && path == relative)) inodes.push_back("socket:[" + inode + "]");
  }
  if (inodes.empty()) return false;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (fs::directory_iterator it(fd_dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto target = fs::read_symlink(it->path(), ec);
    if (ec) {
      ec.clear();
      continue;
    }
    for (const auto& want : inodes)
      if (target.native() == want) return true;
  }
  return false;
}

bool is_own_single_file(const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid == ::geteuid();
}

// The pid root recorded in <run_dir>/qemu.pid; 0 when there is none, or
// when what is under the name is not a file root wrote.
pid_t read_pid_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st{};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !is_own_single_file(st)) return 0;
  char buf[32] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  long pid = std::strtol(buf, nullptr, 10);
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() ? static_cast<pid_t>(pid) : 0;
}

// How the next vmstackd (and stop_orphan) finds this QEMU; see argv::kPidFile.
// A new file, so a name planted in an older layout is never written through.
void write_pid_file(const std::string& path, pid_t pid) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error("cannot remove " + path + ": " + std::strerror(errno));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  const std::string text = std::to_string(pid) + "\n";
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

// The pid in run_dir/qemu.pid when it is a live QEMU serving this domain's
// QMP socket; 0 otherwise (stale file, recycled pid).
pid_t running_qemu_in(const std::string& run_dir) {
  pid_t pid = read_pid_file(run_dir + "/" + argv::kPidFile);
  if (pid <= 0) return 0;
  // In the guest dir; or, for a QEMU started before the run dir was split
  // (working in the run dir itself), there: it must not be orphaned either.
  if (serves_socket(pid, guest_dir_of(run_dir) + "/" + argv::kQmpSocket) ||
      serves_socket(pid, run_dir + "/" + argv::kQmpSocket))
    return pid;
  return 0;
}

// The run dir is root's own (0700): created when missing, and taken back
// when an older layout handed it to the guest's user. Its parent, the run
// root, is root's and private, so the entry itself is what root made there:
// lchown and chmod on it reach no other file.
void claim_run_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create run dir " + dir + ": " + ec.message());
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) throw std::runtime_error("cannot stat run dir " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("run dir " + dir + " is not a directory");
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if ((st.st_uid != uid || st.st_gid != gid) && ::lchown(dir.c_str(), uid, gid) != 0)
    throw std::runtime_error("cannot take back run dir " + dir + ": " + std::strerror(errno));
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot make run dir " + dir + " private: " + std::strerror(errno));
}

// The run dir holds root's files and the guest dir, nothing else: whatever
// an older layout let QEMU leave there (sockets, console log, boot files,
// links planted by an escaped guest) goes, and so does a file under one of
// root's names that root did not write (not a regular file of ours with a
// single link). Called with no QEMU running in the dir.
void clear_run_dir(const std::string& dir) {
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  if (ec) throw std::runtime_error("cannot list run dir " + dir + ": " + ec.message());
  for (const auto& p : entries) {
    const std::string name = p.filename().string();
    if (name == argv::kGuestDir) continue;  // prepare_guest_dir's business
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0) continue;
    const bool roots = name == "domain.json" || name == argv::kPidFile || name == argv::kQemuLog;
    if (roots && is_own_single_file(st)) continue;
    fs::remove_all(p, ec);  // never follows a symlink
    if (ec) throw std::runtime_error("cannot remove " + p.string() + ": " + ec.message());
  }
}

// The guest dir, QEMU's working directory, made ready for a launch: a real
// directory (anything else under the name goes), emptied of everything but
// a console log that is a plain file with a single link (kept across
// suspend/resume; anything else so named goes too), then handed to the
// guest's user, 0700. Its parent is root's, so the entry itself cannot be
// swapped under us; remove_all never follows a symlink, and the kept log is
// changed through a descriptor opened with O_NOFOLLOW, never by name.
void prepare_guest_dir(const std::string& dir, uid_t uid, gid_t gid) {
  std::error_code ec;
  struct stat st{};
  if (::lstat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    fs::remove(dir, ec);
    if (ec) throw std::runtime_error("cannot remove " + dir + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create " + dir + ": " + std::strerror(errno));
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error(dir + " is not a directory");

  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  if (ec) throw std::runtime_error("cannot list " + dir + ": " + ec.message());
  UniqueFd kept_log;
  for (const auto& p : entries) {
    if (p.filename() == argv::kConsoleLog) {
      struct stat ls{}, fst{};
      UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (::lstat(p.c_str(), &ls) == 0 && S_ISREG(ls.st_mode) && ls.st_nlink == 1 && fd &&
          ::fstat(fd.get(), &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_nlink == 1 && fst.st_ino == ls.st_ino &&
          fst.st_dev == ls.st_dev) {
        kept_log = std::move(fd);
        continue;
      }
    }
    fs::remove_all(p, ec);
    if (ec) throw std::runtime_error("cannot remove " + p.string() + ": " + ec.message());
  }
  if (kept_log && ::fchown(kept_log.get(), uid, gid) != 0)
    throw std::runtime_error("cannot give the console log in " + dir + " to uid " + std::to_string(uid) + ": " +
                             std::strerror(errno));
  if (::lchown(dir.c_str(), uid, gid) != 0 || ::chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot give " + dir + " to uid " + std::to_string(uid) + ": " + std::strerror(errno));
}

// A boot file a deprivileged QEMU can read without reaching the host's
// directories: a hard link in its guest dir when the file is world-readable
// and on the same filesystem (no copy: 30 MB kernels), else a private copy.
// Either way a new entry (the guest dir was just emptied): nothing under
// the name is ever written through.
std::string place_boot_file(const std::string& src, const std::string& guest_dir, const char* name, uid_t uid,
                            gid_t gid) {
  // QEMU opens it relative to its working directory, the guest dir.
  const std::string dst = guest_dir + "/" + name;
  struct stat st{};
  if (::stat(src.c_str(), &st) != 0) throw std::runtime_error("cannot read " + src + ": " + std::strerror(errno));
  // AT_SYMLINK_FOLLOW: link the file itself, never a symlink to it.
  if ((st.st_mode & S_IROTH) && ::linkat(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), AT_SYMLINK_FOLLOW) == 0)
    return name;
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw std::runtime_error("cannot read " + src + ": " + std::strerror(errno));
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
  if (!out) throw std::runtime_error("cannot create " + dst + ": " + std::strerror(errno));
  for (;;) {
    ssize_t n = ::sendfile(out.get(), in.get(), nullptr, 1 << 20);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("cannot copy " + src + " to " + dst + ": " + std::strerror(errno));
    if (n == 0) break;
  }
  if (::fchown(out.get(), uid, gid) != 0 || ::fchmod(out.get(), 0400) != 0)
    throw std::runtime_error("cannot hand " + dst + " to uid " + std::to_string(uid) + ": " + std::strerror(errno));
  return name;
}

// qemu.log, in root's run dir: appended to, and QEMU's stdout and stderr
// are this very descriptor (the name is not looked up again).
UniqueFd open_qemu_log(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !is_own_single_file(st))
    throw std::runtime_error("refusing " + path + ": not a plain file of our own");
  return fd;
}

// A disk image opened by the toolstack for a QEMU that may not open it itself.
UniqueFd open_image(const DiskSpec& d) {
  int flags = (d.readonly || d.cdrom ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  UniqueFd fd(::open(d.path.c_str(), flags));
  if (!fd) throw std::runtime_error("cannot open disk image " + d.path + ": " + std::strerror(errno));
  return fd;
}

// A descriptor attached to the persistent tap `name` (made by the network
// backend), for a QEMU that may not open /dev/net/tun itself.
UniqueFd open_tap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) throw std::runtime_error(std::string("cannot open /dev/net/tun: ") + std::strerror(errno));
  struct ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name.c_str());
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    throw std::runtime_error("cannot attach to tap " + name + ": " + std::strerror(errno));
  return fd;
}

// The group that may use /dev/kvm (a deprivileged QEMU needs it for KVM).
int kvm_group() {
  struct stat st{};
  return ::stat("/dev/kvm", &st) == 0 ? static_cast<int>(st.st_gid) : -1;
}

RunState map_status(const std::string& s) {
  if (s == "running") return RunState::running;
  if (s == "suspended") return RunState::suspended;  // guest S3
  if (s == "shutdown" || s == "guest-panicked") return RunState::shutdown;
  if (s == "paused" || s == "prelaunch" || s == "inmigrate" || s == "postmigrate" || s == "finish-migrate" ||
      s == "debug" || s == "io-error" || s == "watchdog" || s == "restore-vm" || s == "save-vm" ||
      s == "colo")
    return RunState::paused;
  return RunState::unknown;  // internal-error and anything new
}

}  // namespace

using Event = Domain::Event;

struct QemuDomain::Impl {
  LiveState state;
  std::string log_path;
  off_t log_start = 0;
  Subprocess proc;
  std::unique_ptr<QmpClient> qmp;

  std::mutex mu;  // handler, queue, stop, deleted
  std::function<void(Event, const std::string&)> handler;
  std::deque<std::pair<Event, std::string>> queue;
  bool stop = false;
  UniqueFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::thread monitor;
  // DEVICE_DELETED events not yet waited for (hot unplug is asynchronous:
  // the guest acknowledges it).
  std::set<std::string> deleted;
  std::condition_variable deleted_cv;

  std::mutex op_mu;  // serializes multi-step operations (save, stop, hotplug) and `state`

  void push(Event e, std::string detail) {
    {
      std::lock_guard lk(mu);
      queue.emplace_back(e, std::move(detail));
    }
    poke();
  }
  void poke() {
    uint64_t one = 1;
    (void)!::write(wake.get(), &one, sizeof one);
  }

  void on_qmp_event(const std::string& name, const json& data) {
    bool guest = data.is_object() && data.value("guest", false);
    std::string reason = data.is_object() ? data.value("reason", std::string()) : std::string();
    if (name == "SHUTDOWN" && guest) push(Event::guest_shutdown, reason.empty() ? "guest-shutdown" : reason);
    else if (name == "RESET" && guest) push(Event::guest_reset, reason.empty() ? "guest-reset" : reason);
    else if (name == "DEVICE_DELETED" && data.is_object() && data.contains("device")) {
      {
        std::lock_guard lk(mu);
        deleted.insert(data.value("device", ""));
      }
      deleted_cv.notify_all();
    }
  }

  // The monitor thread shares ownership of the Impl: a handler may destroy
  // the Domain (the toolstack drops it on `exited`), and the thread must
  // still be able to return from the handler and leave.
  static void start_monitor(const std::shared_ptr<Impl>& self) {
    // QMP callbacks run on the QMP reader thread, which stop_monitor() joins
    // before the Impl can go away: a raw pointer is enough there.
    Impl* raw = self.get();
    self->qmp->set_event_callback([raw](const std::string& n, const json& d, double) { raw->on_qmp_event(n, d); });
    self->qmp->set_close_callback([raw] { raw->poke(); });
    self->monitor = std::thread([self] { self->run_monitor(); });
  }

  bool stopping() {
    std::lock_guard lk(mu);
    return stop;
  }

  void run_monitor() {
    bool exit_seen = false;
    for (;;) {
      if (stopping()) return;
      struct pollfd fds[2] = {{wake.get(), POLLIN, 0}, {-1, POLLIN, 0}};
      int nfds = 1;
      int timeout = -1;
      if (!exit_seen) {
        if (proc.pidfd() >= 0) {
          fds[1].fd = proc.pidfd();
          nfds = 2;
        } else {
          timeout = 200;
        }
      }
      ::poll(fds, nfds, timeout);
      uint64_t v;
      (void)!::read(wake.get(), &v, sizeof v);

      if (!exit_seen && proc.try_wait()) {
        exit_seen = true;
        // Let the QMP reader drain what QEMU said before dying (SHUTDOWN...).
        for (int i = 0; i < 100 && qmp && qmp->connected(); ++i) std::this_thread::sleep_for(5ms);
        push(Event::exited, proc.describe_status());
      }

      // One event at a time, re-checking `stop`: once the Domain is
      // destroyed (possibly by the handler itself) nothing more is delivered.
      for (;;) {
        std::pair<Event, std::string> ev;
        std::function<void(Event, const std::string&)> h;
        {
          std::lock_guard lk(mu);
          if (stop) return;
          if (!handler || queue.empty()) break;
          ev = std::move(queue.front());
          queue.pop_front();
          h = handler;
        }
        try {
          h(ev.first, ev.second);
        } catch (...) {
          // A throwing handler must not take the monitor down.
        }
      }
    }
  }

  void stop_monitor() {
    if (qmp) qmp->close();  // joins the QMP reader: no more callbacks into us
    {
      std::lock_guard lk(mu);
      stop = true;
    }
    poke();
    if (monitor.joinable()) {
      if (monitor.get_id() == std::this_thread::get_id()) monitor.detach();
      else monitor.join();
    }
  }

  std::string tail(size_t n = 4096) const { return trim_right(read_tail(log_path, log_start, n)); }

  // Waits for the guest to let go of device `id` (DEVICE_DELETED).
  bool wait_deleted(const std::string& id, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu);
    bool ok = deleted_cv.wait_for(lk, timeout, [&] { return deleted.count(id) != 0; });
    deleted.erase(id);
    return ok;
  }

  // The root port a device added now goes into; "" on PCI machines (pc),
  // which hotplug onto the root bus. Throws when every port is taken.
  std::string hotplug_port() const {
    if (argv::machine_of(state.spec).piix) return {};
    auto port = free_port();
    if (port.empty())
      throw std::runtime_error("no free hotplug slot (the domain has " + std::to_string(state.spec.hotplug_slots) + ")");
    return port;
  }

  // Asks the guest to let go of device `id` and waits for it (PCIe hot
  // unplug needs the guest's acknowledgement).
  void unplug(const std::string& id, const char* what) {
    // A slot still settling from a recent hot-add (its power indicator
    // blinks for ~5 s under PCIe hotplug) refuses the request: ask again.
    for (auto end = Clock::now() + 20s;;) {
      try {
        qmp->execute("device_del", {{"id", id}});
        break;
      } catch (const QmpError& e) {
        if (e.desc().find("busy") == std::string::npos || Clock::now() >= end) throw;
      }
      std::this_thread::sleep_for(250ms);
    }
    if (!wait_deleted(id, 20s))
      throw std::runtime_error(std::string("the guest did not release ") + what + " " + id + " within 20s");
  }

  // Deprivileged: hands QEMU an image it may not open by name, in a new fd
  // set; returns the set's number and the name QEMU opens it by.
  std::pair<int, std::string> pass_image(const DiskSpec& d) {
    int set = 1000;
    for (const auto& x : state.spec.disks) set = std::max(set, x.fdset + 1);
    UniqueFd fd = open_image(d);
    qmp->execute_with_fd("add-fd", {{"fdset-id", set}, {"opaque", d.id}}, fd.get());
    return {set, "/dev/fdset/" + std::to_string(set)};
  }
  void drop_fdset(int set) {
    if (set <= 0) return;
    try {
      qmp->execute("remove-fd", {{"fdset-id", set}});
    } catch (const QmpError&) {
      // already gone with its last user
    }
  }

  // A free root port for a device added while the guest runs.
  std::string free_port() const {
    std::set<std::string> used;
    for (const auto& d : state.spec.disks)
      if (!d.port.empty()) used.insert(d.port);
    for (const auto& n : state.spec.nics)
      if (!n.port.empty()) used.insert(n.port);
    for (const auto& p : argv::hotplug_port_ids(state.spec))
      if (!used.count(p)) return p;
    return {};
  }
};

QemuDomain::QemuDomain() : impl_(std::make_shared<Impl>()) {}

QemuDomain::~QemuDomain() {
  if (!impl_) return;
  impl_->stop_monitor();
  // The guest keeps running. If it is our child, a background reaper
  // collects it when it eventually exits (or attach() takes it back).
  if (impl_->proc.valid()) {
    if (impl_->proc.is_child()) hand_off_to_reaper(std::move(impl_->proc));
    else impl_->proc.release();
  }
}

QemuHypervisor::QemuHypervisor(std::string binary) : binary_(std::move(binary)) {
  if (binary_.empty()) {
    const char* env = ::getenv("VMSTACK_QEMU");
    binary_ = env && *env ? env : "qemu-system-x86_64";
  }
}

std::unique_ptr<Domain> QemuHypervisor::launch(const DomainSpec& spec) { return launch_qemu(spec, 30s); }

std::unique_ptr<QemuDomain> QemuHypervisor::launch_qemu(const DomainSpec& spec_in, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  // The spec as launched, with every automatic choice made, is what the
  // live state records.
  DomainSpec spec = spec_in;
  assign_device_ids(spec);
  spec.machine = machine_for(spec);
  if (spec.tsc_khz == 0 && spec.machine.rfind("microvm", 0) == 0) spec.tsc_khz = host_tsc_khz();

  // The run dir is root's; QEMU works in the guest dir below it.
  claim_run_dir(spec.run_dir);
  // Removing the sockets of a QEMU that still runs here would orphan it
  // (nothing could reach its QMP again): refuse instead.
  if (pid_t other = running_qemu_in(spec.run_dir))
    throw std::runtime_error("a QEMU (pid " + std::to_string(other) + ") is already running in " + spec.run_dir);
  clear_run_dir(spec.run_dir);
  const std::string guest_dir = guest_dir_of(spec.run_dir);
  const uid_t guest_uid = spec.uid >= 0 ? static_cast<uid_t>(spec.uid) : ::geteuid();
  const gid_t guest_gid = spec.gid >= 0 ? static_cast<gid_t>(spec.gid) : ::getegid();
  prepare_guest_dir(guest_dir, guest_uid, guest_gid);

  // Deprivileged: QEMU gets descriptors and private copies, never host paths.
  std::vector<UniqueFd> images;
  SpawnOptions o;
  if (spec.uid >= 0) {
    if (!spec.kernel.empty()) spec.kernel = place_boot_file(spec.kernel, guest_dir, "kernel", guest_uid, guest_gid);
    if (!spec.ramdisk.empty()) spec.ramdisk = place_boot_file(spec.ramdisk, guest_dir, "initrd", guest_uid, guest_gid);
    for (size_t i = 0; i < spec.disks.size(); ++i) {
      auto& disk = spec.disks[i];
      if (disk.path.empty()) continue;
      images.push_back(open_image(disk));
      o.pass_fds.emplace_back(images.back().get(), argv::disk_fd(i));
      disk.fdset = argv::disk_fdset(i);
    }
    for (size_t i = 0; i < spec.nics.size(); ++i) {
      images.push_back(open_tap(spec.nics[i].tap));
      o.pass_fds.emplace_back(images.back().get(), argv::kFirstNicFd + static_cast<int>(i));
    }
    o.uid = spec.uid;
    o.gid = spec.gid;
    if (spec.accel == Accel::kvm && kvm_group() >= 0) o.groups.push_back(static_cast<unsigned>(kvm_group()));
    o.no_new_privs = true;
  }
  auto argv = build_qemu_argv(spec, binary_);

  std::unique_ptr<QemuDomain> d(new QemuDomain());
  auto& im = *d->impl_;
  im.log_path = spec.run_dir + "/" + argv::kQemuLog;
  UniqueFd lf = open_qemu_log(im.log_path);
  {
    struct stat st{};
    ::fstat(lf.get(), &st);
    im.log_start = st.st_size;
    std::time_t now = std::time(nullptr);
    char ts[64];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    std::string hdr = std::string("=== vmstack launch ") + ts + ": " + format_argv(argv) + "\n";
    (void)!::write(lf.get(), hdr.data(), hdr.size());
    im.log_start += static_cast<off_t>(hdr.size());
  }

  o.new_session = true;
  o.cwd = guest_dir;  // see argv::kQmpSocket
  // A guest that escapes into its QEMU reads /proc/self/environ: it gets a
  // bare environment, nothing of the daemon's (secrets, test hooks).
  o.env = std::map<std::string, std::string>{{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LC_ALL", "C"}};
  o.stdout_mode = SpawnOptions::Output::fd;
  o.stdout_fd = lf.get();
  o.stderr_mode = SpawnOptions::Output::stdout_;
  try {
    im.proc = Subprocess::spawn(argv, o);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot start " + binary_ + ": " + e.what());
  }
  lf.reset();

  auto fail = [&](const std::string& why) -> std::runtime_error {
    // Make sure it is gone before reporting (the Subprocess would do it too).
    if (!im.proc.try_wait()) {
      im.proc.kill_group(SIGKILL);
      im.proc.wait_for(5s);
    }
    remove_live_state(spec.run_dir);
    std::string t = im.tail();
    return std::runtime_error("QEMU " + why + (t.empty() ? std::string() : ": " + t));
  };

  // Whatever goes wrong from here on, don't leave a half-started QEMU behind.
  struct KillUnlessOk {
    Subprocess& p;
    bool ok = false;
    ~KillUnlessOk() {
      if (!ok && !p.try_wait()) {
        p.kill_group(SIGKILL);
        p.wait_for(5s);
      }
    }
  } guard{im.proc};

  try {
    write_pid_file(spec.run_dir + "/" + argv::kPidFile, im.proc.pid());
  } catch (const std::exception& e) {
    throw fail(e.what());
  }

  im.state.spec = spec;
  im.state.driver = "qemu";
  im.state.pid = im.proc.pid();
  im.state.qmp_socket = guest_dir + "/" + argv::kQmpSocket;
  im.state.console_socket = guest_dir + "/" + argv::kConsoleSocket;
  im.state.console_log = guest_dir + "/" + argv::kConsoleLog;
  im.state.started = static_cast<int64_t>(std::time(nullptr));
  // Recorded before QMP is up: a daemon killed now finds the process from
  // this file on restart instead of orphaning it.
  save_live_state(im.state);

  while (!im.qmp) {
    if (im.proc.try_wait()) throw fail("exited during startup (" + im.proc.describe_status() + ")");
    if (Clock::now() >= deadline) throw fail("QMP socket did not come up in time");
    struct stat st{};
    if (::stat(im.state.qmp_socket.c_str(), &st) != 0) {
      im.proc.wait_for(10ms);
      continue;
    }
    try {
      // Only the socket our QEMU listens on: the name is in the guest's dir.
      im.qmp = QmpClient::connect(im.state.qmp_socket, 2s, im.proc.pid());
    } catch (const QmpPeerError& e) {
      throw fail(e.what());
    } catch (const std::exception& e) {
      if (im.proc.try_wait()) throw fail("exited during startup (" + im.proc.describe_status() + ")");
      if (Clock::now() >= deadline) throw fail(std::string("QMP handshake failed: ") + e.what());
      im.proc.wait_for(20ms);
    }
  }

  auto left = [&] { return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()), 1000ms); };
  try {
    if (!spec.incoming_file.empty()) {
      // The state comes in on a descriptor we open (-incoming defer).
      UniqueFd in(::open(spec.incoming_file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!in) throw fail("cannot open " + spec.incoming_file + ": " + std::strerror(errno));
      im.qmp->execute_with_fd("getfd", {{"fdname", "vmstack-incoming"}}, in.get(), left());
      im.qmp->execute("migrate-incoming", {{"uri", "fd:vmstack-incoming"}}, left());
      // Wait for the saved state to load: status leaves "inmigrate". A state
      // saved by save() comes back paused (the guest was stopped when it was
      // written); start it unless the caller asked for -S.
      std::string status;
      for (;;) {
        status = im.qmp->execute("query-status", nullptr, left()).value("status", "");
        if (status != "inmigrate") break;
        if (Clock::now() >= deadline) throw fail("did not finish loading " + spec.incoming_file + " in time");
        std::this_thread::sleep_for(20ms);
      }
      if (!spec.start_paused && status == "paused") im.qmp->execute("cont", nullptr, left());
    }
    if (spec.vnc) im.state.vnc_socket = guest_dir + "/" + argv::kVncSocket;
    if (spec.memory_target > 0 && spec.memory_target < spec.memory_static_max)
      im.qmp->execute("balloon", {{"value", spec.memory_target}}, left());
  } catch (const QmpConnectionError& e) {
    im.qmp->close();
    if (im.proc.wait_for(2s)) throw fail("exited during startup (" + im.proc.describe_status() + ")");
    throw fail(std::string("QMP failed during startup: ") + e.what());
  } catch (const QmpError& e) {
    throw fail(std::string("rejected a startup command: ") + e.what());
  }
  // One-shot launch options are not part of what runs now.
  im.state.spec.incoming_file.clear();
  im.state.spec.start_paused = false;
  save_live_state(im.state);
  QemuDomain::Impl::start_monitor(d->impl_);
  guard.ok = true;
  return d;
}

std::unique_ptr<Domain> QemuHypervisor::attach(const LiveState& state) { return attach_qemu(state); }

std::unique_ptr<QemuDomain> QemuHypervisor::attach_qemu(const LiveState& state) {
  if (state.pid <= 0 || state.qmp_socket.empty()) return nullptr;
  // Make sure the pid is still our QEMU and not a recycled pid, before
  // taking any responsibility for it (reaping a stranger's child would be
  // worse than not attaching).
  if (!serves_socket(state.pid, state.qmp_socket)) return nullptr;
  std::unique_ptr<QemuDomain> d(new QemuDomain());
  auto& im = *d->impl_;
  im.state = state;
  if (auto p = reclaim_from_reaper(state.pid)) {
    im.proc = std::move(*p);  // launched by this process earlier: still ours to reap
  } else {
    try {
      im.proc = Subprocess::adopt(state.pid);
    } catch (const std::system_error&) {
      return nullptr;
    }
  }
  if (im.proc.try_wait()) return nullptr;
  // qemu.log is root's, in the run dir (not beside the sockets, in the guest's).
  im.log_path = state.spec.run_dir + "/" + argv::kQemuLog;
  {
    struct stat st{};
    if (::lstat(im.log_path.c_str(), &st) == 0) im.log_start = st.st_size;
  }
  try {
    im.qmp = QmpClient::connect(state.qmp_socket, 5s, state.pid);
  } catch (const std::exception& e) {
    bool dead = im.proc.wait_for(100ms);
    if (im.proc.is_child() && !dead) hand_off_to_reaper(std::move(im.proc));
    else im.proc.release();
    if (dead) return nullptr;
    throw std::runtime_error("QEMU pid " + std::to_string(state.pid) + " is alive but its QMP socket " +
                             state.qmp_socket + " does not answer: " + e.what());
  }
  QemuDomain::Impl::start_monitor(d->impl_);
  return d;
}

bool QemuHypervisor::stop_orphan(const std::string& run_dir) {
  pid_t pid = running_qemu_in(run_dir);
  if (pid <= 0) return false;
  // Its own process group (setsid at launch): take any helper with it.
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  if (auto p = reclaim_from_reaper(pid)) p->wait_for(5s);  // our child: reap it now
  return true;
}

const LiveState& QemuDomain::state() const { return impl_->state; }

bool QemuDomain::alive() const { return !impl_->proc.try_wait(); }

QmpClient& QemuDomain::qmp() { return *impl_->qmp; }

std::string QemuDomain::log_tail(size_t max_bytes) const { return impl_->tail(max_bytes); }

RunState QemuDomain::query_status() {
  if (!alive()) return RunState::shutdown;
  try {
    auto r = impl_->qmp->execute("query-status");
    return map_status(r.value("status", ""));
  } catch (const QmpConnectionError&) {
    if (!alive()) return RunState::shutdown;
    throw;
  }
}

void QemuDomain::pause() { impl_->qmp->execute("stop"); }
void QemuDomain::unpause() { impl_->qmp->execute("cont"); }
void QemuDomain::powerdown() { impl_->qmp->execute("system_powerdown"); }
void QemuDomain::reset() { impl_->qmp->execute("system_reset"); }
void QemuDomain::set_balloon(int64_t bytes) { impl_->qmp->execute("balloon", {{"value", bytes}}); }

void QemuDomain::save(const std::string& path, std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  auto deadline = Clock::now() + timeout;
  auto& q = *im.qmp;
  bool was_running = q.execute("query-status").value("status", "") == "running";
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));

  // Stopped guest: one pass, no dirty-page iteration. Lift the 32 MiB/s
  // default bandwidth cap.
  q.execute("migrate-set-parameters", {{"max-bandwidth", int64_t{1} << 40}});
  if (was_running) q.execute("stop");
  auto resume = [&] {
    if (was_running) {
      try {
        q.execute("cont");
      } catch (const std::exception&) {
      }
    }
  };
  try {
    try {
      q.execute("closefd", {{"fdname", "vmstack-save"}});
    } catch (const QmpError&) {
      // none left over: fine
    }
    q.execute_with_fd("getfd", {{"fdname", "vmstack-save"}}, out.get());
    out.reset();  // QEMU has its own copy now
    q.execute("migrate", {{"uri", "fd:vmstack-save"}});
  } catch (...) {
    resume();
    throw;
  }
  std::string status;
  for (;;) {
    json r;
    try {
      r = q.execute("query-migrate");
    } catch (...) {
      resume();
      throw;
    }
    status = r.value("status", "");
    if (status == "completed") break;
    if (status == "failed" || status == "cancelled") {
      resume();
      throw std::runtime_error("saving to " + path + " failed: " + r.value("error-desc", status));
    }
    if (Clock::now() >= deadline) {
      try {
        q.execute("migrate_cancel");
      } catch (...) {
      }
      resume();
      throw std::runtime_error("saving to " + path + " timed out (status " + status + ")");
    }
    std::this_thread::sleep_for(20ms);
  }
  UniqueFd sync(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (sync) ::fsync(sync.get());
}

void QemuDomain::cancel_save(std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  auto& q = *im.qmp;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::string status = q.execute("query-migrate").value("status", "");
    // Absent (no migration yet), completed, failed or cancelled: none runs.
    if (status.empty() || status == "completed" || status == "failed" || status == "cancelled") return;
    if (status != "cancelling") q.execute("migrate_cancel");
    if (Clock::now() >= deadline) throw std::runtime_error("the interrupted save did not stop (status " + status + ")");
    std::this_thread::sleep_for(20ms);
  }
}

void QemuDomain::stop() {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  if (!im.proc.try_wait()) {
    try {
      im.qmp->execute("quit", nullptr, 2s);
    } catch (const std::exception&) {
      // QMP gone or wedged: fall through to signals
    }
    if (!im.proc.wait_for(5s)) {
      im.proc.kill_group(SIGKILL);
      im.proc.wait_for(10s);
    }
  }
}

bool QemuDomain::wait_exit(std::chrono::milliseconds timeout) { return impl_->proc.wait_for(timeout); }

void QemuDomain::add_disk(const DiskSpec& in) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  DiskSpec d = in;
  {
    DomainSpec probe = im.state.spec;
    probe.disks.push_back(d);
    assign_device_ids(probe);
    d = probe.disks.back();
  }
  if (d.cdrom) throw std::runtime_error("a CD drive cannot be hotplugged (IDE/AHCI): add it while the VM is halted");
  d.port = im.hotplug_port();
  std::string filename = d.path;
  if (im.state.spec.uid >= 0) std::tie(d.fdset, filename) = im.pass_image(d);
  auto nodes = argv::blockdev_nodes(d, filename);
  auto& q = *im.qmp;
  size_t added = 0;
  try {
    for (const auto& n : nodes) {
      q.execute("blockdev-add", json::parse(n));
      ++added;
    }
    json dev{{"driver", "virtio-blk-pci"}, {"id", d.id}, {"drive", argv::node_name(d)}};
    if (!d.port.empty()) dev["bus"] = d.port;
    q.execute("device_add", dev);
  } catch (...) {
    // Undo the nodes already added, newest first.
    const std::string names[2] = {argv::file_node_name(d), argv::node_name(d)};
    for (size_t i = added; i-- > 0;) {
      try {
        q.execute("blockdev-del", {{"node-name", names[i]}});
      } catch (const std::exception&) {
      }
    }
    im.drop_fdset(d.fdset);
    throw;
  }
  im.state.spec.disks.push_back(d);
  save_live_state(im.state);
}

void QemuDomain::remove_disk(const std::string& id) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  auto& disks = im.state.spec.disks;
  auto it = std::find_if(disks.begin(), disks.end(), [&](const DiskSpec& d) { return d.id == id; });
  if (it == disks.end()) throw std::runtime_error("no disk " + id + " in this domain");
  if (it->cdrom) throw std::runtime_error("a CD drive cannot be unplugged; eject its medium instead");
  // Only once the guest has let go are the image's nodes free to close.
  im.unplug(id, "disk");
  for (const auto& n : {argv::node_name(*it), argv::file_node_name(*it)}) im.qmp->execute("blockdev-del", {{"node-name", n}});
  im.drop_fdset(it->fdset);
  disks.erase(it);
  save_live_state(im.state);
}

void QemuDomain::add_nic(const NicSpec& in) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  NicSpec n = in;
  {
    DomainSpec probe = im.state.spec;
    probe.nics.push_back(n);
    assign_device_ids(probe);
    n = probe.nics.back();
  }
  // Validates like the command line does (MAC, tap name, model).
  {
    DomainSpec probe;
    probe.nics = {n};
    argv::Args check;
    argv::nic(check, probe, 0);
  }
  n.port = im.hotplug_port();
  auto& q = *im.qmp;
  if (im.state.spec.uid >= 0) {
    UniqueFd tap = open_tap(n.tap);
    q.execute_with_fd("getfd", {{"fdname", "tap-" + n.id}}, tap.get());
    q.execute("netdev_add", {{"type", "tap"}, {"id", "net-" + n.id}, {"fd", "tap-" + n.id}});
  } else {
    q.execute("netdev_add", {{"type", "tap"}, {"id", "net-" + n.id}, {"ifname", n.tap}, {"script", "no"}, {"downscript", "no"}});
  }
  json dev{{"driver", n.model}, {"id", n.id}, {"netdev", "net-" + n.id}, {"mac", n.mac}};
  if (n.mtu > 0) dev["host_mtu"] = n.mtu;
  if (!n.port.empty()) dev["bus"] = n.port;
  try {
    q.execute("device_add", dev);
  } catch (...) {
    try {
      q.execute("netdev_del", {{"id", "net-" + n.id}});
    } catch (const std::exception&) {
    }
    throw;
  }
  im.state.spec.nics.push_back(n);
  save_live_state(im.state);
}

void QemuDomain::remove_nic(const std::string& id) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  auto& nics = im.state.spec.nics;
  auto it = std::find_if(nics.begin(), nics.end(), [&](const NicSpec& n) { return n.id == id; });
  if (it == nics.end()) throw std::runtime_error("no NIC " + id + " in this domain");
  im.unplug(id, "NIC");
  im.qmp->execute("netdev_del", {{"id", "net-" + id}});
  nics.erase(it);
  save_live_state(im.state);
}

void QemuDomain::change_cd(const std::string& id, const std::string& path) {
  auto& im = *impl_;
  std::lock_guard op(im.op_mu);
  auto& disks = im.state.spec.disks;
  auto it = std::find_if(disks.begin(), disks.end(), [&](const DiskSpec& d) { return d.id == id && d.cdrom; });
  if (it == disks.end()) throw std::runtime_error("no CD drive " + id + " in this domain");
  auto& q = *im.qmp;
  int old_set = it->fdset;
  if (path.empty()) {
    q.execute("eject", {{"id", id}, {"force", true}});
    it->fdset = 0;
  } else {
    DiskSpec media = *it;
    media.path = path;
    std::string filename = path;
    int set = 0;
    if (im.state.spec.uid >= 0) std::tie(set, filename) = im.pass_image(media);
    try {
      q.execute("blockdev-change-medium",
                {{"id", id}, {"filename", filename}, {"format", "raw"}, {"read-only-mode", "read-only"}});
    } catch (...) {
      im.drop_fdset(set);
      throw;
    }
    it->fdset = set;
  }
  im.drop_fdset(old_set);
  it->path = path;
  save_live_state(im.state);
}

void QemuDomain::set_event_handler(EventHandler handler) {
  {
    std::lock_guard lk(impl_->mu);
    impl_->handler = std::move(handler);
  }
  impl_->poke();
}

}  // namespace vmstack::hv
