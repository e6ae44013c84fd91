// The self-signed certificate vmstackd makes at first start for its HTTPS
// listener (xapi makes one too: /etc/xensource/xapi-ssl.pem). An operator
// replaces the two files with their own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "api/tls_front.h"

namespace vmstack::api {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { ::EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { ::X509_free(x); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

[[noreturn]] void fail(const std::string& what) {
  char buf[256];
  unsigned long e = ::ERR_get_error();
  ::ERR_error_string_n(e, buf, sizeof buf);
  throw std::runtime_error("making the TLS certificate: " + what + (e ? std::string(": ") + buf : ""));
}

// Opens `path` for writing with `mode`, replacing it (never following a link).
std::unique_ptr<FILE, FileClose> create(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw std::runtime_error("making the TLS certificate: cannot create " + path);
  ::fchmod(fd, mode);
  FILE* f = ::fdopen(fd, "w");
  if (!f) {
    ::close(fd);
    throw std::runtime_error("making the TLS certificate: cannot open " + path);
  }
  return std::unique_ptr<FILE, FileClose>(f);
}

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

bool ensure_self_signed(const std::string& cert_file, const std::string& key_file, const std::string& common_name,
                        const std::vector<std::string>& alt_names) {
  const bool have_cert = std::filesystem::exists(cert_file), have_key = std::filesystem::exists(key_file);
  if (have_cert && have_key) return false;
  if (have_cert || have_key)  // never replace half of an operator's pair
    throw std::runtime_error("TLS: " + (have_cert ? key_file : cert_file) + " is missing but " +
                             (have_cert ? cert_file : key_file) +
                             " exists: put both in place, or remove it to have a new pair made");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(::EVP_EC_gen("P-256"));
  if (!key) fail("EC key");
  std::unique_ptr<X509, X509Free> x(::X509_new());
  if (!x) fail("X509_new");
  ::X509_set_version(x.get(), 2);  // v3
  unsigned char serial[16];
  if (::RAND_bytes(serial, sizeof serial) != 1) fail("serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = ::BN_bin2bn(serial, sizeof serial, nullptr);
  ::BN_to_ASN1_INTEGER(bn, ::X509_get_serialNumber(x.get()));
  ::BN_free(bn);
  ::X509_gmtime_adj(::X509_getm_notBefore(x.get()), -60 * 60);
  ::X509_gmtime_adj(::X509_getm_notAfter(x.get()), 10L * 365 * 24 * 60 * 60);
  ::X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = ::X509_get_subject_name(x.get());
  const std::string cn = common_name.empty() || common_name.size() > 64 ? "localhost" : common_name;  // X.509's CN limit
  ::X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  ::X509_set_issuer_name(x.get(), name);
  std::string san;
  for (const auto& n : alt_names) san += (san.empty() ? "" : ",") + std::string(is_ip(n) ? "IP:" : "DNS:") + n;
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
           {NID_basic_constraints, "critical,CA:FALSE"},
           {NID_key_usage, "critical,digitalSignature,keyAgreement"},
           {NID_ext_key_usage, "serverAuth"},
           {NID_subject_alt_name, san}}) {
    if (value.empty()) continue;
    X509_EXTENSION* ext = ::X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext) fail("extension " + value);
    ::X509_add_ext(x.get(), ext, -1);
    ::X509_EXTENSION_free(ext);
  }
  if (::X509_sign(x.get(), key.get(), ::EVP_sha256()) == 0) fail("signing");

  std::filesystem::create_directories(std::filesystem::path(key_file).parent_path());
  std::filesystem::create_directories(std::filesystem::path(cert_file).parent_path());
  {
    auto f = create(key_file, 0600);
    if (::PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) fail("writing " + key_file);
  }
  {
    auto f = create(cert_file, 0644);
    if (::PEM_write_X509(f.get(), x.get()) != 1) fail("writing " + cert_file);
  }
  return true;
}

}  // namespace vmstack::api
