// Diversity-aware search (SearchRequest.diversity, maximal marginal
// relevance) through the engine: the k picked from the best fetch_k equal a
// brute-force MMR over those candidates (L2 and COSINE, filtered, batched,
// indexed and not), lambda 1 is plain relevance order, near-duplicates are
// skipped where plain search returns them all, explain shows the step, and
// bad requests are refused; such searches are not counted by the recall
// audit, whose exact top k they do not aim for.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 8;

class DiversityTest : public ::testing::TestWithParam<v1::Metric> {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 300;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
    v1::CreateCollectionRequest req;
    req.set_name("d");
    v1::VectorField v = VectorField("v", kDim, GetParam());
    v.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = v;
    v1::AttributeField cat = Attribute("cat", v1::INT64);
    cat.set_indexed(true);
    *req.mutable_schema()->add_attributes() = cat;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  // Points in tight clusters: each center with `copies` near-copies, so the
  // most relevant points for a query are mostly one cluster's copies.
  void Fill(size_t centers, size_t copies) {
    std::normal_distribution<float> n(0, 1);
    v1::UpsertPointsRequest req;
    req.set_collection("d");
    for (size_t c = 0; c < centers; ++c) {
      std::vector<float> center(kDim);
      for (float& x : center) x = n(rng_);
      for (size_t j = 0; j < copies; ++j) {
        const std::string id = absl::StrCat("p", c, "_", j);
        std::vector<float>& v = vectors_[id];
        for (uint32_t d = 0; d < kDim; ++d) v.push_back(center[d] + 0.02f * n(rng_));
        if (GetParam() == v1::COSINE) {
          double norm = 0;
          for (float x : v) norm += double{x} * x;
          for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
        }
        cluster_[id] = c;
        v1::Point* p = req.add_points();
        p->set_id(id);
        (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
        (*p->mutable_attributes())["cat"].set_int_value(static_cast<int64_t>(c % 3));
      }
    }
    v1::UpsertPointsResponse resp;
    QUIVER_ASSERT_OK(engine_->Upsert(req, &resp));
  }

  std::vector<float> RandomQuery() {
    std::normal_distribution<float> n(0, 1);
    std::vector<float> q(kDim);
    for (float& x : q) x = n(rng_);
    return q;
  }

  // Relevance and similarity on the field's scale, in double.
  double Sim(const std::vector<float>& a, const std::vector<float>& b) const {
    double s = 0;
    for (uint32_t d = 0; d < kDim; ++d) {
      s += GetParam() == v1::L2 ? -(double{a[d]} - b[d]) * (double{a[d]} - b[d])
                                : double{a[d]} * b[d];
    }
    return s;
  }

  // MMR by the definition over `cands` (best first), from their vectors.
  std::vector<std::string> BruteMmr(const std::vector<float>& q,
                                    const std::vector<std::string>& cands, size_t k,
                                    double lambda) const {
    std::vector<float> qn = q;
    if (GetParam() == v1::COSINE) {
      double norm = 0;
      for (float x : qn) norm += double{x} * x;
      for (float& x : qn) x = static_cast<float>(x / std::sqrt(norm));
    }
    std::vector<std::string> picked;
    std::set<std::string> taken;
    while (picked.size() < std::min(k, cands.size())) {
      std::string best;
      double best_value = -std::numeric_limits<double>::infinity();
      for (const std::string& c : cands) {
        if (taken.contains(c)) continue;
        double nearest = -std::numeric_limits<double>::infinity();
        for (const std::string& p : picked) {
          nearest = std::max(nearest, Sim(vectors_.at(c), vectors_.at(p)));
        }
        const double rel = Sim(qn, vectors_.at(c));
        const double value = picked.empty() ? rel : lambda * rel - (1 - lambda) * nearest;
        if (best.empty() || value > best_value) {
          best = c;
          best_value = value;
        }
      }
      taken.insert(best);
      picked.push_back(best);
    }
    return picked;
  }

  v1::SearchRequest Request(const std::vector<std::vector<float>>& queries, uint32_t k,
                            const std::string& filter = "") {
    v1::SearchRequest req;
    req.set_collection("d");
    req.set_field("v");
    req.set_k(k);
    req.set_filter(filter);
    for (const auto& q : queries) req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
    return req;
  }

  // The diversified lists of a batch against brute-force MMR over the
  // candidates the same search returns without diversity (k = fetch_k).
  void CheckAgainstBruteForce(const std::string& when) {
    for (int round = 0; round < 8; ++round) {
      std::vector<std::vector<float>> queries;
      for (int i = 0; i < 1 + round % 3; ++i) queries.push_back(RandomQuery());
      const uint32_t k = std::vector<uint32_t>{1, 5, 10, 20}[round % 4];
      const double lambda = std::vector<double>{0.5, 0.0, 0.8, 0.3}[round % 4];
      const uint32_t fetch_k = round % 2 ? 60 : 0;  // 0: max(4k, 50)
      const std::string filter = round % 3 == 2 ? "cat IN (0, 2)" : "";
      v1::SearchRequest plain = Request(queries, fetch_k ? fetch_k : std::max(4 * k, 50u), filter);
      plain.mutable_params()->set_exact(round % 2 == 0);
      v1::SearchRequest req = Request(queries, k, filter);
      *req.mutable_params() = plain.params();
      req.mutable_diversity()->set_lambda(static_cast<float>(lambda));
      req.mutable_diversity()->set_fetch_k(fetch_k);
      v1::SearchResponse want_resp, got_resp;
      QUIVER_ASSERT_OK(engine_->Search(plain, absl::InfiniteFuture(), &want_resp));
      QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &got_resp));
      ASSERT_EQ(got_resp.results_size(), static_cast<int>(queries.size()));
      for (size_t qi = 0; qi < queries.size(); ++qi) {
        const std::string ctx = absl::StrCat(when, " round ", round, " query ", qi);
        std::vector<std::string> cands;
        std::map<std::string, float> score;
        for (const v1::Hit& h : want_resp.results(static_cast<int>(qi)).hits()) {
          cands.push_back(h.id());
          score[h.id()] = h.score();
        }
        const std::vector<std::string> want = BruteMmr(queries[qi], cands, k, lambda);
        const v1::SearchResult& got = got_resp.results(static_cast<int>(qi));
        ASSERT_EQ(got.hits_size(), static_cast<int>(want.size())) << ctx;
        EXPECT_EQ(got.count(), want.size()) << ctx;
        for (size_t i = 0; i < want.size(); ++i) {
          const v1::Hit& h = got.hits(static_cast<int>(i));
          EXPECT_EQ(h.id(), want[i]) << ctx << " pick " << i;
          // Each hit keeps its relevance score.
          EXPECT_FLOAT_EQ(h.score(), score[h.id()]) << ctx << " " << h.id();
          if (!filter.empty()) EXPECT_NE(cluster_.at(h.id()) % 3, 1u) << ctx;
        }
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::mt19937 rng_{23};
  std::map<std::string, std::vector<float>> vectors_;
  std::map<std::string, size_t> cluster_;
};

TEST_P(DiversityTest, PicksEqualBruteForceMmrOverTheCandidates) {
  Fill(150, 6);
  CheckAgainstBruteForce("growing");
  engine_->SealAndWaitForIndexes();
  CheckAgainstBruteForce("indexed");
}

TEST_P(DiversityTest, NearDuplicatesGiveWayAndLambdaOneIsPlainOrder) {
  Fill(60, 8);
  engine_->SealAndWaitForIndexes();
  for (int round = 0; round < 5; ++round) {
    // A query at a point of the collection: its cluster's 8 copies are the
    // 8 most relevant.
    const std::string at = absl::StrCat("p", round * 7, "_0");
    v1::SearchRequest plain = Request({vectors_[at]}, 8);
    plain.mutable_params()->set_exact(true);
    v1::SearchResponse plain_resp;
    QUIVER_ASSERT_OK(engine_->Search(plain, absl::InfiniteFuture(), &plain_resp));
    std::set<size_t> plain_clusters;
    for (const v1::Hit& h : plain_resp.results(0).hits()) plain_clusters.insert(cluster_[h.id()]);
    EXPECT_EQ(plain_clusters.size(), 1u);

    v1::SearchRequest div = plain;
    // Relevance weighted below novelty: another cluster's point beats a
    // near-copy of one already picked.
    div.mutable_diversity()->set_lambda(0.3f);
    div.mutable_diversity()->set_fetch_k(100);
    v1::SearchResponse div_resp;
    QUIVER_ASSERT_OK(engine_->Search(div, absl::InfiniteFuture(), &div_resp));
    std::set<size_t> div_clusters;
    for (const v1::Hit& h : div_resp.results(0).hits()) div_clusters.insert(cluster_[h.id()]);
    EXPECT_EQ(div_resp.results(0).hits(0).id(), plain_resp.results(0).hits(0).id());
    EXPECT_GE(div_clusters.size(), 6u) << div_resp.DebugString();

    div.mutable_diversity()->set_lambda(1);
    div.set_explain(true);
    v1::SearchResponse same;
    QUIVER_ASSERT_OK(engine_->Search(div, absl::InfiniteFuture(), &same));
    ASSERT_EQ(same.results(0).hits_size(), 8);
    // Without novelty no similarity is computed.
    const std::string actual = testing::ActualLine(same.explain().text(), "MMR(");
    EXPECT_NE(actual.find("rows_out=8"), std::string::npos) << same.explain().text();
    EXPECT_EQ(actual.find("distances="), std::string::npos) << same.explain().text();
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(same.results(0).hits(i).id(), plain_resp.results(0).hits(i).id());
    }
  }
  // Explain shows the step over the candidates' limit.
  v1::SearchRequest req = Request({RandomQuery()}, 5);
  req.mutable_diversity()->set_fetch_k(40);
  req.set_explain(true);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  const std::string& text = resp.explain().text();
  EXPECT_NE(text.find("  MMR(k=5, lambda=0.5, fetch_k=40, queries=1)\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    Limit(k=40, queries=1)"), std::string::npos) << text;
  EXPECT_NE(testing::ActualLine(text, "MMR(").find("rows_in=40 rows_out=5"), std::string::npos)
      << text;
}

TEST_P(DiversityTest, BadRequestsAreRefused) {
  Fill(10, 3);
  auto refused = [&](const v1::SearchRequest& req, const std::string& msg) {
    v1::SearchResponse resp;
    EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, msg))
        << req.ShortDebugString();
  };
  v1::SearchRequest r = Request({RandomQuery()}, 10);
  r.mutable_diversity()->set_lambda(1.5);
  refused(r, "diversity.lambda must be in [0, 1], got 1.5");
  r.mutable_diversity()->set_lambda(std::nanf(""));
  refused(r, "diversity.lambda must be in [0, 1]");
  r.mutable_diversity()->set_lambda(-0.1f);
  refused(r, "diversity.lambda must be in [0, 1]");
  r.mutable_diversity()->set_lambda(0.5);
  r.mutable_diversity()->set_fetch_k(5);
  refused(r, "diversity.fetch_k must be 0 or in k..16384 (k is 10), got 5");
  r.mutable_diversity()->set_fetch_k(kMaxK + 1);
  refused(r, "diversity.fetch_k must be 0 or in k..");
  r.mutable_diversity()->set_fetch_k(0);
  r.set_group_by("cat");
  refused(r, "diversity does not combine with");
  r.clear_group_by();
  r.set_min_results(3);
  refused(r, "diversity does not combine with");
  r.set_min_results(0);
  // 1024 queries x 16384 candidates is more than a request may hold.
  v1::SearchRequest big = Request(std::vector<std::vector<float>>(1024, RandomQuery()), 10);
  big.mutable_diversity()->set_fetch_k(kMaxK);
  refused(big, "queries x diversity.fetch_k must be at most 262144, got 1024 x 16384");
  // Only a search of a single-vector field's vectors.
  v1::SearchRequest hybrid;
  hybrid.set_collection("d");
  hybrid.set_k(5);
  v1::FieldQuery* fq = hybrid.add_field_queries();
  fq->set_field("v");
  const std::vector<float> q = RandomQuery();
  fq->mutable_vector()->mutable_values()->Add(q.begin(), q.end());
  hybrid.mutable_diversity();
  refused(hybrid, "diversity applies only to a search of a single-vector field");
  v1::SearchResponse ok;
  QUIVER_ASSERT_OK(engine_->Search(r, absl::InfiniteFuture(), &ok));
  EXPECT_EQ(ok.results(0).hits_size(), 10);
}

