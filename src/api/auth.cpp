#include "api/auth.h"

#include <crypt.h>
#include <sys/random.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace vmstack::api {

namespace {
bool constant_time_equal(const char* a, std::size_t alen, const char* b, std::size_t blen) {
  // Compare over the longer length so timing does not depend on where the
  // first difference is; lengths are folded into the result.
  std::size_t n = alen > blen ? alen : blen;
  unsigned char diff = static_cast<unsigned char>(alen != blen);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < alen ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < blen ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Fills `buf` from the kernel CSPRNG (getrandom blocks only until the pool
// is initialised at boot, which is what we want for salts).
void random_bytes(unsigned char* buf, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::getrandom(buf, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed: " + std::string(std::strerror(errno)));
    }
    buf += r;
    n -= static_cast<std::size_t>(r);
  }
}

}  // namespace

std::string hash_password(const std::string& password) {
  // crypt(3) takes a C string: an embedded NUL would silently truncate the
  // password, so "a\0b" and "a" would hash alike.
  if (password.find('\0') != std::string::npos) throw std::invalid_argument("password contains a NUL byte");
  unsigned char rnd[16];  // 128-bit salt
  random_bytes(rnd, sizeof rnd);
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  // count 0 = libxcrypt's default yescrypt cost
  if (!crypt_gensalt_rn("$y$", 0, reinterpret_cast<const char*>(rnd), sizeof rnd, salt, sizeof salt))
    throw std::runtime_error("crypt_gensalt_rn($y$) failed: " + std::string(std::strerror(errno)));
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: keep it off the stack
  const char* h = crypt_r(password.c_str(), salt, data.get());
  if (!h || h[0] == '*') throw std::runtime_error("crypt_r failed to hash the password");
  return h;
}

bool verify_password(const std::string& password, const std::string& hash) {
  if (hash.empty() || hash[0] != '$') return false;  // no hash / locked account ("!", "*")
  if (password.find('\0') != std::string::npos) return false;  // could never have been hashed
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (!h || h[0] == '*') return false;
  return constant_time_equal(h, std::strlen(h), hash.data(), hash.size());
}

}  // namespace vmstack::api
