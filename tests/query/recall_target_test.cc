// Searches that ask for a recall (SearchParams.target_recall) through the
// engine, on a Fashion-MNIST slice: each index kind's calibration, measured
// when the index is built, picks settings whose achieved recall on held-out
// test images (never part of the calibration) is close to the target and
// to the recall the response predicts; the calibration is persisted with
// the index and served after a restart without being measured again; an
// index loaded without one (calibration off when it was built) is scanned
// exactly for such searches until the builder calibrates it; bad requests
// are refused. RecallCalibration::Choose is checked on hand-made tables.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "query/recall_calibration.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;
using ::testing::HasSubstr;

constexpr size_t kRows = 8000;
constexpr size_t kQueries = 1000;
constexpr uint32_t kK = 10;

// Mean recall@k of `got` against `exact` (the same queries searched with
// params.exact), ties counted: a hit scoring as well as the k-th exact one
// counts whichever tied point it is. Scores are L2 distances (lower is
// nearer) or, `higher_is_nearer`, similarities such as MaxSim's.
double MeanRecall(const v1::SearchResponse& exact, const v1::SearchResponse& got,
                  bool higher_is_nearer) {
  const int n = exact.results_size();
  if (n == 0 || got.results_size() != n) return 0;
  double sum = 0;
  for (int q = 0; q < n; ++q) {
    const auto& truth = exact.results(q).hits();
    if (truth.empty()) return 0;
    const float kth = truth[truth.size() - 1].score();
    const float slack = 1e-5f * std::fabs(kth);
    std::set<std::string> ids;
    for (const v1::Hit& h : truth) ids.insert(h.id());
    size_t hits = 0;
    for (const v1::Hit& h : got.results(q).hits()) {
      const bool tied = higher_is_nearer ? h.score() >= kth - slack : h.score() <= kth + slack;
      hits += ids.contains(h.id()) || tied;
    }
    sum += static_cast<double>(std::min<size_t>(hits, truth.size())) / truth.size();
  }
  return sum / n;
}

struct Kind {
  const char* type;
  std::map<std::string, std::string> params;
};

class RecallTargetTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    base_ = testing::FashionImages("train", kRows, &dim_);
    queries_ = testing::FashionImages("t10k", kQueries, &dim_);
    if (base_.empty() || queries_.empty()) GTEST_SKIP() << "Fashion-MNIST is not installed";
    Open(/*calibrate=*/true);
  }

  void Open(bool calibrate) {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.builder.calibration.samples = calibrate ? 300 : 0;
    // The slice's 30% subset (1,200 rows) is calibrated too.
    o.builder.calibration.min_filtered_rows = 1000;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  void CreateAndFill() {
    v1::CreateCollectionRequest req;
    req.set_name("r");
    v1::VectorField v = VectorField("v", static_cast<uint32_t>(dim_), v1::L2);
    v.mutable_index()->set_type(GetParam().type);
    for (const auto& [k, val] : GetParam().params) (*v.mutable_index()->mutable_params())[k] = val;
    *req.mutable_schema()->add_vectors() = v;
    v1::AttributeField bucket = Attribute("bucket", v1::INT64);
    bucket.set_indexed(true);
    *req.mutable_schema()->add_attributes() = bucket;
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    for (size_t first = 0; first < kRows; first += 1000) {
      v1::UpsertPointsRequest up;
      up.set_collection("r");
      for (size_t i = first; i < first + 1000; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(absl::StrCat(i));
        (*p->mutable_vectors())["v"].mutable_values()->Add(base_.begin() + i * dim_,
                                                           base_.begin() + (i + 1) * dim_);
        (*p->mutable_attributes())["bucket"].set_int_value(static_cast<int64_t>((i * 7) % 10));
      }
      v1::UpsertPointsResponse uresp;
      QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
    }
    engine_->SealAndWaitForIndexes();
  }

  v1::SearchRequest Request(float target, const std::string& filter = "") const {
    v1::SearchRequest req;
    req.set_collection("r");
    req.set_k(kK);
    req.set_filter(filter);
    for (size_t q = 0; q < kQueries; ++q) {
      req.add_vectors()->mutable_values()->Add(queries_.begin() + q * dim_,
                                               queries_.begin() + (q + 1) * dim_);
    }
    req.mutable_params()->set_target_recall(target);
    return req;
  }

  // Mean recall@k of `got` against an exact search of the same queries.
  double Recall(const v1::SearchResponse& got, const std::string& filter) {
    v1::SearchRequest req = Request(0, filter);
    req.mutable_params()->set_exact(true);
    v1::SearchResponse exact;
    EXPECT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &exact).ok());
    return MeanRecall(exact, got, /*higher_is_nearer=*/false);
  }

  // The first segment's recall line of an explained one-query search.
  std::string RecallChoice(float target, const std::string& filter = "") {
    v1::SearchRequest req = Request(target, filter);
    req.mutable_vectors()->DeleteSubrange(1, req.vectors_size() - 1);
    req.set_explain(true);
    v1::SearchResponse resp;
    EXPECT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
    for (const v1::SegmentPlan& sp : resp.explain().segments()) {
      if (!sp.recall_choice().empty()) return sp.recall_choice();
    }
    return "";
  }

  // "ef=37" of "target_recall 0.9: ef=37, predicted recall ...".
  static std::string Setting(const std::string& choice) {
    const size_t from = choice.find(": ");
    const size_t to = choice.find(", predicted");
    if (from == std::string::npos || to == std::string::npos) return choice;
    return choice.substr(from + 2, to - from - 2);
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  size_t dim_ = 0;
  std::vector<float> base_;
  std::vector<float> queries_;
};

