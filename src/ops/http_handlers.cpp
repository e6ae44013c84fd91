#include "ops/http_handlers.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "api/http_transfer.h"
#include "api/wire_util.h"
#include "core/crash_point.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/strings.h"
#include "ops/sessions.h"
#include "ops/storage.h"
#include "ops/tasks.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kBlock = 1u << 20;  // bytes moved per read/write (and zero check)

// The HTTP status a handler's XenAPI error is answered with.
int status_of(const std::string& code, const char*& reason) {
  if (code == errors::SESSION_INVALID || code == errors::SESSION_AUTHENTICATION_FAILED) {
    reason = "Unauthorized";
    return 401;
  }
  if (code == errors::HANDLE_INVALID || code == errors::UUID_INVALID) {
    reason = "Not Found";
    return 404;
  }
  if (code == errors::INVALID_VALUE || code == errors::VDI_TOO_SMALL || code == errors::VDI_IO_ERROR) {
    reason = "Bad Request";
    return 400;
  }
  if (code == errors::VDI_IN_USE) {
    reason = "Conflict";
    return 409;
  }
  if (code == errors::NOT_IMPLEMENTED) {
    reason = "Not Implemented";
    return 501;
  }
  reason = "Internal Server Error";
  return 500;
}

// A staging file in the daemon's tmp directory, removed when done with.
class StagingFile {
 public:
  explicit StagingFile(const std::string& dir) {
    path_ = dir + "/transfer.XXXXXX";
    fd_.reset(::mkostemp(path_.data(), O_CLOEXEC));
    if (!fd_) throw ApiError(errors::INTERNAL_ERROR, {"cannot make a staging file in " + dir + ": " + std::strerror(errno)});
  }
  ~StagingFile() { ::unlink(path_.c_str()); }
  StagingFile(const StagingFile&) = delete;
  StagingFile& operator=(const StagingFile&) = delete;
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  std::string path_;
  UniqueFd fd_;
};

bool all_zero(const char* p, std::size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Logs a session in for the request's length (HTTP basic auth).
struct BasicLogin {
  Sessions& sessions;
  std::string session;
  ~BasicLogin() {
    if (session.empty()) return;
    try {
      sessions.logout(session);
    } catch (const std::exception&) {
    }
  }
};

}  // namespace

struct HttpHandlers::Exchange {
  api::HttpRequest& rq;
  int fd;
  std::string session;
  std::string task;
  bool head_sent = false;
  api::HttpHeaders task_header() const { return {{"Task-id", task}}; }
};

HttpHandlers::HttpHandlers(model::Store& store, Sessions& sessions, Tasks& tasks, Storage& storage, std::string tmp_dir)
    : store_(store), sessions_(sessions), tasks_(tasks), storage_(storage), tmp_dir_(std::move(tmp_dir)) {
  std::error_code ec;
  fs::remove_all(tmp_dir_, ec);
  fs::create_directories(tmp_dir_);
  fs::permissions(tmp_dir_, fs::perms::owner_all, fs::perm_options::replace);
}

void HttpHandlers::add_routes(api::Server& server) {
  auto route = [&](const char* path, const char* what, Value (HttpHandlers::*h)(Exchange&)) {
    server.add_http_route(path, [this, what, h](api::HttpRequest& rq, int fd) { serve(rq, fd, what, h); });
  };
  route("/import_raw_vdi", "VDI import", &HttpHandlers::import_raw_vdi);
  route("/export_raw_vdi", "VDI export", &HttpHandlers::export_raw_vdi);
  // Routed and authenticated now; the storage work (XVA export and import)
  // and the monitoring work (RRDs) fill them in.
  route("/export", "VM export (XVA)", nullptr);
  route("/import", "VM import (XVA)", nullptr);
  route("/rrd_updates", "RRD updates", nullptr);
  route("/vm_rrd", "VM RRD", nullptr);
  route("/host_rrd", "host RRD", nullptr);
}

