// Multi-stage search (SearchRequest.stages) through the engine: the fused
// candidates of a hybrid search re-scored stage by stage, checked against a
// model that takes the candidates from the request's own field lists and
// each point's exact score per field from that field's exact search (each
// of those checked against brute force in its own test). Covers a dense
// DISK field with a compressed index (re-scored from the full-precision
// vectors), a COSINE field some points lack (dropped), exact MaxSim of a
// multi-vector field, sparse dot products and BM25, filters, the cut of
// the fused candidates, every segment state and a restart; explain; short
// lists; and every bad request refused.
#include <algorithm>
#include <cmath>
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
constexpr uint32_t kCosDim = 6;
constexpr uint32_t kTokDim = 4;
constexpr size_t kPoints = 1500;

const char* const kWords[] = {"graph", "vector", "index", "search", "merge", "segment",
                              "filter", "score",  "disk",  "memory", "query", "rank",
                              "store",  "crash",  "write", "read",   "build", "point"};

struct Ref {
  std::vector<float> v, c;  // c empty: the point lacks the optional field
  std::vector<std::vector<float>> mv;
  std::map<uint32_t, float> sp;  // empty: no sparse vector
  bool has_body = false;
  std::string body;
  int64_t cat = 0;
};

// Candidate scores of one field, as its exact search gives them: a point
// absent from the map lacks the field.
using Scores = std::map<std::string, float>;

class MultiStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reopen();
    v1::CreateCollectionRequest req;
    req.set_name("m");
    // A compressed index over a DISK field: its own search ranks by
    // estimates, a stage by the full-precision vectors.
    v1::VectorField v = VectorField("v", kDim, v1::L2);
    v.mutable_index()->set_type("IVF_SQ8");
    (*v.mutable_index()->mutable_params())["nlist"] = "4";
    v.set_storage(v1::DISK);
    *req.mutable_schema()->add_vectors() = v;
    v1::VectorField c = VectorField("c", kCosDim, v1::COSINE);
    c.set_optional(true);
    *req.mutable_schema()->add_vectors() = c;
    v1::VectorField mv = VectorField("mv", kTokDim, v1::IP);
    mv.mutable_multi_vector()->set_max_vectors_per_point(8);
    *req.mutable_schema()->add_vectors() = mv;
    req.mutable_schema()->add_sparse_vectors()->set_name("sp");
    v1::AttributeField body = Attribute("body", v1::STRING);
    body.mutable_text()->set_language("english");
    *req.mutable_schema()->add_attributes() = body;
    v1::AttributeField cat = Attribute("cat", v1::INT64);
    cat.set_indexed(true);
    *req.mutable_schema()->add_attributes() = cat;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 400;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  std::vector<float> RandomVector(size_t dim) {
    std::normal_distribution<float> n(0, 1);
    std::vector<float> out(dim);
    for (float& x : out) x = n(rng_);
    return out;
  }

  std::map<uint32_t, float> RandomSparse(size_t max_nnz) {
    std::uniform_real_distribution<double> u(0, 1);
    std::map<uint32_t, float> out;
    const size_t n = 1 + rng_() % max_nnz;
    while (out.size() < n) {
      out[static_cast<uint32_t>(std::pow(200.0, u(rng_)))] = static_cast<float>(0.1 + u(rng_));
    }
    return out;
  }

  std::string RandomText(size_t max_words) {
    std::string out;
    const size_t n = 1 + rng_() % max_words;
    for (size_t i = 0; i < n; ++i) {
      absl::StrAppend(&out, i > 0 ? " " : "", kWords[rng_() % std::size(kWords)]);
    }
    return out;
  }

  Ref RandomRef() {
    Ref r;
    r.v = RandomVector(kDim);
    if (rng_() % 4 != 0) r.c = RandomVector(kCosDim);
    const size_t tokens = 1 + rng_() % 6;
    for (size_t t = 0; t < tokens; ++t) r.mv.push_back(RandomVector(kTokDim));
    if (rng_() % 8 != 0) r.sp = RandomSparse(12);
    r.has_body = rng_() % 10 != 0;
    if (r.has_body) r.body = RandomText(12);
    r.cat = static_cast<int64_t>(rng_() % 5);
    return r;
  }

  static void SetSparse(const std::map<uint32_t, float>& m, v1::SparseVector* out) {
    for (const auto& [i, x] : m) {
      out->add_indices(i);
      out->add_values(x);
    }
  }

  static void SetSet(const std::vector<std::vector<float>>& set, v1::MultiVector* out) {
    for (const auto& v : set) out->add_vectors()->mutable_values()->Add(v.begin(), v.end());
  }

  void Fill() {
    v1::UpsertPointsRequest req;
    req.set_collection("m");
    for (size_t i = 0; i < kPoints; ++i) {
      const std::string id = absl::StrCat("p", i);
      const Ref& r = points_[id] = RandomRef();
      v1::Point* p = req.add_points();
      p->set_id(id);
      (*p->mutable_vectors())["v"].mutable_values()->Add(r.v.begin(), r.v.end());
      if (!r.c.empty()) (*p->mutable_vectors())["c"].mutable_values()->Add(r.c.begin(), r.c.end());
      SetSet(r.mv, &(*p->mutable_multi_vectors())["mv"]);
      if (!r.sp.empty()) SetSparse(r.sp, &(*p->mutable_sparse_vectors())["sp"]);
      if (r.has_body) (*p->mutable_attributes())["body"].set_string_value(r.body);
      (*p->mutable_attributes())["cat"].set_int_value(r.cat);
      if (req.points_size() == 250) {
        v1::UpsertPointsResponse resp;
        QUIVER_ASSERT_OK(engine_->Upsert(req, &resp));
        req.clear_points();
      }
    }
    if (req.points_size() > 0) {
      v1::UpsertPointsResponse resp;
      QUIVER_ASSERT_OK(engine_->Upsert(req, &resp));
    }
  }

  // One query of every field, as a stage or a field query names it.
  struct Query {
    std::vector<float> v, c;
    std::vector<std::vector<float>> mv;
    std::map<uint32_t, float> sp;
    std::string body;
  };

  Query RandomQuery() {
    Query q;
    q.v = RandomVector(kDim);
    q.c = RandomVector(kCosDim);
    for (int t = 0; t < 3; ++t) q.mv.push_back(RandomVector(kTokDim));
    q.sp = RandomSparse(6);
    q.body = RandomText(4);
    return q;
  }

  static void SetQuery(const Query& q, const std::string& field, v1::FieldQuery* fq) {
    fq->set_field(field);
    if (field == "v") fq->mutable_vector()->mutable_values()->Add(q.v.begin(), q.v.end());
    if (field == "c") fq->mutable_vector()->mutable_values()->Add(q.c.begin(), q.c.end());
    if (field == "mv") SetSet(q.mv, fq->mutable_multi_vector());
    if (field == "sp") SetSparse(q.sp, fq->mutable_sparse_vector());
    if (field == "body") fq->set_text(q.body);
  }

  static void SetStage(const Query& q, const std::string& field, uint32_t limit,
                       v1::SearchStage* st) {
    v1::FieldQuery fq;
    SetQuery(q, field, &fq);
    st->set_field(field);
    st->set_limit(limit);
    if (fq.has_vector()) *st->mutable_vector() = fq.vector();
    if (fq.has_multi_vector()) *st->mutable_multi_vector() = fq.multi_vector();
    if (fq.has_sparse_vector()) *st->mutable_sparse_vector() = fq.sparse_vector();
    if (fq.query_case() == v1::FieldQuery::kText) st->set_text(fq.text());
  }

  // Every point's exact score of `field` for q, from the field's own exact
  // search over all points (sparse and text: a point with a value sharing
  // nothing with the query scores 0).
  Scores ExactScores(const Query& q, const std::string& field) {
    v1::SearchRequest req;
    req.set_collection("m");
    req.set_field(field);
    req.set_k(kPoints);
    req.mutable_params()->set_exact(true);
    if (field == "v") req.add_vectors()->mutable_values()->Add(q.v.begin(), q.v.end());
    if (field == "c") req.add_vectors()->mutable_values()->Add(q.c.begin(), q.c.end());
    if (field == "mv") SetSet(q.mv, req.add_multi_vectors());
    if (field == "sp") SetSparse(q.sp, req.add_sparse_vectors());
    if (field == "body") req.add_texts(q.body);
    v1::SearchResponse resp;
    EXPECT_TRUE(engine_->Search(req, absl::InfiniteFuture(), &resp).ok());
    Scores out;
    for (const v1::Hit& h : resp.results(0).hits()) out[h.id()] = h.score();
    for (const auto& [id, r] : points_) {
      if (out.contains(id)) continue;
      if ((field == "sp" && !r.sp.empty()) || (field == "body" && r.has_body)) out[id] = 0;
    }
    return out;
  }

  struct StageSpec {
    std::string field;
    uint32_t limit;
  };

  // Runs the multi-stage request and checks it against the model.
  void Check(const Query& q, const std::vector<std::string>& fields, uint32_t field_k,
             const std::vector<StageSpec>& stages, uint32_t k, uint32_t candidates,
             const std::string& filter, const std::string& ctx) {
    v1::SearchRequest req;
    req.set_collection("m");
    req.set_k(k);
    req.set_filter(filter);
    req.set_with_field_results(true);
    req.set_candidates(candidates);
    for (const std::string& f : fields) {
      v1::FieldQuery* fq = req.add_field_queries();
      SetQuery(q, f, fq);
      fq->set_k(field_k);
    }
    for (const StageSpec& s : stages) SetStage(q, s.field, s.limit, req.add_stages());
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));

    // The candidates: the fused ranking's first `candidates` (the same
    // request without stages, asking for that many), or every point of
    // the fields' lists.
    std::vector<std::string> cand;
    if (candidates > 0) {
      v1::SearchRequest fused = req;
      fused.clear_stages();
      fused.set_candidates(0);
      fused.set_k(candidates);
      v1::SearchResponse fresp;
      QUIVER_ASSERT_OK(engine_->Search(fused, absl::InfiniteFuture(), &fresp));
      for (const v1::Hit& h : fresp.results(0).hits()) cand.push_back(h.id());
    } else {
      std::set<std::string> all;
      for (const v1::FieldResult& fr : resp.field_results()) {
        for (const v1::Hit& h : fr.hits()) all.insert(h.id());
      }
      cand.assign(all.begin(), all.end());
    }
    for (const std::string& id : cand) {
      const int64_t cat = points_[id].cat;
      if (!filter.empty()) ASSERT_TRUE(cat == 1 || cat == 2) << ctx << " " << id;
    }
    // Each stage: its exact scores, best `limit` kept. The fields the
    // tests cut with are continuous, so no tie decides a cut.
    std::vector<std::pair<float, std::string>> ranked;
    Scores last;
    bool lower_better = false;
    for (const StageSpec& s : stages) {
      last = ExactScores(q, s.field);
      lower_better = s.field == "v";
      ranked.clear();
      for (const std::string& id : cand) {
        auto it = last.find(id);
        if (it != last.end()) ranked.push_back({lower_better ? it->second : -it->second, id});
      }
      std::sort(ranked.begin(), ranked.end());
      if (ranked.size() > s.limit) ranked.resize(s.limit);
      cand.clear();
      for (const auto& [score, id] : ranked) cand.push_back(id);
    }
    const v1::SearchResult& r = resp.results(0);
    const size_t want = std::min<size_t>(k, ranked.size());
    ASSERT_EQ(static_cast<size_t>(r.hits_size()), want) << ctx;
    EXPECT_EQ(r.count(), want) << ctx;
    for (size_t i = 0; i < want; ++i) {
      const v1::Hit& h = r.hits(static_cast<int>(i));
      const float expect = lower_better ? ranked[i].first : -ranked[i].first;
      const float tol = 1e-4f * std::max(1.0f, std::abs(expect));
      // The same score at each rank; the same point unless two tie.
      EXPECT_NEAR(h.score(), expect, tol) << ctx << " rank " << i;
      ASSERT_TRUE(last.contains(h.id())) << ctx << " " << h.id();
      EXPECT_NEAR(h.score(), last[h.id()], tol) << ctx << " " << h.id();
      if (std::abs(last[h.id()] - expect) > tol) continue;
      if (i + 1 < want && std::abs(ranked[i + 1].first - ranked[i].first) > tol &&
          (i == 0 || std::abs(ranked[i - 1].first - ranked[i].first) > tol)) {
        EXPECT_EQ(h.id(), ranked[i].second) << ctx << " rank " << i;
      }
    }
  }

  void CheckAll(const std::string& when) {
    for (int round = 0; round < 6; ++round) {
      const Query q = RandomQuery();
      const std::string ctx = absl::StrCat(when, " round ", round);
      const std::string filter = round % 2 == 1 ? "cat IN (1, 2)" : "";
      // Keyword candidates, re-scored by the full-precision vectors of a
      // compressed field, then by exact MaxSim.
      Check(q, {"body", "sp"}, 60, {{"v", 40}, {"mv", 10}}, 10, 0, filter, ctx + " text+sparse");
      // Dense candidates, the fused ranking cut, re-scored by a field some
      // points lack (dropped), then by the sparse vectors.
      Check(q, {"v", "mv"}, 80, {{"c", 50}, {"sp", 50}}, 10, 100, filter, ctx + " dense");
      // One field's candidates, re-scored by its own full-precision
      // vectors, then BM25 last.
      Check(q, {"v"}, 50, {{"v", 20}, {"body", 20}}, 20, 0, filter, ctx + " refine");
    }
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::mt19937 rng_{11};
  std::map<std::string, Ref> points_;
};