TEST_P(RecallTargetTest, AchievedRecallFollowsTheTargetOnHeldOutQueries) {
  CreateAndFill();
  double last_predicted = 0;
  for (float target : {0.8f, 0.9f, 0.97f}) {
    SCOPED_TRACE(absl::StrCat("target ", target));
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(Request(target), absl::InfiniteFuture(), &resp));
    ASSERT_EQ(resp.results_size(), static_cast<int>(kQueries));
    const double predicted = resp.results(0).predicted_recall();
    const double achieved = Recall(resp, "");
    // The prediction comes from 300 rows of the segment, the achieved
    // recall from 1,000 test images: both carry sample noise (~0.01).
    EXPECT_GE(predicted, target - 1e-6);
    EXPECT_NEAR(achieved, predicted, 0.03) << RecallChoice(target);
    EXPECT_GE(achieved, target - 0.03);
    EXPECT_GE(predicted, last_predicted);
    last_predicted = predicted;
    EXPECT_THAT(RecallChoice(target), HasSubstr("calibrated on 300 rows"));
  }
  // A higher target picks a larger setting than a lower one.
  EXPECT_NE(Setting(RecallChoice(0.8f)), Setting(RecallChoice(0.97f)));
}

TEST_P(RecallTargetTest, FilteredSearchesUseTheFilteredCalibration) {
  CreateAndFill();
  // 30% of the rows (2,400: a subset every kind measures) and 10% (800:
  // list kinds measure it; for HNSW it is below the smallest subset, 1,000
  // rows here, and such a filter is scanned exactly rather than guessed).
  for (const std::string filter : {"bucket < 3", "bucket < 1"}) {
    for (float target : {0.9f, 0.97f}) {
      SCOPED_TRACE(absl::StrCat(filter, ", target ", target));
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(Request(target, filter), absl::InfiniteFuture(), &resp));
      const double predicted = resp.results(0).predicted_recall();
      const double achieved = Recall(resp, filter);
      const std::string choice = RecallChoice(target, filter);
      EXPECT_GE(predicted, target - 1e-6);
      EXPECT_GE(achieved, target - 0.03);
      EXPECT_NEAR(achieved, predicted, 0.03) << choice;
      const bool graph = std::string(GetParam().type) == "HNSW";
      if (graph && filter == "bucket < 1") {
        EXPECT_THAT(choice, HasSubstr("fewer rows than any subset calibrated"));
      } else {
        // A measured subset: the calibrated setting, or an exact scan where
        // that is cheaper (which depends on the measured speed: ASan).
        EXPECT_THAT(choice, ::testing::Not(HasSubstr("fewer rows than any subset")));
        EXPECT_THAT(choice, HasSubstr("calibrated on"));
      }
    }
  }
}

