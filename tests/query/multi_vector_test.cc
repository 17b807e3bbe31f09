// Multi-vector (late-interaction) fields through the engine: exact MaxSim
// against a brute-force reference, MUVERA candidates + MaxSim rerank against
// exact, filters, deletes, restarts (encodings recomputed, tables reused),
// DISK reads, and every bad input, on Fashion-MNIST patch sets (16 x 65).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/fashion_patches.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::ActualCount;
using ::quiver::testing::ActualLine;
using ::quiver::testing::Attribute;
using ::quiver::testing::kPatchDim;
using ::quiver::testing::kPatchesPerImage;
using ::quiver::testing::kPatchSetFloats;
using ::quiver::testing::RecallSum;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::TieRule;
using ::quiver::testing::VectorField;

constexpr size_t kBase = 3000;
constexpr size_t kQueries = 20;
constexpr uint32_t kK = 10;

struct Data {
  std::vector<float> base, queries;
  std::vector<int> labels;
};

const Data& Patches() {
  static const Data* d = [] {
    auto* d = new Data;
    d->base = testing::FashionPatches("train", kBase);
    d->queries = testing::FashionPatches("t10k", kQueries);
    d->labels = testing::FashionLabels("train", kBase);
    return d;
  }();
  return *d;
}

v1::MultiVector SetOf(const float* set, size_t n = kPatchesPerImage) {
  v1::MultiVector mv;
  for (size_t j = 0; j < n; ++j) {
    mv.add_vectors()->mutable_values()->Add(set + j * kPatchDim, set + (j + 1) * kPatchDim);
  }
  return mv;
}

// Brute-force MaxSim (inner product): sum over query vectors of the best dot.
double ChamferSim(const float* q, const float* d) {
  double total = 0;
  for (size_t i = 0; i < kPatchesPerImage; ++i) {
    double best = -1e30;
    for (size_t j = 0; j < kPatchesPerImage; ++j) {
      double dot = 0;
      for (size_t c = 0; c < kPatchDim; ++c) {
        dot += double(q[i * kPatchDim + c]) * d[j * kPatchDim + c];
      }
      best = std::max(best, dot);
    }
    total += best;
  }
  return total;
}

