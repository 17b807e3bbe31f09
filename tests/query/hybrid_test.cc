// Hybrid search: fusion arithmetic on hand-made lists, the task pool that
// runs fields in parallel, and hybrid search through the engine against the
// exact fused ranking on a Fashion-MNIST slice (pixels, 784-d L2, and a
// 14x14 average-pooled view, 196-d COSINE), with every bad input.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "index/flat_search.h"
#include "query/engine.h"
#include "query/fusion.h"
#include "query/task_pool.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::ActualCount;
using ::quiver::testing::ActualLine;
using ::quiver::testing::Attribute;
using ::quiver::testing::RecallSum;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::TieRule;
using ::quiver::testing::VectorField;

RankedList List(std::vector<std::pair<uint64_t, float>> hits, double weight = 1) {
  RankedList l;
  for (const auto& [id, d] : hits) l.hits.push_back({d, id});
  l.weight = weight;
  return l;
}

TEST(FusionTest, RrfSumsWeightedReciprocalRanks) {
  const std::vector<RankedList> lists = {List({{1, 0.1f}, {2, 0.2f}, {3, 0.3f}}),
                                         List({{3, 5.f}, {1, 6.f}, {4, 7.f}})};
  const auto fused = Fuse(FusionKind::kRrf, lists, 10);
  ASSERT_EQ(fused.size(), 4u);
  EXPECT_EQ(fused[0].id, 1u);
  EXPECT_DOUBLE_EQ(fused[0].score, 1.0 / 61 + 1.0 / 62);
  EXPECT_EQ(fused[1].id, 3u);
  EXPECT_DOUBLE_EQ(fused[1].score, 1.0 / 63 + 1.0 / 61);
  EXPECT_EQ(fused[2].id, 2u);
  EXPECT_DOUBLE_EQ(fused[2].score, 1.0 / 62);
  EXPECT_EQ(fused[3].id, 4u);
  EXPECT_DOUBLE_EQ(fused[3].score, 1.0 / 63);

  // The constant and the weights enter as documented; k truncates.
  const std::vector<RankedList> weighted = {List({{1, 0.f}, {2, 1.f}}, 3.0),
                                            List({{2, 0.f}, {1, 1.f}}, 0.5)};
  const auto f2 = Fuse(FusionKind::kRrf, weighted, 1, /*rrf_k=*/1);
  ASSERT_EQ(f2.size(), 1u);
  EXPECT_EQ(f2[0].id, 1u);
  EXPECT_DOUBLE_EQ(f2[0].score, 3.0 / 2 + 0.5 / 3);
}

TEST(FusionTest, WeightedNormalizesEachListByItsOwnRange) {
  const std::vector<RankedList> lists = {List({{1, 0.f}, {2, 1.f}, {3, 2.f}}, 2.0),
                                         List({{3, 10.f}, {1, 30.f}}, 1.0)};
  const auto fused = Fuse(FusionKind::kWeighted, lists, 10);
  ASSERT_EQ(fused.size(), 3u);
  EXPECT_EQ(fused[0].id, 1u);
  EXPECT_DOUBLE_EQ(fused[0].score, 2.0 * 1 + 1.0 * 0);
  // 2 and 3 tie at 1.0: ties go to the lower id.
  EXPECT_EQ(fused[1].id, 2u);
  EXPECT_DOUBLE_EQ(fused[1].score, 2.0 * 0.5);
  EXPECT_EQ(fused[2].id, 3u);
  EXPECT_DOUBLE_EQ(fused[2].score, 2.0 * 0 + 1.0 * 1);

  // Similarities arrive negated (lower is better) and normalize the same.
  const auto neg = Fuse(FusionKind::kWeighted, {List({{7, -0.9f}, {8, -0.5f}, {9, -0.1f}})}, 3);
  ASSERT_EQ(neg.size(), 3u);
  EXPECT_EQ(neg[0].id, 7u);
  EXPECT_DOUBLE_EQ(neg[0].score, 1.0);
  EXPECT_NEAR(neg[1].score, 0.5, 1e-6);
  EXPECT_DOUBLE_EQ(neg[2].score, 0.0);
}