TEST_P(RecallTargetTest, CalibrationIsPersistedWithTheIndex) {
  CreateAndFill();
  const std::string before = RecallChoice(0.9f);
  ASSERT_THAT(before, HasSubstr("calibrated on"));
  Open(/*calibrate=*/true);
  // Served at once from the MANIFEST: not measured again, not missing.
  EXPECT_EQ(RecallChoice(0.9f), before);
  EXPECT_EQ(engine_->builder_queue(), 0u);
}

TEST_P(RecallTargetTest, AnUncalibratedIndexIsScannedExactlyUntilCalibrated) {
  Open(/*calibrate=*/false);
  CreateAndFill();
  EXPECT_THAT(RecallChoice(0.9f), HasSubstr("not calibrated yet"));
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(Request(0.9f), absl::InfiniteFuture(), &resp));
  EXPECT_TRUE(resp.results(0).exhaustive());
  EXPECT_FLOAT_EQ(resp.results(0).predicted_recall(), 1.0f);
  EXPECT_DOUBLE_EQ(Recall(resp, ""), 1.0);
  // Written without a calibration: measured after the next start (each
  // sample left out of its own search), and persisted.
  Open(/*calibrate=*/true);
  engine_->SealAndWaitForIndexes();
  const std::string measured = RecallChoice(0.9f);
  EXPECT_THAT(measured, HasSubstr("calibrated on"));
  QUIVER_ASSERT_OK(engine_->Search(Request(0.9f), absl::InfiniteFuture(), &resp));
  Open(/*calibrate=*/true);
  EXPECT_EQ(RecallChoice(0.9f), measured);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, RecallTargetTest,
    ::testing::Values(Kind{"HNSW", {{"M", "8"}, {"ef_construction", "40"}}},
                      Kind{"IVF_FLAT", {{"nlist", "64"}}},
                      Kind{"IVF_PQ", {{"nlist", "32"}, {"m", "16"}}}),
    [](const ::testing::TestParamInfo<Kind>& info) { return std::string(info.param.type); });

// A multi-vector field (each image cut into 8 strips of 98 pixels, inner
// product) searched through MUVERA encodings' HNSW: the calibration
// measures the whole late-interaction search against exact MaxSim, and
// picks ef and the candidates per segment.
class MultiVectorRecallTargetTest : public ::testing::Test {
 protected:
  static constexpr size_t kMvRows = 4000;
  static constexpr size_t kMvQueries = 300;
  static constexpr size_t kStrips = 8;

  void SetUp() override {
    base_ = testing::FashionImages("train", kMvRows, &dim_);
    queries_ = testing::FashionImages("t10k", kMvQueries, &dim_);
    if (base_.empty() || queries_.empty()) GTEST_SKIP() << "Fashion-MNIST is not installed";
    strip_ = static_cast<uint32_t>(dim_ / kStrips);
    Open();
  }

  void Open(double audit_rate = 0) {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.builder.calibration.samples = 300;
    o.builder.calibration.min_filtered_rows = 1000;
    o.recall_audit_rate = audit_rate;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  void AddSet(const std::vector<float>& images, size_t i, v1::MultiVector* mv) const {
    for (size_t j = 0; j < kStrips; ++j) {
      const float* v = images.data() + i * dim_ + j * strip_;
      mv->add_vectors()->mutable_values()->Add(v, v + strip_);
    }
  }

  void CreateAndFill() {
    v1::CreateCollectionRequest req;
    req.set_name("m");
    v1::VectorField v = VectorField("strips", strip_, v1::IP);
    v.mutable_multi_vector()->set_max_vectors_per_point(kStrips);
    // The default M and ef_construction: with M 8 / ef_construction 40 the
    // graph over 2,048-d encodings fails its self-check.
    v.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = v;
    v1::AttributeField bucket = Attribute("bucket", v1::INT64);
    bucket.set_indexed(true);
    *req.mutable_schema()->add_attributes() = bucket;
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    for (size_t first = 0; first < kMvRows; first += 500) {
      v1::UpsertPointsRequest up;
      up.set_collection("m");
      for (size_t i = first; i < first + 500; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(absl::StrCat(i));
        AddSet(base_, i, &(*p->mutable_multi_vectors())["strips"]);
        (*p->mutable_attributes())["bucket"].set_int_value(static_cast<int64_t>((i * 7) % 10));
      }
      v1::UpsertPointsResponse uresp;
      QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
    }
    engine_->SealAndWaitForIndexes();
  }

  v1::SearchRequest Request(float target, const std::string& filter = "",
                            size_t queries = kMvQueries) const {
    v1::SearchRequest req;
    req.set_collection("m");
    req.set_field("strips");
    req.set_k(kK);
    req.set_filter(filter);
    for (size_t q = 0; q < queries; ++q) AddSet(queries_, q, req.add_multi_vectors());
    if (target > 0) req.mutable_params()->set_target_recall(target);
    return req;
  }

  // Mean recall@k against exact MaxSim (a similarity: higher is nearer).
  double Recall(const v1::SearchResponse& got, const std::string& filter) {
    v1::SearchRequest req = Request(0, filter);
    req.mutable_params()->set_exact(true);
    v1::SearchResponse exact;
    EXPECT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &exact).ok());
    return MeanRecall(exact, got, /*higher_is_nearer=*/true);
  }

  v1::Explain Explain(float target, const std::string& filter = "") {
    v1::SearchRequest req = Request(target, filter, 1);
    req.set_explain(true);
    v1::SearchResponse resp;
    EXPECT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
    return resp.explain();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  size_t dim_ = 0;
  uint32_t strip_ = 0;
  std::vector<float> base_;
  std::vector<float> queries_;
};