// The exact top-k (by similarity, ids = rows) of query q among rows kept.
std::vector<std::pair<double, size_t>> ExactTop(size_t q, const std::vector<bool>& keep) {
  const Data& d = Patches();
  std::vector<std::pair<double, size_t>> all;
  for (size_t i = 0; i < kBase; ++i) {
    if (keep[i]) {
      all.push_back({ChamferSim(d.queries.data() + q * kPatchSetFloats,
                                d.base.data() + i * kPatchSetFloats),
                     i});
    }
  }
  std::partial_sort(all.begin(), all.begin() + std::min<size_t>(kK, all.size()), all.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  all.resize(std::min<size_t>(kK, all.size()));
  return all;
}

class MultiVectorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (Patches().base.empty()) GTEST_SKIP() << "Fashion-MNIST not installed";
    Open();
    v1::CreateCollectionRequest req;
    req.set_name("mv");
    v1::VectorField f = VectorField("patches", kPatchDim, v1::IP);
    f.mutable_index()->set_type(GetParam());
    f.mutable_multi_vector()->set_max_vectors_per_point(32);
    *req.mutable_schema()->add_vectors() = f;
    v1::VectorField g = VectorField("disk_patches", kPatchDim, v1::IP);
    g.mutable_index()->set_type(GetParam());
    g.mutable_multi_vector();
    g.set_storage(v1::DISK);
    *req.mutable_schema()->add_vectors() = g;
    v1::AttributeField label = Attribute("label", v1::INT64);
    label.set_indexed(true);
    *req.mutable_schema()->add_attributes() = label;
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    created_ = cresp.collection();
    for (size_t start = 0; start < kBase; start += 500) {
      v1::UpsertPointsRequest up;
      up.set_collection("mv");
      for (size_t i = start; i < start + 500; ++i) *up.add_points() = Point(i);
      v1::UpsertPointsResponse uresp;
      QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
    }
    engine_->SealAndWaitForIndexes();
  }

  v1::Point Point(size_t i) {
    const Data& d = Patches();
    v1::Point p;
    p.set_id(std::to_string(i));
    const float* set = d.base.data() + i * kPatchSetFloats;
    (*p.mutable_multi_vectors())["patches"] = SetOf(set);
    (*p.mutable_multi_vectors())["disk_patches"] = SetOf(set);
    (*p.mutable_attributes())["label"].set_int_value(d.labels[i]);
    return p;
  }

  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 1000;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  v1::SearchResponse Search(const std::string& field, bool exact, const std::string& filter = "",
                            bool explain = false, float refine = 0) {
    v1::SearchRequest req;
    req.set_collection("mv");
    req.set_field(field);
    req.set_k(kK);
    req.set_filter(filter);
    req.set_explain(explain);
    req.mutable_params()->set_exact(exact);
    req.mutable_params()->set_refine_factor(refine);
    for (size_t q = 0; q < kQueries; ++q) {
      *req.add_multi_vectors() = SetOf(Patches().queries.data() + q * kPatchSetFloats);
    }
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Recall@k against brute force, counting ties at the k-th similarity.
  double Recall(const v1::SearchResponse& resp, const std::vector<bool>& keep) {
    RecallSum sum;
    for (size_t q = 0; q < kQueries; ++q) {
      const auto truth = ExactTop(q, keep);
      std::vector<size_t> want, got;
      for (const auto& t : truth) want.push_back(t.second);
      std::map<size_t, double> score;  // the server's, which ties are judged by
      for (const v1::Hit& h : resp.results(static_cast<int>(q)).hits()) {
        const size_t id = std::stoul(h.id());
        EXPECT_TRUE(keep[id]) << "hit " << id << " fails the filter";
        got.push_back(id);
        score.emplace(id, h.score());
      }
      // Similarities: distance = -score.
      TieRule<size_t> ties{-truth.back().first, [&](size_t id) { return -score.at(id); }, 1e-4};
      sum.Add(got, want, ties);
    }
    return sum.value();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  v1::CollectionInfo created_;
};

TEST_P(MultiVectorTest, ExactMaxSimMatchesBruteForce) {
  std::vector<bool> all(kBase, true);
  const v1::SearchResponse exact = Search("patches", true);
  for (size_t q = 0; q < kQueries; ++q) {
    const auto truth = ExactTop(q, all);
    ASSERT_EQ(exact.results(static_cast<int>(q)).hits_size(), static_cast<int>(kK));
    for (size_t i = 0; i < kK; ++i) {
      // Scores are the MaxSim similarity, higher is better.
      EXPECT_NEAR(exact.results(static_cast<int>(q)).hits(static_cast<int>(i)).score(),
                  truth[i].first, 1e-3)
          << "query " << q << " rank " << i;
    }
  }
  EXPECT_EQ(Recall(exact, all), 1.0);
}

TEST_P(MultiVectorTest, MuveraCandidatesAndRerankKeepRecall) {
  std::vector<bool> all(kBase, true);
  const double r = Recall(Search("patches", false), all);
  const double r_disk = Recall(Search("disk_patches", false), all);
  std::printf("%s: MUVERA + rerank recall@10 %.3f (DISK field %.3f)\n", GetParam().c_str(), r,
              r_disk);
  EXPECT_GE(r, 0.95);
  EXPECT_GE(r_disk, 0.95);
  // Fewer candidates lose recall: the refine factor takes effect.
  EXPECT_LT(Recall(Search("patches", false, "", false, 1), all), r);
}

// One copy: a MUVERA field's encodings are read from its HNSW index's
// block (the token vectors stay where they are: memory or the table),
// after the build and after a restart.
TEST_P(MultiVectorTest, EncodingsAreReadFromTheIndex) {
  if (GetParam() != "HNSW") GTEST_SKIP() << "only HNSW shares its rows";
  for (int restart = 0; restart < 2; ++restart) {
    if (restart == 1) {
      Open();
      engine_->SealAndWaitForIndexes();
    }
    auto coll = engine_->Find("mv");
    ASSERT_TRUE(coll.ok()) << coll.status();
    const View view = (*coll)->TakeView();
    int sealed = 0;
    for (const View::Part& part : view.parts) {
      if (!part.segment->sealed()) continue;
      ++sealed;
      EXPECT_TRUE(part.segment->rows_adopted(0)) << "restart " << restart;
      EXPECT_TRUE(part.segment->rows_adopted(1)) << "restart " << restart << " (DISK)";
    }
    EXPECT_GT(sealed, 0);
    std::vector<bool> all(kBase, true);
    EXPECT_GE(Recall(Search("patches", false), all), 0.95);
    EXPECT_GE(Recall(Search("disk_patches", false), all), 0.95);
  }
}

TEST_P(MultiVectorTest, FiltersApply) {
  const Data& d = Patches();
  std::vector<bool> keep(kBase);
  for (size_t i = 0; i < kBase; ++i) keep[i] = d.labels[i] == 1 || d.labels[i] == 7;
  EXPECT_EQ(Recall(Search("patches", true, "label IN (1, 7)"), keep), 1.0);
  // Exact with a filter passing under half the rows scores only those: the
  // same answer from a DISK field's mapped table.
  EXPECT_EQ(Recall(Search("disk_patches", true, "label IN (1, 7)"), keep), 1.0);
  EXPECT_GE(Recall(Search("patches", false, "label IN (1, 7)"), keep), 0.9);
}

TEST_P(MultiVectorTest, ExplainDeletesRestartAndVectors) {
  const v1::SearchResponse disk = Search("disk_patches", false, "", true);
  const std::string& disk_text = disk.explain().text();
  EXPECT_NE(disk_text.find("candidates=500 per query"), std::string::npos) << disk_text;
  // The MaxSimRerank operator scored each query's candidates, reading a
  // DISK field's sets from its rerank tables and a memory field's from
  // memory; the Limit above it kept k per query.
  const std::string disk_rerank = ActualLine(disk_text, "MaxSimRerank(");
  ASSERT_FALSE(disk_rerank.empty()) << disk_text;
  EXPECT_GT(ActualCount(disk_rerank, "reads"), 0u) << disk_text;
  EXPECT_GE(ActualCount(disk_rerank, "rows_in"), kQueries * kK) << disk_text;
  EXPECT_LE(ActualCount(disk_rerank, "rows_in"), kQueries * 500) << disk_text;
  EXPECT_GT(ActualCount(disk_rerank, "distances"), ActualCount(disk_rerank, "rows_in"))
      << disk_text;
  const std::string limit = ActualLine(disk_text, "Limit(k=10, queries=");
  ASSERT_FALSE(limit.empty()) << disk_text;
  EXPECT_EQ(ActualCount(limit, "rows_out"), kQueries * kK) << disk_text;
  EXPECT_LT(disk_text.find("Limit("), disk_text.find("MaxSimRerank(")) << disk_text;
  const v1::SearchResponse mem = Search("patches", false, "", true);
  const std::string mem_rerank = ActualLine(mem.explain().text(), "MaxSimRerank(");
  ASSERT_FALSE(mem_rerank.empty()) << mem.explain().text();
  EXPECT_EQ(ActualCount(mem_rerank, "reads"), 0u) << mem.explain().text();
  EXPECT_GE(ActualCount(mem_rerank, "rows_in"), kQueries * kK) << mem.explain().text();

  // The resolved encoding parameters are stored with the schema.
  const auto& params = created_.schema().vectors(0).multi_vector().encoding_params();
  EXPECT_EQ(params.at("r_reps"), "40");
  EXPECT_EQ(params.at("k_sim"), "4");

  // Delete every query's best hit: it is gone from both paths.
  std::set<std::string> gone;
  v1::DeletePointsRequest del;
  del.set_collection("mv");
  const v1::SearchResponse best = Search("patches", true);
  for (const auto& r : best.results()) {
    if (gone.insert(r.hits(0).id()).second) del.add_ids(r.hits(0).id());
  }
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  const v1::SearchResponse before_exact = Search("patches", true);
  const v1::SearchResponse before = Search("patches", false);
  for (const auto* resp : {&before_exact, &before}) {
    for (const auto& r : resp->results()) {
      for (const auto& h : r.hits()) EXPECT_EQ(gone.count(h.id()), 0u) << h.id();
    }
  }
  // After a restart the encodings are recomputed from the stored sets with
  // the stored seed: identical results.
  Open();
  const v1::SearchResponse after = Search("patches", false);
  const v1::SearchResponse after_exact = Search("patches", true);
  for (size_t q = 0; q < kQueries; ++q) {
    const int qi = static_cast<int>(q);
    ASSERT_EQ(after.results(qi).hits_size(), before.results(qi).hits_size());
    for (int i = 0; i < after.results(qi).hits_size(); ++i) {
      EXPECT_EQ(after.results(qi).hits(i).id(), before.results(qi).hits(i).id());
      EXPECT_EQ(after.results(qi).hits(i).score(), before.results(qi).hits(i).score());
      EXPECT_EQ(after_exact.results(qi).hits(i).id(), before_exact.results(qi).hits(i).id());
    }
  }
  // Sets come back exactly, from the table of a sealed segment.
  v1::GetPointsRequest get;
  get.set_collection("mv");
  get.set_with_vectors(true);
  get.add_ids("1234");
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  ASSERT_EQ(got.points_size(), 1);
  for (const char* f : {"patches", "disk_patches"}) {
    const v1::MultiVector& mv = got.points(0).multi_vectors().at(f);
    ASSERT_EQ(mv.vectors_size(), static_cast<int>(kPatchesPerImage));
    for (size_t j = 0; j < kPatchesPerImage; ++j) {
      for (size_t c = 0; c < kPatchDim; ++c) {
        ASSERT_EQ(mv.vectors(static_cast<int>(j)).values(static_cast<int>(c)),
                  Patches().base[1234 * kPatchSetFloats + j * kPatchDim + c]);
      }
    }
  }
  // Sets in tables and memory equal RocksDB's, and indexes find their rows.
  v1::VerifyCollectionRequest vreq;
  vreq.set_name("mv");
  v1::VerifyCollectionResponse vresp;
  QUIVER_ASSERT_OK(engine_->VerifyCollection(vreq, &vresp));
  EXPECT_EQ(vresp.defects_total(), 0u) << vresp.DebugString();
  EXPECT_GT(vresp.vectors_checked(), 0u);
}

TEST_P(MultiVectorTest, HybridFusesLateInteractionFields) {
  v1::SearchRequest req;
  req.set_collection("mv");
  req.set_k(kK);
  req.set_with_field_results(true);
  req.set_filter("label != 3");
  for (const char* f : {"patches", "disk_patches"}) {
    v1::FieldQuery* fq = req.add_field_queries();
    fq->set_field(f);
    fq->set_k(30);
    *fq->mutable_multi_vector() = SetOf(Patches().queries.data() + 4 * kPatchSetFloats);
  }
  req.mutable_field_queries(1)->mutable_params()->set_exact(true);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  ASSERT_EQ(resp.field_results_size(), 2);
  // RRF of the two lists, recomputed here.
  std::map<std::string, double> want;
  for (const v1::FieldResult& fr : resp.field_results()) {
    ASSERT_EQ(fr.hits_size(), 30);
    for (int r = 0; r < fr.hits_size(); ++r) want[fr.hits(r).id()] += 1.0 / (60 + r + 1);
  }
  ASSERT_EQ(resp.results(0).hits_size(), static_cast<int>(kK));
  for (const v1::Hit& h : resp.results(0).hits()) {
    EXPECT_NEAR(h.score(), want[h.id()], 1e-6) << h.id();
    EXPECT_NE(Patches().labels[std::stoul(h.id())], 3);
  }
  // The MUVERA list and the exact list agree on most of their top points.
  std::set<std::string> a, b;
  for (int r = 0; r < 10; ++r) {
    a.insert(resp.field_results(0).hits(r).id());
    b.insert(resp.field_results(1).hits(r).id());
  }
  size_t common = 0;
  for (const auto& id : a) common += b.count(id);
  EXPECT_GE(common, 9u);
  // A plain vector for a multi-vector field is a client error.
  req.mutable_field_queries(0)->clear_multi_vector();
  req.mutable_field_queries(0)->mutable_vector()->mutable_values()->Resize(kPatchDim, 0.1f);
  EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "multi-vector field"));
}

