// Aliases end to end, through the real quiverd: the four RPCs and requests
// through an alias over gRPC; an acknowledged alias change surviving
// SIGKILL; a switch under a stream of searches never failing one or
// splitting it; and API keys limited to collections, which must not reach
// another collection through an alias.
#include <atomic>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/api_key.h"
#include "client/client.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/server_fixture.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

v1::CollectionSchema Schema() {
  v1::CollectionSchema s;
  *s.add_vectors() = ::quiver::testing::VectorField("v", 4);
  return s;
}

// `n` points "<prefix>0".. into `coll`.
v1::UpsertPointsRequest Points(const std::string& coll, const std::string& prefix, int n) {
  v1::UpsertPointsRequest req;
  req.set_collection(coll);
  for (int i = 0; i < n; ++i) {
    v1::Point* p = req.add_points();
    p->set_id(absl::StrCat(prefix, i));
    auto* v = (*p->mutable_vectors())["v"].mutable_values();
    for (int d = 0; d < 4; ++d) v->Add(static_cast<float>(i + d));
  }
  return req;
}

v1::SearchRequest Query(const std::string& coll, uint32_t k) {
  v1::SearchRequest req;
  req.set_collection(coll);
  req.set_k(k);
  auto* q = req.add_vectors();
  for (int d = 0; d < 4; ++d) q->add_values(static_cast<float>(d));
  return req;
}

std::vector<std::string> Pairs(const std::vector<v1::AliasInfo>& aliases) {
  std::vector<std::string> out;
  for (const auto& a : aliases) out.push_back(a.alias() + "->" + a.collection());
  return out;
}

class AliasE2eTest : public ::quiver::testing::ServerFixture {};

