// client::RetryWait: how Client::Upsert reads the server's "retry-after-ms"
// hint. A bad hint must never make the client retry at once in a loop.
#include "client/client.h"

#include <gtest/gtest.h>

namespace quiver::client {
namespace {

TEST(RetryWaitTest, FollowsAPlainHintWithinTheTimeLeft) {
  EXPECT_EQ(RetryWait("250", absl::Seconds(10)), absl::Milliseconds(250));
  EXPECT_EQ(RetryWait("0", absl::Seconds(10)), absl::Milliseconds(1));
}

TEST(RetryWaitTest, IgnoresNegativeAndGarbageHints) {
  for (const char* bad : {"-1", "-9223372036854775808", "", "abc", "12ms", "1.5",
                          "99999999999999999999999"}) {
    EXPECT_EQ(RetryWait(bad, absl::Seconds(10)), std::nullopt) << bad;
  }
}

TEST(RetryWaitTest, DoesNotWaitPastTheTimeout) {
  EXPECT_EQ(RetryWait("10000", absl::Seconds(10)), std::nullopt);
  EXPECT_EQ(RetryWait("10", absl::Milliseconds(5)), std::nullopt);
  EXPECT_EQ(RetryWait("1", absl::ZeroDuration()), std::nullopt);
  EXPECT_EQ(RetryWait("1", -absl::Seconds(1)), std::nullopt);
}

}  // namespace
}  // namespace quiver::client