TEST(FusionTest, EdgeCases) {
  // A list whose candidates all tie gives each 1.
  const auto tied = Fuse(FusionKind::kWeighted, {List({{4, 2.f}, {5, 2.f}})}, 5);
  ASSERT_EQ(tied.size(), 2u);
  EXPECT_DOUBLE_EQ(tied[0].score, 1.0);
  EXPECT_DOUBLE_EQ(tied[1].score, 1.0);
  // A point listed twice in one list counts once, at its best rank.
  const auto dup = Fuse(FusionKind::kRrf, {List({{4, 1.f}, {4, 2.f}, {5, 3.f}})}, 5);
  ASSERT_EQ(dup.size(), 2u);
  EXPECT_DOUBLE_EQ(dup[0].score, 1.0 / 61);
  EXPECT_DOUBLE_EQ(dup[1].score, 1.0 / 63);
  // Empty lists and k = 0.
  EXPECT_TRUE(Fuse(FusionKind::kRrf, {List({}), List({})}, 10).empty());
  EXPECT_TRUE(Fuse(FusionKind::kRrf, {List({{1, 0.f}})}, 0).empty());
}

TEST(TaskPoolTest, RunsEveryTaskOnceFromManyCallers) {
  for (int threads : {0, 1, 3}) {
    TaskPool pool(threads);
    std::vector<std::thread> callers;
    std::atomic<int> total{0};
    for (int c = 0; c < 8; ++c) {
      callers.emplace_back([&] {
        for (int round = 0; round < 200; ++round) {
          std::vector<std::atomic<int>> ran(5);
          std::vector<std::function<void()>> tasks;
          for (int t = 0; t < 5; ++t) tasks.push_back([&ran, t] { ran[t].fetch_add(1); });
          pool.RunAll(tasks);
          for (int t = 0; t < 5; ++t) ASSERT_EQ(ran[t].load(), 1);
          total.fetch_add(5);
        }
      });
    }
    for (auto& t : callers) t.join();
    EXPECT_EQ(total.load(), 8 * 200 * 5) << threads << " threads";
  }
}

TEST(TaskPoolTest, TasksRunInParallel) {
  // Two tasks that each wait for the other to start: they finish only if
  // they run at the same time (the caller and one worker).
  TaskPool pool(1);
  std::atomic<int> started{0};
  std::atomic<int> met{0};
  auto task = [&] {
    started.fetch_add(1);
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (started.load() < 2 && absl::Now() < until) std::this_thread::yield();
    if (started.load() == 2) met.fetch_add(1);
  };
  pool.RunAll({task, task});
  EXPECT_EQ(met.load(), 2);
}

// ------------------------------------------------------------------ engine

constexpr size_t kBase = 3000;
constexpr size_t kQueries = 20;
constexpr uint32_t kK = 10;
constexpr uint32_t kFieldK = 30;

std::vector<float> Pool14(const float* img) {
  std::vector<float> out(196);
  for (int r = 0; r < 14; ++r) {
    for (int c = 0; c < 14; ++c) {
      out[r * 14 + c] = (img[(2 * r) * 28 + 2 * c] + img[(2 * r) * 28 + 2 * c + 1] +
                         img[(2 * r + 1) * 28 + 2 * c] + img[(2 * r + 1) * 28 + 2 * c + 1]) /
                        4;
    }
  }
  return out;
}

struct HybridData {
  std::vector<float> pixels, pooled, qpixels, qpooled;
  std::vector<int> labels;
};

