// Engine tests: the whole data plane below gRPC — collections, the write
// path with group commit, exact search against a brute-force reference,
// recovery from the store, and every bad input a client can send.
#include "query/engine.h"

#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::RecallSum;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;
using ::testing::ElementsAre;

constexpr uint32_t kDim = 16;

struct RefPoint {
  std::string id;
  std::vector<float> v;
  int64_t label;
  std::string color;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    engine_.reset();
    EngineOptions o = options_;
    o.data_dir = dir_.path();
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
  }

  absl::Status Create(const std::string& name, v1::Metric metric = v1::L2,
                      const std::string& index_type = "",
                      const std::map<std::string, std::string>& params = {}) {
    v1::CreateCollectionRequest req;
    req.set_name(name);
    *req.mutable_schema()->add_vectors() = VectorField("v", kDim, metric);
    req.mutable_schema()->mutable_vectors(0)->mutable_index()->set_type(index_type);
    req.mutable_schema()->mutable_vectors(0)->mutable_index()->mutable_params()->insert(
        params.begin(), params.end());
    if (disk_) req.mutable_schema()->mutable_vectors(0)->set_storage(v1::DISK);
    *req.mutable_schema()->add_attributes() = Attribute("label", v1::INT64);
    *req.mutable_schema()->add_attributes() = Attribute("color", v1::STRING);
    v1::CreateCollectionResponse resp;
    return engine_->CreateCollection(req, &resp);
  }

  static v1::Point MakePoint(const RefPoint& p) {
    v1::Point out;
    out.set_id(p.id);
    auto* vals = (*out.mutable_vectors())["v"].mutable_values();
    vals->Add(p.v.begin(), p.v.end());
    (*out.mutable_attributes())["label"].set_int_value(p.label);
    (*out.mutable_attributes())["color"].set_string_value(p.color);
    return out;
  }

  std::vector<RefPoint> RandomPoints(size_t n, uint32_t seed, const std::string& prefix = "p") {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<RefPoint> pts;
    const char* colors[] = {"red", "green", "blue"};
    for (size_t i = 0; i < n; ++i) {
      RefPoint p{absl::StrCat(prefix, i), std::vector<float>(kDim),
                 static_cast<int64_t>(rng() % 10), colors[rng() % 3]};
      for (float& x : p.v) x = g(rng);
      pts.push_back(std::move(p));
    }
    return pts;
  }

  absl::StatusOr<uint64_t> Upsert(const std::string& coll, const std::vector<RefPoint>& pts) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    for (const auto& p : pts) *req.add_points() = MakePoint(p);
    v1::UpsertPointsResponse resp;
    absl::Status s = engine_->Upsert(req, &resp);
    if (!s.ok()) return s;
    return resp.sequence();
  }

  uint64_t Count(const std::string& coll, const std::string& filter = "") {
    v1::CountPointsRequest req;
    req.set_collection(coll);
    req.set_filter(filter);
    v1::CountPointsResponse resp;
    absl::Status s = engine_->CountPoints(req, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp.count();
  }

  absl::StatusOr<v1::SearchResponse> Search(const std::string& coll,
                                            const std::vector<std::vector<float>>& qs,
                                            uint32_t k, const std::string& filter = "") {
    v1::SearchRequest req;
    req.set_collection(coll);
    req.set_k(k);
    req.set_filter(filter);
    req.add_output_attributes("*");
    for (const auto& q : qs) req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
    v1::SearchResponse resp;
    absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    if (!s.ok()) return s;
    return resp;
  }

  // Brute-force top-k ids over `pts` under `metric`, restricted by `keep`.
  static std::vector<std::string> Expected(const std::vector<RefPoint>& pts,
                                           const std::vector<float>& q, size_t k,
                                           v1::Metric metric,
                                           const std::function<bool(const RefPoint&)>& keep) {
    std::vector<std::pair<double, std::string>> all;
    double qn = 0;
    for (float x : q) qn += x * x;
    for (const auto& p : pts) {
      if (keep && !keep(p)) continue;
      double l2 = 0, dot = 0, pn = 0;
      for (size_t i = 0; i < q.size(); ++i) {
        l2 += (q[i] - p.v[i]) * (q[i] - p.v[i]);
        dot += q[i] * p.v[i];
        pn += p.v[i] * p.v[i];
      }
      const double d = metric == v1::L2 ? l2 : metric == v1::IP ? -dot : -dot / std::sqrt(qn * pn);
      all.emplace_back(d, p.id);
    }
    std::sort(all.begin(), all.end());
    std::vector<std::string> ids;
    for (size_t i = 0; i < std::min(k, all.size()); ++i) ids.push_back(all[i].second);
    return ids;
  }

  static std::vector<std::string> Ids(const v1::SearchResult& r) {
    std::vector<std::string> ids;
    for (const auto& h : r.hits()) ids.push_back(h.id());
    return ids;
  }

  TempDir dir_;
  // Every upsert's rows are staged while its write runs (CommitGroup), so
  // the concurrent tests here (which the ThreadSanitizer suite runs) cover
  // staging beside searches; other test files keep the default.
  EngineOptions options_ = [] {
    EngineOptions o;
    o.stage_min_bytes = 0;
    return o;
  }();
  bool disk_ = false;  // Create makes the field DISK
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, CollectionLifecycle) {
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(Create("a"));
  EXPECT_THAT(Create("a"), StatusIs(absl::StatusCode::kAlreadyExists, "\"a\" already exists"));
  EXPECT_THAT(Create("bad name"),
              StatusIs(absl::StatusCode::kInvalidArgument, "invalid collection name"));
  v1::ListCollectionsResponse list;
  QUIVER_ASSERT_OK(engine_->ListCollections(&list));
  ASSERT_EQ(list.collections_size(), 2);
  EXPECT_EQ(list.collections(0).name(), "a");
  EXPECT_EQ(list.collections(1).name(), "b");

  v1::DropCollectionRequest drop;
  drop.set_name("a");
  v1::DropCollectionResponse dropped;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &dropped));
  EXPECT_THAT(engine_->DropCollection(drop, &dropped),
              StatusIs(absl::StatusCode::kNotFound, "\"a\" does not exist"));
  v1::GetCollectionRequest get;
  get.set_name("a");
  v1::GetCollectionResponse info;
  EXPECT_THAT(engine_->GetCollection(get, &info), StatusIs(absl::StatusCode::kNotFound));
  // The name can be reused, and the new collection starts empty.
  QUIVER_ASSERT_OK(Create("a"));
  EXPECT_EQ(Count("a"), 0u);
}

