// xe vdi-import / vdi-export: the disk's bytes move over HTTP between this
// xe and the daemon's /import_raw_vdi and /export_raw_vdi handlers, as
// xapi's xe moves them; the daemon's task says how the transfer ended.
// They run here, not in the daemon (thin::runs_in_client): the file is the
// client's.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "api/wire_util.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/xe_errors.h"
#include "core/error.h"
#include "core/fd.h"

namespace vmstack::cli {

namespace {

constexpr std::size_t kBlock = 1u << 20;

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out.push_back(static_cast<char>(c));
    else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// A task made for the transfer, destroyed when done with.
class TransferTask {
 public:
  TransferTask(Session& s, const std::string& label) : session_(s) {
    ref_ = s.call("task.create", {label, "xe " + label}).as_string();
  }
  ~TransferTask() {
    try {
      session_.call("task.destroy", {ref_});
    } catch (const std::exception&) {
    }
  }
  const std::string& ref() const { return ref_; }
  // Waits for the daemon to finish the task; its failure is thrown as the
  // XenAPI error it records.
  void wait() {
    for (;;) {
      auto status = session_.call("task.get_status", {ref_}).as_string();
      if (status == "success") return;
      if (status == "failure" || status == "cancelled") {
        std::vector<std::string> info;
        for (const auto& v : session_.call("task.get_error_info", {ref_}).as_array()) info.push_back(v.to_display());
        if (info.empty()) info.push_back(errors::INTERNAL_ERROR);
        std::string code = info.front();
        info.erase(info.begin());
        throw ApiError(code, info);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  Session& session_;
  std::string ref_;
};

std::string vdi_ref(Context& ctx) {
  return ctx.session().call("VDI.get_by_uuid", {*ctx.args.get("uuid")}).as_string();
}

std::string format_arg(Context& ctx) {
  std::string f = ctx.args.get_or("format", "raw");
  if (f != "raw" && f != "vhd" && f != "qcow2") throw failure("Unknown format: " + f + " (raw, vhd or qcow2)");
  return f;
}

std::string target_for(const char* path, Context& ctx, const TransferTask& task, const std::string& vdi,
                       const std::string& format) {
  return std::string(path) + "?session_id=" + url_encode(ctx.session().ref()) + "&task_id=" + url_encode(task.ref()) +
         "&vdi=" + url_encode(vdi) + "&format=" + format;
}

// What the daemon said when it did not take the transfer.
[[noreturn]] void refused(int code, const std::string& status, const std::string& body) {
  std::string why = body;
  while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
  throw failure("The server refused the transfer (HTTP " + std::to_string(code) + "): " +
                (why.empty() ? status : why));
}

int do_vdi_import(Context& ctx) {
  if (!ctx.endpoint()) throw failure("vdi-import needs a connection to the daemon");
  const std::string filename = *ctx.args.get("filename"), format = format_arg(ctx);
  UniqueFd file(::open(filename.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) throw failure("file '" + filename + "' does not exist or cannot be read: " + std::strerror(errno));
  struct stat st{};
  ::fstat(file.get(), &st);
  const std::string vdi = vdi_ref(ctx);
  TransferTask task(ctx.session(), "VDI import");
  UniqueFd sock = connect_endpoint(*ctx.endpoint());
  // A regular file's length is told; a pipe's body ends when xe closes its
  // side, as xapi's xe sends it.
  std::string head = "PUT " + target_for("/import_raw_vdi", ctx, task, vdi, format) + " HTTP/1.0\r\n";
  if (S_ISREG(st.st_mode)) head += "Content-Length: " + std::to_string(st.st_size) + "\r\n";
  head += "User-Agent: xe\r\n\r\n";
  std::string status, early;
  // The daemon answers once it has taken the transfer, before the body.
  int code = open_request(sock.get(), head, status, early);
  if (code != 200) refused(code, status, early);
  std::vector<char> buf(kBlock);
  for (;;) {
    ssize_t n = ::read(file.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw failure("reading '" + filename + "': " + std::strerror(errno));
    if (n == 0) break;
    // A daemon that stopped reading has failed the task: it says why.
    if (!api::detail::send_all(sock.get(), std::string_view(buf.data(), static_cast<std::size_t>(n)))) break;
  }
  ::shutdown(sock.get(), SHUT_WR);
  char drain[256];
  while (::read(sock.get(), drain, sizeof drain) > 0) {
  }
  task.wait();
  return 0;
}

int do_vdi_export(Context& ctx) {
  if (!ctx.endpoint()) throw failure("vdi-export needs a connection to the daemon");
  const std::string filename = *ctx.args.get("filename"), format = format_arg(ctx);
  const std::string vdi = vdi_ref(ctx);
  TransferTask task(ctx.session(), "VDI export");
  UniqueFd sock = connect_endpoint(*ctx.endpoint());
  std::string status, early;
  int code = open_request(sock.get(),
                          "GET " + target_for("/export_raw_vdi", ctx, task, vdi, format) +
                              " HTTP/1.0\r\nUser-Agent: xe\r\n\r\n",
                          status, early);
  if (code != 200) refused(code, status, early);
  // As xapi's xe: a new file, private to its owner; never one overwritten.
  UniqueFd out(::open(filename.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) throw failure("cannot create '" + filename + "': " + std::strerror(errno));
  if (!api::detail::write_all(out.get(), early.data(), early.size())) throw failure("writing '" + filename + "': " + std::strerror(errno));
  std::vector<char> buf(kBlock);
  for (;;) {
    ssize_t n = ::read(sock.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!api::detail::write_all(out.get(), buf.data(), static_cast<std::size_t>(n)))
      throw failure("writing '" + filename + "': " + std::strerror(errno));
  }
  if (::fsync(out.get()) != 0 && errno != EINVAL) throw failure("writing '" + filename + "': " + std::strerror(errno));
  task.wait();
  return 0;
}

}  // namespace

void add_transfer_commands(CommandTable& t) {
  t.add({"vdi-import", {"uuid", "filename"}, {"format"},
         "Import a disk image into a VDI, replacing its contents (format=raw, vhd or qcow2; default raw). The "
         "image may not be larger than the VDI.",
         kStandard, nullptr, KeySource::Fixed, do_vdi_import});
  t.add({"vdi-export", {"uuid", "filename"}, {"format"},
         "Export a VDI's contents to a new file (format=raw, vhd or qcow2; default raw).", kStandard, nullptr,
         KeySource::Fixed, do_vdi_export});
}

}  // namespace vmstack::cli
