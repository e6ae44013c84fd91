// The TLS front end: a verified handshake against the certificate
// ensure_self_signed made, the caller seen as a TCP client at its real
// address (never local root), large bodies both ways through the relay,
// and what happens to clients that never finish a handshake.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "api/rpc.h"
#include "api/server.h"
#include "api/tls_front.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace vmstack::api::test;
using namespace std::chrono_literals;

namespace {

UniqueFd connect_tcp(unsigned short port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return s;
}

// A TLS client that verifies the server's certificate against `ca` and its
// name against 127.0.0.1, sends `request` and reads until the server closes.
std::string tls_exchange(unsigned short port, const std::string& ca, const std::string& request) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  EXPECT_EQ(SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr), 1);
  UniqueFd s = connect_tcp(port);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), "127.0.0.1");
  SSL_set_fd(ssl.get(), s.get());
  if (SSL_connect(ssl.get()) != 1) return "handshake failed";
  for (std::size_t done = 0; done < request.size();) {
    int n = SSL_write(ssl.get(), request.data() + done, static_cast<int>(request.size() - done));
    if (n <= 0) return "write failed";
    done += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string post(const std::string& body) {
  return "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/xml\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Whether the connection ends (EOF or reset) within `limit`, whatever
// bytes (a TLS session ticket, a close_notify) come before.
bool ends_within(int fd, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

// Whether the server closes `fd` within `limit` without sending anything.
bool closed_silently_within(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, 0) <= 0;
}

class TlsFrontTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string cert = (dir.path / "tls" / "c.pem").string(), key = (dir.path / "tls" / "k.pem").string();
  std::unique_ptr<Server> server;
  std::unique_ptr<TlsFront> tls;

  // The front's defaults on 127.0.0.1 with this test's certificate.
  TlsConfig config() const {
    TlsConfig tc;
    tc.address = "127.0.0.1";
    tc.cert_file = cert;
    tc.key_file = key;
    return tc;
  }

  void SetUp() override {
    ASSERT_TRUE(ensure_self_signed(cert, key, "localhost", {"localhost", "127.0.0.1"}));
    server = std::make_unique<Server>(ServerConfig{sock_in(dir), "", 0, 2}, test_dispatch);
    ServerLimits lim;
    lim.max_unproven_body_bytes = 8u << 20;  // no admission here: large bodies are read
    server->set_limits(lim);
    server->start();
    TlsConfig tc = config();
    tc.handshake_timeout = 1s;
    tc.max_handshakes_per_source = 2;
    tc.send_timeout = 1s;
    tls = std::make_unique<TlsFront>(tc, *server);
    tls->start();
  }
};

// A verified TLS session kept open by the test.
struct TlsConn {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  UniqueFd fd;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{nullptr, SSL_free};
  TlsConn(unsigned short port, const std::string& ca, int rcvbuf = 0) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr);
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (rcvbuf) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ssl.reset(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd.get());
    EXPECT_EQ(SSL_connect(ssl.get()), 1);
  }
  void send(const std::string& s) { EXPECT_EQ(SSL_write(ssl.get(), s.data(), static_cast<int>(s.size())), static_cast<int>(s.size())); }
  std::string read_all() {
    std::string out;
    char buf[16384];
    for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    last_error = SSL_get_error(ssl.get(), -1);
    return out;
  }
  int last_error = 0;
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

TEST_F(TlsFrontTest, CallerIsATcpClientAtItsRealAddress) {
  std::string r = tls_exchange(tls->port(), cert, post(xmlrpc::format_request("whoami", {})));
  ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_NE(r.find("<name>uid</name><value>-1</value>"), std::string::npos) << r;  // XenAPI ints go as strings
  EXPECT_NE(r.find("127.0.0.1:"), std::string::npos) << r;
  EXPECT_EQ(r.find("unix"), std::string::npos) << r;
}

