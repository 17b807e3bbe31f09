// Vector fields added to and dropped from a collection with points
// (UpdateCollection add_vectors / drop_vectors; query/schema_update.h):
// segments written before an added field lack it (searches skip them, no
// index is built for them), compaction and restart carry both kinds of
// segment, and adds and drops run while writes bound against the older
// schema, searches and reads of every vector go on.
#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 4;
constexpr uint32_t kWDim = 3;

class VectorFieldUpdateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open();
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField f = VectorField("v", kDim);
    f.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = f;
    *req.mutable_schema()->add_attributes() = Attribute("a", v1::INT64);
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 100;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  // Distinct per id: a point's own v is its nearest.
  static std::vector<float> VOf(int i) {
    return {static_cast<float>(i), static_cast<float>(i % 7), static_cast<float>(i % 13),
            static_cast<float>(i % 5)};
  }
  // A w vector per id, spread so that nearest-neighbour order is unique.
  static std::vector<float> WOf(int i, int salt = 0) {
    return {static_cast<float>((i * 37 + salt) % 101), static_cast<float>((i * 11) % 53) / 7.0f,
            static_cast<float>(i % 13) * 0.5f};
  }

  // Points [first, last) with v, and with `field` (WOf) when given.
  void Upsert(int first, int last, const std::string& field = "", int salt = 0) {
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    for (int i = first; i < last; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(absl::StrCat("p", i));
      for (float x : VOf(i)) (*p->mutable_vectors())["v"].add_values(x);
      if (!field.empty()) {
        for (float x : WOf(i, salt)) (*p->mutable_vectors())[field].add_values(x);
        w_of_[field][p->id()] = WOf(i, salt);
      }
      (*p->mutable_attributes())["a"].set_int_value(i);
    }
    v1::UpsertPointsResponse resp;
    QUIVER_ASSERT_OK(engine_->Upsert(up, &resp));
  }

  absl::Status Change(const std::vector<v1::VectorField>& add,
                      const std::vector<std::string>& drop) {
    v1::UpdateCollectionRequest req;
    req.set_name("c");
    for (const auto& f : add) *req.add_add_vectors() = f;
    for (const auto& d : drop) req.add_drop_vectors(d);
    v1::UpdateCollectionResponse resp;
    return engine_->UpdateCollection(req, &resp);
  }

  static v1::VectorField W(const std::string& name) {
    v1::VectorField f = VectorField(name, kWDim);
    f.mutable_index()->set_type("HNSW");
    return f;
  }

  absl::StatusOr<std::vector<std::string>> TrySearch(const std::string& field,
                                                     const std::vector<float>& q, uint32_t k,
                                                     bool exact) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_field(field);
    req.set_k(k);
    req.mutable_params()->set_exact(exact);
    req.mutable_params()->set_ef(256);
    v1::Vector* v = req.add_vectors();
    for (float x : q) v->add_values(x);
    v1::SearchResponse resp;
    absl::Status s = engine_->Search(req, StopToken(), &resp);
    if (!s.ok()) return s;
    std::vector<std::string> ids;
    for (const auto& h : resp.results(0).hits()) ids.push_back(h.id());
    return ids;
  }

  // TrySearch's ids; a failure is the test's.
  std::vector<std::string> SearchIds(const std::string& field, const std::vector<float>& q,
                                     uint32_t k, bool exact) {
    absl::StatusOr<std::vector<std::string>> ids = TrySearch(field, q, k, exact);
    if (!ids.ok()) ADD_FAILURE() << field << ": " << ids.status();
    return ids.ok() ? *ids : std::vector<std::string>();
  }

  // The k ids nearest q by L2 over w_of_[field].
  std::vector<std::string> BruteForce(const std::string& field, const std::vector<float>& q,
                                      size_t k) {
    std::vector<std::pair<float, std::string>> d;
    for (const auto& [id, w] : w_of_[field]) {
      float s = 0;
      for (size_t i = 0; i < w.size(); ++i) s += (w[i] - q[i]) * (w[i] - q[i]);
      d.emplace_back(s, id);
    }
    std::sort(d.begin(), d.end());
    std::vector<std::string> out;
    for (size_t i = 0; i < d.size() && i < k; ++i) out.push_back(d[i].second);
    return out;
  }

  v1::CollectionInfo Describe() {
    v1::GetCollectionRequest req;
    req.set_name("c");
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    return resp.collection();
  }

  // Segments no row of which holds a field need no index of it.
  void ExpectAllIndexed() {
    const v1::CollectionInfo info = Describe();
    for (const auto& s : info.stats().segments()) {
      EXPECT_EQ(s.state(), v1::SegmentInfo::INDEXED) << s.ShortDebugString();
    }
  }

  void ExpectNoDefects() {
    v1::VerifyCollectionRequest req;
    req.set_name("c");
    v1::VerifyCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &resp));
    for (const auto& d : resp.defects()) ADD_FAILURE() << d.ShortDebugString();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  // What each field's points hold (ids that were given one).
  std::map<std::string, std::map<std::string, std::vector<float>>> w_of_;
};

