// The Python XenAPI module (xapi's XenAPI.py, as Debian ships it inside
// python3-os-xenapi: stdlib only, so the file is loaded on its own without
// the OpenStack package around it; its unix transport gets Python 3's
// send_request, as xapi's current copy has) against the real vmstackd: its Session
// over the unix socket (xapi_local's UDSTransport, local root without a
// password) and over HTTPS (xmlrpc.client's SafeTransport verifying
// vmstackd's certificate), making a VM from the template, starting and
// stopping it, and its Failure for calls xapi refuses.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/process.h"
#include "free_port.h"
#include "guest_guard.h"
#include "vmstackd_process.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// XenAPI.py from Debian's python3-os-xenapi, fetched once with apt-get
// download into ~/.cache/vmstack (nothing installed). "" and why not.
std::string xenapi_module(std::string& why) {
  const char* home = std::getenv("HOME");
  const std::string dir = std::string(home ? home : "/root") + "/.cache/vmstack/os-xenapi";
  const std::string module = dir + "/root/usr/lib/python3/dist-packages/os_xenapi/client/XenAPI.py";
  if (fs::exists(module)) return module;
  fs::create_directories(dir);
  SpawnOptions o;
  o.cwd = dir;
  auto dl = run_command({"apt-get", "download", "python3-os-xenapi"}, 300s, {}, o);
  if (!dl.ok()) {
    why = "apt-get download python3-os-xenapi failed (no Debian mirror?): " + dl.err.substr(0, 300);
    return "";
  }
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".deb") {
      auto x = run_command({"dpkg-deb", "-x", e.path().string(), dir + "/root"}, 60s);
      if (!x.ok()) {
        why = "dpkg-deb -x failed: " + x.err;
        return "";
      }
    }
  if (!fs::exists(module)) why = "python3-os-xenapi has no XenAPI.py where it used to";
  return fs::exists(module) ? module : "";
}

// Prints one line per check; exits non-zero at the first exception.
const char* kScript = R"PY(
import importlib.util, ssl, sys, xmlrpc.client
module, sock, port, cafile, password = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("XenAPI", module)
XenAPI = importlib.util.module_from_spec(spec)
spec.loader.exec_module(XenAPI)

# As xapi_local(): "http://<socket path with / as _>/" over UDSTransport.
# Debian's copy (2018) overrides send_request with Python 2's signature;
# Python 3's own (which calls its make_connection) is what xapi's current
# XenAPI.py uses.
class UDSTransport(XenAPI.UDSTransport):
    send_request = xmlrpc.client.Transport.send_request
local = XenAPI.Session("http://" + sock.replace("/", "_") + "/", transport=UDSTransport())
local.xenapi.login_with_password("root", "", "1.0", "xenapi-py")
recs = local.xenapi.VM.get_all_records()
tmpl = [r for r, v in recs.items() if v["is_a_template"] and v["name_label"] == "Demo Linux (direct kernel boot)"][0]
print("unix: templates", sum(1 for v in recs.values() if v["is_a_template"]),
      "control domain", sum(1 for v in recs.values() if v["is_control_domain"]))
try:
    local.xenapi.VM.start(tmpl, False, False)
except XenAPI.Failure as f:
    print("unix: template start refused", f.details[0], f.details[1] == tmpl)
local.xenapi.session.logout()

ctx = ssl.create_default_context(cafile=cafile)
remote = XenAPI.Session("https://127.0.0.1:%s/" % port, transport=xmlrpc.client.SafeTransport(context=ctx))
try:
    remote.xenapi.login_with_password("root", "", "1.0", "xenapi-py")
except XenAPI.Failure as f:
    print("https: passwordless root refused", f.details[0])
remote.xenapi.login_with_password("root", password, "1.0", "xenapi-py")
vm = remote.xenapi.VM.clone(tmpl, "xenapi-py")
remote.xenapi.VM.provision(vm)
remote.xenapi.VM.start(vm, False, False)
print("https: started", remote.xenapi.VM.get_power_state(vm))
metrics = remote.xenapi.VM.get_metrics(vm)
print("https: vcpus", remote.xenapi.VM_metrics.get_VCPUs_number(metrics))
try:
    remote.xenapi.VM.start(vm)
except XenAPI.Failure as f:
    print("https: one argument", f.details[0], f.details[1:])
remote.xenapi.VM.hard_shutdown(vm)
print("https: after shutdown", remote.xenapi.VM.get_power_state(vm))
disks = [remote.xenapi.VBD.get_VDI(vbd) for vbd in remote.xenapi.VM.get_VBDs(vm)]
remote.xenapi.VM.destroy(vm)
for vdi in disks:
    remote.xenapi.VDI.destroy(vdi)
print("https: gone", vm not in remote.xenapi.VM.get_all())
remote.xenapi.session.logout()
print("done")
)PY";

TEST(XenApiPython, SessionOverTheUnixSocketAndHttps) {
  if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
  std::string why;
  std::string module = xenapi_module(why);
  if (module.empty()) GTEST_SKIP() << why;
  int port = free_tcp_port();
  ASSERT_GT(port, 0);
  VmstackdProcess d;
  ASSERT_EQ(d.start({}, 0, {"--listen", "127.0.0.1:" + std::to_string(port)}), "");
  const std::string sock = d.state_dir() + "/xapi.sock";
  ASSERT_EQ(sock.find('_'), std::string::npos) << "XenAPI.py's unix URL spells / as _";
  auto r = run_command({"python3", "-c", kScript, module, sock, std::to_string(port), d.state_dir() + "/tls/vmstackd.pem",
                        "e2e-secret"},
                       120s);
  EXPECT_TRUE(r.ok()) << r.out << r.err << d.log();
  for (const char* line : {"unix: templates 2 control domain 1", "unix: template start refused VM_IS_TEMPLATE True",
                           "https: passwordless root refused SESSION_AUTHENTICATION_FAILED", "https: started Running",
                           "https: vcpus 1", "https: one argument MESSAGE_PARAMETER_COUNT_MISMATCH ['VM.start', '3', '1']",
                           "https: after shutdown Halted", "https: gone True", "done"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out << r.err;
  d.shutdown_all();
}

}  // namespace
}  // namespace vmstack::test