INSTANTIATE_TEST_SUITE_P(Metrics, DiversityTest, ::testing::Values(v1::L2, v1::COSINE),
                         [](const auto& info) { return v1::Metric_Name(info.param); });

}  // namespace
}  // namespace quiver

namespace quiver {
namespace {

// The recall audit measures the index against the exact top k: searches
// that return something else by design (diversity, score_threshold,
// group_by) are not audited, or they would read as recall lost.
TEST(RecallAuditOfDiversityTest, OnlySearchesReturningTheTopKAreAudited) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.recall_audit_rate = 1.0;
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok()) << e.status();
  Engine& engine = **e;
  v1::CreateCollectionRequest create;
  create.set_name("a");
  v1::VectorField v = VectorField("v", kDim, v1::L2);
  v.mutable_index()->set_type("HNSW");
  *create.mutable_schema()->add_vectors() = v;
  *create.mutable_schema()->add_attributes() = Attribute("g", v1::INT64);
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine.CreateCollection(create, &cresp));
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0, 1);
  v1::UpsertPointsRequest up;
  up.set_collection("a");
  for (int i = 0; i < 500; ++i) {
    v1::Point* p = up.add_points();
    p->set_id(absl::StrCat("p", i));
    for (uint32_t d = 0; d < kDim; ++d) (*p->mutable_vectors())["v"].add_values(n(rng));
    (*p->mutable_attributes())["g"].set_int_value(i % 7);
  }
  v1::UpsertPointsResponse uresp;
  QUIVER_ASSERT_OK(engine.Upsert(up, &uresp));
  engine.SealAndWaitForIndexes();
  auto search = [&](const std::function<void(v1::SearchRequest*)>& set) {
    v1::SearchRequest req;
    req.set_collection("a");
    req.set_k(10);
    v1::Vector* query = req.add_vectors();
    for (uint32_t d = 0; d < kDim; ++d) query->add_values(n(rng));
    set(&req);
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine.Search(req, absl::InfiniteFuture(), &resp));
  };
  // 9 + 6 searches: fewer than the audit queue holds (16), so none would be
  // dropped if all were queued.
  for (int i = 0; i < 3; ++i) {
    search([](v1::SearchRequest* r) { r->mutable_diversity()->set_lambda(0.3f); });
    search([](v1::SearchRequest* r) { r->set_score_threshold(1.0f); });
    search([](v1::SearchRequest* r) { r->set_group_by("g"); });
  }
  constexpr uint64_t kPlain = 6;
  for (uint64_t i = 0; i < kPlain; ++i) search([](v1::SearchRequest*) {});
  // Audits run in order on an idle-priority thread: once the plain ones
  // are counted, any audit of the others would be too.
  v1::GetCollectionRequest get;
  get.set_name("a");
  v1::GetCollectionResponse info;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (;;) {
    QUIVER_ASSERT_OK(engine.GetCollection(get, &info));
    if (info.collection().stats().vectors(0).recall_audit_searches() >= kPlain) break;
    ASSERT_LT(absl::Now(), give_up) << info.collection().stats().DebugString();
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(info.collection().stats().vectors(0).recall_audit_searches(), kPlain);
  EXPECT_GT(info.collection().stats().vectors(0).recall_audit(), 0.9);
}

}  // namespace
}  // namespace quiver