void HttpHandlers::serve(api::HttpRequest& rq, int fd, const char* what, Value (HttpHandlers::*handler)(Exchange&)) {
  Exchange x{rq, fd, {}, {}};
  BasicLogin login{sessions_, {}};
  // Who is asking: session_id= (query or cookie) or basic auth, as xapi.
  x.session = api::query_param(rq.target, "session_id");
  if (x.session.empty()) x.session = api::cookie_value(rq, "session_id");
  try {
    if (!x.session.empty()) {
      sessions_.check(x.session);
    } else if (auto creds = api::basic_credentials(rq)) {
      login.session = sessions_.login(creds->first, creds->second, "HTTP basic auth", rq.peer_uid, rq.peer_address);
      x.session = login.session;
    } else {
      api::send_text(fd, 401, "Unauthorized", "session_id= or HTTP basic auth required\n",
                     {{"WWW-Authenticate", "Basic realm=\"xapi\""}});
      return;
    }
  } catch (const ApiError& e) {
    api::send_text(fd, 401, "Unauthorized", join(e.description(), " ") + "\n",
                   {{"WWW-Authenticate", "Basic realm=\"xapi\""}});
    return;
  }
  // Its task: the client's (task_id=), or one of ours, which goes when the
  // request is done (as xapi's exec_with_new_task): a client that wants to
  // read how a transfer ended makes its own.
  x.task = api::query_param(rq.target, "task_id");
  if (x.task.empty()) x.task = api::cookie_value(rq, "task_id");
  struct OwnTask {
    model::Store& store;
    std::string ref;
    ~OwnTask() {
      if (ref.empty()) return;
      try {
        store.destroy("task", ref);
      } catch (const std::exception&) {
      }
    }
  } own{store_, {}};
  if (!x.task.empty()) {
    if (!store_.exists("task", x.task)) {
      api::send_text(fd, 404, "Not Found", std::string(errors::HANDLE_INVALID) + " task " + x.task + "\n");
      return;
    }
    if (store_.get_field("task", x.task, "status").as_string() != "pending" || !tasks_.adopt(x.task)) {
      api::send_text(fd, 400, "Bad Request", "the task " + x.task + " is not pending, or carries another transfer\n");
      return;
    }
  } else {
    x.task = own.ref = tasks_.create(what, x.session);
    tasks_.adopt(x.task);
  }
  try {
    if (!handler)
      throw ApiError(errors::NOT_IMPLEMENTED, {std::string(api::target_path(rq.target)) + ": " + what +
                                                  " is not available on this host yet"});
    Value result = (this->*handler)(x);
    // The task is done before the answer goes: a client that reads it on
    // the answer finds it finished.
    tasks_.finish(x.task, &result, nullptr);
    if (!x.head_sent) api::send_text(fd, 200, "OK", "", x.task_header());
  } catch (const ApiError& e) {
    spdlog::info("{} {}: {}", rq.method, api::target_path(rq.target), join(e.description(), " "));
    tasks_.finish(x.task, nullptr, &e.description());
    if (!x.head_sent) {
      const char* reason = nullptr;
      int code = status_of(e.code(), reason);
      api::send_text(fd, code, reason, join(e.description(), " ") + "\n", x.task_header());
    }
  } catch (const std::exception& e) {
    // The client broke the framing, left or stalled: the task says so.
    spdlog::info("{} {}: {}", rq.method, api::target_path(rq.target), e.what());
    std::vector<std::string> err{errors::VDI_IO_ERROR, e.what()};
    tasks_.finish(x.task, nullptr, &err);
    if (!x.head_sent) api::send_text(fd, 400, "Bad Request", std::string(e.what()) + "\n", x.task_header());
  }
}

std::string HttpHandlers::resolve_vdi(const std::string& given) const {
  if (given.empty()) throw ApiError(errors::INVALID_VALUE, {"vdi", ""});
  if (store_.exists("VDI", given)) return given;
  if (starts_with(given, "OpaqueRef:")) throw ApiError(errors::HANDLE_INVALID, {"VDI", given});
  return store_.ref_by_uuid("VDI", given);  // UUID_INVALID
}

namespace {

std::string format_param(const api::HttpRequest& rq) {
  std::string f = api::query_param(rq.target, "format");
  if (f.empty()) return "raw";
  if (f != "raw" && f != "vhd" && f != "qcow2") throw ApiError(errors::INVALID_VALUE, {"format", f});
  return f;
}

}  // namespace