// A search bound before it waits (quiverd's queue for expensive requests)
// must not answer from a collection dropped, or dropped and re-created,
// while it waited.
TEST_F(EngineTest, SearchBoundBeforeADropIsNotFound) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(100, 5);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  v1::SearchRequest req;
  req.set_collection("c");
  req.set_k(3);
  req.add_vectors()->mutable_values()->Add(pts[7].v.begin(), pts[7].v.end());
  auto bound = engine_->BindSearch(req);
  QUIVER_ASSERT_OK(bound);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(*bound, StopToken(), &resp));

  v1::DropCollectionRequest drop;
  drop.set_name("c");
  v1::DropCollectionResponse dropped;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &dropped));
  EXPECT_THAT(engine_->Search(*bound, StopToken(), &resp),
              StatusIs(absl::StatusCode::kNotFound, "does not exist"));
  QUIVER_ASSERT_OK(Create("c"));
  EXPECT_THAT(engine_->Search(*bound, StopToken(), &resp),
              StatusIs(absl::StatusCode::kNotFound, "was dropped while the search waited"));
}

class EngineMetricTest : public EngineTest,
                         public ::testing::WithParamInterface<v1::Metric> {};

TEST_P(EngineMetricTest, ExactSearchMatchesBruteForce) {
  const v1::Metric metric = GetParam();
  QUIVER_ASSERT_OK(Create("c", metric));
  // 2500 points: three chunks, the last one partial.
  auto pts = RandomPoints(2500, 7);
  for (size_t i = 0; i < pts.size(); i += 1000) {
    std::vector<RefPoint> part(pts.begin() + i, pts.begin() + std::min(i + 1000, pts.size()));
    QUIVER_ASSERT_OK(Upsert("c", part));
  }
  EXPECT_EQ(Count("c"), 2500u);
  auto queries = RandomPoints(20, 99, "q");
  std::vector<std::vector<float>> qs;
  for (const auto& q : queries) qs.push_back(q.v);
  auto resp = Search("c", qs, 10);
  QUIVER_ASSERT_OK(resp);
  ASSERT_EQ(resp->results_size(), 20);
  for (size_t i = 0; i < qs.size(); ++i) {
    EXPECT_EQ(Ids(resp->results(i)), Expected(pts, qs[i], 10, metric, nullptr)) << i;
  }
  // Filtered: the filter is exact, so is the answer.
  auto fresp = Search("c", qs, 10, "label < 3 AND color != \"red\"");
  QUIVER_ASSERT_OK(fresp);
  for (size_t i = 0; i < qs.size(); ++i) {
    EXPECT_EQ(Ids(fresp->results(i)),
              Expected(pts, qs[i], 10, metric,
                       [](const RefPoint& p) { return p.label < 3 && p.color != "red"; }));
    for (const auto& h : fresp->results(i).hits()) {
      EXPECT_LT(h.attributes().at("label").int_value(), 3);
      EXPECT_NE(h.attributes().at("color").string_value(), "red");
    }
  }
  // Scores follow the metric's convention.
  const auto& top = resp->results(0).hits(0);
  if (metric == v1::COSINE) {
    EXPECT_LE(top.score(), 1.0001f);
  }
  if (metric == v1::L2) {
    EXPECT_GE(top.score(), 0.0f);
    EXPECT_LE(top.score(), resp->results(0).hits(9).score());
  } else {
    EXPECT_GE(top.score(), resp->results(0).hits(9).score());
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, EngineMetricTest,
                         ::testing::Values(v1::L2, v1::IP, v1::COSINE));

TEST_F(EngineTest, OwnVectorIsNearestWithZeroDistance) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(500, 3);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  auto resp = Search("c", {pts[123].v}, 1);
  QUIVER_ASSERT_OK(resp);
  EXPECT_EQ(resp->results(0).hits(0).id(), "p123");
  EXPECT_NEAR(resp->results(0).hits(0).score(), 0.0f, 1e-3);
  EXPECT_EQ(resp->results(0).hits(0).attributes().at("label").int_value(), pts[123].label);
}

TEST_F(EngineTest, FewerMatchesThanKAndEmptyFilterResult) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(50, 3);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  auto all = Search("c", {pts[0].v}, 100);
  QUIVER_ASSERT_OK(all);
  EXPECT_EQ(all->results(0).hits_size(), 50);
  auto none = Search("c", {pts[0].v}, 10, "label > 100");
  QUIVER_ASSERT_OK(none);
  ASSERT_EQ(none->results_size(), 1);
  EXPECT_EQ(none->results(0).hits_size(), 0);
}

TEST_F(EngineTest, OverwriteReplacesAtomically) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(100, 3);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  RefPoint moved = pts[5];
  for (float& x : moved.v) x += 100;
  moved.label = 42;
  QUIVER_ASSERT_OK(Upsert("c", {moved}));
  EXPECT_EQ(Count("c"), 100u);
  auto near_new = Search("c", {moved.v}, 1);
  EXPECT_EQ(near_new->results(0).hits(0).id(), "p5");
  EXPECT_EQ(near_new->results(0).hits(0).attributes().at("label").int_value(), 42);
  auto near_old = Search("c", {pts[5].v}, 100);
  int seen = 0;
  for (const auto& h : near_old->results(0).hits()) seen += h.id() == "p5";
  EXPECT_EQ(seen, 1);  // only the new version, once
  EXPECT_EQ(Count("c", "label = 42"), 1u);
}

TEST_F(EngineTest, DeleteByIdsAndByFilter) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(300, 3);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  v1::DeletePointsRequest del;
  del.set_collection("c");
  del.add_ids("p1");
  del.add_ids("p2");
  del.add_ids("p1");       // repeated: counted once
  del.add_ids("missing");  // absent: not an error
  v1::DeletePointsResponse resp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &resp));
  EXPECT_EQ(resp.deleted_count(), 2u);
  EXPECT_EQ(Count("c"), 298u);

  const uint64_t sevens = Count("c", "label = 7");
  ASSERT_GT(sevens, 0u);
  v1::DeletePointsRequest fdel;
  fdel.set_collection("c");
  fdel.set_filter("label = 7");
  QUIVER_ASSERT_OK(engine_->Delete(fdel, &resp));
  EXPECT_EQ(resp.deleted_count(), sevens);
  EXPECT_EQ(Count("c", "label = 7"), 0u);
  auto r = Search("c", {pts[0].v}, 300);
  for (const auto& h : r->results(0).hits()) {
    EXPECT_NE(h.id(), "p1");
    EXPECT_NE(h.attributes().at("label").int_value(), 7);
  }
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p1");
  get.add_ids("p3");
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  // p3 may have had label 7; compute what should remain.
  const bool p3_alive = pts[3].label != 7;
  EXPECT_EQ(got.points_size(), p3_alive ? 1 : 0);
}

