// Xen Orchestra's own XenAPI client (npm xen-api, pinned by
// tests/e2e/xo/package-lock.json) against the real vmstackd over HTTPS,
// verifying the certificate vmstackd made: connect, fill the object cache
// through event.inject/event.from, then clone a VM from the template,
// provision, start, shut down and destroy it, each change seen in the cache
// (tests/e2e/xo/xo_client.mjs).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/process.h"
#include "free_port.h"
#include "guest_guard.h"
#include "vmstackd_process.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kXoDir = VMSTACK_SOURCE_DIR "/tests/e2e/xo";

bool have(const std::string& tool) { return run_command({"sh", "-c", "command -v " + tool}, 10s).ok(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// node_modules for the pinned lockfile, installed once per lockfile under
// ~/.cache/vmstack (npm ci). Returns the directory, or "" and why not.
std::string client_dir(std::string& why) {
  const char* home = std::getenv("HOME");
  std::string lock = read_file(kXoDir + "/package-lock.json");
  std::string dir = std::string(home ? home : "/root") + "/.cache/vmstack/xo-client-" +
                    std::to_string(std::hash<std::string>{}(lock));
  if (fs::exists(dir + "/node_modules/xen-api/package.json")) {
    fs::copy_file(kXoDir + "/xo_client.mjs", dir + "/xo_client.mjs", fs::copy_options::overwrite_existing);
    return dir;
  }
  fs::create_directories(dir);
  for (const char* f : {"package.json", "package-lock.json", "xo_client.mjs"})
    fs::copy_file(kXoDir + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  // npm trusts the system's certificate store too (Debian's node does not
  // by default), so a machine whose HTTPS goes through its own CA can fetch.
  SpawnOptions o;
  if (fs::exists("/etc/ssl/certs/ca-certificates.crt"))
    o.env_overrides["NODE_EXTRA_CA_CERTS"] = "/etc/ssl/certs/ca-certificates.crt";
  auto r = run_command({"npm", "ci", "--no-audit", "--no-fund", "--prefix", dir}, 300s, {}, o);
  if (!r.ok()) {
    why = "npm ci of Xen Orchestra's xen-api client failed (no access to the npm registry?): " + r.err.substr(0, 400);
    fs::remove_all(dir);
    return "";
  }
  return dir;
}

TEST(XenOrchestraClient, ConnectsOverHttpsAndDrivesAVmThroughItsCache) {
  if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
  if (!have("node") || !have("npm")) GTEST_SKIP() << "node and npm are not installed (tools/setup.sh installs them)";
  std::string why;
  std::string dir = client_dir(why);
  if (dir.empty()) GTEST_SKIP() << why;

  int port = free_tcp_port();
  ASSERT_GT(port, 0);
  VmstackdProcess d;
  ASSERT_EQ(d.start({}, 0, {"--listen", "127.0.0.1:" + std::to_string(port)}), "");
  SpawnOptions o;
  o.env_overrides["NODE_EXTRA_CA_CERTS"] = d.state_dir() + "/tls/vmstackd.pem";  // verified, not ignored
  o.cwd = dir;
  auto r = run_command({"node", dir + "/xo_client.mjs", "https://127.0.0.1:" + std::to_string(port), "e2e-secret"},
                       180s, {}, o);
  EXPECT_TRUE(r.ok()) << r.out << r.err << d.log();
  for (const char* line : {"connected connected", "pool master true", "control domain true", "host metrics true true",
                           "cloned xo-e2e", "running, domid set true", "vm metrics VM_metrics 1", "halted", "destroyed",
                           "imported", "exported same bytes true", "unknown-length import landed true",
                           "bad vdi refused 404",
                           "template start refused VM_IS_TEMPLATE true", "done"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out << r.err;
  // The client's listing of types comes from system.listMethods: no session class (xapi has no session.get_all).
  EXPECT_EQ(r.err.find("session.*() methods are disabled"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vmstack::test