const HybridData& Data() {
  static const HybridData* d = [] {
    auto* d = new HybridData;
    size_t dim = 0;
    d->pixels = testing::FashionImages("train", kBase, &dim);
    d->labels = testing::FashionLabels("train", kBase);
    d->qpixels = testing::FashionImages("t10k", kQueries, &dim);
    for (size_t i = 0; i < kBase && !d->pixels.empty(); ++i) {
      auto p = Pool14(d->pixels.data() + i * 784);
      d->pooled.insert(d->pooled.end(), p.begin(), p.end());
    }
    for (size_t q = 0; q < kQueries && !d->qpixels.empty(); ++q) {
      auto p = Pool14(d->qpixels.data() + q * 784);
      d->qpooled.insert(d->qpooled.end(), p.begin(), p.end());
    }
    return d;
  }();
  return *d;
}

// Exact top-`k` of one field for query q among rows passing `keep`, as
// distances (lower is better; cosine negated), ids = row numbers.
std::vector<index::Neighbor> ExactField(bool pooled, size_t q, size_t k,
                                        const std::vector<bool>& keep) {
  const HybridData& d = Data();
  const size_t dim = pooled ? 196 : 784;
  const float* base = pooled ? d.pooled.data() : d.pixels.data();
  const float* query = (pooled ? d.qpooled.data() : d.qpixels.data()) + q * dim;
  index::TopK top(k);
  double qn = 0;
  for (size_t j = 0; j < dim; ++j) qn += double(query[j]) * query[j];
  for (size_t i = 0; i < kBase; ++i) {
    if (!keep[i]) continue;
    const float* x = base + i * dim;
    double dist = 0;
    if (pooled) {
      double dot = 0, xn = 0;
      for (size_t j = 0; j < dim; ++j) {
        dot += double(query[j]) * x[j];
        xn += double(x[j]) * x[j];
      }
      dist = xn == 0 ? 0 : -dot / std::sqrt(qn * xn);
    } else {
      for (size_t j = 0; j < dim; ++j) dist += (double(query[j]) - x[j]) * (query[j] - x[j]);
    }
    top.Push(static_cast<float>(dist), i);
  }
  return top.Take();
}

class HybridSearchTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (Data().pixels.empty()) GTEST_SKIP() << "Fashion-MNIST not installed";
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 1000;  // three sealed segments
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
    v1::CreateCollectionRequest req;
    req.set_name("h");
    *req.mutable_schema()->add_vectors() = VectorField("pixels", 784, v1::L2);
    *req.mutable_schema()->add_vectors() = VectorField("pooled", 196, v1::COSINE);
    for (int f = 0; f < 2; ++f) {
      req.mutable_schema()->mutable_vectors(f)->mutable_index()->set_type(GetParam());
    }
    v1::AttributeField label = Attribute("label", v1::INT64);
    label.set_indexed(true);
    *req.mutable_schema()->add_attributes() = label;
    // Not indexed, so evaluating it reads rows and shows up as filter_checks.
    *req.mutable_schema()->add_attributes() = Attribute("plain", v1::INT64);
    v1::CreateCollectionResponse cresp;
    ASSERT_TRUE(engine_->CreateCollection(req, &cresp).ok());
    const HybridData& d = Data();
    v1::UpsertPointsRequest up;
    up.set_collection("h");
    for (size_t i = 0; i < kBase; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())["pixels"].mutable_values()->Add(d.pixels.begin() + i * 784,
                                                              d.pixels.begin() + (i + 1) * 784);
      (*p->mutable_vectors())["pooled"].mutable_values()->Add(d.pooled.begin() + i * 196,
                                                              d.pooled.begin() + (i + 1) * 196);
      (*p->mutable_attributes())["label"].set_int_value(static_cast<int64_t>(d.labels[i]));
      (*p->mutable_attributes())["plain"].set_int_value(static_cast<int64_t>(i % 7));
    }
    v1::UpsertPointsResponse uresp;
    ASSERT_TRUE(engine_->Upsert(up, &uresp).ok());
    engine_->SealAndWaitForIndexes();
  }

  v1::SearchRequest Hybrid(size_t q, v1::FusionMethod fusion, const std::string& filter = "") {
    const HybridData& d = Data();
    v1::SearchRequest req;
    req.set_collection("h");
    req.set_k(kK);
    req.set_fusion(fusion);
    req.set_filter(filter);
    v1::FieldQuery* a = req.add_field_queries();
    a->set_field("pixels");
    a->mutable_vector()->mutable_values()->Add(d.qpixels.begin() + q * 784,
                                               d.qpixels.begin() + (q + 1) * 784);
    a->set_k(kFieldK);
    a->set_weight(0.7f);
    v1::FieldQuery* b = req.add_field_queries();
    b->set_field("pooled");
    b->mutable_vector()->mutable_values()->Add(d.qpooled.begin() + q * 196,
                                               d.qpooled.begin() + (q + 1) * 196);
    b->set_k(kFieldK);
    b->set_weight(0.3f);
    return req;
  }

  // Recall@k of the fused hits against the exact fused ranking, counting a
  // hit whose exact fused score reaches the k-th exact score (ties).
  double FusedRecall(v1::FusionMethod fusion, const std::string& filter,
                     const std::vector<bool>& keep) {
    const FusionKind kind = fusion == v1::WEIGHTED ? FusionKind::kWeighted : FusionKind::kRrf;
    RecallSum sum;
    for (size_t q = 0; q < kQueries; ++q) {
      v1::SearchResponse resp;
      const absl::Status s =
          engine_->Search(Hybrid(q, fusion, filter), absl::InfiniteFuture(), &resp);
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok()) return 0;
      const auto truth = Fuse(kind,
                              {RankedList{ExactField(false, q, kFieldK, keep), 0.7},
                               RankedList{ExactField(true, q, kFieldK, keep), 0.3}},
                              kK);
      std::map<uint64_t, double> exact_score;
      for (const auto& h : Fuse(kind,
                                {RankedList{ExactField(false, q, kFieldK, keep), 0.7},
                                 RankedList{ExactField(true, q, kFieldK, keep), 0.3}},
                                kBase)) {
        exact_score[h.id] = h.score;
      }
      EXPECT_EQ(resp.results(0).hits_size(), static_cast<int>(truth.size()));
      std::vector<uint64_t> want, got;
      for (const auto& t : truth) want.push_back(t.id);
      for (const v1::Hit& h : resp.results(0).hits()) {
        const uint64_t id = std::stoull(h.id());
        EXPECT_TRUE(keep[id]) << "hit " << id << " fails the filter";
        got.push_back(id);
      }
      // Fused scores are similarities: distance = -score; an id outside the
      // exact fused list never counts.
      TieRule<uint64_t> ties{truth.empty() ? 0 : -truth.back().score, [&](uint64_t id) {
                               auto it = exact_score.find(id);
                               return it == exact_score.end() ? HUGE_VAL : -it->second;
                             },
                             1e-6};
      sum.Add(got, want, ties);
    }
    return sum.value();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(HybridSearchTest, FusedRecallAgainstExactFusedRanking) {
  const HybridData& d = Data();
  std::vector<bool> all(kBase, true), some(kBase);
  for (size_t i = 0; i < kBase; ++i) some[i] = d.labels[i] == 0 || d.labels[i] == 2 || d.labels[i] == 4;
  // FLAT is exact: the fused list is the exact one. ANN fields lose a little.
  const double floor = GetParam() == "FLAT" ? 1.0 : 0.95;
  for (v1::FusionMethod fusion : {v1::RRF, v1::WEIGHTED, v1::FUSION_METHOD_UNSPECIFIED}) {
    SCOPED_TRACE(v1::FusionMethod_Name(fusion));
    const double r_all = FusedRecall(fusion, "", all);
    const double r_some = FusedRecall(fusion, "label IN (0, 2, 4)", some);
    std::printf("%-5s %-26s recall %.3f, filtered %.3f\n", GetParam().c_str(),
                v1::FusionMethod_Name(fusion).c_str(), r_all, r_some);
    EXPECT_GE(r_all, floor);
    EXPECT_GE(r_some, floor);
  }
}

