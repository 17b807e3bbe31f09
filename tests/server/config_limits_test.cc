// The limits derived from the memory quiverd may use (ResolveLimits), as
// parsed from the command line: what -1 becomes, and that explicit values
// and 0 ("none"/"never") are kept.
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/config.h"

namespace quiver::server {
namespace {

absl::StatusOr<ServerConfig> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "quiverd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseConfig(static_cast<int>(argv.size()), argv.data());
}

ServerConfig Parse(std::vector<std::string> args) {
  absl::StatusOr<ServerConfig> c = ParseArgs(std::move(args));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ServerConfig{};
}

TEST(ConfigLimitsTest, MergeTargetIsAQuarterOfMemoryByDefault) {
  ServerConfig c = Parse({"--data-dir", "/nonexistent"});
  EXPECT_EQ(c.merge_target_mb, -1);
  ResolveLimits(&c, uint64_t{24} << 30);
  EXPECT_EQ(c.merge_target_mb, 6 * 1024);
  EXPECT_EQ(c.memory_budget_mb, 12 * 1024);  // the budget the quarter sits beside

  ServerConfig small = Parse({"--data-dir", "/nonexistent"});
  ResolveLimits(&small, uint64_t{512} << 20);
  EXPECT_EQ(small.merge_target_mb, 256);  // the floor

  ServerConfig unknown = Parse({"--data-dir", "/nonexistent"});
  ResolveLimits(&unknown, 0);  // taken as 8 GiB
  EXPECT_EQ(unknown.merge_target_mb, 2048);
}

TEST(ConfigLimitsTest, ExplicitMergeTargetAndZeroAreKept) {
  ServerConfig c = Parse({"--data-dir", "/nonexistent", "--merge-target-mb", "4096"});
  ResolveLimits(&c, uint64_t{1} << 30);
  EXPECT_EQ(c.merge_target_mb, 4096);
  ServerConfig off = Parse({"--data-dir", "/nonexistent", "--merge-target-mb", "0"});
  ResolveLimits(&off, uint64_t{24} << 30);
  EXPECT_EQ(off.merge_target_mb, 0);
}

TEST(ConfigLimitsTest, MergeTargetBelowMinusOneIsRefused) {
  absl::StatusOr<ServerConfig> c =
      ParseArgs({"--data-dir", "/nonexistent", "--merge-target-mb", "-2"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::server