TEST_F(EngineTest, GetPointsWithVectorsAndSelectedAttributes) {
  QUIVER_ASSERT_OK(Create("c"));
  auto pts = RandomPoints(10, 3);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p4");
  get.add_ids("nope");
  get.add_ids("p2");
  get.set_with_vectors(true);
  get.add_attributes("color");
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  ASSERT_EQ(got.points_size(), 2);
  EXPECT_EQ(got.points(0).id(), "p4");
  EXPECT_EQ(got.points(1).id(), "p2");
  EXPECT_EQ(got.points(0).attributes().size(), 1u);
  EXPECT_EQ(got.points(0).attributes().at("color").string_value(), pts[4].color);
  const auto& v = got.points(0).vectors().at("v").values();
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), pts[4].v);
  get.add_attributes("nonexistent");
  EXPECT_THAT(engine_->GetPoints(get, &got), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(EngineTest, RecoveryRestoresEverythingAcknowledged) {
  QUIVER_ASSERT_OK(Create("c", v1::COSINE));
  QUIVER_ASSERT_OK(Create("gone"));
  auto pts = RandomPoints(2100, 5);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  RefPoint moved = pts[10];
  moved.v[0] += 5;
  QUIVER_ASSERT_OK(Upsert("c", {moved}));
  pts[10] = moved;
  v1::DeletePointsRequest del;
  del.set_collection("c");
  del.add_ids("p20");
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  v1::DropCollectionRequest drop;
  drop.set_name("gone");
  v1::DropCollectionResponse dropped;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &dropped));
  const uint64_t seq = engine_->last_sequence();
  auto queries = RandomPoints(5, 77, "q");
  std::vector<std::vector<float>> qs;
  for (const auto& q : queries) qs.push_back(q.v);
  auto before = Search("c", qs, 10);
  QUIVER_ASSERT_OK(before);

  Reopen();
  EXPECT_EQ(engine_->last_sequence(), seq);
  EXPECT_EQ(Count("c"), 2099u);
  v1::GetCollectionRequest get;
  get.set_name("gone");
  v1::GetCollectionResponse info;
  EXPECT_THAT(engine_->GetCollection(get, &info), StatusIs(absl::StatusCode::kNotFound));
  auto after = Search("c", qs, 10);
  QUIVER_ASSERT_OK(after);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Ids(after->results(i)), Ids(before->results(i)));
  pts.erase(pts.begin() + 20);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Ids(after->results(i)), Expected(pts, qs[i], 10, v1::COSINE, nullptr));
  }
  // Writes after recovery continue the sequence and internal ids.
  auto more = RandomPoints(10, 6, "new");
  auto s = Upsert("c", more);
  QUIVER_ASSERT_OK(s);
  EXPECT_EQ(*s, seq + 1);
  EXPECT_EQ(Count("c"), 2109u);
  auto own = Search("c", {more[3].v}, 1);
  EXPECT_EQ(own->results(0).hits(0).id(), "new3");
}

// Every client mistake: the right code, a message naming the problem, and
// nothing applied.
TEST_F(EngineTest, BadWritesAreRejectedWholeAndChangeNothing) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Upsert("c", RandomPoints(10, 1)));
  const uint64_t seq = engine_->last_sequence();
  auto good = RandomPoints(3, 2, "g");

  struct Case {
    const char* what;
    std::function<void(v1::UpsertPointsRequest*)> mutate;
    absl::StatusCode code;
    const char* message;
  };
  const float nan = std::nanf("");
  const std::vector<Case> cases = {
      {"dimension", [](auto* r) { r->mutable_points(1)->mutable_vectors()->at("v").add_values(1); },
       absl::StatusCode::kInvalidArgument, "point 1 (id \"g1\"): field \"v\": expected 16 values, got 17"},
      {"nan", [&](auto* r) { r->mutable_points(2)->mutable_vectors()->at("v").set_values(3, nan); },
       absl::StatusCode::kInvalidArgument, "value 3 is not finite"},
      {"inf", [](auto* r) { r->mutable_points(0)->mutable_vectors()->at("v").set_values(0, INFINITY); },
       absl::StatusCode::kInvalidArgument, "not finite"},
      {"empty id", [](auto* r) { r->mutable_points(1)->set_id(""); },
       absl::StatusCode::kInvalidArgument, "id is empty"},
      {"long id", [](auto* r) { r->mutable_points(1)->set_id(std::string(600, 'x')); },
       absl::StatusCode::kInvalidArgument, "longer than 512 bytes"},
      {"duplicate id", [](auto* r) { r->mutable_points(2)->set_id("g0"); },
       absl::StatusCode::kInvalidArgument, "appears more than once"},
      {"missing vector", [](auto* r) { r->mutable_points(1)->mutable_vectors()->clear(); },
       absl::StatusCode::kInvalidArgument, "vector field \"v\" is missing"},
      {"unknown vector field",
       [](auto* r) { (*r->mutable_points(1)->mutable_vectors())["w"].add_values(1); },
       absl::StatusCode::kInvalidArgument, "no vector field \"w\""},
      {"unknown attribute",
       [](auto* r) { (*r->mutable_points(0)->mutable_attributes())["size"].set_int_value(1); },
       absl::StatusCode::kInvalidArgument, "no attribute \"size\""},
      {"attribute type",
       [](auto* r) { (*r->mutable_points(0)->mutable_attributes())["label"].set_string_value("x"); },
       absl::StatusCode::kInvalidArgument, "attribute \"label\": expected INT64, got a string"},
      {"multi-vector on single field",
       [](auto* r) { (*r->mutable_points(0)->mutable_multi_vectors())["v"].add_vectors(); },
       absl::StatusCode::kInvalidArgument, "not a multi-vector field"},
      {"no points", [](auto* r) { r->clear_points(); },
       absl::StatusCode::kInvalidArgument, "at least one point"},
      {"unknown collection", [](auto* r) { r->set_collection("nope"); },
       absl::StatusCode::kNotFound, "collection \"nope\" does not exist"},
  };
  for (const Case& c : cases) {
    v1::UpsertPointsRequest req;
    req.set_collection("c");
    for (const auto& p : good) *req.add_points() = MakePoint(p);
    c.mutate(&req);
    v1::UpsertPointsResponse resp;
    EXPECT_THAT(engine_->Upsert(req, &resp), StatusIs(c.code, c.message)) << c.what;
    EXPECT_EQ(Count("c"), 10u) << c.what;
    EXPECT_EQ(engine_->last_sequence(), seq) << c.what;
  }
}