TEST_F(MultiVectorRecallTargetTest, TargetsAreMetAgainstExactMaxSim) {
  CreateAndFill();
  double last_predicted = 0;
  for (float target : {0.8f, 0.9f, 0.97f}) {
    SCOPED_TRACE(absl::StrCat("target ", target));
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(Request(target), absl::InfiniteFuture(), &resp));
    ASSERT_EQ(resp.results_size(), static_cast<int>(kMvQueries));
    const double predicted = resp.results(0).predicted_recall();
    const double achieved = Recall(resp, "");
    const v1::Explain explain = Explain(target);
    ASSERT_GT(explain.segments_size(), 0);
    const std::string choice = explain.segments(0).recall_choice();
    // 300 calibration rows and 300 test images: ~0.015 of noise each.
    EXPECT_GE(predicted, target - 1e-6);
    EXPECT_NEAR(achieved, predicted, 0.04) << choice;
    EXPECT_GE(achieved, target - 0.04) << choice;
    EXPECT_GE(predicted, last_predicted);
    last_predicted = predicted;
    EXPECT_THAT(choice, HasSubstr("calibrated on 250 rows")) << choice;
    std::printf("target %.2f: predicted %.4f, achieved %.4f; %s\n", target, predicted, achieved,
                choice.c_str());
    EXPECT_THAT(explain.text(), HasSubstr("target_recall=")) << explain.text();
  }
}

TEST_F(MultiVectorRecallTargetTest, FilteredAndPersisted) {
  CreateAndFill();
  // 30% of the rows: a subset the calibration measured.
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(
      engine_->Search(Request(0.9f, "bucket < 3"), absl::InfiniteFuture(), &resp));
  const double predicted = resp.results(0).predicted_recall();
  const double achieved = Recall(resp, "bucket < 3");
  const std::string choice = Explain(0.9f, "bucket < 3").segments(0).recall_choice();
  EXPECT_GE(predicted, 0.9 - 1e-6);
  EXPECT_GE(achieved, 0.9 - 0.04) << choice;
  EXPECT_NEAR(achieved, predicted, 0.04) << choice;
  EXPECT_THAT(choice, HasSubstr("calibrated on"));
  // Persisted with the index: the same choice after a restart, nothing
  // measured again.
  const std::string before = Explain(0.9f).segments(0).recall_choice();
  Open();
  EXPECT_EQ(Explain(0.9f).segments(0).recall_choice(), before);
  EXPECT_EQ(engine_->builder_queue(), 0u);
}

