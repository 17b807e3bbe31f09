// server/auth.h without a server: the keys file format, the loopback rule
// of safe-by-default, and Check's decisions on a hand-made context.
#include "server/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace quiver::server {
namespace {

std::string HexOf(const std::string& key) {
  const Sha256Digest d = Sha256(key);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

TEST(ParseApiKeysTest, ReadsRolesCollectionsAndComments) {
  // The SHA-256 of "abc", from FIPS 180-2's examples.
  EXPECT_EQ(HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string text = absl::StrCat(
      "# keys\n\n", HexOf("a"), " admin\n", HexOf("b"), "\tREAD   a,b  # trailing comment\r\n",
      "   ", HexOf("c"), " write c\n");
  auto keys = ParseApiKeys(text);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].role, Role::kAdmin);
  EXPECT_TRUE((*keys)[0].collections.empty());
  EXPECT_EQ((*keys)[0].line, 3);
  EXPECT_EQ((*keys)[1].role, Role::kRead);
  EXPECT_THAT((*keys)[1].collections, ::testing::ElementsAre("a", "b"));
  EXPECT_EQ((*keys)[2].digest, Sha256("c"));
  EXPECT_TRUE(ParseApiKeys("").ok());
}

TEST(ParseApiKeysTest, RefusesBadLinesWithoutEchoingTheKey) {
  const std::string h = HexOf("a");
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"qk_secret-in-clear admin\n", "line 1: the first field must be the key's SHA-256"},
      {h + "\n", "line 1: missing role"},
      {"\n" + h + " owner\n", "line 2: unknown role \"owner\""},
      {h + " read a, b\n", "collections are separated by commas"},
      {h + " read a,,b\n", "empty collection name"},
      {h + " read\n" + h + " admin\n", "line 2: the same hash is listed twice"},
      {h.substr(1) + "x admin\n", "line 1: the first field"},
  };
  for (const Case& c : cases) {
    auto keys = ParseApiKeys(c.text);
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(keys.status().message()), ::testing::HasSubstr(c.message));
    EXPECT_THAT(std::string(keys.status().message()),
                ::testing::Not(::testing::HasSubstr("qk_secret")));
  }
}

TEST(LoopbackTest, OnlyLoopbackAddressesAreLocal) {
  for (const char* a : {"127.0.0.1:50051", "127.1.2.3:1", "localhost:50051", "LOCALHOST:1",
                        "[::1]:50051", "[::ffff:127.0.0.1]:5", "unix:/tmp/q.sock",
                        "ipv4:127.0.0.1:9"}) {
    EXPECT_TRUE(IsLoopbackListen(a)) << a;
  }
  for (const char* a : {"0.0.0.0:50051", "[::]:50051", ":50051", "10.0.0.1:50051",
                        "128.0.0.1:1", "[::2]:1", "[::ffff:10.0.0.1]:5", "example.com:1",
                        "localhost.example.com:1", "126.255.255.255:1", "[::1:1"}) {
    EXPECT_FALSE(IsLoopbackListen(a)) << a;
  }
}

TEST(CheckExposureTest, NeedsKeysTlsOrTheFlagOffLoopback) {
  ServerConfig c;
  c.listen = "0.0.0.0:50051";
  const absl::Status refused = CheckExposure(c);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("--allow-insecure"));
  EXPECT_EQ(std::string(refused.message()).find('\n'), std::string::npos);
  c.allow_insecure = true;
  EXPECT_TRUE(CheckExposure(c).ok());
  c.allow_insecure = false;
  c.api_keys_file = "keys";
  EXPECT_TRUE(CheckExposure(c).ok());
  c.api_keys_file.clear();
  c.tls_cert = "cert";
  EXPECT_TRUE(CheckExposure(c).ok());
  c.tls_cert.clear();
  c.listen = "127.0.0.1:50051";
  EXPECT_TRUE(CheckExposure(c).ok());
}

TEST(CheckExposureTest, RemoteMetricsNeedTheFlagEvenWithKeys) {
  ServerConfig c;
  c.listen = "127.0.0.1:50051";
  c.api_keys_file = "keys";
  c.tls_cert = "cert";
  c.metrics_listen = "127.0.0.1:9464";
  EXPECT_TRUE(CheckExposure(c).ok());
  for (const std::string m : {"0.0.0.0:9464", "9464", "[::]:9464", "192.0.2.1:9464"}) {
    c.metrics_listen = m;
    const absl::Status refused = CheckExposure(c);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << m;
    EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("collection"));
    EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("--allow-insecure"));
    EXPECT_EQ(std::string(refused.message()).find('\n'), std::string::npos);
  }
  c.allow_insecure = true;
  EXPECT_TRUE(CheckExposure(c).ok());
}

}  // namespace
}  // namespace quiver::server