TEST_P(MultiVectorTest, BadInputsAreRejectedAndChangeNothing) {
  auto count = [&] {
    v1::CountPointsRequest req;
    req.set_collection("mv");
    v1::CountPointsResponse resp;
    EXPECT_TRUE(engine_->CountPoints(req, &resp).ok());
    return resp.count();
  };
  const uint64_t before = count();
  auto upsert = [&](const v1::Point& bad) {
    v1::UpsertPointsRequest up;
    up.set_collection("mv");
    *up.add_points() = Point(5000 % kBase);
    up.mutable_points(0)->set_id("fresh");
    *up.add_points() = bad;
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(up, &resp);
  };
  v1::Point p = Point(1);
  p.set_id("bad");
  {
    v1::Point b = p;
    (*b.mutable_multi_vectors())["patches"].clear_vectors();
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  }
  {
    v1::Point b = p;
    v1::MultiVector& mv = (*b.mutable_multi_vectors())["patches"];
    while (mv.vectors_size() <= 32) *mv.add_vectors() = mv.vectors(0);
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "at most 32"));
  }
  {
    v1::Point b = p;
    (*b.mutable_multi_vectors())["patches"].mutable_vectors(3)->mutable_values()->RemoveLast();
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "vector 3: expected 65"));
  }
  {
    v1::Point b = p;
    (*b.mutable_multi_vectors())["patches"].mutable_vectors(2)->set_values(4, std::nanf(""));
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "not finite"));
  }
  {
    v1::Point b = p;
    b.mutable_multi_vectors()->erase("disk_patches");
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "is missing"));
  }
  {
    v1::Point b = p;
    (*b.mutable_vectors())["patches"] = b.multi_vectors().at("patches").vectors(0);
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "multi_vectors"));
  }
  {
    v1::Point b = p;
    (*b.mutable_multi_vectors())["nope"] = b.multi_vectors().at("patches");
    EXPECT_THAT(upsert(b), StatusIs(absl::StatusCode::kInvalidArgument, "not a multi-vector"));
  }
  EXPECT_EQ(count(), before);

  // Searches.
  auto search = [&](const v1::SearchRequest& r) {
    v1::SearchResponse resp;
    return engine_->Search(r, absl::InfiniteFuture(), &resp);
  };
  v1::SearchRequest good;
  good.set_collection("mv");
  good.set_field("patches");
  good.set_k(5);
  *good.add_multi_vectors() = SetOf(Patches().queries.data());
  QUIVER_ASSERT_OK(search(good));
  {
    v1::SearchRequest r = good;
    r.mutable_multi_vectors(0)->clear_vectors();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "query set 0"));
  }
  {
    v1::SearchRequest r = good;
    r.mutable_multi_vectors(0)->mutable_vectors(0)->set_values(0, INFINITY);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "not finite"));
  }
  {
    v1::SearchRequest r = good;
    r.clear_multi_vectors();
    *r.add_vectors() = good.multi_vectors(0).vectors(0);
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument, "multi_vectors"));
  }
  {
    v1::SearchRequest r = good;
    r.clear_multi_vectors();
    EXPECT_THAT(search(r), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

// IVF_SQ8: a compressed index over the encodings, refined from memory even
// where the field's sets are on disk.
INSTANTIATE_TEST_SUITE_P(Kinds, MultiVectorTest, ::testing::Values("FLAT", "HNSW", "IVF_SQ8"),
                         [](const auto& info) { return info.param; });

// The baseline: candidates from an index over every token vector.
TEST(MultiVectorTokensTest, TokenCandidatesRecallAndExplain) {
  if (Patches().base.empty()) GTEST_SKIP() << "Fashion-MNIST not installed";
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.collection.segment_max_rows = 1500;
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok());
  Engine& engine = **e;
  v1::CreateCollectionRequest req;
  req.set_name("tok");
  v1::VectorField f = VectorField("patches", kPatchDim, v1::IP);
  f.mutable_index()->set_type("HNSW");
  f.mutable_multi_vector()->set_candidates(v1::MultiVectorOptions::TOKENS);
  *req.mutable_schema()->add_vectors() = f;
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine.CreateCollection(req, &cresp));
  v1::UpsertPointsRequest up;
  up.set_collection("tok");
  for (size_t i = 0; i < kBase; ++i) {
    v1::Point* p = up.add_points();
    p->set_id(std::to_string(i));
    (*p->mutable_multi_vectors())["patches"] =
        SetOf(Patches().base.data() + i * kPatchSetFloats);
  }
  v1::UpsertPointsResponse uresp;
  QUIVER_ASSERT_OK(engine.Upsert(up, &uresp));
  engine.SealAndWaitForIndexes();
  auto search = [&](float refine, bool explain) {
    v1::SearchRequest s;
    s.set_collection("tok");
    s.set_field("patches");
    s.set_k(kK);
    s.set_explain(explain);
    s.mutable_params()->set_refine_factor(refine);
    for (size_t q = 0; q < kQueries; ++q) {
      *s.add_multi_vectors() = SetOf(Patches().queries.data() + q * kPatchSetFloats);
    }
    v1::SearchResponse resp;
    EXPECT_TRUE(engine.Search(s, absl::InfiniteFuture(), &resp).ok());
    return resp;
  };
  std::vector<bool> all(kBase, true);
  auto recall = [&](const v1::SearchResponse& resp) {
    size_t hits = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      const auto truth = ExactTop(q, all);
      for (const v1::Hit& h : resp.results(static_cast<int>(q)).hits()) {
        if (h.score() >= truth.back().first - 1e-4) ++hits;
      }
    }
    return static_cast<double>(hits) / (kQueries * kK);
  };
  const v1::SearchResponse def = search(0, true);
  const double r = recall(def);
  std::printf("TOKENS default: recall@10 %.3f\n%s", r, def.explain().text().c_str());
  EXPECT_GE(r, 0.95);
  EXPECT_NE(def.explain().text().find("TokenCandidates(nearest 100 token vectors"),
            std::string::npos)
      << def.explain().text();
  // The token candidates went through the MaxSimRerank operator.
  const std::string rerank = ActualLine(def.explain().text(), "MaxSimRerank(");
  ASSERT_FALSE(rerank.empty()) << def.explain().text();
  EXPECT_GE(ActualCount(rerank, "rows_in"), kQueries * kK) << def.explain().text();
  // k token neighbours per query vector instead of 10 k find fewer.
  EXPECT_LT(recall(search(1, false)), r);
}