TEST_F(EngineTest, BadSearchesAndDeletesAreRejected) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Upsert("c", RandomPoints(10, 1)));
  std::vector<float> q(kDim, 0.5f);
  EXPECT_THAT(Search("c", {q}, 0), StatusIs(absl::StatusCode::kInvalidArgument, "k must be"));
  EXPECT_THAT(Search("c", {q}, 1000000), StatusIs(absl::StatusCode::kInvalidArgument, "k must be"));
  EXPECT_THAT(Search("c", {}, 5), StatusIs(absl::StatusCode::kInvalidArgument, "at least one"));
  EXPECT_THAT(Search("c", {std::vector<float>(3)}, 5),
              StatusIs(absl::StatusCode::kInvalidArgument, "expected 16 values, got 3"));
  EXPECT_THAT(Search("nope", {q}, 5), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Search("c", {q}, 5, "label = "),
              StatusIs(absl::StatusCode::kInvalidArgument, "position 8"));
  EXPECT_THAT(Search("c", {q}, 5, "label = \"seven\""),
              StatusIs(absl::StatusCode::kInvalidArgument, "position"));
  EXPECT_THAT(Search("c", {q}, 5, "weight > 3"),
              StatusIs(absl::StatusCode::kInvalidArgument, "weight"));
  std::vector<std::vector<float>> too_many(kMaxQueriesPerRequest + 1, q);
  EXPECT_THAT(Search("c", too_many, 5), StatusIs(absl::StatusCode::kInvalidArgument, "at most"));

  v1::SearchRequest req;
  req.set_collection("c");
  req.set_k(1);
  req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
  v1::SearchResponse resp;
  req.set_field("w");
  EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "no vector field \"w\""));
  req.set_field("v");
  req.add_output_attributes("zzz");
  EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "no attribute \"zzz\""));
  req.clear_output_attributes();
  EXPECT_THAT(engine_->Search(req, absl::InfinitePast(), &resp),
              StatusIs(absl::StatusCode::kDeadlineExceeded));

  const uint64_t seq = engine_->last_sequence();
  v1::DeletePointsRequest del;
  del.set_collection("c");
  v1::DeletePointsResponse dresp;
  EXPECT_THAT(engine_->Delete(del, &dresp), StatusIs(absl::StatusCode::kInvalidArgument, "needs ids or a filter"));
  del.add_ids("p1");
  del.set_filter("label = 1");
  EXPECT_THAT(engine_->Delete(del, &dresp), StatusIs(absl::StatusCode::kInvalidArgument, "not both"));
  del.clear_ids();
  del.set_filter("label = = 1");
  EXPECT_THAT(engine_->Delete(del, &dresp), StatusIs(absl::StatusCode::kInvalidArgument, "position"));
  EXPECT_EQ(Count("c"), 10u);
  EXPECT_EQ(engine_->last_sequence(), seq);
}

// Concurrent writers share commit groups; readers never see a deleted or a
// half-written point, and every acknowledged write is there at the end.
TEST_F(EngineTest, ConcurrentWritersAndReaders) {
  QUIVER_ASSERT_OK(Create("c"));
  constexpr int kWriters = 4, kBatches = 30, kBatch = 20;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> seqs(kWriters);
  Mutex deleted_mu;
  std::set<std::string> deleted;  // acknowledged deletes
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        auto pts = RandomPoints(kBatch, w * 1000 + b, absl::StrCat("w", w, "_", b, "_"));
        // Every point of this writer carries label = w; half get overwritten.
        for (auto& p : pts) p.label = w;
        auto s = Upsert("c", pts);
        if (!s.ok()) { ++bad; continue; }
        seqs[w].push_back(*s);
        v1::DeletePointsRequest del;
        del.set_collection("c");
        del.add_ids(absl::StrCat("w", w, "_", b, "_0"));
        v1::DeletePointsResponse resp;
        if (!engine_->Delete(del, &resp).ok() || resp.deleted_count() != 1) ++bad;
        MutexLock lock(&deleted_mu);
        deleted.insert(del.ids(0));
      }
    });
  }
  std::thread reader([&] {
    std::vector<float> q(kDim, 0.0f);
    while (!done.load()) {
      std::set<std::string> gone;
      {
        MutexLock lock(&deleted_mu);
        gone = deleted;
      }
      auto r = Search("c", {q}, 200);
      if (!r.ok()) { ++bad; continue; }
      for (const auto& h : r->results(0).hits()) {
        // A delete acknowledged before the search began must be seen by it.
        if (gone.count(h.id())) ++bad;
        if (!h.attributes().contains("label")) ++bad;
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(Count("c"), static_cast<uint64_t>(kWriters * kBatches * (kBatch - 1)));
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_TRUE(std::is_sorted(seqs[w].begin(), seqs[w].end()));
    EXPECT_EQ(Count("c", absl::StrCat("label = ", w)), static_cast<uint64_t>(kBatches * (kBatch - 1)));
  }
  Reopen();
  EXPECT_EQ(Count("c"), static_cast<uint64_t>(kWriters * kBatches * (kBatch - 1)));
}

// Regression: rows deleted at the end of the id range used to leave the
// recovered row count past the allocated rows, and the first search crashed.
TEST_F(EngineTest, RestartAfterDeletingTheNewestPoints) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Create("all_gone"));
  auto pts = RandomPoints(1100, 21);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  QUIVER_ASSERT_OK(Upsert("all_gone", RandomPoints(10, 22)));
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 1024; i < 1100; ++i) del.add_ids(absl::StrCat("p", i));
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  del.set_collection("all_gone");
  del.clear_ids();
  del.set_filter("label >= 0");
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  EXPECT_EQ(dresp.deleted_count(), 10u);
  Reopen();
  for (const char* coll : {"c", "all_gone"}) {
    QUIVER_ASSERT_OK(Search(coll, {pts[0].v}, 5));
    QUIVER_ASSERT_OK(Search(coll, {pts[0].v}, 5, "label < 5"));
    Count(coll, "label < 5");
    v1::DeletePointsRequest fdel;
    fdel.set_collection(coll);
    fdel.set_filter("label = 3");
    QUIVER_ASSERT_OK(engine_->Delete(fdel, &dresp));
  }
  EXPECT_EQ(Count("all_gone"), 0u);
  EXPECT_EQ(Count("c", "label = 3"), 0u);
}

