// Interoperability with clients we did not write: Python's standard-library
// xmlrpc.client and urllib (the way XenAPI.py talks), and curl running as an
// unprivileged user (socket permissions and SO_PEERCRED).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "api/server.h"
#include "core/process.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace vmstack::api::test;
namespace fs = std::filesystem;

namespace {

// First `name` on PATH (or in the usual system dirs), empty if none.
std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

// The script checks everything itself and prints "ok" at the end; any
// assertion error shows up in stderr.
constexpr const char* kPythonClient = R"PY(
import datetime, http.client, json, os, socket, sys, urllib.request, xmlrpc.client

port, sock_path = int(sys.argv[1]), sys.argv[2]

def check(proxy):
    r = proxy.VM.get_record("OpaqueRef:x")
    assert r["Status"] == "Success", r
    v = r["Value"]
    assert v["name_label"] == "vm <&> \u00e9", v
    assert int(v["memory_static_max"]) == 4 << 30, v   # ints arrive as strings, as from xapi
    assert v["is_a_template"] is False, v
    assert v["VBDs"] == ["OpaqueRef:a", "OpaqueRef:b"], v
    assert v["other_config"] == {"k": "v"}, v
    r = proxy.fail()
    assert r == {"Status": "Failure", "ErrorDescription": ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]}, r
    r = proxy.crash()
    assert r == {"Status": "Failure", "ErrorDescription": ["INTERNAL_ERROR", "kaboom"]}, r
    when = datetime.datetime(2026, 11, 23, 10, 58, 15)
    r = proxy.echo(42, 2.5, True, None, when, {"k": [1, "x"]}, "s\u20ac", b"bytes")
    assert r["Status"] == "Success", r
    # Datetimes come back in xapi's form with a trailing Z, which
    # xmlrpc.client keeps as a DateTime (its use_builtin_types parser would
    # reject the Z, exactly as against a real xapi).
    assert r["Value"] == ["42", 2.5, True, None, xmlrpc.client.DateTime("20261123T10:58:15Z"), {"k": ["1", "x"]},
                          "s\u20ac", "bytes"], r["Value"]
    for i in range(50):   # one kept-alive connection
        assert proxy.echo(i)["Value"] == [str(i)]

# TCP, explicit "/" and xmlrpc.client's default path /RPC2.
check(xmlrpc.client.ServerProxy("http://127.0.0.1:%d/" % port, allow_none=True))
check(xmlrpc.client.ServerProxy("http://127.0.0.1:%d" % port, allow_none=True))

# The unix socket, as in docs/api.md.
class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)

class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.unix_path = path
    def make_connection(self, host):
        return UnixConnection(self.unix_path)

proxy = xmlrpc.client.ServerProxy("http://localhost/", transport=UnixTransport(sock_path), allow_none=True)
check(proxy)
who = proxy.whoami()["Value"]
assert who == {"uid": str(os.getuid()), "addr": "unix"}, who

# JSON-RPC v1 and v2 over plain HTTP.
def post(body):
    req = urllib.request.Request("http://127.0.0.1:%d/jsonrpc" % port, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        return json.load(resp)

r = post({"jsonrpc": "2.0", "method": "fail", "params": [], "id": 7})
assert r == {"jsonrpc": "2.0", "error": {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", "OpaqueRef:nope"]},
             "id": 7}, r
r = post({"jsonrpc": "2.0", "method": "VM.get_record", "params": ["OpaqueRef:x"], "id": "a"})
assert r["id"] == "a" and r["result"]["memory_static_max"] == 4 << 30, r
r = post({"method": "echo", "params": [1, 2.0, None], "id": 3})
assert r == {"result": [1, 2.0, None], "error": None, "id": 3}, r
r = post({"method": "fail", "params": [], "id": 4})
assert r == {"result": None, "error": ["HANDLE_INVALID", "VM", "OpaqueRef:nope"], "id": 4}, r
print("ok")
)PY";

}  // namespace

TEST(Interop, PythonXmlRpcAndJsonClients) {
  std::string python = find_program("python3");
  if (python.empty()) GTEST_SKIP() << "python3 not installed: cannot check interop with its xmlrpc.client";
  TempDir dir;
  std::string sock = (dir.path / "xapi.sock").string();
  Server server({sock, "127.0.0.1", 0, 2}, test_dispatch);
  server.start();
  CommandResult r =
      run_command({python, "-c", kPythonClient, std::to_string(server.tcp_port()), sock}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << "exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

// The socket is 0600: another user cannot even connect. Once it is opened up
// (by the test), that user's calls carry its uid from SO_PEERCRED.
TEST(Interop, UnprivilegedPeerIsRefusedThenIdentified) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  std::string setpriv = find_program("setpriv"), curl = find_program("curl");
  if (setpriv.empty() || curl.empty()) GTEST_SKIP() << "needs setpriv and curl";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path.c_str(), 0755), 0);
  std::string sock = (dir.path / "xapi.sock").string();
  Server server({sock, "", 0, 1}, test_dispatch);
  server.start();
  std::string body = R"({"jsonrpc":"2.0","method":"whoami","params":[],"id":1})";
  std::vector<std::string> argv = {setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                   curl,    "-sS",           "--unix-socket",  sock,
                                   "-H",    "Content-Type: application/json", "--data-binary", body,
                                   "http://localhost/jsonrpc"};
  CommandResult refused = run_command(argv, std::chrono::seconds(30));
  EXPECT_EQ(refused.exit_code, 7) << "curl should fail to connect (EACCES)\n" << refused.out << refused.err;
  EXPECT_EQ(refused.out, "");

  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  CommandResult ok = run_command(argv, std::chrono::seconds(30));
  ASSERT_TRUE(ok.ok()) << ok.err;
  EXPECT_EQ(ok.out, R"({"jsonrpc":"2.0","result":{"addr":"unix","uid":65534},"id":1})"
                    "\n");
}