// PUT /import_raw_vdi?vdi=<ref|uuid>[&format=raw|vhd|qcow2]: the body
// replaces the disk's contents. Without vdi=, sr_id=<SR> and a raw body of
// known length make a new VDI of that size (xapi's "Imported VDI").
Value HttpHandlers::import_raw_vdi(Exchange& x) {
  const std::string format = format_param(x.rq);
  api::HttpBodyReader body(x.fd, x.rq);
  body.end_at_close_beyond(uint64_t{1} << 50);  // Xen Orchestra's length for "unknown"
  std::string vdi;
  std::string given = api::query_param(x.rq.target, "vdi");
  if (given.empty()) {
    std::string sr = api::query_param(x.rq.target, "sr_id");
    if (sr.empty()) throw ApiError(errors::INVALID_VALUE, {"vdi", ""});
    if (!store_.exists("SR", sr)) throw ApiError(errors::HANDLE_INVALID, {"SR", sr});
    if (format != "raw") throw ApiError(errors::INVALID_VALUE, {"format", format + " (a new VDI takes a raw image)"});
    if (!body.length() || *body.length() == 0)
      throw ApiError(errors::INVALID_VALUE, {"Content-Length", "a new VDI's size comes from the body's length"});
    vdi = storage_.vdi_create(sr, "Imported VDI", static_cast<int64_t>(*body.length()), "user");
  } else {
    vdi = resolve_vdi(given);
  }
  auto hold = storage_.hold_for_transfer(vdi, "import_raw_vdi");
  // As xapi: the answer goes before the body is read (xapi's xe and Xen
  // Orchestra wait for it before they send); from here on the task alone
  // says how the import ended.
  api::send_continue(x.fd, x.rq);
  x.head_sent = true;
  api::HttpHeaders h = x.task_header();
  h.emplace_back("Content-Type", "text/plain");
  if (!api::send_head(x.fd, 200, "OK", h, std::nullopt)) throw ApiError(errors::VDI_IO_ERROR, {"the client left"});
  StagingFile staging(tmp_dir_);
  std::vector<char> buf(kBlock);
  uint64_t written = 0, next_progress = 16 * kBlock;
  for (;;) {
    std::size_t n = 0;
    // A whole block at a time, so zero blocks are seen as such.
    while (n < buf.size()) {
      std::size_t got = body.read(buf.data() + n, buf.size() - n);
      if (got == 0) break;
      n += got;
    }
    if (n == 0) break;
    // Zero blocks stay holes: a mostly empty raw disk costs what it holds.
    if (!(format == "raw" && all_zero(buf.data(), n))) {
      std::size_t off = 0;
      while (off < n) {
        ssize_t w = ::pwrite(staging.fd(), buf.data() + off, n - off, static_cast<off_t>(written + off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw ApiError(errors::VDI_IO_ERROR, {std::string("staging the upload: ") + std::strerror(errno)});
        off += static_cast<std::size_t>(w);
      }
    }
    written += n;
    if (body.length() && written >= next_progress) {
      tasks_.set_progress(x.task, 0.9 * static_cast<double>(written) / static_cast<double>(*body.length()));
      next_progress = written + 16 * kBlock;
    }
    if (n < buf.size()) break;
  }
  // An empty body changes nothing (Xen Orchestra probes with one first).
  if (written == 0) return Value(vdi);
  if (::ftruncate(staging.fd(), static_cast<off_t>(written)) != 0)
    throw ApiError(errors::VDI_IO_ERROR, {std::string("staging the upload: ") + std::strerror(errno)});
  staging.close();
  crash_point("import_raw_vdi.staged");
  storage_.vdi_import(vdi, staging.path(), format);
  return Value(vdi);
}

// GET (or HEAD) /export_raw_vdi?vdi=<ref|uuid>[&format=raw|vhd|qcow2]: the
// disk's contents, with their length, as an attachment named after it.
Value HttpHandlers::export_raw_vdi(Exchange& x) {
  const std::string format = format_param(x.rq);
  const std::string vdi = resolve_vdi(api::query_param(x.rq.target, "vdi"));
  auto hold = storage_.hold_for_transfer(vdi, "export_raw_vdi");
  StagingFile staging(tmp_dir_);
  staging.close();  // qemu-img writes it anew
  storage_.vdi_export(vdi, format, staging.path());
  UniqueFd in(::open(staging.path().c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (!in || ::fstat(in.get(), &st) != 0)
    throw ApiError(errors::VDI_IO_ERROR, {std::string("reading the export: ") + std::strerror(errno)});
  tasks_.set_progress(x.task, 0.5);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string name = store_.get_field("VDI", vdi, "uuid").as_string() + "." + format;
  api::HttpHeaders h = x.task_header();
  h.emplace_back("Content-Type", "application/octet-stream");
  h.emplace_back("Content-Disposition", "attachment; filename=\"" + name + "\"");
  x.head_sent = true;
  if (!api::send_head(x.fd, 200, "OK", h, size)) throw ApiError(errors::VDI_IO_ERROR, {"the client left"});
  if (x.rq.method == "HEAD") return Value();
  std::vector<char> buf(kBlock);
  uint64_t sent = 0, next_progress = 16 * kBlock;
  while (sent < size) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ApiError(errors::VDI_IO_ERROR, {"the export ended early"});
    if (!api::detail::send_all(x.fd, std::string_view(buf.data(), static_cast<std::size_t>(n))))
      throw ApiError(errors::VDI_IO_ERROR, {"the client left after " + std::to_string(sent) + " bytes"});
    sent += static_cast<uint64_t>(n);
    if (sent >= next_progress) {
      tasks_.set_progress(x.task, 0.5 + 0.5 * static_cast<double>(sent) / static_cast<double>(size));
      next_progress = sent + 16 * kBlock;
    }
  }
  return Value();
}

}  // namespace vmstack::ops