// Regression: a commit group used to publish rows of writers later in the
// group before they were written, so readers saw duplicates or crashed.
TEST_F(EngineTest, ConcurrentOverwritesNeverShowTwoVersions) {
  QUIVER_ASSERT_OK(Create("c"));
  auto hot = RandomPoints(20, 31, "hot");
  QUIVER_ASSERT_OK(Upsert("c", hot));
  std::atomic<bool> done{false};
  std::atomic<int> duplicates{0}, errors{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int round = 0; round < 40; ++round) {
        auto batch = RandomPoints(20, 1000 + w * 100 + round, "hot");
        auto far = RandomPoints(100, 5000 + w * 100 + round, absl::StrCat("far", w, "_", round, "_"));
        batch.insert(batch.end(), far.begin(), far.end());
        if (!Upsert("c", batch).ok()) ++errors;
      }
    });
  }
  std::thread reader([&] {
    std::vector<float> q(kDim, 0.0f);
    while (!done.load()) {
      auto r = Search("c", {q}, 500);
      if (!r.ok()) { ++errors; continue; }
      std::set<std::string> seen;
      for (const auto& h : r->results(0).hits()) duplicates += !seen.insert(h.id()).second;
    }
  });
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(Count("c"), 20u + 4 * 40 * 100);
}

// Queued recall audits hold their collection weakly: a drop frees it while
// audits of it wait behind a long one, and closing the engine stops the
// audit it is running instead of waiting for the rest of it. The long one
// is the exact re-run of 1024 queries over a collection ("long") grown
// until such a run takes over 2 s here; it must still be running at both
// checks, or they would prove nothing.
TEST_F(EngineTest, RecallAuditsNeitherKeepADroppedCollectionNorDelayClosing) {
  options_.recall_audit_rate = 1.0;
  options_.seal_idle = absl::Hours(1);  // growing segments only: nothing is built
  options_.collection.segment_max_rows = 1u << 18;
  Reopen();
  constexpr uint32_t kLongDim = 256;
  {
    v1::CreateCollectionRequest req;
    req.set_name("long");
    *req.mutable_schema()->add_vectors() = VectorField("v", kLongDim, v1::L2);
    req.mutable_schema()->mutable_vectors(0)->mutable_index()->set_type("HNSW");
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }
  v1::SearchRequest heavy;
  heavy.set_collection("long");
  heavy.set_k(1);
  for (int q = 0; q < 1024; ++q) {
    auto* v = heavy.add_vectors()->mutable_values();
    for (uint32_t d = 0; d < kLongDim; ++d) v->Add(static_cast<float>((q * 13 + d) % 97));
  }
  auto audits_of_long = [&] {
    v1::GetCollectionRequest get;
    get.set_name("long");
    v1::GetCollectionResponse info;
    EXPECT_TRUE(engine_->GetCollection(get, &info).ok());
    return info.collection().stats().vectors(0).recall_audit_searches();
  };
  absl::Duration exact_run;
  int rows = 0;
  while (rows < 400000) {  // grows until the exact run takes > 2 s, on fast machines too
    for (const int end = rows + 40000; rows < end; rows += 2000) {
      v1::UpsertPointsRequest req;
      req.set_collection("long");
      for (int i = rows; i < rows + 2000; ++i) {
        v1::Point* p = req.add_points();
        p->set_id(absl::StrCat("l", i));
        auto* v = (*p->mutable_vectors())["v"].mutable_values();
        for (uint32_t d = 0; d < kLongDim; ++d) v->Add(static_cast<float>((i * 31 + d * 7) % 101));
      }
      v1::UpsertPointsResponse resp;
      QUIVER_ASSERT_OK(engine_->Upsert(req, &resp));
    }
    // The exact run at normal priority (exact searches are not audited).
    heavy.mutable_params()->set_exact(true);
    v1::SearchResponse resp;
    const absl::Time start = absl::Now();
    QUIVER_ASSERT_OK(engine_->Search(heavy, absl::InfiniteFuture(), &resp));
    exact_run = absl::Now() - start;
    heavy.mutable_params()->set_exact(false);
    if (exact_run > absl::Seconds(2)) break;
  }
  ASSERT_GT(exact_run, absl::Seconds(2)) << rows << " rows";

  QUIVER_ASSERT_OK(Create("c", v1::L2, "HNSW"));
  const std::vector<RefPoint> pts = RandomPoints(3000, 11);
  ASSERT_TRUE(Upsert("c", pts).ok());
  // The long audit starts; audits of "c" queue behind it.
  {
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(heavy, absl::InfiniteFuture(), &resp));
  }
  v1::SearchRequest req;
  req.set_collection("c");
  req.set_k(10);
  for (int i = 0; i < 50; ++i) {
    req.add_vectors()->mutable_values()->Add(pts[i].v.begin(), pts[i].v.end());
  }
  std::weak_ptr<Collection> weak;
  {
    absl::StatusOr<Bound<BoundSearchRequest>> bound = engine_->BindSearch(req);
    QUIVER_ASSERT_OK(bound);
    weak = bound->collection;
    for (int i = 0; i < 40; ++i) {  // more than the audit queue holds
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(*bound, StopToken(), &resp));
    }
  }
  v1::DropCollectionRequest drop;
  drop.set_name("c");
  v1::DropCollectionResponse dropped;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &dropped));
  const absl::Time until = absl::Now() + absl::Milliseconds(500);
  while (!weak.expired() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(audits_of_long(), 0u) << "the long audit ended before the check";
  EXPECT_TRUE(weak.expired()) << "the dropped collection is still held by queued audits";

  // Closing while the long audit runs stops it.
  ASSERT_EQ(audits_of_long(), 0u) << "the long audit ended before the close";
  const absl::Time start = absl::Now();
  engine_.reset();
  EXPECT_LT(absl::Now() - start, exact_run / 2) << "closing waited for the audit";
}

