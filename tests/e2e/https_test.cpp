// HTTPS end to end: the real vmstackd with --listen makes its certificate at
// first start and serves XML-RPC and JSON-RPC over TLS to Python's stdlib
// clients (the XenAPI module is xmlrpc.client underneath), verifying the
// certificate against the file it made; the caller is a TCP client (a
// password, never local root's), and plain HTTP on that port gets nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/process.h"
#include "free_port.h"
#include "guest_guard.h"
#include "vmstackd_process.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Prints one line per check; exits 1 at the first that fails.
const char* kClient = R"PY(
import json, ssl, sys, urllib.request, xmlrpc.client
port, cafile, password = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)  # verifies the chain and the name (IP 127.0.0.1)
url = "https://127.0.0.1:%s/" % port
x = xmlrpc.client.ServerProxy(url, context=ctx, allow_none=False)
r = x.session.login_with_password("root", "", "1.0", "https-e2e")
print("passwordless root over TLS:", r["Status"], r.get("ErrorDescription", [""])[0])
r = x.session.login_with_password("root", "wrong", "1.0", "https-e2e")
print("wrong password:", r["ErrorDescription"][0])
s = x.session.login_with_password("root", password, "1.0", "https-e2e")["Value"]
recs = x.VM.get_all_records(s)["Value"]
print("templates:", sum(1 for v in recs.values() if v["is_a_template"]))
body = json.dumps({"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": 7}).encode()
req = urllib.request.Request(url + "jsonrpc", data=body, headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, context=ctx))
print("jsonrpc id", answer["id"], "vms", len(answer["result"]))
print("logout:", x.session.logout(s)["Status"])
)PY";

TEST(HttpsE2E, MakesItsCertificateAndServesStdlibClientsOverTls) {
  if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
  int port = free_tcp_port();
  ASSERT_GT(port, 0);
  VmstackdProcess d;
  ASSERT_EQ(d.start({}, 0, {"--listen", "127.0.0.1:" + std::to_string(port)}), "");
  const std::string cert = d.state_dir() + "/tls/vmstackd.pem", key = d.state_dir() + "/tls/vmstackd.key";
  ASSERT_TRUE(fs::exists(cert)) << d.log();
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto r = run_command({"python3", "-c", kClient, std::to_string(port), cert, "e2e-secret"}, 60s);
  ASSERT_TRUE(r.ok()) << r.out << r.err << d.log();
  EXPECT_NE(r.out.find("passwordless root over TLS: Failure SESSION_AUTHENTICATION_FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrong password: SESSION_AUTHENTICATION_FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("templates: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("jsonrpc id 7 vms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("logout: Success"), std::string::npos) << r.out;

  // Plain HTTP on the TLS port: the handshake fails, no API answer comes.
  auto plain = run_command({"curl", "-sS", "--max-time", "5", "-d", "<x/>", "http://127.0.0.1:" + std::to_string(port) + "/"},
                           30s);
  EXPECT_FALSE(plain.ok());
  EXPECT_EQ(plain.out.find("methodResponse"), std::string::npos);

  // The certificate is kept: a restart serves the same one.
  std::string before;
  {
    auto c = run_command({"sha256sum", cert}, 10s);
    before = c.out.substr(0, 64);
  }
  ASSERT_TRUE(d.stop());
  ASSERT_EQ(d.start({}, 0, {"--listen", "127.0.0.1:" + std::to_string(port)}), "");
  EXPECT_EQ(run_command({"sha256sum", cert}, 10s).out.substr(0, 64), before);
  r = run_command({"python3", "-c", kClient, std::to_string(port), cert, "e2e-secret"}, 60s);
  EXPECT_TRUE(r.ok()) << r.out << r.err << d.log();
}

TEST(HttpsE2E, OperatorsOwnCertificateAndBadFilesAreNamed) {
  if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
  int port = free_tcp_port();
  ASSERT_GT(port, 0);
  VmstackdProcess d;
  const std::string dir = d.state_dir() + "-certs";
  fs::create_directories(dir);
  // The operator's own (openssl's CLI, an RSA key): used as given.
  auto made = run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", dir + "/k.pem", "-out",
                           dir + "/c.pem"},
                          60s);
  ASSERT_TRUE(made.ok()) << made.err;
  ASSERT_EQ(d.start({}, 0,
                    {"--listen", "127.0.0.1:" + std::to_string(port), "--tls-cert", dir + "/c.pem", "--tls-key",
                     dir + "/k.pem"}),
            "");
  EXPECT_FALSE(fs::exists(d.state_dir() + "/tls/vmstackd.pem"));
  auto r = run_command({"python3", "-c", kClient, std::to_string(port), dir + "/c.pem", "e2e-secret"}, 60s);
  EXPECT_TRUE(r.ok()) << r.out << r.err << d.log();
  ASSERT_TRUE(d.stop());

  // A key that is not the certificate's: vmstackd refuses to start and says which.
  auto other = run_command({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                            dir + "/other.pem"},
                           30s);
  ASSERT_TRUE(other.ok()) << other.err;
  auto bad = run_command({VMSTACK_BIN_DIR "/vmstackd", "--state-dir", d.state_dir(), "--accel", "tcg", "--listen",
                          "127.0.0.1:" + std::to_string(port), "--tls-cert", dir + "/c.pem", "--tls-key",
                          dir + "/other.pem"},
                         60s);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE((bad.out + bad.err).find("match"), std::string::npos) << bad.out << bad.err;  // mismatch / does not match
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vmstack::test