TEST_F(MultiStageTest, StagesRescoreTheCandidatesExactlyInEverySegmentState) {
  Fill();
  CheckAll("while building");
  engine_->SealAndWaitForIndexes();
  CheckAll("indexed");
  Reopen();
  CheckAll("after restart");
}

TEST_F(MultiStageTest, ExplainShowsEachStage) {
  Fill();
  engine_->SealAndWaitForIndexes();
  const Query q = RandomQuery();
  v1::SearchRequest req;
  req.set_collection("m");
  req.set_k(5);
  req.set_explain(true);
  req.set_candidates(40);
  SetQuery(q, "body", req.add_field_queries());
  req.mutable_field_queries(0)->set_k(40);
  SetQuery(q, "v", req.add_field_queries());
  req.mutable_field_queries(1)->set_k(40);
  SetStage(q, "c", 20, req.add_stages());
  SetStage(q, "mv", 5, req.add_stages());
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  ASSERT_EQ(resp.results(0).hits_size(), 5);
  const std::string& text = resp.explain().text();
  for (const char* want :
       {"MultiStageSearch(collection=\"m\", k=5, fields=2, stages=2",
        "  Limit(k=5, queries=1)", "    Rescore(field=\"mv\", exact MaxSim (IP), limit=5)",
        "      Rescore(field=\"c\", exact COSINE, full-precision vectors, limit=20",
        "dropped without the field=", "        Limit(k=40, queries=1)", "          Fuse(RRF",
        "Field(\"body\", k=40", "Field(\"v\", k=40"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  // Each stage says what it took in and kept.
  EXPECT_NE(testing::ActualLine(text, "Rescore(field=\"mv\"").find("rows_in=20 rows_out=5"),
            std::string::npos)
      << text;
  EXPECT_NE(testing::ActualLine(text, "Rescore(field=\"c\"").find("rows_in=40 rows_out=20"),
            std::string::npos)
      << text;
}

TEST_F(MultiStageTest, ShortListsSayWhy) {
  Fill();
  // Three points match the filter: every one of them comes back.
  v1::SearchRequest req;
  req.set_collection("m");
  req.set_k(10);
  req.set_filter("id IN (\"p1\", \"p2\", \"p3\")");
  const Query q = RandomQuery();
  SetQuery(q, "v", req.add_field_queries());
  SetStage(q, "mv", 0, req.add_stages());
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  EXPECT_EQ(resp.results(0).count(), 3u);
  EXPECT_EQ(resp.results(0).shortfall(), v1::SHORTFALL_FEWER_MATCHES);
  EXPECT_TRUE(resp.results(0).exhaustive());
  // Candidates from 12 of them, k 10: the stage has fewer than k only
  // because the candidates were few while more points match.
  req.set_filter("");
  req.mutable_field_queries(0)->set_k(12);
  SetStage(q, "c", 0, req.mutable_stages(0));
  v1::SearchResponse few;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &few));
  ASSERT_EQ(few.results_size(), 1);
  // Of 12 candidates, those without "c" were dropped (a quarter of the
  // points lack it; this seed's candidates include some).
  EXPECT_LT(few.results(0).count(), 10u) << few.DebugString();
  EXPECT_EQ(few.results(0).shortfall(), v1::SHORTFALL_INDEX_STOPPED_EARLY);
  EXPECT_FALSE(few.results(0).exhaustive());
}

