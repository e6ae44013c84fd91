// Helpers for the libFuzzer targets in tests/fuzz (see docs/fuzzing.md).
// A target's LLVMFuzzerTestOneInput either returns or aborts: an exception it
// does not expect escapes (std::terminate), and a broken invariant is
// reported with FUZZ_CHECK, which prints what broke and aborts, so libFuzzer
// saves the input as a crash artifact.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/value.h"

#define FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                              \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace vmstack::fuzz {

inline std::string input(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Value equality in which NaN equals NaN (Value::operator== follows double's).
inline bool same(const Value& a, const Value& b) {
  if (a.storage().index() != b.storage().index()) return false;
  if (a.is_double()) {
    double x = a.as_double(), y = b.as_double();
    return (std::isnan(x) && std::isnan(y)) || x == y;
  }
  if (a.is_array()) {
    const Array &x = a.as_array(), &y = b.as_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!same(x[i], y[i])) return false;
    return true;
  }
  if (a.is_struct()) {
    const Struct &x = a.as_struct(), &y = b.as_struct();
    if (x.size() != y.size()) return false;
    for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
      if (i->first != j->first || !same(i->second, j->second)) return false;
    return true;
  }
  return a == b;
}

}  // namespace vmstack::fuzz

namespace vmstack::fuzz {

// What a codec decoded must encode, what it encoded must decode, and the
// encoding is stable from the second round on (the first may normalise:
// invalid UTF-8 becomes U+FFFD, C0 controls are dropped, names trimmed).
// `encode` may throw ApiError only for values nested too deeply to encode
// (the server then answers INTERNAL_ERROR); `decode` must accept every
// encoding.
template <class T, class Decode, class Encode>
void check_stable_encoding(const T& decoded, Decode decode, Encode encode) {
  std::string once;
  try {
    once = encode(decoded);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.code() == errors::INTERNAL_ERROR, "encoding failed with " + e.code());
    return;
  }
  auto again = [&](const std::string& text) {
    try {
      return encode(decode(text));
    } catch (const ApiError& e) {
      FUZZ_CHECK(false, "our own encoding fails to decode or re-encode (" + e.description().back() +
                            "):\n" + text);
      throw;
    }
  };
  std::string twice = again(once);
  std::string thrice = again(twice);
  FUZZ_CHECK(thrice == twice, "unstable encoding:\n" + twice + "\nthen\n" + thrice);
}

}  // namespace vmstack::fuzz