TEST_F(VectorFieldUpdateTest, AddedFieldOverOldCompactedAndRestoredSegments) {
  Upsert(0, 250);
  // The growing segment (rows 200..249) mostly deleted: small enough to be
  // merged with what the add seals after it.
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 200; i < 240; ++i) del.add_ids(absl::StrCat("p", i));
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  QUIVER_ASSERT_OK(Change({W("w")}, {}));
  EXPECT_TRUE(Describe().schema().vectors(1).optional());
  EXPECT_THAT(SearchIds("w", {0, 0, 0}, 10, true), ::testing::IsEmpty());
  Upsert(250, 275, "w");
  Upsert(0, 15, "w");  // older points given one: new rows
  const std::vector<float> q = {40, 3, 2};
  const std::vector<std::string> want = BruteForce("w", q, 30);
  EXPECT_THAT(SearchIds("w", q, 30, true), want);
  engine_->SealAndWaitForIndexes();
  ExpectAllIndexed();
  for (bool exact : {true, false}) {
    EXPECT_THAT(SearchIds("w", q, 30, exact), want) << exact;
    EXPECT_THAT(SearchIds("v", VOf(7), 1, exact),
                ::testing::ElementsAre("p7"));
  }
  ExpectNoDefects();
  for (int restart = 0; restart < 2; ++restart) {
    Open();
    engine_->SealAndWaitForIndexes();
    EXPECT_THAT(SearchIds("w", q, 30, false), want) << restart;
    EXPECT_THAT(SearchIds("v", VOf(120), 1, false),
                ::testing::ElementsAre("p120"));
    ExpectAllIndexed();
    ExpectNoDefects();
  }
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p1");
  get.add_ids("p100");
  get.set_with_vectors(true);
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  ASSERT_EQ(got.points_size(), 2);
  EXPECT_TRUE(got.points(0).vectors().contains("w"));
  EXPECT_FALSE(got.points(1).vectors().contains("w"));
}

TEST_F(VectorFieldUpdateTest, DroppedFieldIsGoneEverywhereAndItsNameFree) {
  QUIVER_ASSERT_OK(Change({W("w")}, {}));
  Upsert(0, 150, "w");
  engine_->SealAndWaitForIndexes();
  QUIVER_ASSERT_OK(Change({}, {"w"}));
  const v1::CollectionInfo info = Describe();
  ASSERT_EQ(info.schema().vectors_size(), 1);
  EXPECT_EQ(info.stats().vectors_size(), 1);
  for (const auto& s : info.stats().segments()) {
    EXPECT_EQ(s.fields_size(), 1) << s.ShortDebugString();
  }
  EXPECT_THAT(TrySearch("w", {0, 0, 0}, 10, true),
              StatusIs(absl::StatusCode::kInvalidArgument, "no vector field"));
  // v was searched by default before only when named; now it is the only one.
  EXPECT_THAT(SearchIds("", VOf(3), 1, true), ::testing::ElementsAre("p3"));
  v1::UpsertPointsRequest up;
  up.set_collection("c");
  v1::Point* p = up.add_points();
  p->set_id("x");
  for (float x : VOf(1)) (*p->mutable_vectors())["v"].add_values(x);
  for (float x : WOf(1)) (*p->mutable_vectors())["w"].add_values(x);
  v1::UpsertPointsResponse uresp;
  EXPECT_THAT(engine_->Upsert(up, &uresp), StatusIs(absl::StatusCode::kInvalidArgument));
  // Re-created under the same name with another dim: empty, then filled.
  v1::VectorField w2 = VectorField("w", 2);
  QUIVER_ASSERT_OK(Change({w2}, {}));
  EXPECT_EQ(Describe().schema().vectors(1).dim(), 2u);
  EXPECT_THAT(SearchIds("w", {0, 0}, 10, true), ::testing::IsEmpty());
  Open();
  EXPECT_THAT(SearchIds("w", {0, 0}, 10, true), ::testing::IsEmpty());
  EXPECT_THAT(SearchIds("v", VOf(42), 1, false), ::testing::ElementsAre("p42"));
  ExpectNoDefects();
  // Dropped fields keep their place: 16 slots in all, so a 15th add fails.
  for (int i = 0; i < 13; ++i) QUIVER_ASSERT_OK(Change({W(absl::StrCat("f", i))}, {}));
  EXPECT_THAT(Change({W("f13")}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "dropped ones count"));
}