// Audits keep to their CPU budget: after an audit that used t of CPU the
// next waits t x (1 / share - 1), and the searches sampled meanwhile are
// skipped, not queued. At a share of 1e-4 the pause after the exact re-run
// of 256 queries over 3000 points (well over 1 ms of CPU anywhere) is over
// ten seconds, so every search right after it is skipped.
TEST_F(EngineTest, RecallAuditsKeepToTheirCpuBudget) {
  options_.recall_audit_rate = 1.0;
  options_.recall_audit_cpu_share = 1e-4;
  options_.seal_idle = absl::Hours(1);
  Reopen();
  QUIVER_ASSERT_OK(Create("c", v1::L2, "HNSW"));
  const std::vector<RefPoint> pts = RandomPoints(3000, 11);
  ASSERT_TRUE(Upsert("c", pts).ok());
  v1::SearchRequest req;
  req.set_collection("c");
  req.set_k(10);
  for (int i = 0; i < 256; ++i) {
    req.add_vectors()->mutable_values()->Add(pts[i].v.begin(), pts[i].v.end());
  }
  auto audited = [&] {
    v1::GetCollectionRequest get;
    get.set_name("c");
    v1::GetCollectionResponse info;
    EXPECT_TRUE(engine_->GetCollection(get, &info).ok());
    return info.collection().stats().vectors(0).recall_audit_searches();
  };
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (audited() == 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(audited(), 1u);
  const RecallAuditor* auditor = engine_->recall_auditor();
  ASSERT_NE(auditor, nullptr);
  EXPECT_EQ(auditor->skipped(), 0u);
  for (int i = 0; i < 30; ++i) {
    QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  }
  EXPECT_EQ(auditor->skipped(), 30u);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(audited(), 1u) << "searches sampled during the pause were audited";
  EXPECT_EQ(auditor->dropped(), 0u);
  // Closing does not wait for the pause.
  const absl::Time start = absl::Now();
  engine_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(EngineTest, HugeOrTinyValuesAreHandled) {
  QUIVER_ASSERT_OK(Create("l2"));
  QUIVER_ASSERT_OK(Create("cos", v1::COSINE));
  RefPoint big{"big", std::vector<float>(kDim, 1e30f), 1, "red"};
  EXPECT_THAT(Upsert("l2", {big}),
              StatusIs(absl::StatusCode::kInvalidArgument, "too large"));
  EXPECT_THAT(Search("l2", {big.v}, 1), StatusIs(absl::StatusCode::kInvalidArgument, "too large"));
  // A tiny but non-zero COSINE vector normalizes fine and is found.
  RefPoint tiny{"tiny", std::vector<float>(kDim, 0.0f), 1, "red"};
  tiny.v[0] = 1e-40f;
  QUIVER_ASSERT_OK(Upsert("cos", {tiny}));
  auto r = Search("cos", {tiny.v}, 1);
  QUIVER_ASSERT_OK(r);
  ASSERT_EQ(r->results(0).hits_size(), 1);
  EXPECT_NEAR(r->results(0).hits(0).score(), 1.0f, 1e-5);
  std::vector<std::vector<float>> many(300, std::vector<float>(kDim, 1.0f));
  EXPECT_THAT(Search("cos", many, 1000),
              StatusIs(absl::StatusCode::kInvalidArgument, "queries x k must be at most"));
}

TEST_F(EngineTest, SchemaSizeLimits) {
  v1::CreateCollectionRequest req;
  req.set_name("wide");
  for (int i = 0; i < kMaxVectorFields + 1; ++i) {
    *req.mutable_schema()->add_vectors() = VectorField(absl::StrCat("v", i), 4);
  }
  v1::CreateCollectionResponse resp;
  EXPECT_THAT(engine_->CreateCollection(req, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "at most 16 vector fields"));
}

TEST_F(EngineTest, IndexSpecsAreValidatedAtCreate) {
  EXPECT_THAT(Create("a", v1::L2, "LSH"),
              StatusIs(absl::StatusCode::kInvalidArgument, "vector field \"v\": "));
  EXPECT_THAT(Create("b", v1::L2, "HNSW", {{"M", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "M"));
  EXPECT_THAT(Create("c", v1::L2, "HNSW", {{"bogus", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "bogus"));
  QUIVER_ASSERT_OK(Create("d", v1::L2, "hnsw", {{"M", "8"}}));
  QUIVER_ASSERT_OK(Create("e", v1::COSINE, "IVF_FLAT", {{"nlist", "4"}}));
}

// Segments: the same workload over every index kind, with segments small
// enough that most rows sit in sealed, indexed segments.
class SmallSegmentsTest : public EngineTest {
 protected:
  void SetUp() override {
    options_.collection.segment_max_rows = 400;
    options_.seal_idle = absl::Milliseconds(50);
    Reopen();
  }
  // recall@10 of the collection's default search against brute force.
  double Recall(const std::vector<RefPoint>& pts, const std::vector<std::vector<float>>& qs,
                const std::string& filter = "",
                const std::function<bool(const RefPoint&)>& keep = nullptr) {
    auto r = Search("c", qs, 10, filter);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 0;
    RecallSum sum;
    for (size_t i = 0; i < qs.size(); ++i) {
      sum.Add(Ids(r->results(i)), Expected(pts, qs[i], 10, v1::L2, keep));
    }
    return sum.value();
  }
  void EverythingConcurrently(const std::string& index,
                              const std::map<std::string, std::string>& params);
};

class SegmentedEngineTest : public SmallSegmentsTest,
                            public ::testing::WithParamInterface<std::string> {
 protected:
  std::map<std::string, std::string> Params() const {
    if (GetParam() == "IVF_FLAT") return {{"nlist", "8"}};
    if (GetParam() == "HNSW") return {{"M", "12"}};
    return {};
  }
};

TEST_P(SegmentedEngineTest, SealsIndexesAndSearchesAcrossSegments) {
  QUIVER_ASSERT_OK(Create("c", v1::L2, GetParam(), Params()));
  auto pts = RandomPoints(2000, 11);
  for (size_t i = 0; i < pts.size(); i += 250) {
    QUIVER_ASSERT_OK(Upsert("c", std::vector<RefPoint>(pts.begin() + i, pts.begin() + i + 250)));
  }
  engine_->SealAndWaitForIndexes();
  v1::GetCollectionRequest get;
  get.set_name("c");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  EXPECT_EQ(info.collection().stats().point_count(), 2000u);
  auto queries = RandomPoints(30, 5, "q");
  std::vector<std::vector<float>> qs;
  for (const auto& q : queries) qs.push_back(q.v);
  const double min_recall = GetParam() == "FLAT" ? 1.0 : 0.9;
  EXPECT_GE(Recall(pts, qs), min_recall);
  EXPECT_GE(Recall(pts, qs, "label < 5", [](const RefPoint& p) { return p.label < 5; }),
            min_recall);

  // Overwrite and delete points in sealed segments: never returned again.
  std::vector<RefPoint> moved(pts.begin(), pts.begin() + 100);
  for (auto& p : moved) p.v[0] += 50;
  QUIVER_ASSERT_OK(Upsert("c", moved));
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 100; i < 300; ++i) del.add_ids(absl::StrCat("p", i));
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  EXPECT_EQ(dresp.deleted_count(), 200u);
  std::vector<RefPoint> now(pts.begin() + 300, pts.end());
  now.insert(now.end(), moved.begin(), moved.end());
  EXPECT_GE(Recall(now, qs), min_recall);
  auto r = Search("c", qs, 50);
  for (const auto& res : r->results()) {
    for (const auto& h : res.hits()) {
      const int n = std::stoi(h.id().substr(1));
      EXPECT_FALSE(n >= 100 && n < 300) << h.id() << " was deleted";
    }
  }
  EXPECT_EQ(Count("c"), 1800u);

  // Exact search bypasses the indexes and matches brute force exactly.
  v1::SearchRequest exact;
  exact.set_collection("c");
  exact.set_k(10);
  exact.mutable_params()->set_exact(true);
  exact.add_vectors()->mutable_values()->Add(qs[0].begin(), qs[0].end());
  v1::SearchResponse eresp;
  QUIVER_ASSERT_OK(engine_->Search(exact, absl::InfiniteFuture(), &eresp));
  EXPECT_EQ(Ids(eresp.results(0)), Expected(now, qs[0], 10, v1::L2, nullptr));

  // A restart restores segments and indexes from their files. (Settle
  // first: a segment still searched exactly would answer differently.)
  engine_->SealAndWaitForIndexes();
  const double before = Recall(now, qs);
  Reopen();
  EXPECT_EQ(Count("c"), 1800u);
  // Sealed segments came back indexed from their files, without a rebuild.
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  int indexed = 0;
  for (const auto& seg : info.collection().stats().segments()) {
    indexed += seg.state() == v1::SegmentInfo::INDEXED;
    if (GetParam() != "FLAT" && seg.state() == v1::SegmentInfo::INDEXED) {
      EXPECT_GT(seg.fields(0).disk_bytes(), 0u);
      EXPECT_NE(seg.fields(0).index().find(GetParam()), std::string::npos);
    }
  }
  EXPECT_GE(indexed, 4);
  engine_->SealAndWaitForIndexes();
  EXPECT_DOUBLE_EQ(Recall(now, qs), before);
}

TEST_P(SegmentedEngineTest, CorruptOrMissingIndexFilesAreRebuilt) {
  if (GetParam() == "FLAT") GTEST_SKIP() << "FLAT writes no index files";
  QUIVER_ASSERT_OK(Create("c", v1::L2, GetParam(), Params()));
  auto pts = RandomPoints(1200, 12);
  QUIVER_ASSERT_OK(Upsert("c", pts));
  engine_->SealAndWaitForIndexes();
  auto queries = RandomPoints(20, 6, "q");
  std::vector<std::vector<float>> qs;
  for (const auto& q : queries) qs.push_back(q.v);
  const double before = Recall(pts, qs);
  engine_.reset();
  // Damage every index file three ways: truncate, garbage, delete.
  int damaged = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/segments")) {
    if (e.path().extension() != ".index") continue;
    const auto size = std::filesystem::file_size(e.path());
    switch (damaged++ % 3) {
      case 0: std::filesystem::resize_file(e.path(), size / 2); break;
      case 1: {
        std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(size / 3));
        f << "garbage-garbage-garbage";
        break;
      }
      case 2: std::filesystem::remove(e.path()); break;
    }
  }
  EXPECT_GE(damaged, 3);
  options_.builder.workers = 1;
  Reopen();
  EXPECT_EQ(Count("c"), 1200u);
  // Correct at once (segments without an index are scanned exactly) ...
  EXPECT_GE(Recall(pts, qs), 0.9);
  // ... and indexed again after the rebuild.
  engine_->SealAndWaitForIndexes();
  EXPECT_DOUBLE_EQ(Recall(pts, qs), before);
}

TEST_P(SegmentedEngineTest, CompactionReclaimsDeletedRowsAndMergesSmallSegments) {
  QUIVER_ASSERT_OK(Create("c", v1::L2, GetParam(), Params()));
  auto pts = RandomPoints(1600, 13);  // four full segments of 400
  for (size_t i = 0; i < pts.size(); i += 400) {
    QUIVER_ASSERT_OK(Upsert("c", std::vector<RefPoint>(pts.begin() + i, pts.begin() + i + 400)));
  }
  engine_->SealAndWaitForIndexes();
  // Delete 60% of every segment: each is then both too sparse and too small.
  v1::DeletePointsRequest del;
  del.set_collection("c");
  std::vector<RefPoint> kept;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (i % 5 < 3) del.add_ids(pts[i].id);
    else kept.push_back(pts[i]);
  }
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  auto queries = RandomPoints(20, 7, "q");
  std::vector<std::vector<float>> qs;
  for (const auto& q : queries) qs.push_back(q.v);
  const double min_recall = GetParam() == "FLAT" ? 1.0 : 0.9;

  // Wait for the maintenance thread to plan and finish the compactions.
  v1::GetCollectionRequest get;
  get.set_name("c");
  v1::GetCollectionResponse info;
  // Generous: under ThreadSanitizer everything runs ~10x slower.
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (;;) {
    engine_->SealAndWaitForIndexes();
    QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
    if (info.collection().stats().deleted_count() == 0 &&
        info.collection().stats().segments_size() <= 2) {
      break;
    }
    ASSERT_LT(absl::Now(), give_up) << info.DebugString();
    absl::SleepFor(absl::Milliseconds(50));
  }
  const auto& st = info.collection().stats();
  EXPECT_EQ(st.point_count(), 640u);
  // 640 live rows fit in two segments of at most 400.
  EXPECT_LE(st.segments_size(), 2) << info.DebugString();
  uint64_t rows = 0;
  for (const auto& seg : st.segments()) {
    rows += seg.rows();
    EXPECT_EQ(seg.state(), v1::SegmentInfo::INDEXED);
  }
  EXPECT_EQ(rows, 640u);
  EXPECT_GE(Recall(kept, qs), min_recall);
  EXPECT_EQ(Count("c", "label >= 0"), 640u);

  // Overwrites of compacted rows still work, and a restart keeps it all.
  RefPoint moved = kept[7];
  moved.v[1] += 30;
  QUIVER_ASSERT_OK(Upsert("c", {moved}));
  kept[7] = moved;
  Reopen();
  EXPECT_EQ(Count("c"), 640u);
  EXPECT_GE(Recall(kept, qs), min_recall);
  auto own = Search("c", {moved.v}, 1);
  EXPECT_EQ(own->results(0).hits(0).id(), moved.id);
  if (GetParam() != "FLAT") {
    // Every segment directory on disk belongs to a live segment: the
    // compactions' inputs left nothing behind.
    engine_->SealAndWaitForIndexes();
    QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
    std::set<std::string> live;
    for (const auto& seg : info.collection().stats().segments()) {
      live.insert(absl::StrCat("s", seg.id()));
    }
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/segments/c1")) {
      const std::string name = e.path().filename().string();
      EXPECT_TRUE(live.count(name)) << name << " is left over; " << info.DebugString();
    }
  }
}

// Everything at once: writers upsert, overwrite and delete; readers search
// (plain, filtered, exact), get and count; the index kind flips between
// HNSW, IVF_FLAT and FLAT; seals, builds and compactions run underneath.
// Readers never see an acknowledged delete or two versions of a point, and
// the final state is exactly what was acknowledged.
TEST_F(SmallSegmentsTest, EverythingConcurrently) { EverythingConcurrently("HNSW", {{"M", "8"}}); }

// DISK: segments sealed every few hundred rows move their vectors to rerank
// tables while searches, gets and compactions read them (reader epochs).
TEST_F(SmallSegmentsTest, EverythingConcurrentlyOnDisk) {
  disk_ = true;
  EverythingConcurrently("IVF_SQ8", {{"nlist", "4"}});
}

void SmallSegmentsTest::EverythingConcurrently(const std::string& index,
                                               const std::map<std::string, std::string>& params) {
  QUIVER_ASSERT_OK(Create("c", v1::L2, index, params));
  constexpr int kWriters = 2, kRounds = 25, kBatch = 60;
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, violations{0};
  Mutex mu;
  std::set<std::string> deleted;  // acknowledged deletes, never re-inserted
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) {
        auto pts = RandomPoints(kBatch, w * 1000 + r, absl::StrCat("w", w, "r", r, "_"));
        if (!Upsert("c", pts).ok()) ++errors;
        // Overwrite half of the previous round's surviving points.
        if (r > 0) {
          auto fresh = RandomPoints(kBatch, w * 1000 + r + 500, absl::StrCat("w", w, "r", r - 1, "_"));
          std::vector<RefPoint> again;
          for (int i = 0; i < kBatch; ++i) {
            if (i % 3 != 0 && i % 2 == 0) again.push_back(fresh[i]);
          }
          if (!Upsert("c", again).ok()) ++errors;
        }
        // Delete a third of this round's points.
        v1::DeletePointsRequest del;
        del.set_collection("c");
        for (int i = 0; i < kBatch; i += 3) del.add_ids(absl::StrCat("w", w, "r", r, "_", i));
        v1::DeletePointsResponse resp;
        if (!engine_->Delete(del, &resp).ok()) ++errors;
        MutexLock lock(&mu);
        for (const auto& id : del.ids()) deleted.insert(id);
      }
    });
  }
  for (int rdr = 0; rdr < 2; ++rdr) {
    threads.emplace_back([&, rdr] {
      std::mt19937 rng(rdr);
      std::normal_distribution<float> g;
      while (!done.load()) {
        std::set<std::string> gone;
        {
          MutexLock lock(&mu);
          gone = deleted;
        }
        std::vector<float> q(kDim);
        for (float& x : q) x = g(rng);
        v1::SearchRequest req;
        req.set_collection("c");
        req.set_k(50);
        if (rng() % 2) req.set_filter("label < 5");
        if (rng() % 4 == 0) req.mutable_params()->set_exact(true);
        // Vectors come from memory or, for sealed DISK segments, the mapped
        // tables that replace it meanwhile.
        if (rng() % 3 == 0) req.set_with_vectors(true);
        req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
        v1::SearchResponse resp;
        if (!engine_->Search(req, absl::InfiniteFuture(), &resp).ok()) {
          ++errors;
          continue;
        }
        std::set<std::string> seen;
        for (const auto& h : resp.results(0).hits()) {
          if (gone.count(h.id()) || !seen.insert(h.id()).second) ++violations;
        }
        Count("c", "label >= 0");
      }
    });
  }
  threads.emplace_back([&] {
    using Kind = std::pair<const char*, std::map<std::string, std::string>>;
    const std::vector<Kind> kinds =
        disk_ ? std::vector<Kind>{{"HNSW_SQ8", {{"M", "8"}}},
                                  {"IVF_PQ", {{"nlist", "4"}, {"m", "4"}}},
                                  {"IVF_SQ8", {{"nlist", "4"}}}}
              : std::vector<Kind>{{"IVF_FLAT", {{"nlist", "4"}}}, {"FLAT", {}}, {"HNSW", {{"M", "8"}}}};
    for (int i = 0; !done.load(); ++i) {
      v1::UpdateCollectionRequest req;
      req.set_name("c");
      auto* u = req.add_vectors();
      u->set_field("v");
      u->mutable_index()->set_type(kinds[i % 3].first);
      u->mutable_index()->mutable_params()->insert(kinds[i % 3].second.begin(),
                                                   kinds[i % 3].second.end());
      v1::UpdateCollectionResponse resp;
      if (!engine_->UpdateCollection(req, &resp).ok()) ++errors;
      absl::SleepFor(absl::Milliseconds(30));
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(violations.load(), 0);
  const uint64_t expected = kWriters * kRounds * (kBatch - kBatch / 3);
  EXPECT_EQ(Count("c"), expected);
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(Count("c", "label >= 0"), expected);
  Reopen();
  EXPECT_EQ(Count("c"), expected);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SegmentedEngineTest,
                         ::testing::Values("FLAT", "HNSW", "IVF_FLAT"));

}  // namespace
}  // namespace quiver
