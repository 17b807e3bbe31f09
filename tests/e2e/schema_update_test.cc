// Schema evolution end to end: UpdateCollection over gRPC against the real
// quiverd, which is killed with SIGKILL right after the change is
// acknowledged; after the restart the change holds (schema, indexes built
// again, old rows null in the new attribute, new rows keep theirs).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/random_vectors.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

constexpr uint32_t kDim = 8;

class SchemaUpdateE2ETest : public ::testing::Test {
 protected:
  void Start() {
    QUIVER_ASSERT_OK(server_.Start(dir_.path() + "/data",
                                   {"--segment-max-rows", "100", "--seal-idle-ms", "100"}));
    client_ = std::make_unique<client::Client>(server_.address());
  }

  void Upsert(int first, int last, bool with_tag) {
    v1::UpsertPointsRequest req;
    req.set_collection("c");
    for (int i = first; i < last; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", i));
      auto v = ::quiver::testing::GaussianVector(i, kDim, 1);
      (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
      (*p->mutable_attributes())["n"].set_int_value(i);
      if (with_tag) (*p->mutable_attributes())["tag"].set_string_value(absl::StrCat("t", i % 4));
    }
    QUIVER_ASSERT_OK(client_->Upsert(req));
  }

  // Waits until every segment is INDEXED (attribute indexes included).
  v1::CollectionInfo WaitIndexed() {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      auto info = client_->GetCollection("c");
      EXPECT_TRUE(info.ok()) << info.status();
      if (!info.ok()) return {};
      bool all = info->stats().segments_size() > 0;
      for (const auto& s : info->stats().segments()) {
        all = all && s.state() == v1::SegmentInfo::INDEXED;
      }
      if (all || absl::Now() > deadline) return *info;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  TempDir dir_;
  QuiverdProcess server_{QuiverdOptions{}};
  std::unique_ptr<client::Client> client_;
};

TEST_F(SchemaUpdateE2ETest, AcknowledgedChangeSurvivesKill9) {
  Start();
  v1::CollectionSchema schema;
  v1::VectorField f = ::quiver::testing::VectorField("v", kDim);
  f.mutable_index()->set_type("HNSW");
  *schema.add_vectors() = f;
  *schema.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
  Upsert(0, 250, false);
  WaitIndexed();

  v1::UpdateCollectionRequest req;
  req.set_name("c");
  v1::AttributeField* tag = req.add_attributes();
  *tag = ::quiver::testing::Attribute("tag", v1::STRING);
  tag->set_indexed(true);
  v1::AttributeField* n = req.add_attributes();
  *n = ::quiver::testing::Attribute("n", v1::INT64);
  n->set_indexed(true);
  n->set_window(true);
  auto updated = client_->UpdateCollection(req);
  QUIVER_ASSERT_OK(updated);
  ASSERT_EQ(updated->schema().attributes_size(), 2);
  Upsert(250, 290, true);
  // A type change over the wire: refused, with the reason.
  v1::UpdateCollectionRequest bad;
  bad.set_name("c");
  *bad.add_attributes() = ::quiver::testing::Attribute("tag", v1::INT64);
  EXPECT_THAT(client_->UpdateCollection(bad),
              StatusIs(absl::StatusCode::kFailedPrecondition, "would invalidate"));

  QUIVER_ASSERT_OK(server_.Kill9());
  Start();
  const v1::CollectionInfo info = WaitIndexed();
  ASSERT_EQ(info.schema().attributes_size(), 2) << info.DebugString();
  EXPECT_EQ(info.schema().attributes(1).name(), "tag");
  EXPECT_EQ(info.schema().attributes(1).type(), v1::STRING);
  EXPECT_TRUE(info.schema().attributes(1).indexed());
  EXPECT_TRUE(info.schema().attributes(0).window());
  int sealed = 0;
  for (const auto& s : info.stats().segments()) {
    EXPECT_EQ(s.state(), v1::SegmentInfo::INDEXED);
    ++sealed;
    EXPECT_EQ(s.indexed_attributes_size(), 2) << s.DebugString();
  }
  EXPECT_GE(sealed, 3);
  auto count = client_->Count("c", "tag IS NULL");
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, 250u);
  count = client_->Count("c", "tag = \"t1\"");
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, 10u);

  v1::SearchRequest search;
  search.set_collection("c");
  search.set_k(5);
  search.set_filter("n >= 20 AND n < 200");
  search.set_explain(true);
  search.mutable_params()->set_filter_strategy(v1::WINDOW_FILTER);
  auto q = ::quiver::testing::GaussianVector(30, kDim, 1);
  search.add_vectors()->mutable_values()->Add(q.begin(), q.end());
  auto found = client_->Search(search);
  QUIVER_ASSERT_OK(found);
  ASSERT_GE(found->results(0).hits_size(), 1);
  EXPECT_EQ(found->results(0).hits(0).id(), "p30");
  int windowed = 0;
  for (const auto& p : found->explain().segments()) windowed += p.strategy() == "WINDOW_FILTER";
  EXPECT_GT(windowed, 0) << found->explain().text();
}

}  // namespace
}  // namespace quiver