TEST_F(AliasE2eTest, AliasRpcsAndRequestsThroughAnAlias) {
  StartServer();
  client::Client& c = *client_;
  QUIVER_ASSERT_OK(c.CreateCollection("docs_v1", Schema()));
  QUIVER_ASSERT_OK(c.CreateCollection("docs_v2", Schema()));
  QUIVER_ASSERT_OK(c.Upsert(Points("docs_v1", "a", 3)));
  QUIVER_ASSERT_OK(c.Upsert(Points("docs_v2", "b", 5)));
  absl::StatusOr<uint64_t> seq = c.CreateAlias("docs", "docs_v1");
  QUIVER_ASSERT_OK(seq);
  EXPECT_GT(*seq, 0u);
  EXPECT_EQ(*c.Count("docs"), 3u);
  absl::StatusOr<v1::CollectionInfo> info = c.GetCollection("docs");
  QUIVER_ASSERT_OK(info);
  EXPECT_EQ(info->name(), "docs_v1");
  absl::StatusOr<v1::SearchResponse> found = c.Search(Query("docs", 10));
  QUIVER_ASSERT_OK(found);
  EXPECT_EQ(found->results(0).hits_size(), 3);
  EXPECT_EQ(found->results(0).hits(0).id().substr(0, 1), "a");

  absl::StatusOr<uint64_t> switched = c.SwitchAlias("docs", "docs_v2");
  QUIVER_ASSERT_OK(switched);
  EXPECT_GT(*switched, *seq);
  EXPECT_EQ(*c.Count("docs"), 5u);
  EXPECT_EQ(Pairs(*c.ListAliases()), std::vector<std::string>{"docs->docs_v2"});
  EXPECT_TRUE(c.ListAliases("docs_v1")->empty());

  EXPECT_THAT(c.CreateAlias("docs_v1", "docs_v2"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(c.CreateCollection("docs", Schema()), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(c.SwitchAlias("nope", "docs_v2"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(c.CreateAlias("bad-name", "docs_v2"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(c.DropCollection("docs_v2"),
              StatusIs(absl::StatusCode::kFailedPrecondition, "docs"));
  EXPECT_THAT(c.DropCollection("docs"),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is an alias of"));
  EXPECT_EQ(*c.Count("docs_v2"), 5u);

  QUIVER_ASSERT_OK(c.DeleteAlias("docs"));
  EXPECT_THAT(c.Count("docs"), StatusIs(absl::StatusCode::kNotFound));
  QUIVER_ASSERT_OK(c.DropCollection("docs_v1"));
}

// Searches through the alias run while it is switched back and forth: each
// answers wholly from one collection, and none fails.
TEST_F(AliasE2eTest, SwitchUnderSearchesNeverSplitsOrFailsOne) {
  StartServer();
  client::Client& c = *client_;
  QUIVER_ASSERT_OK(c.CreateCollection("c1", Schema()));
  QUIVER_ASSERT_OK(c.CreateCollection("c2", Schema()));
  QUIVER_ASSERT_OK(c.Upsert(Points("c1", "x", 20)));
  QUIVER_ASSERT_OK(c.Upsert(Points("c2", "y", 30)));
  QUIVER_ASSERT_OK(c.CreateAlias("live", "c1"));
  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, failures{0}, mixed{0};
  std::thread reader([&] {
    client::Client r(server_->address());
    while (!stop.load()) {
      absl::StatusOr<v1::SearchResponse> resp = r.Search(Query("live", 50));
      if (!resp.ok()) {
        ++failures;
        continue;
      }
      const auto& hits = resp->results(0).hits();
      const char first = hits.empty() ? '?' : hits[0].id()[0];
      const int want = first == 'x' ? 20 : 30;
      bool same = hits.size() == want;
      for (const auto& h : hits) same = same && h.id()[0] == first;
      if (!same) ++mixed;
      ++searches;
    }
  });
  // Until both sides have had their share: 40 switches and 200 searches.
  int switches = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while ((switches < 40 || searches.load() < 200) && absl::Now() < give_up) {
    const absl::Status s = c.SwitchAlias("live", switches % 2 == 0 ? "c2" : "c1").status();
    EXPECT_TRUE(s.ok()) << s;
    ++switches;
  }
  stop = true;
  reader.join();
  EXPECT_GE(switches, 40);
  EXPECT_GE(searches.load(), 200);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mixed.load(), 0);
}

// The alias change acknowledged just before SIGKILL is there after the
// restart, with the ones before it.
TEST_F(AliasE2eTest, AcknowledgedChangesSurviveKill9) {
  StartServer();
  {
    client::Client& c = *client_;
    QUIVER_ASSERT_OK(c.CreateCollection("old", Schema()));
    QUIVER_ASSERT_OK(c.CreateCollection("fresh", Schema()));
    QUIVER_ASSERT_OK(c.Upsert(Points("fresh", "f", 7)));
    QUIVER_ASSERT_OK(c.CreateAlias("prod", "old"));
    QUIVER_ASSERT_OK(c.CreateAlias("temp", "old"));
    QUIVER_ASSERT_OK(c.DeleteAlias("temp"));
    QUIVER_ASSERT_OK(c.SwitchAlias("prod", "fresh"));
  }
  QUIVER_ASSERT_OK(server_->Kill9());
  client_.reset();
  StartServer();
  client::Client& c = *client_;
  EXPECT_EQ(Pairs(*c.ListAliases()), std::vector<std::string>{"prod->fresh"});
  EXPECT_EQ(*c.Count("prod"), 7u);
  EXPECT_THAT(c.DropCollection("fresh"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

constexpr char kAdminKey[] = "qk_alias-admin-key-0123456789";
constexpr char kLimitedAdmin[] = "qk_alias-limited-admin-0123456789";
constexpr char kLimitedRead[] = "qk_alias-limited-read-0123456789";
constexpr char kAliasRead[] = "qk_alias-alias-read-0123456789";

client::Client As(const std::string& address, const std::string& key) {
  client::ClientOptions o;
  o.timeout = absl::Seconds(10);
  o.api_key = key;
  return client::Client(address, o);
}

TEST_F(AliasE2eTest, ALimitedKeyCannotReachAnotherCollectionThroughAnAlias) {
  const std::string keys = dir_.path() + "/api-keys";
  {
    std::ofstream out(keys);
    out << client::ApiKeySha256Hex(kAdminKey) << " admin\n"
        << client::ApiKeySha256Hex(kLimitedAdmin) << " admin public,pub_alias\n"
        << client::ApiKeySha256Hex(kLimitedRead) << " read public\n"
        << client::ApiKeySha256Hex(kAliasRead) << " read pub_alias\n";
  }
  StartServer({"--api-keys-file", keys});
  client::Client admin = As(server_->address(), kAdminKey);
  QUIVER_ASSERT_OK(admin.CreateCollection("public", Schema()));
  QUIVER_ASSERT_OK(admin.CreateCollection("secret", Schema()));
  QUIVER_ASSERT_OK(admin.Upsert(Points("secret", "s", 4)));
  QUIVER_ASSERT_OK(admin.CreateAlias("sneaky", "secret"));

  // Reads name the alias, which the key does not cover.
  client::Client reader = As(server_->address(), kLimitedRead);
  EXPECT_TRUE(reader.Count("public").ok());
  EXPECT_THAT(reader.Count("sneaky"), StatusIs(absl::StatusCode::kPermissionDenied, "sneaky"));
  EXPECT_THAT(reader.Search(Query("sneaky", 3)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(reader.GetCollection("sneaky"), StatusIs(absl::StatusCode::kPermissionDenied));
  // Alias RPCs need admin.
  EXPECT_THAT(reader.CreateAlias("pub_alias", "public"),
              StatusIs(absl::StatusCode::kPermissionDenied, "needs admin"));
  EXPECT_THAT(reader.ListAliases(), StatusIs(absl::StatusCode::kPermissionDenied));

  // A limited admin cannot point a name it covers at a collection it does
  // not, nor take over a name it does not cover.
  client::Client limited = As(server_->address(), kLimitedAdmin);
  EXPECT_THAT(limited.CreateAlias("pub_alias", "secret"),
              StatusIs(absl::StatusCode::kPermissionDenied, "secret"));
  EXPECT_THAT(limited.SwitchAlias("sneaky", "public"),
              StatusIs(absl::StatusCode::kPermissionDenied, "sneaky"));
  EXPECT_THAT(limited.DeleteAlias("sneaky"), StatusIs(absl::StatusCode::kPermissionDenied));
  QUIVER_ASSERT_OK(limited.CreateAlias("pub_alias", "public"));
  // It sees only the pairs within its limit, and only its collections.
  EXPECT_EQ(Pairs(*limited.ListAliases()), std::vector<std::string>{"pub_alias->public"});
  absl::StatusOr<std::vector<v1::CollectionInfo>> listed = limited.ListCollections();
  QUIVER_ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name(), "public");
  EXPECT_THAT(limited.ListAliases("secret"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Pairs(*admin.ListAliases()),
            (std::vector<std::string>{"pub_alias->public", "sneaky->secret"}));

  // A key granted the alias's name reaches what the alias names; once an
  // unlimited admin switches it, that is the new collection.
  client::Client via_alias = As(server_->address(), kAliasRead);
  EXPECT_EQ(*via_alias.Count("pub_alias"), 0u);
  EXPECT_THAT(via_alias.Count("public"), StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace quiver