TEST_F(MultiStageTest, BadStagesAreRefused) {
  Fill();
  const Query q = RandomQuery();
  auto base = [&] {
    v1::SearchRequest req;
    req.set_collection("m");
    req.set_k(10);
    SetQuery(q, "v", req.add_field_queries());
    SetStage(q, "mv", 0, req.add_stages());
    return req;
  };
  auto refused = [&](const v1::SearchRequest& req, const std::string& msg) {
    v1::SearchResponse resp;
    EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, msg))
        << req.ShortDebugString();
  };
  {
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(base(), absl::InfiniteFuture(), &resp));
  }
  v1::SearchRequest r = base();
  r.clear_field_queries();
  r.set_field("v");
  r.add_vectors()->mutable_values()->Add(q.v.begin(), q.v.end());
  refused(r, "give the searches that find them in field_queries");
  r = base();
  r.clear_stages();
  r.set_candidates(20);
  refused(r, "candidates applies only to a multi-stage search");
  r = base();
  r.set_candidates(5);
  refused(r, "candidates must be 0 (k) or in k..");
  r = base();
  r.mutable_stages(0)->set_limit(3);
  refused(r, "stages[0]: limit must be 0 (k) or in k..");
  r = base();
  r.mutable_stages(0)->set_limit(kMaxK + 1);
  refused(r, "stages[0]: limit");
  r = base();
  for (int i = 0; i < 4; ++i) SetStage(q, "v", 0, r.add_stages());
  refused(r, "at most 4 stages");
  r = base();
  r.mutable_stages(0)->set_field("nope");
  refused(r, "has no vector field \"nope\"");
  r = base();
  r.mutable_stages(0)->clear_multi_vector();
  refused(r, "stages[0]: no query vector");
  r = base();
  SetStage(q, "sp", 0, r.mutable_stages(0));
  r.mutable_stages(0)->set_field("v");
  refused(r, "stages[0]: \"v\" is not a sparse vector field");
  r = base();
  SetStage(q, "v", 0, r.mutable_stages(0));
  r.mutable_stages(0)->mutable_vector()->add_values(1);
  refused(r, "stages[0] vector");
  r = base();
  r.mutable_stages(0)->set_field("cat");
  r.mutable_stages(0)->set_text("graph");
  refused(r, "stages[0]: collection \"m\" has no text attribute \"cat\"");
}

}  // namespace
}  // namespace quiver