TEST_P(HybridSearchTest, FieldResultsAreEachFieldsOwnSearch) {
  v1::SearchRequest req = Hybrid(3, v1::RRF, "label != 1");
  req.set_with_field_results(true);
  req.add_output_attributes("label");
  v1::SearchResponse resp;
  ASSERT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
  ASSERT_EQ(resp.field_results_size(), 2);
  for (int f = 0; f < 2; ++f) {
    const v1::FieldQuery& fq = req.field_queries(f);
    v1::SearchRequest single;
    single.set_collection("h");
    single.set_field(fq.field());
    single.set_k(fq.k());
    single.set_filter(req.filter());
    *single.add_vectors() = fq.vector();
    v1::SearchResponse want;
    ASSERT_TRUE(engine_->Search(single, absl::InfiniteFuture(), &want).ok());
    const v1::FieldResult& got = resp.field_results(f);
    EXPECT_EQ(got.field(), fq.field());
    ASSERT_EQ(got.hits_size(), want.results(0).hits_size());
    for (int i = 0; i < got.hits_size(); ++i) {
      EXPECT_EQ(got.hits(i).id(), want.results(0).hits(i).id());
      EXPECT_FLOAT_EQ(got.hits(i).score(), want.results(0).hits(i).score());
    }
  }
  // Fused scores are RRF scores: at most the sum of the weights / (60 + 1).
  ASSERT_EQ(resp.results(0).hits_size(), static_cast<int>(kK));
  for (const v1::Hit& h : resp.results(0).hits()) {
    EXPECT_GT(h.score(), 0);
    EXPECT_LE(h.score(), (0.7 + 0.3) / 61 + 1e-6);
    EXPECT_NE(h.attributes().at("label").int_value(), 1);
  }
}

TEST_P(HybridSearchTest, OneFilterPlanServesEveryField) {
  // An unindexed filter evaluated to a row set reads each row once per
  // segment, not once per field.
  v1::SearchRequest req = Hybrid(0, v1::RRF, "plain = 3");
  req.set_explain(true);
  for (int f = 0; f < 2; ++f) {
    req.mutable_field_queries(f)->mutable_params()->set_filter_strategy(v1::PRE_FILTER);
  }
  v1::SearchResponse resp;
  ASSERT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
  uint64_t checks = 0;
  std::set<std::string> fields;
  for (const v1::SegmentPlan& sp : resp.explain().segments()) {
    checks += sp.filter_checks();
    fields.insert(sp.field());
    EXPECT_EQ(sp.strategy(), "PRE_FILTER");
  }
  EXPECT_EQ(fields, (std::set<std::string>{"pixels", "pooled"}));
  EXPECT_EQ(resp.explain().segments_size(), 6);
  EXPECT_EQ(checks, kBase) << resp.explain().text();
  const std::string& text = resp.explain().text();
  EXPECT_NE(text.find("HybridSearch("), std::string::npos) << text;
  EXPECT_NE(text.find("Fuse(RRF, rrf_k=60"), std::string::npos) << text;
  EXPECT_NE(text.find("Field(\"pixels\", k=30, weight=0.7"), std::string::npos) << text;
  EXPECT_NE(text.find("Field(\"pooled\""), std::string::npos) << text;
  for (const v1::Hit& h : resp.results(0).hits()) EXPECT_EQ(std::stoi(h.id()) % 7, 3);
  // The Fuse operator ranked every point of the two fields' lists (at most
  // kFieldK each, some in both); the Limit above it kept k.
  const std::string fuse = ActualLine(text, "Fuse(");
  ASSERT_FALSE(fuse.empty()) << text;
  EXPECT_NE(text.find("Fuse(RRF, rrf_k=60, lists=2)"), std::string::npos) << text;
  EXPECT_EQ(ActualCount(fuse, "rows_in"), 2 * kFieldK) << text;
  EXPECT_GE(ActualCount(fuse, "rows_out"), kFieldK) << text;
  EXPECT_LE(ActualCount(fuse, "rows_out"), 2 * kFieldK) << text;
  const std::string limit = ActualLine(text, "Limit(k=");
  ASSERT_FALSE(limit.empty()) << text;
  EXPECT_EQ(ActualCount(limit, "rows_in"), ActualCount(fuse, "rows_out")) << text;
  EXPECT_EQ(ActualCount(limit, "rows_out"), static_cast<uint64_t>(resp.results(0).hits_size()))
      << text;
  EXPECT_EQ(resp.results(0).hits_size(), static_cast<int>(kK)) << text;
  EXPECT_LT(text.find("Limit("), text.find("Fuse(")) << text;
}