TEST_F(MultiVectorRecallTargetTest, TheRecallAuditMeasuresAgainstExactMaxSim) {
  CreateAndFill();
  Open(/*audit_rate=*/1.0);
  // Three audited searches of the same queries, the target 0.9.
  double achieved = 0;
  for (int i = 0; i < 3; ++i) {
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(Request(0.9f), absl::InfiniteFuture(), &resp));
    if (i == 0) achieved = Recall(resp, "");
  }
  v1::GetCollectionRequest get;
  get.set_name("m");
  v1::GetCollectionResponse info;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (;;) {
    QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
    if (info.collection().stats().vectors(0).recall_audit_target_searches() >= 3) break;
    ASSERT_LT(absl::Now(), give_up) << info.collection().stats().DebugString();
    absl::SleepFor(absl::Milliseconds(20));
  }
  const auto& stats = info.collection().stats().vectors(0);
  EXPECT_NEAR(stats.recall_audit_target(), 0.9, 1e-6);
  // The audits re-ran these queries by exact MaxSim, as Recall() does
  // (which also counts ties at the k-th score).
  EXPECT_NEAR(stats.recall_audit_target_achieved(), achieved, 0.01);
}

const std::vector<float> kQuery = {1, 2, 3, 4};

TEST(RecallTargetRequestTest, BadRequestsAreRefused) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok()) << e.status();
  std::unique_ptr<Engine> engine = *std::move(e);
  v1::CreateCollectionRequest create;
  create.set_name("c");
  *create.mutable_schema()->add_vectors() = VectorField("v", 4, v1::L2);
  v1::VectorField m = VectorField("m", 4, v1::L2);
  m.mutable_multi_vector();
  *create.mutable_schema()->add_vectors() = m;
  v1::VectorField t = VectorField("t", 4, v1::L2);
  t.mutable_multi_vector()->set_candidates(v1::MultiVectorOptions::TOKENS);
  *create.mutable_schema()->add_vectors() = t;
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine->CreateCollection(create, &cresp));
  auto search = [&](const std::function<void(v1::SearchRequest*)>& edit) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_field("v");
    req.set_k(3);
    req.add_vectors()->mutable_values()->Add(kQuery.begin(), kQuery.end());
    req.mutable_params()->set_target_recall(0.9f);
    edit(&req);
    v1::SearchResponse resp;
    return engine->Search(req, absl::InfiniteFuture(), &resp);
  };
  EXPECT_TRUE(search([](v1::SearchRequest*) {}).ok());
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_target_recall(0.3f); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "target_recall must be 0 (off) or in"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_target_recall(1.0f); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "target_recall must be 0 (off) or in"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_target_recall(NAN); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "target_recall must be 0 (off) or in"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_ef(64); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "set target_recall or those"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_refine_factor(2); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "set target_recall or those"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_params()->set_exact(true); }),
              StatusIs(absl::StatusCode::kInvalidArgument, "set exact or target_recall"));
  EXPECT_THAT(search([](v1::SearchRequest* r) {
                r->mutable_params()->set_filter_strategy(v1::POST_FILTER);
              }),
              StatusIs(absl::StatusCode::kInvalidArgument, "POST_FILTER"));
  // Multi-vector fields with MUVERA candidates take a target (calibrated
  // against exact MaxSim); TOKENS fields are refused, alone or in hybrid.
  auto multi = [&](const std::string& field) {
    return search([&](v1::SearchRequest* r) {
      r->set_field(field);
      r->clear_vectors();
      r->add_multi_vectors()->add_vectors()->mutable_values()->Add(kQuery.begin(), kQuery.end());
    });
  };
  const absl::Status muvera = multi("m");
  EXPECT_TRUE(muvera.ok()) << muvera;
  EXPECT_THAT(multi("t"), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "not available for multi-vector fields with token candidates"));
  auto hybrid_multi = [&](const std::string& field) {
    return search([&](v1::SearchRequest* r) {
      r->clear_vectors();
      r->clear_field();
      r->clear_params();
      v1::FieldQuery* fq = r->add_field_queries();
      fq->set_field(field);
      fq->mutable_multi_vector()->add_vectors()->mutable_values()->Add(kQuery.begin(), kQuery.end());
      fq->mutable_params()->set_target_recall(0.9f);
    });
  };
  EXPECT_THAT(hybrid_multi("t"),
              StatusIs(absl::StatusCode::kInvalidArgument, "field_queries[0] params: target_recall"));
  const absl::Status hybrid_muvera = hybrid_multi("m");
  EXPECT_TRUE(hybrid_muvera.ok()) << hybrid_muvera;
  const absl::Status dense = search([](v1::SearchRequest* r) {
    r->clear_vectors();
    r->clear_field();
    r->clear_params();
    v1::FieldQuery* fq = r->add_field_queries();
    fq->set_field("v");
    fq->mutable_vector()->mutable_values()->Add(kQuery.begin(), kQuery.end());
    fq->mutable_params()->set_target_recall(0.9f);
  });
  EXPECT_TRUE(dense.ok()) << dense;
}

