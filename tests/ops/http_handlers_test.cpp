// xapi's HTTP handlers beside the RPC endpoint (ops/http_handlers.h), over
// the daemon's unix socket on the fake hypervisor: a disk's bytes in and
// out in each format with real qemu-img, authentication as xapi's
// (session_id=, cookie, basic auth), the client's task or one of the
// handler's own, and every refusal with its XenAPI error.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/fd.h"
#include "core/process.h"
#include "daemon_fixture.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kSize = 8 << 20;

struct Reply {
  int code = 0;
  std::string head, body;
  std::string header(const std::string& name) const {
    auto p = head.find("\r\n" + name + ": ");
    if (p == std::string::npos) return {};
    p += name.size() + 4;
    return head.substr(p, head.find("\r\n", p) - p);
  }
};

UniqueFd connect_unix(const std::string& path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return {};
  return s;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Reply read_reply(int fd) {
  std::string all;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  Reply r;
  auto end = all.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = all.substr(0, end + 2);
  r.body = all.substr(end + 4);
  std::sscanf(all.c_str(), "HTTP/1.%*d %d", &r.code);
  return r;
}

// One request (head and body as given), the whole answer read until close.
Reply http(const std::string& socket, const std::string& head, std::string_view body = {}) {
  UniqueFd s = connect_unix(socket);
  if (!s) return {};
  send_all(s.get(), head);
  send_all(s.get(), body);
  ::shutdown(s.get(), SHUT_WR);
  return read_reply(s.get());
}

std::string pattern(int64_t size, char seed) {
  std::string d(static_cast<size_t>(size), '\0');
  for (int64_t i = 0; i < size; i += 4096) d[static_cast<size_t>(i)] = static_cast<char>(seed + i / 4096);
  d.replace(100, 11, "vmstack-raw");
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class HttpHandlersTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 2, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);
  std::string sr = call(*c, "pool.get_default_SR", {s, call(*c, "pool.get_all", {s}).as_array().at(0)}).as_string();

  std::string new_vdi(int64_t size = kSize) {
    return call(*c, "VDI.create", {s, Struct{{"name_label", "disk"},
                                             {"SR", sr},
                                             {"virtual_size", size},
                                             {"type", "user"},
                                             {"sharable", false},
                                             {"read_only", false},
                                             {"other_config", Struct{}},
                                             {"xenstore_data", Struct{}},
                                             {"sm_config", Struct{}},
                                             {"tags", Array{}}}})
        .as_string();
  }
  Reply put(const std::string& query, std::string_view body, const std::string& extra = {}) {
    return http(d.socket(), "PUT /import_raw_vdi?" + query + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n" + extra + "\r\n",
                body);
  }
  Reply get(const std::string& path_query, const std::string& extra = {}) {
    return http(d.socket(), "GET " + path_query + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
  }
  // "&task_id=<a new task of the client's>": the handler writes how the
  // request ended there (a task of its own goes when it is done).
  std::string t() { return "&task_id=" + call(*c, "task.create", {s, "test", ""}).as_string(); }
  // The task the handler reported, once it has finished.
  Struct finished(const std::string& task) {
    for (int i = 0; i < 500; ++i) {
      auto rec = call(*c, "task.get_record", {s, task}).as_struct();
      if (rec.at("status").as_string() != "pending") return rec;
      std::this_thread::sleep_for(10ms);
    }
    return {};
  }
  std::string exported(const std::string& vdi, const std::string& format = "raw") {
    auto r = get("/export_raw_vdi?session_id=" + s + "&vdi=" + vdi + "&format=" + format);
    EXPECT_EQ(r.code, 200) << r.head << r.body;
    return r.body;
  }
};

TEST_F(HttpHandlersTest, RawVhdAndQcow2RoundTrip) {
  auto vdi = new_vdi();
  const std::string data = pattern(kSize, 'a');
  auto r = put("session_id=" + s + "&vdi=" + vdi + "&format=raw" + t(), data);
  ASSERT_EQ(r.code, 200) << r.head << r.body;
  auto task = r.header("Task-id");
  ASSERT_FALSE(task.empty()) << r.head;
  auto rec = finished(task);
  EXPECT_EQ(rec.at("status").as_string(), "success") << Value(rec).to_display();
  EXPECT_NE(rec.at("result").as_string().find(vdi), std::string::npos);
  EXPECT_EQ(exported(vdi), data);

  // Exported as VHD and qcow2, each imports back to the same bytes.
  auto vhd = get("/export_raw_vdi?session_id=" + s + "&vdi=" + vdi + "&format=vhd");
  ASSERT_EQ(vhd.code, 200);
  ASSERT_GE(vhd.body.size(), 512u);
  EXPECT_EQ(vhd.body.substr(vhd.body.size() - 512, 8), "conectix");  // the VHD footer
  auto uuid = call(*c, "VDI.get_uuid", {s, vdi}).as_string();
  EXPECT_EQ(vhd.header("Content-Disposition"), "attachment; filename=\"" + uuid + ".vhd\"");
  auto q = get("/export_raw_vdi?session_id=" + s + "&vdi=" + uuid + "&format=qcow2");  // by uuid too
  ASSERT_EQ(q.code, 200);
  EXPECT_EQ(q.body.substr(0, 4), "QFI\xfb");

  auto other = new_vdi();
  ASSERT_EQ(put("session_id=" + s + "&vdi=" + other + "&format=vhd", vhd.body).code, 200);
  EXPECT_EQ(exported(other), data);
  auto third = new_vdi();
  ASSERT_EQ(put("session_id=" + s + "&vdi=" + third + "&format=qcow2", q.body).code, 200);
  EXPECT_EQ(exported(third), data);
  EXPECT_EQ(call(*c, "VDI.get_virtual_size", {s, third}).as_int(), kSize);

  // HEAD: the length without the bytes.
  auto h = http(d.socket(), "HEAD /export_raw_vdi?session_id=" + s + "&vdi=" + vdi + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.code, 200);
  EXPECT_EQ(h.header("Content-Length"), std::to_string(kSize));
  EXPECT_TRUE(h.body.empty());
}

TEST_F(HttpHandlersTest, ChunkedAndCloseDelimitedBodiesAndAShorterImage) {
  auto vdi = new_vdi();
  ASSERT_EQ(put("session_id=" + s + "&vdi=" + vdi, pattern(kSize, 'x')).code, 200);
  // Chunked: two chunks with an extension, then a trailer.
  const std::string part = pattern(1 << 20, 'c');
  std::ostringstream chunked;
  chunked << std::hex << 4096 << ";ext=1\r\n" << part.substr(0, 4096) << "\r\n"
          << (part.size() - 4096) << "\r\n" << part.substr(4096) << "\r\n0\r\nX-Trailer: 1\r\n\r\n";
  auto r = http(d.socket(),
                "PUT /import_raw_vdi?session_id=" + s + "&vdi=" + vdi + t() +
                    " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                chunked.str());
  ASSERT_EQ(r.code, 200) << r.head << r.body;
  EXPECT_EQ(finished(r.header("Task-id")).at("status").as_string(), "success");
  // A shorter image replaces the whole disk: the rest reads as zeros.
  std::string expect = part + std::string(kSize - part.size(), '\0');
  EXPECT_EQ(exported(vdi), expect);

  // Neither length nor chunks (HTTP/1.0, xapi's xe from a pipe): the body
  // ends when the client closes its side.
  const std::string small = pattern(64 << 10, 'p');
  r = http(d.socket(), "PUT /import_raw_vdi?session_id=" + s + "&vdi=" + vdi + t() + " HTTP/1.0\r\n\r\n", small);
  ASSERT_EQ(r.code, 200);
  EXPECT_EQ(finished(r.header("Task-id")).at("status").as_string(), "success");
  EXPECT_EQ(exported(vdi).substr(0, small.size()), small);

  // An empty body changes nothing (Xen Orchestra probes with one).
  ASSERT_EQ(put("session_id=" + s + "&vdi=" + vdi, "").code, 200);
  EXPECT_EQ(exported(vdi).substr(0, small.size()), small);

  // Without vdi=, sr_id= and a raw body make a new VDI of the body's size.
  r = put("session_id=" + s + "&sr_id=" + sr + t(), small);
  ASSERT_EQ(r.code, 200);
  auto rec = finished(r.header("Task-id"));
  ASSERT_EQ(rec.at("status").as_string(), "success");
  auto made = call(*c, "VDI.get_by_name_label", {s, "Imported VDI"}).as_array();
  ASSERT_EQ(made.size(), 1u);
  EXPECT_NE(rec.at("result").as_string().find(made[0].as_string()), std::string::npos);
  EXPECT_EQ(call(*c, "VDI.get_virtual_size", {s, made[0]}).as_int(), static_cast<int64_t>(small.size()));
  EXPECT_EQ(exported(made[0].as_string()), small);
}

TEST_F(HttpHandlersTest, AuthenticatesAsXapiDoes) {
  auto vdi = new_vdi(1 << 20);
  const std::string q = "/export_raw_vdi?vdi=" + vdi;
  auto r = get(q);
  EXPECT_EQ(r.code, 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), "Basic realm=\"xapi\"");
  r = get(q + "&session_id=OpaqueRef:forged");
  EXPECT_EQ(r.code, 401);
  EXPECT_NE(r.body.find("SESSION_INVALID"), std::string::npos) << r.body;
  EXPECT_EQ(get(q, "Cookie: theme=dark; session_id=" + s + "\r\n").code, 200);
  // Basic auth: a login for the request alone (logged out after it).
  std::string password = slurp(dir.path() + "/root-password");
  while (!password.empty() && password.back() == '\n') password.pop_back();
  auto b64 = [](const std::string& in) {
    auto r = run_command({"base64", "-w0"}, 10s, in);
    return r.out;
  };
  auto sessions_before = d.daemon().store().all("session").size();
  EXPECT_EQ(get(q, "Authorization: Basic " + b64("root:" + password) + "\r\n").code, 200);
  EXPECT_EQ(d.daemon().store().all("session").size(), sessions_before);
  r = get(q, "Authorization: Basic " + b64("root:wrong") + "\r\n");
  EXPECT_EQ(r.code, 401);
  EXPECT_NE(r.body.find("SESSION_AUTHENTICATION_FAILED"), std::string::npos) << r.body;
}

TEST_F(HttpHandlersTest, ClientTasksAndRefusalsCarryXapiErrors) {
  auto vdi = new_vdi();
  auto before = pattern(kSize, 'k');
  ASSERT_EQ(put("session_id=" + s + "&vdi=" + vdi, before).code, 200);

  // The client's own task: the handler writes its status and result.
  auto task = call(*c, "task.create", {s, "upload", "mine"}).as_string();
  auto r = put("session_id=" + s + "&task_id=" + task + "&vdi=" + vdi, before);
  ASSERT_EQ(r.code, 200);
  EXPECT_EQ(r.header("Task-id"), task);
  auto rec = finished(task);
  EXPECT_EQ(rec.at("status").as_string(), "success");
  EXPECT_EQ(rec.at("progress").as_double(), 1.0);
  // A task of the handler's own goes when the request is done, as xapi's.
  auto tasks_before = call(*c, "task.get_all", {s}).as_array().size();
  r = put("session_id=" + s + "&vdi=" + vdi, before);
  ASSERT_EQ(r.code, 200);
  ASSERT_TRUE(r.header("Task-id").rfind("OpaqueRef:", 0) == 0) << r.head;
  EXPECT_EQ(failure(*c, "task.get_record", {s, r.header("Task-id")}).at(0), "HANDLE_INVALID");
  EXPECT_EQ(call(*c, "task.get_all", {s}).as_array().size(), tasks_before);
  for (int i = 0; i < 5; ++i) get("/rrd_updates?start=0&session_id=" + s);  // polled, as Xen Orchestra does
  EXPECT_EQ(call(*c, "task.get_all", {s}).as_array().size(), tasks_before);
  // A finished task cannot carry another transfer.
  EXPECT_EQ(put("session_id=" + s + "&task_id=" + task + "&vdi=" + vdi, before).code, 400);
  EXPECT_EQ(put("session_id=" + s + "&task_id=OpaqueRef:gone&vdi=" + vdi, before).code, 404);

  // Refused before the body, with the code as the HTTP status.
  r = put("session_id=" + s + "&vdi=OpaqueRef:nope" + t(), "x");
  EXPECT_EQ(r.code, 404);
  EXPECT_NE(r.body.find("HANDLE_INVALID VDI OpaqueRef:nope"), std::string::npos) << r.body;
  EXPECT_EQ(finished(r.header("Task-id")).at("error_info").as_array().at(0).as_string(), "HANDLE_INVALID");
  r = put("session_id=" + s + "&vdi=" + vdi + "&format=vmdk", "x");
  EXPECT_EQ(r.code, 400);
  EXPECT_NE(r.body.find("INVALID_VALUE format vmdk"), std::string::npos) << r.body;
  for (const char* path : {"/rrd_updates?start=0", "/vm_rrd?uuid=x", "/host_rrd?json=true", "/export?uuid=x"}) {
    r = get(std::string(path) + "&session_id=" + s);
    EXPECT_EQ(r.code, 501) << path;
    EXPECT_NE(r.body.find("NOT_IMPLEMENTED"), std::string::npos) << path << r.body;
  }
  r = http(d.socket(), "PUT /import?session_id=" + s + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", "x");
  EXPECT_EQ(r.code, 501);

  // Accepted, then failed in the task: an image larger than the disk, and
  // a qcow2 that names a host file as its backing file. The disk keeps
  // what it had.
  r = put("session_id=" + s + "&vdi=" + vdi + t(), pattern(kSize + 4096, 'b'));
  ASSERT_EQ(r.code, 200);
  auto info = finished(r.header("Task-id")).at("error_info").as_array();
  ASSERT_EQ(info.size(), 3u);
  EXPECT_EQ(info[0].as_string(), "VDI_TOO_SMALL");
  EXPECT_EQ(info[1].as_string(), vdi);
  EXPECT_EQ(info[2].as_string(), std::to_string(kSize + 4096));
  const std::string evil = dir.path() + "/evil.qcow2";
  ASSERT_TRUE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", evil, "1M"}, 30s).ok());
  r = put("session_id=" + s + "&vdi=" + vdi + "&format=qcow2" + t(), slurp(evil));
  ASSERT_EQ(r.code, 200);
  info = finished(r.header("Task-id")).at("error_info").as_array();
  ASSERT_FALSE(info.empty());
  EXPECT_EQ(info[0].as_string(), "VDI_IO_ERROR");
  EXPECT_NE(Value(info).to_display().find("backing file"), std::string::npos) << Value(info).to_display();
  EXPECT_EQ(exported(vdi), before);
  // A client that leaves mid-body: the task says so, the disk is unchanged.
  r = http(d.socket(), "PUT /import_raw_vdi?session_id=" + s + "&vdi=" + vdi + t() +
                           " HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
           "only a little");
  ASSERT_EQ(r.code, 200);
  info = finished(r.header("Task-id")).at("error_info").as_array();
  ASSERT_FALSE(info.empty());
  EXPECT_EQ(info[0].as_string(), "VDI_IO_ERROR");
  EXPECT_EQ(exported(vdi), before);
  // Nothing staged is left behind.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/tmp"));
}

TEST_F(HttpHandlersTest, ADiskInUseIsNotTransferredAndATransferHoldsIt) {
  auto vm = install_demo_vm(*c, s, "user");
  auto vdi = new_vdi(1 << 20);
  call(*c, "VBD.create", {s, Struct{{"VM", vm},
                                    {"VDI", vdi},
                                    {"userdevice", "1"},
                                    {"bootable", false},
                                    {"mode", "RW"},
                                    {"type", "Disk"},
                                    {"empty", false},
                                    {"other_config", Struct{}},
                                    {"qos_algorithm_type", ""},
                                    {"qos_algorithm_params", Struct{}}}});
  call(*c, "VM.start", {s, vm, false, false});
  auto r = put("session_id=" + s + "&vdi=" + vdi, "data");
  EXPECT_EQ(r.code, 409);
  EXPECT_NE(r.body.find("VDI_IN_USE " + vdi + " import_raw_vdi"), std::string::npos) << r.body;
  EXPECT_EQ(get("/export_raw_vdi?session_id=" + s + "&vdi=" + vdi).code, 409);
  call(*c, "VM.hard_shutdown", {s, vm});

  // While an upload is under way the disk cannot be started on, destroyed
  // or transferred again.
  UniqueFd up = connect_unix(d.socket());
  ASSERT_TRUE(up);
  ASSERT_TRUE(send_all(up.get(), "PUT /import_raw_vdi?session_id=" + s + "&vdi=" + vdi +
                                     " HTTP/1.1\r\nHost: x\r\nContent-Length: 8192\r\n\r\n" + std::string(4096, 'u')));
  char head[16] = {};
  ASSERT_GT(::recv(up.get(), head, sizeof head - 1, 0), 0);
  EXPECT_EQ(std::string(head).substr(0, 12), "HTTP/1.1 200");
  auto f = failure(*c, "VM.start", {s, vm, false, false});
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0], "VDI_IN_USE");
  f = failure(*c, "VDI.destroy", {s, vdi});
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0], "VDI_IN_USE");
  EXPECT_EQ(get("/export_raw_vdi?session_id=" + s + "&vdi=" + vdi).code, 409);
  ASSERT_TRUE(send_all(up.get(), std::string(4096, 'v')));
  ::shutdown(up.get(), SHUT_WR);
  read_reply(up.get());
  auto data = exported(vdi);
  EXPECT_EQ(data.substr(0, 8192), std::string(4096, 'u') + std::string(4096, 'v'));
  call(*c, "VM.start", {s, vm, false, false});  // held no more
  call(*c, "VM.hard_shutdown", {s, vm});
}

}  // namespace
}  // namespace vmstack::test
