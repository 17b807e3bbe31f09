// Schema evolution through UpdateCollection (query/schema_update.h): added
// attributes, attribute and window indexes turned on and off, refused type
// changes; over segments written before and after the change, across a
// restart and through a snapshot.
#include <atomic>
#include <set>
#include <thread>
#include <string>
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

class SchemaUpdateTest : public ::testing::Test {
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
    o.collection.compact_deleted_ratio = 0.99;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  // Points [first, last): a = i, and b = "b<i % 3>" when with_b.
  void Upsert(int first, int last, bool with_b) {
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    for (int i = first; i < last; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(absl::StrCat("p", i));
      auto& v = (*p->mutable_vectors())["v"];
      for (uint32_t d = 0; d < kDim; ++d) v.add_values(static_cast<float>(i * (d + 1) % 97));
      (*p->mutable_attributes())["a"].set_int_value(i);
      if (with_b) (*p->mutable_attributes())["b"].set_string_value(absl::StrCat("b", i % 3));
    }
    v1::UpsertPointsResponse resp;
    QUIVER_ASSERT_OK(engine_->Upsert(up, &resp));
  }

  absl::Status Update(const std::vector<v1::AttributeField>& attrs,
                      v1::UpdateCollectionResponse* resp = nullptr) {
    v1::UpdateCollectionRequest req;
    req.set_name("c");
    for (const auto& a : attrs) *req.add_attributes() = a;
    v1::UpdateCollectionResponse unused;
    return engine_->UpdateCollection(req, resp != nullptr ? resp : &unused);
  }

  static v1::AttributeField Attr(const std::string& name, v1::AttributeType type,
                                 bool indexed = false, bool window = false) {
    v1::AttributeField a = Attribute(name, type);
    a.set_indexed(indexed);
    a.set_window(window);
    return a;
  }