// A hand-made table: ef 10 / 20 / 40 at k 1..100, unfiltered and at 10%.
storage::RecallCalibration Table() {
  storage::RecallCalibration p;
  p.set_knob(storage::RecallCalibration::EF);
  p.set_samples(100);
  for (uint32_t k : kCalibratedK) p.add_ks(k);
  auto cell = [&](uint32_t ef, float s, double distances, std::vector<float> recall) {
    auto* c = p.add_cells();
    c->set_knob(ef);
    c->set_selectivity(s);
    c->set_distances(distances);
    for (float r : recall) c->add_recall(r);
  };
  cell(10, 1, 100, {0.99f, 0.95f, 0.90f, -1, -1, -1});
  cell(20, 1, 200, {1.0f, 0.97f, 0.94f, 0.92f, -1, -1});
  cell(40, 1, 400, {1.0f, 0.99f, 0.98f, 0.96f, -1, -1});
  cell(10, 0.1f, 500, {0.9f, 0.8f, 0.70f, -1, -1, -1});
  cell(20, 0.1f, 1000, {0.95f, 0.9f, 0.85f, 0.8f, -1, -1});
  cell(40, 0.1f, 2000, {0.99f, 0.95f, 0.92f, 0.9f, -1, -1});
  p.set_ns_per_distance(100);
  return p;
}

TEST(RecallCalibrationTest, ChoosesTheCheapestSettingThatReachesTheTarget) {
  auto cal = RecallCalibration::FromProto(Table());
  ASSERT_TRUE(cal.ok()) << cal.status();
  // Between ef 20 (0.94) and 40 (0.98), 0.96 is half way: ef 30.
  RecallCalibration::Choice c = cal->Choose(10, 1.0, 0.96, /*exact_ns=*/1e9);
  EXPECT_FALSE(c.exact);
  EXPECT_EQ(c.params.ef, 30u);
  EXPECT_NEAR(c.predicted, 0.96, 1e-6);
  EXPECT_NEAR(c.cost_ns, 300 * 100, 1e-6);
  // Reached by the smallest value: that value.
  c = cal->Choose(10, 1.0, 0.85, 1e9);
  EXPECT_EQ(c.params.ef, 10u);
  EXPECT_NEAR(c.predicted, 0.90, 1e-6);
  // No value reaches 0.99 at k 10: an exact scan.
  c = cal->Choose(10, 1.0, 0.99, 1e9);
  EXPECT_TRUE(c.exact);
  EXPECT_FALSE(c.reached);
  EXPECT_DOUBLE_EQ(c.predicted, 1.0);
  // An exact scan cheaper than the setting wins.
  c = cal->Choose(10, 1.0, 0.96, /*exact_ns=*/1000);
  EXPECT_TRUE(c.exact);
  EXPECT_TRUE(c.reached);
  // k = 20 needs ef >= 20 (ef 10 has no k = 20 cell).
  c = cal->Choose(20, 1.0, 0.9, 1e9);
  EXPECT_EQ(c.params.ef, 20u);
  // Half way between the groups in log selectivity (~0.316): recall half
  // way between theirs; at ef 40 (0.98 + 0.92) / 2 = 0.95 < 0.96: exact.
  c = cal->Choose(10, std::sqrt(0.1), 0.96, 1e9);
  EXPECT_TRUE(c.exact);
  c = cal->Choose(10, std::sqrt(0.1), 0.9, 1e9);
  EXPECT_FALSE(c.exact);
  // 0.895 at ef 20, 0.95 at 40: 0.9 at 21.8, so ef 22.
  EXPECT_EQ(c.params.ef, 22u);
  EXPECT_NEAR(c.predicted, 0.9005, 1e-4);
  // Below the smallest subset measured: not guessed, an exact scan.
  c = cal->Choose(10, 0.05, 0.9, 1e12);
  EXPECT_TRUE(c.exact);
  EXPECT_TRUE(c.extrapolated);
  EXPECT_THAT(c.ToString(), HasSubstr("fewer rows than any subset calibrated"));
  EXPECT_NEAR(cal->Predict(10, 1.0, 20, 0), 0.94, 1e-6);
  // k between calibrated values: interpolated in log k (k 15 between 10's
  // 0.94 and 20's 0.92 at ef 20).
  EXPECT_NEAR(cal->Predict(15, 1.0, 20, 0),
              0.94 + (std::log(15) - std::log(10)) / (std::log(20) - std::log(10)) * (0.92 - 0.94),
              1e-6);
}

