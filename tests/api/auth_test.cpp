#include <crypt.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <stdexcept>

#include "api/auth.h"

using namespace vmstack::api;

TEST(Auth, HashAndVerify) {
  std::string h = hash_password("s3cret pässword");
  EXPECT_EQ(h.rfind("$y$", 0), 0u) << h;
  EXPECT_TRUE(verify_password("s3cret pässword", h));
  EXPECT_FALSE(verify_password("s3cret password", h));
  EXPECT_FALSE(verify_password("s3cret pässword ", h));
  EXPECT_FALSE(verify_password("", h));
  // Tampering with the stored hash breaks verification.
  std::string tampered = h;
  tampered.back() = tampered.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_password("s3cret pässword", tampered));
}

TEST(Auth, SaltIsRandomPerHash) {
  std::set<std::string> hashes;
  for (int i = 0; i < 3; ++i) hashes.insert(hash_password("same"));
  EXPECT_EQ(hashes.size(), 3u);
  for (const auto& h : hashes) EXPECT_TRUE(verify_password("same", h));
}

TEST(Auth, EmptyPasswordIsHashableAndDistinct) {
  std::string h = hash_password("");
  EXPECT_TRUE(verify_password("", h));
  EXPECT_FALSE(verify_password("x", h));
}

TEST(Auth, EmbeddedNulIsRefusedNotTruncated) {
  EXPECT_THROW(hash_password(std::string("a\0b", 3)), std::invalid_argument);
  std::string h = hash_password("a");
  EXPECT_FALSE(verify_password(std::string("a\0b", 3), h));
}

TEST(Auth, GarbageHashesNeverVerify) {
  EXPECT_FALSE(verify_password("x", ""));
  EXPECT_FALSE(verify_password("x", "*"));
  EXPECT_FALSE(verify_password("x", "!locked"));
  EXPECT_FALSE(verify_password("x", "$y$garbage"));
  EXPECT_FALSE(verify_password("", "$"));
  EXPECT_FALSE(verify_password("", "$y$"));
}

// Hashes taken over from /etc/shadow may use older schemes; crypt(3)
// verifies those too.
TEST(Auth, VerifiesSha512CryptHashes) {
  auto data = std::make_unique<crypt_data>();
  const char* salt = crypt_gensalt_rn("$6$", 0, nullptr, 0, data->setting, sizeof data->setting);
  ASSERT_NE(salt, nullptr);
  std::string setting = salt;
  const char* h = crypt_r("legacy", setting.c_str(), data.get());
  ASSERT_NE(h, nullptr);
  std::string hash = h;
  ASSERT_EQ(hash.rfind("$6$", 0), 0u);
  EXPECT_TRUE(verify_password("legacy", hash));
  EXPECT_FALSE(verify_password("Legacy", hash));
}