TEST_P(HybridSearchTest, RrfConstantAndWeightsChangeTheRanking) {
  // With one field weighted 0-ish the fused list follows the other field.
  v1::SearchRequest req = Hybrid(5, v1::RRF);
  req.mutable_field_queries(0)->set_weight(1e-6f);
  req.mutable_field_queries(1)->set_weight(1.0f);
  req.set_rrf_k(1);
  req.set_with_field_results(true);
  v1::SearchResponse resp;
  ASSERT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(resp.results(0).hits(i).id(), resp.field_results(1).hits(i).id());
  }
  EXPECT_NEAR(resp.results(0).hits(0).score(), 1.0 / 2, 1e-3);
}

TEST_P(HybridSearchTest, BadHybridRequestsAreRejected) {
  auto search = [&](const v1::SearchRequest& r) {
    v1::SearchResponse resp;
    return engine_->Search(r, absl::InfiniteFuture(), &resp);
  };
  const v1::SearchRequest good = Hybrid(0, v1::RRF);
  ASSERT_TRUE(search(good).ok());
  {
    v1::SearchRequest r = good;
    r.set_field("pixels");
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "leave field and vectors"));
  }
  {
    v1::SearchRequest r = good;
    *r.add_vectors() = good.field_queries(0).vector();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "leave field and vectors"));
  }
  {
    v1::SearchRequest r = good;
    r.add_multi_vectors()->add_vectors()->mutable_values()->Resize(784, 1.0f);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "leave field and vectors"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(1)->set_field("nope");
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "no vector field \"nope\""));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(1)->set_field("pixels");
    *r.mutable_field_queries(1)->mutable_vector() = good.field_queries(0).vector();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "queried twice"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(1)->clear_vector();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "field_queries[1]: no query vector"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(1)->mutable_vector()->mutable_values()->RemoveLast();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "expected 196 values"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(0)->mutable_vector()->set_values(3, std::nanf(""));
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "not finite"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(0)->set_weight(-1);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "weight"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(0)->set_k(kMaxK + 1);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "field_queries[0]: k"));
  }
  {
    v1::SearchRequest r = good;
    r.set_rrf_k(-5);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "rrf_k"));
  }
  {
    v1::SearchRequest r = good;
    r.set_fusion(static_cast<v1::FusionMethod>(9));
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "fusion"));
  }
  {
    v1::SearchRequest r = good;
    r.set_filter("label >");
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_field_queries(0)->mutable_multi_vector()->add_vectors();
    EXPECT_THAT(search(r),
                StatusIs(absl::StatusCode::kInvalidArgument, "not a multi-vector field"));
  }
  {
    // Fusion options without field_queries.
    v1::SearchRequest r;
    r.set_collection("h");
    r.set_field("pixels");
    r.set_k(5);
    *r.add_vectors() = good.field_queries(0).vector();
    ASSERT_TRUE(search(r).ok());
    r.set_fusion(v1::WEIGHTED);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "hybrid"));
    r.set_fusion(v1::FUSION_METHOD_UNSPECIFIED);
    r.set_with_field_results(true);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "hybrid"));
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, HybridSearchTest, ::testing::Values("FLAT", "HNSW"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace quiver