TEST_F(VectorFieldUpdateTest, AddsAndDropsWhileWritesAndReadsRun) {
  Upsert(0, 200);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Writers bound against whatever schema is current (v only): before and
  // after each change.
  threads.emplace_back([&] {
    for (int round = 0; !stop.load(); ++round) {
      v1::UpsertPointsRequest up;
      up.set_collection("c");
      for (int i = 0; i < 20; ++i) {
        v1::Point* p = up.add_points();
        const int id = (round * 20 + i) % 400;
        p->set_id(absl::StrCat("p", id));
        for (float x : VOf(id)) (*p->mutable_vectors())["v"].add_values(x);
      }
      v1::UpsertPointsResponse resp;
      if (!engine_->Upsert(up, &resp).ok()) ++failures;
      v1::UpdatePointsRequest pu;
      pu.set_collection("c");
      v1::PointUpdate* u = pu.add_updates();
      u->set_id(absl::StrCat("p", round % 200));
      (*u->mutable_set_attributes())["a"].set_int_value(-round);
      v1::UpdatePointsResponse presp;
      if (!engine_->Update(pu, &presp).ok()) ++failures;
    }
  });
  // Readers of every vector: searches, gets and scrolls with vectors.
  threads.emplace_back([&] {
    while (!stop.load()) {
      if (!TrySearch("v", VOf(5), 10, false).ok()) ++failures;
      v1::GetPointsRequest get;
      get.set_collection("c");
      get.add_ids("p5");
      get.add_ids("p300");
      get.set_with_vectors(true);
      v1::GetPointsResponse got;
      if (!engine_->GetPoints(get, &got).ok()) ++failures;
      v1::ScrollPointsRequest scroll;
      scroll.set_collection("c");
      scroll.set_page_size(100);
      scroll.set_with_vectors(true);
      v1::ScrollPointsResponse page;
      if (!engine_->ScrollPoints(scroll, &page).ok()) ++failures;
      Describe();
    }
  });
  std::string live;  // the added field that stays
  for (int i = 0; i < 12; ++i) {
    const std::string name = absl::StrCat("w", i);
    std::vector<std::string> drop;
    if (!live.empty()) drop.push_back(live);
    QUIVER_ASSERT_OK(Change({W(name)}, drop));
    if (!live.empty()) w_of_.erase(live);
    live = name;
    Upsert(1000 + i * 10, 1010 + i * 10, name);
    const std::vector<float> q = WOf(1000 + i * 10);
    EXPECT_THAT(SearchIds(name, q, 5, true), BruteForce(name, q, 5)) << i;
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  engine_->SealAndWaitForIndexes();
  ExpectNoDefects();
  Open();
  const v1::CollectionInfo info = Describe();
  ASSERT_EQ(info.schema().vectors_size(), 2);
  EXPECT_EQ(info.schema().vectors(1).name(), "w11");
  const std::vector<float> q = WOf(1110);
  EXPECT_THAT(SearchIds("w11", q, 5, false), BruteForce("w11", q, 5));
  ExpectNoDefects();
}

}  // namespace
}  // namespace quiver