TEST_F(TlsFrontTest, LargeBodiesCrossTheRelayBothWays) {
  std::string big(3u << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  std::string r = tls_exchange(tls->port(), cert, post(xmlrpc::format_request("echo", {Value(big)})));
  ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r.substr(0, 200);
  EXPECT_NE(r.find(big), std::string::npos);
}

TEST_F(TlsFrontTest, ManyClientsAtOnce) {
  TlsFront front(config(), *server);  // the default cap of unfinished handshakes per address (32)
  front.start();
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i)
    ts.emplace_back([&, i] {
      std::string r = tls_exchange(front.port(), cert, post(xmlrpc::format_request("echo", {Value(i)})));
      if (r.rfind("HTTP/1.1 200", 0) == 0) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 16);
}

TEST_F(TlsFrontTest, HandshakesThatNeverCompleteAreDropped) {
  // Plain HTTP is not a handshake: closed, no HTTP answer.
  UniqueFd plain = connect_tcp(tls->port());
  write_str(plain.get(), post(xmlrpc::format_request("echo", {})));
  std::string got = read_until_closed(plain.get(), 5s);
  EXPECT_EQ(got.find("HTTP/1.1"), std::string::npos) << got;

  // Silent: closed once the handshake timeout (1 s here) passes.
  UniqueFd a = connect_tcp(tls->port()), b = connect_tcp(tls->port());
  // A third unfinished handshake from the same address: closed at once.
  std::this_thread::sleep_for(100ms);
  UniqueFd c = connect_tcp(tls->port());
  EXPECT_TRUE(closed_silently_within(c.get(), 500ms));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_silently_within(a.get(), 4s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_TRUE(closed_silently_within(b.get(), 2s));
  // And the front still serves.
  std::string r = tls_exchange(tls->port(), cert, post(xmlrpc::format_request("echo", {Value("still")})));
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
}

TEST_F(TlsFrontTest, CertificateIsKeptAndItsKeyPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(ensure_self_signed(cert, key, "localhost", {"127.0.0.1"}));  // both exist: kept
  // A mismatched key is refused, naming the files.
  std::string other_cert = (dir.path / "o.pem").string(), other_key = (dir.path / "o.key").string();
  ASSERT_TRUE(ensure_self_signed(other_cert, other_key, "other", {}));
  TlsConfig tc = config();
  tc.key_file = other_key;
  try {
    TlsFront bad(tc, *server);
    FAIL() << "a key that is not the certificate's was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("match"), std::string::npos) << e.what();  // "mismatch" / "does not match"
  }
  tc.key_file = (dir.path / "missing.key").string();
  try {
    TlsFront bad(tc, *server);
    FAIL() << "a missing key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
  }
}

// A client that asks for a large answer and never reads it: the relay
// neither spins (the server has closed; nothing is watched that cannot
// progress) nor keeps the connection past send_timeout (1 s here).
TEST_F(TlsFrontTest, AClientThatNeverReadsCostsNoCpuAndIsDropped) {
  TlsConn c(tls->port(), cert, 4096);
  c.send(post(xmlrpc::format_request("echo", {Value(std::string(2u << 20, 'z'))})));
  std::this_thread::sleep_for(300ms);
  double before = cpu_seconds();
  std::this_thread::sleep_for(1500ms);
  EXPECT_LT(cpu_seconds() - before, 0.5) << "the TLS thread spins";
  EXPECT_TRUE(ends_within(c.fd.get(), 10s)) << "still open";
}

// What the server says when it refuses (503 here, the per-address cap of
// 1) reaches the TLS client, not a reset.
TEST_F(TlsFrontTest, TheServersRefusalReachesTheClient) {
  auto small = std::make_unique<Server>(ServerConfig{(dir.path / "s2.sock").string(), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_connections_per_source = 1;
  small->set_limits(lim);
  small->start();
  TlsFront front(config(), *small);
  front.start();
  TlsConn first(front.port(), cert);  // holds the address's one slot
  first.send("POST / HTTP/1.1\r\nContent-Length: " + std::to_string(xmlrpc::format_request("echo", {}).size()) +
             "\r\n\r\n" + xmlrpc::format_request("echo", {}));
  std::this_thread::sleep_for(200ms);
  TlsConn second(front.port(), cert);
  second.send(post(xmlrpc::format_request("echo", {})));
  std::string got = second.read_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got << " ssl error " << second.last_error;
  front.stop();
  small->stop();
}

// stop() with connections open: every client sees its connection end.
TEST_F(TlsFrontTest, StopEndsOpenConnections) {
  TlsConn idle(tls->port(), cert);
  std::this_thread::sleep_for(100ms);
  tls->stop();
  EXPECT_TRUE(ends_within(idle.fd.get(), 2s));
}

TEST(TlsCert, HalfAPairIsNeverReplaced) {
  TempDir dir;
  std::string cert = (dir.path / "c.pem").string(), key = (dir.path / "k.pem").string();
  ASSERT_TRUE(ensure_self_signed(cert, key, std::string(100, 'h'), {"127.0.0.1", "host.example"}));  // CN too long: localhost
  std::filesystem::remove(key);
  try {
    ensure_self_signed(cert, key, "x", {});
    FAIL() << "a lone certificate was replaced";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::exists(cert));
}