  uint64_t Count(const std::string& filter) {
    v1::CountPointsRequest req;
    req.set_collection("c");
    req.set_filter(filter);
    v1::CountPointsResponse resp;
    absl::Status s = engine_->CountPoints(req, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp.count();
  }

  v1::CollectionInfo Describe(const std::string& name = "c") {
    v1::GetCollectionRequest req;
    req.set_name(name);
    v1::GetCollectionResponse resp;
    absl::Status s = engine_->GetCollection(req, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp.collection();
  }

  // A filtered search forced to `strategy`, with explain.
  v1::SearchResponse Search(const std::string& filter, v1::FilterStrategy strategy,
                            uint32_t k = 1000) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(k);
    req.set_filter(filter);
    req.set_explain(true);
    req.add_output_attributes("a");
    req.mutable_params()->set_filter_strategy(strategy);
    v1::Vector* q = req.add_vectors();
    for (uint32_t d = 0; d < kDim; ++d) q->add_values(1);
    v1::SearchResponse resp;
    absl::Status s = engine_->Search(req, StopToken(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Rows checked one by one against the filter over the sealed segments
  // (0 when an attribute index answered it).
  static uint64_t SealedFilterChecks(const v1::SearchResponse& resp) {
    uint64_t checks = 0;
    for (const auto& p : resp.explain().segments()) {
      if (p.state() != "GROWING") checks += p.filter_checks();
    }
    return checks;
  }

  // Sealed segments, and those whose attribute (window) indexes cover
  // `attr`.
  struct Coverage {
    int sealed = 0, indexed = 0, windowed = 0;
  };
  Coverage CoverageOf(const std::string& attr) {
    Coverage c;
    const v1::CollectionInfo info = Describe();
    for (const auto& s : info.stats().segments()) {
      if (s.state() == v1::SegmentInfo::GROWING) continue;
      ++c.sealed;
      for (const auto& a : s.indexed_attributes()) c.indexed += a == attr;
      for (const auto& a : s.window_attributes()) c.windowed += a == attr;
    }
    return c;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(SchemaUpdateTest, AddedAttributeIsNullInOlderRowsAndSetInNewOnes) {
  Upsert(0, 250, /*with_b=*/false);
  engine_->SealAndWaitForIndexes();
  // Names the unknown attribute: refused before the change.
  v1::CountPointsRequest unknown;
  unknown.set_collection("c");
  unknown.set_filter("b = \"b1\"");
  v1::CountPointsResponse unused;
  EXPECT_THAT(engine_->CountPoints(unknown, &unused), StatusIs(absl::StatusCode::kInvalidArgument));

  v1::UpdateCollectionResponse resp;
  QUIVER_ASSERT_OK(Update({Attr("b", v1::STRING)}, &resp));
  ASSERT_EQ(resp.collection().schema().attributes_size(), 2);
  EXPECT_EQ(resp.collection().schema().attributes(1).name(), "b");
  EXPECT_GT(resp.sequence(), 0u);
  // Rows in the growing segment and in sealed ones, before and after.
  Upsert(250, 280, /*with_b=*/true);
  engine_->SealAndWaitForIndexes();
  Upsert(280, 310, /*with_b=*/true);

  EXPECT_EQ(Count(""), 310u);
  EXPECT_EQ(Count("b IS NULL"), 250u);
  EXPECT_EQ(Count("b IS NOT NULL"), 60u);
  EXPECT_EQ(Count("b = \"b1\""), 20u);
  EXPECT_EQ(Count("b != \"b1\""), 40u);  // null is not "not b1"
  EXPECT_EQ(Count("a < 100 AND b IS NULL"), 100u);

  for (auto strategy : {v1::FILTER_STRATEGY_AUTO, v1::PRE_FILTER, v1::POST_FILTER}) {
    v1::SearchResponse s = Search("b = \"b2\"", strategy);
    std::set<std::string> ids;
    for (const auto& h : s.results(0).hits()) ids.insert(h.id());
    EXPECT_EQ(ids.size(), 20u) << strategy;
    for (int i = 250; i < 310; ++i) EXPECT_EQ(ids.contains(absl::StrCat("p", i)), i % 3 == 2);
  }

  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p5");
  get.add_ids("p290");
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  ASSERT_EQ(got.points_size(), 2);
  EXPECT_FALSE(got.points(0).attributes().contains("b"));
  EXPECT_EQ(got.points(0).attributes().at("a").int_value(), 5);
  EXPECT_EQ(got.points(1).attributes().at("b").string_value(), "b2");

  v1::ScrollPointsRequest scroll;
  scroll.set_collection("c");
  scroll.set_page_size(1000);
  scroll.add_attributes("b");
  v1::ScrollPointsResponse page;
  QUIVER_ASSERT_OK(engine_->ScrollPoints(scroll, &page));
  ASSERT_EQ(page.points_size(), 310);
  int with_b = 0;
  for (const auto& p : page.points()) with_b += p.attributes().contains("b");
  EXPECT_EQ(with_b, 60);

  // A partial update of a row written before the change sets the new
  // attribute and keeps the old one.
  v1::UpdatePointsRequest pu;
  pu.set_collection("c");
  v1::PointUpdate* u = pu.add_updates();
  u->set_id("p7");
  (*u->mutable_set_attributes())["b"].set_string_value("set");
  v1::UpdatePointsResponse pur;
  QUIVER_ASSERT_OK(engine_->Update(pu, &pur));
  EXPECT_EQ(Count("b = \"set\" AND a = 7"), 1u);
}

TEST_F(SchemaUpdateTest, TypeChangeIsRefusedAndChangesNothing) {
  Upsert(0, 150, false);
  const v1::CollectionInfo before = Describe();
  // The valid addition in the same request is not made either.
  EXPECT_THAT(Update({Attr("c2", v1::BOOL), Attr("a", v1::DOUBLE, true)}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "attribute \"a\" of collection \"c\" is INT64: changing its type to "
                       "DOUBLE would invalidate"));
  const v1::CollectionInfo after = Describe();
  EXPECT_EQ(after.schema().SerializeAsString(), before.schema().SerializeAsString());
  EXPECT_EQ(after.stats().last_sequence(), before.stats().last_sequence());
  EXPECT_EQ(Count("a >= 0"), 150u);
  // Nor after a restart.
  Open();
  EXPECT_EQ(Describe().schema().SerializeAsString(), before.schema().SerializeAsString());
}

TEST_F(SchemaUpdateTest, MalformedChangesAreInvalidArgument) {
  const v1::CollectionInfo before = Describe();
  EXPECT_THAT(Update({}), StatusIs(absl::StatusCode::kInvalidArgument, "names nothing to change"));
  EXPECT_THAT(Update({Attr("b", v1::STRING), Attr("b", v1::STRING)}),
              StatusIs(absl::StatusCode::kInvalidArgument, "given more than once"));
  EXPECT_THAT(Update({Attr("b", v1::ATTRIBUTE_TYPE_UNSPECIFIED)}),
              StatusIs(absl::StatusCode::kInvalidArgument, "type must be"));
  EXPECT_THAT(Update({Attr("s", v1::STRING, true, /*window=*/true)}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Update({Attr("v", v1::INT64)}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Update({Attr("1bad", v1::INT64)}), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::UpdateCollectionRequest missing;
  missing.set_name("nope");
  *missing.add_attributes() = Attr("b", v1::STRING);
  v1::UpdateCollectionResponse resp;
  EXPECT_THAT(engine_->UpdateCollection(missing, &resp), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Describe().schema().SerializeAsString(), before.schema().SerializeAsString());
}

TEST_F(SchemaUpdateTest, AttributeIndexTurnedOnIsBuiltAndUsedThenOff) {
  Upsert(0, 300, false);
  engine_->SealAndWaitForIndexes();
  const Coverage none = CoverageOf("a");
  ASSERT_GE(none.sealed, 3);
  EXPECT_EQ(none.indexed, 0);
  EXPECT_GT(SealedFilterChecks(Search("a = 42", v1::PRE_FILTER)), 0u);

  // Type unspecified: keeps INT64, sets the flags.
  QUIVER_ASSERT_OK(Update({Attr("a", v1::ATTRIBUTE_TYPE_UNSPECIFIED, /*indexed=*/true)}));
  engine_->SealAndWaitForIndexes();
  EXPECT_TRUE(Describe().schema().attributes(0).indexed());
  const Coverage on = CoverageOf("a");
  EXPECT_EQ(on.indexed, on.sealed);
  v1::SearchResponse s = Search("a = 42", v1::PRE_FILTER);
  EXPECT_EQ(SealedFilterChecks(s), 0u) << s.explain().text();
  ASSERT_EQ(s.results(0).hits_size(), 1);
  EXPECT_EQ(s.results(0).hits(0).id(), "p42");
  for (const auto& p : s.explain().segments()) {
    if (p.state() != "GROWING") EXPECT_EQ(p.estimated_selectivity(), p.actual_selectivity());
  }

  // Survives a restart (attribute indexes are built at start-up from the
  // stored schema).
  Open();
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(CoverageOf("a").indexed, CoverageOf("a").sealed);
  EXPECT_EQ(SealedFilterChecks(Search("a = 42", v1::PRE_FILTER)), 0u);

  QUIVER_ASSERT_OK(Update({Attr("a", v1::INT64, /*indexed=*/false)}));
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(CoverageOf("a").indexed, 0);
  s = Search("a = 42", v1::PRE_FILTER);
  EXPECT_GT(SealedFilterChecks(s), 0u);
  ASSERT_EQ(s.results(0).hits_size(), 1);
  EXPECT_EQ(s.results(0).hits(0).id(), "p42");
}

TEST_F(SchemaUpdateTest, AddedIndexedAttributeIsBuiltForOlderSegments) {
  Upsert(0, 200, false);
  engine_->SealAndWaitForIndexes();
  QUIVER_ASSERT_OK(Update({Attr("b", v1::STRING, /*indexed=*/true)}));
  Upsert(200, 260, true);
  engine_->SealAndWaitForIndexes();
  const Coverage c = CoverageOf("b");
  EXPECT_EQ(c.indexed, c.sealed);
  v1::SearchResponse s = Search("b = \"b0\"", v1::PRE_FILTER);
  EXPECT_EQ(SealedFilterChecks(s), 0u) << s.explain().text();
  EXPECT_EQ(s.results(0).hits_size(), 20);
  EXPECT_EQ(Count("b IS NULL"), 200u);
}

TEST_F(SchemaUpdateTest, WindowTurnedOnIsBuiltAndUsedThenDroppedAtOnce) {
  Upsert(0, 300, false);
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(CoverageOf("a").windowed, 0);
  QUIVER_ASSERT_OK(Update({Attr("a", v1::INT64, true, /*window=*/true)}));
  engine_->SealAndWaitForIndexes();
  const Coverage on = CoverageOf("a");
  EXPECT_EQ(on.windowed, on.sealed);
  EXPECT_EQ(on.indexed, on.sealed);
  v1::SearchResponse s = Search("a >= 10 AND a < 250", v1::WINDOW_FILTER, 5);
  int windowed = 0;
  for (const auto& p : s.explain().segments()) windowed += p.strategy() == "WINDOW_FILTER";
  EXPECT_GT(windowed, 0) << s.explain().text();

  QUIVER_ASSERT_OK(Update({Attr("a", v1::INT64, /*indexed=*/true, /*window=*/false)}));
  // Dropped with the update, before any rebuild.
  EXPECT_EQ(CoverageOf("a").windowed, 0);
  s = Search("a >= 10 AND a < 250", v1::WINDOW_FILTER, 5);
  for (const auto& p : s.explain().segments()) EXPECT_NE(p.strategy(), "WINDOW_FILTER");
  EXPECT_EQ(s.results(0).hits_size(), 5);
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(CoverageOf("a").indexed, CoverageOf("a").sealed);
}

TEST_F(SchemaUpdateTest, AddedAttributeSurvivesRestartAndSnapshot) {
  Upsert(0, 150, false);
  QUIVER_ASSERT_OK(Update({Attr("b", v1::STRING, true)}));
  Upsert(150, 210, true);
  Open();
  EXPECT_EQ(Describe().schema().attributes_size(), 2);
  EXPECT_TRUE(Describe().schema().attributes(1).indexed());
  EXPECT_EQ(Count("b IS NULL"), 150u);
  EXPECT_EQ(Count("b = \"b1\""), 20u);
  // Writes after the restart still see the new schema.
  Upsert(210, 240, true);
  EXPECT_EQ(Count("b = \"b1\""), 30u);

  auto snap = engine_->CreateSnapshot("s1", "c");
  ASSERT_TRUE(snap.ok()) << snap.status();
  auto path = engine_->SnapshotPath("s1");
  ASSERT_TRUE(path.ok()) << path.status();
  auto restored = engine_->RestoreCollection(*path, "c", "r");
  ASSERT_TRUE(restored.ok()) << restored.status();
  const v1::CollectionInfo r = Describe("r");
  ASSERT_EQ(r.schema().attributes_size(), 2);
  EXPECT_EQ(r.schema().attributes(1).name(), "b");
  v1::CountPointsRequest req;
  req.set_collection("r");
  req.set_filter("b IS NULL");
  v1::CountPointsResponse cr;
  QUIVER_ASSERT_OK(engine_->CountPoints(req, &cr));
  EXPECT_EQ(cr.count(), 150u);
}

// Schema versions published while writers, partial updates and filtered
// reads run: nothing fails but what names an attribute not yet added, and
// every read sees a consistent schema (a crash or a wrong count here is a
// reader holding a schema that went away, or a row read past its end).
TEST_F(SchemaUpdateTest, ChangesWhileReadsAndWritesRun) {
  Upsert(0, 200, false);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int round = 0; !stop.load(); ++round) {
      v1::UpsertPointsRequest up;
      up.set_collection("c");
      for (int i = 0; i < 20; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(absl::StrCat("w", (round * 20 + i) % 500));
        auto& v = (*p->mutable_vectors())["v"];
        for (uint32_t d = 0; d < kDim; ++d) v.add_values(static_cast<float>(i + d));
        (*p->mutable_attributes())["a"].set_int_value(i);
      }
      v1::UpsertPointsResponse resp;
      if (!engine_->Upsert(up, &resp).ok()) ++failures;
    }
  });
  threads.emplace_back([&] {
    for (int i = 0; !stop.load(); ++i) {
      v1::UpdatePointsRequest pu;
      pu.set_collection("c");
      v1::PointUpdate* u = pu.add_updates();
      u->set_id(absl::StrCat("p", i % 200));
      (*u->mutable_set_attributes())["a"].set_int_value(-i);
      v1::UpdatePointsResponse resp;
      if (!engine_->Update(pu, &resp).ok()) ++failures;
    }
  });
  threads.emplace_back([&] {
    while (!stop.load()) {
      v1::SearchRequest req;
      req.set_collection("c");
      req.set_k(10);
      req.set_filter("a >= 0");
      v1::Vector* q = req.add_vectors();
      for (uint32_t d = 0; d < kDim; ++d) q->add_values(1);
      req.add_output_attributes("a");
      v1::SearchResponse resp;
      if (!engine_->Search(req, StopToken(), &resp).ok()) ++failures;
      v1::ScrollPointsRequest scroll;
      scroll.set_collection("c");
      scroll.set_page_size(50);
      v1::ScrollPointsResponse page;
      if (!engine_->ScrollPoints(scroll, &page).ok()) ++failures;
      Describe();
    }
  });
  for (int i = 0; i < 40; ++i) {
    QUIVER_ASSERT_OK(Update({Attr(absl::StrCat("x", i), i % 2 ? v1::INT64 : v1::STRING,
                                  /*indexed=*/i % 3 == 0),
                             Attr("a", v1::INT64, /*indexed=*/i % 2 == 0, /*window=*/i % 4 == 0)}));
    // Reads naming the attribute just added (which no writer sets).
    EXPECT_EQ(Count(absl::StrCat("x", i, " IS NOT NULL")), 0u);
    EXPECT_GE(Count(absl::StrCat("x", i, " IS NULL")), 200u);
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(Describe().schema().attributes_size(), 41);
  EXPECT_EQ(Count("x39 IS NULL"), Count(""));
  Open();
  EXPECT_EQ(Describe().schema().attributes_size(), 41);
}

}  // namespace
}  // namespace quiver