TEST(RecallCalibrationTest, SettingsArePricedByTheirMeasuredTime) {
  // The same table, but ef 40's measured time is 1 ms a query: ef 30, half
  // way to it, costs more than the exact scan's 0.5 ms, though 300
  // distances x 100 ns read 30 us (a filtered scan steps over rejected rows
  // that no count sees).
  storage::RecallCalibration p = Table();
  for (auto& c : *p.mutable_cells()) c.set_ns(c.distances() * 100);
  p.mutable_cells(2)->set_ns(1e6);
  auto cal = RecallCalibration::FromProto(p);
  ASSERT_TRUE(cal.ok()) << cal.status();
  EXPECT_TRUE(cal->Choose(10, 1.0, 0.96, /*exact_ns=*/5e5).exact);
  // 0.93 is reached between ef 10 (0.90, 10 us) and 20 (0.94, 20 us): ef
  // 18, priced on the line between their measured times.
  const RecallCalibration::Choice c = cal->Choose(10, 1.0, 0.93, 5e5);
  EXPECT_FALSE(c.exact);
  EXPECT_EQ(c.params.ef, 18u);
  EXPECT_NEAR(c.cost_ns, 1.8e4, 1e-6);
}

TEST(RecallCalibrationTest, NoisyTimesNeverMakeALargerEfCheaper) {
  // ef 20 was timed at a third of ef 10's (the machine was busy while ef 10
  // ran): a larger ef still costs at least what a smaller one does, so a
  // higher target is never priced below a lower one.
  storage::RecallCalibration p = Table();
  for (auto& c : *p.mutable_cells()) c.set_ns(c.distances() * 100);
  p.mutable_cells(0)->set_ns(3e4);  // ef 10
  p.mutable_cells(1)->set_ns(1e4);  // ef 20
  auto cal = RecallCalibration::FromProto(p);
  ASSERT_TRUE(cal.ok()) << cal.status();
  const RecallCalibration::Choice low = cal->Choose(10, 1.0, 0.85, 1e9);
  const RecallCalibration::Choice high = cal->Choose(10, 1.0, 0.93, 1e9);
  EXPECT_EQ(low.params.ef, 10u);
  EXPECT_EQ(high.params.ef, 18u);
  EXPECT_NEAR(low.cost_ns, 3e4, 1e-6);
  EXPECT_GE(high.cost_ns, low.cost_ns);
}

TEST(RecallCalibrationTest, ATableThatDoesNotFitTogetherIsDataLoss) {
  storage::RecallCalibration p = Table();
  p.mutable_ks()->RemoveLast();
  EXPECT_THAT(RecallCalibration::FromProto(p).status(),
              StatusIs(absl::StatusCode::kDataLoss, "other k"));
  p = Table();
  p.mutable_cells(0)->mutable_recall()->RemoveLast();
  EXPECT_THAT(RecallCalibration::FromProto(p).status(),
              StatusIs(absl::StatusCode::kDataLoss, "does not fit together"));
  p = Table();
  p.mutable_cells(0)->set_selectivity(0);
  EXPECT_THAT(RecallCalibration::FromProto(p).status(),
              StatusIs(absl::StatusCode::kDataLoss, "does not fit together"));
  // Round trip.
  auto cal = RecallCalibration::FromProto(Table());
  ASSERT_TRUE(cal.ok());
  auto again = RecallCalibration::FromProto(cal->ToProto());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Choose(10, 1.0, 0.96, 1e9).params.ef, 30u);
}

}  // namespace
}  // namespace quiver