TEST(MultiVectorSchemaTest, EncodingParamsAreValidated) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok());
  auto create = [&](const std::map<std::string, std::string>& params,
                    v1::MultiVectorOptions::Candidates candidates = v1::MultiVectorOptions::MUVERA) {
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField f = VectorField("t", 8, v1::COSINE);
    f.mutable_multi_vector()->mutable_encoding_params()->insert(params.begin(), params.end());
    f.mutable_multi_vector()->set_candidates(candidates);
    *req.mutable_schema()->add_vectors() = f;
    v1::CreateCollectionResponse resp;
    return (*e)->CreateCollection(req, &resp);
  };
  EXPECT_THAT(create({{"k_sim", "99"}}), StatusIs(absl::StatusCode::kInvalidArgument, "k_sim"));
  EXPECT_THAT(create({{"nope", "1"}}), StatusIs(absl::StatusCode::kInvalidArgument, "nope"));
  EXPECT_THAT(create({}, static_cast<v1::MultiVectorOptions::Candidates>(5)),
              StatusIs(absl::StatusCode::kInvalidArgument, "candidates"));
  {
    // Parameters whose random matrix would take gigabytes.
    v1::CreateCollectionRequest req;
    req.set_name("huge");
    v1::VectorField f = VectorField("t", 65536, v1::IP);
    f.mutable_multi_vector()->mutable_encoding_params()->insert(
        {{"r_reps", "16"}, {"k_sim", "0"}, {"d_proj", "65535"}, {"final_dim", "2048"}});
    *req.mutable_schema()->add_vectors() = f;
    v1::CreateCollectionResponse resp;
    EXPECT_THAT((*e)->CreateCollection(req, &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, "random matrix"));
  }
  QUIVER_ASSERT_OK(create({{"r_reps", "8"}, {"final_dim", "0"}}));
  // A COSINE multi-vector field normalizes each vector; a zero one is rejected.
  v1::UpsertPointsRequest up;
  up.set_collection("c");
  v1::Point* p = up.add_points();
  p->set_id("z");
  v1::MultiVector& mv = (*p->mutable_multi_vectors())["t"];
  mv.add_vectors()->mutable_values()->Resize(8, 1.0f);
  mv.add_vectors()->mutable_values()->Resize(8, 0.0f);
  v1::UpsertPointsResponse uresp;
  EXPECT_THAT((*e)->Upsert(up, &uresp), StatusIs(absl::StatusCode::kInvalidArgument, "zeros"));
}

}  // namespace
}  // namespace quiver
