// Sparse vector fields through the engine: searches against a brute-force
// dot product over the same points (growing, sealed and indexed segments,
// filters, forced scans), writes that change the points (overwrites,
// deletes, partial updates, compaction) and restarts, hybrid fusion of a
// sparse and a dense field against the fusion of their own lists, a
// collection with sparse fields only, adding a sparse field to a live
// collection, and every bad input changing nothing.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "query/fusion.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

// A point as the test expects it: sparse vector (index -> value; empty map
// and has=false: none), dense vector, attributes.
struct Ref {
  bool has = false;
  std::map<uint32_t, float> sparse;
  std::vector<float> dense;
  int64_t cat = 0;
};

class SparseTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 500;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  void Create(bool dense = true) {
    v1::CreateCollectionRequest req;
    req.set_name("s");
    if (dense) *req.mutable_schema()->add_vectors() = VectorField("v", 4, v1::L2);
    v1::SparseVectorField* sp = req.mutable_schema()->add_sparse_vectors();
    sp->set_name("sp");
    if (idf_) sp->set_modifier(v1::IDF);
    v1::AttributeField cat = Attribute("cat", v1::INT64);
    cat.set_indexed(true);
    *req.mutable_schema()->add_attributes() = cat;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  // With the IDF modifier, the query as the server weighs it: each value
  // times ln(1 + (N - df + 0.5) / (df + 0.5)) over the live points with a
  // sparse vector, indexes no such point holds left out.
  std::map<uint32_t, float> Weighted(const std::map<uint32_t, float>& q) const {
    if (!idf_) return q;
    uint64_t n = 0;
    std::map<uint32_t, uint32_t> df;
    for (const auto& [id, r] : points_) {
      if (!r.has) continue;
      ++n;
      for (const auto& [i, x] : r.sparse) {
        if (q.contains(i)) ++df[i];
      }
    }
    std::map<uint32_t, float> out;
    for (const auto& [i, x] : q) {
      if (df[i] == 0) continue;
      const double idf = std::log(1.0 + (static_cast<double>(n) - df[i] + 0.5) / (df[i] + 0.5));
      out[i] = static_cast<float>(x * idf);
    }
    return out;
  }

  // A random sparse vector over a Zipf-like vocabulary, so some indexes
  // are in most points and most in few.
  std::map<uint32_t, float> RandomSparse(size_t min_nnz, size_t max_nnz) {
    std::uniform_int_distribution<size_t> nnz(min_nnz, max_nnz);
    std::uniform_real_distribution<double> u(0, 1);
    std::map<uint32_t, float> v;
    const size_t n = nnz(rng_);
    while (v.size() < n) {
      // Inverse of a power law over [1, 3000]; large indexes too.
      const uint32_t idx = static_cast<uint32_t>(std::pow(3000.0, u(rng_))) * 7919u;
      v[idx] = static_cast<float>(0.05 + u(rng_));
    }
    return v;
  }

  Ref RandomRef(bool dense) {
    Ref r;
    std::uniform_real_distribution<float> u(0, 1);
    r.has = u(rng_) > 0.1f;  // 10% of the points have no sparse vector
    if (r.has) r.sparse = RandomSparse(1, 40);
    if (dense) {
      for (int d = 0; d < 4; ++d) r.dense.push_back(u(rng_));
    }
    r.cat = static_cast<int64_t>(rng_() % 5);
    return r;
  }

  static void SetSparse(const std::map<uint32_t, float>& m, v1::SparseVector* out) {
    // Given out of order: the server sorts.
    for (auto it = m.rbegin(); it != m.rend(); ++it) {
      out->add_indices(it->first);
      out->add_values(it->second);
    }
  }

  absl::Status Upsert(const std::vector<std::string>& ids) {
    v1::UpsertPointsRequest req;
    req.set_collection("s");
    for (const std::string& id : ids) {
      const Ref& r = points_[id];
      v1::Point* p = req.add_points();
      p->set_id(id);
      if (!r.dense.empty()) {
        (*p->mutable_vectors())["v"].mutable_values()->Add(r.dense.begin(), r.dense.end());
      }
      if (r.has) SetSparse(r.sparse, &(*p->mutable_sparse_vectors())["sp"]);
      (*p->mutable_attributes())["cat"].set_int_value(r.cat);
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  void Fill(size_t n, bool dense = true) {
    std::vector<std::string> batch;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = absl::StrCat("p", i);
      points_[id] = RandomRef(dense);
      batch.push_back(id);
      if (batch.size() == 300) {
        QUIVER_ASSERT_OK(Upsert(batch));
        batch.clear();
      }
    }
    if (!batch.empty()) QUIVER_ASSERT_OK(Upsert(batch));
  }

  static float Dot(const std::map<uint32_t, float>& a, const std::map<uint32_t, float>& b,
                   bool* overlap) {
    float dot = 0;  // in ascending index order, as the server sums
    *overlap = false;
    for (const auto& [i, x] : a) {
      auto it = b.find(i);
      if (it == b.end()) continue;
      dot += x * it->second;
      *overlap = true;
    }
    return dot;
  }

  // Every point the brute force finds for `q` with cat in `cats` (empty:
  // all), best first.
  std::vector<std::pair<float, std::string>> Truth(const std::map<uint32_t, float>& q,
                                                   const std::set<int64_t>& cats) {
    std::vector<std::pair<float, std::string>> out;
    for (const auto& [id, r] : points_) {
      if (!r.has || (!cats.empty() && !cats.contains(r.cat))) continue;
      bool overlap = false;
      const float s = Dot(q, r.sparse, &overlap);
      if (overlap) out.push_back({s, id});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    return out;
  }

  v1::SearchRequest SparseQuery(const std::map<uint32_t, float>& q, uint32_t k,
                                const std::string& filter = "", bool exact = false) {
    v1::SearchRequest req;
    req.set_collection("s");
    req.set_field("sp");
    req.set_k(k);
    req.set_filter(filter);
    req.mutable_params()->set_exact(exact);
    SetSparse(q, req.add_sparse_vectors());
    return req;
  }

  // Searches with random queries, k, filters and forced scans, and checks
  // each list against the brute force: the same scores in order (ties may
  // order ids either way), each hit's score its own exact one.
  void CheckAgainstBruteForce(const std::string& when) {
    for (int round = 0; round < 24; ++round) {
      const std::map<uint32_t, float> q = RandomSparse(1, 12);
      const uint32_t k = std::vector<uint32_t>{1, 10, 100, 3000}[round % 4];
      const bool filtered = round % 3 == 1;
      const bool exact = round % 5 == 4;
      const std::set<int64_t> cats = filtered ? std::set<int64_t>{1, 3} : std::set<int64_t>{};
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(SparseQuery(q, k, filtered ? "cat IN (1, 3)" : "", exact),
                                       absl::InfiniteFuture(), &resp));
      const std::map<uint32_t, float> qw = Weighted(q);
      const auto truth = Truth(qw, cats);
      const size_t want = std::min<size_t>(k, truth.size());
      const std::string ctx = absl::StrCat(when, " round ", round, " k ", k);
      ASSERT_EQ(resp.results_size(), 1);
      const v1::SearchResult& r = resp.results(0);
      ASSERT_EQ(static_cast<size_t>(r.hits_size()), want) << ctx;
      EXPECT_EQ(r.count(), want) << ctx;
      EXPECT_TRUE(r.exhaustive()) << ctx;
      EXPECT_EQ(r.shortfall(), want < k ? v1::SHORTFALL_FEWER_MATCHES : v1::SHORTFALL_NONE)
          << ctx;
      std::set<std::string> seen;
      for (size_t i = 0; i < want; ++i) {
        const v1::Hit& h = r.hits(static_cast<int>(i));
        EXPECT_NEAR(h.score(), truth[i].first, 1e-4f * std::max(1.0f, std::abs(truth[i].first)))
            << ctx << " rank " << i;
        ASSERT_TRUE(points_.contains(h.id())) << ctx;
        const Ref& p = points_[h.id()];
        ASSERT_TRUE(p.has) << ctx << " " << h.id() << " has no sparse vector";
        if (filtered) EXPECT_TRUE(cats.contains(p.cat)) << ctx;
        bool overlap = false;
        const float own = Dot(qw, p.sparse, &overlap);
        EXPECT_TRUE(overlap) << ctx;
        EXPECT_NEAR(h.score(), own, 1e-4f * std::max(1.0f, std::abs(own))) << ctx;
        EXPECT_TRUE(seen.insert(h.id()).second) << ctx << " " << h.id() << " twice";
      }
    }
  }

  // Writes (overwrites, deletes, partial updates), compaction and a
  // restart, each followed by CheckAgainstBruteForce.
  void WritesCompactionAndRestart();

  uint64_t Count() {
    v1::CountPointsRequest req;
    req.set_collection("s");
    v1::CountPointsResponse resp;
    EXPECT_TRUE(engine_->CountPoints(req, &resp).ok());
    return resp.count();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::mt19937 rng_{42};
  std::map<std::string, Ref> points_;
  bool idf_ = false;  // the field has the IDF modifier
};

TEST_F(SparseTest, SearchesMatchBruteForceInEverySegmentState) {
  Create();
  Fill(1800);
  // Three full segments sealed (indexes may still be building) and a
  // growing one: whatever each segment has, the answer is exact.
  CheckAgainstBruteForce("while building");
  engine_->SealAndWaitForIndexes();
  CheckAgainstBruteForce("indexed");

  // Explain shows the inverted index pruning on sealed segments.
  v1::SearchRequest req = SparseQuery(RandomSparse(8, 8), 10);
  req.set_explain(true);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  EXPECT_NE(resp.explain().text().find("SparseIndexSearch(k=10"), std::string::npos)
      << resp.explain().text();
  int indexed = 0;
  for (const v1::SegmentPlan& sp : resp.explain().segments()) {
    EXPECT_EQ(sp.field(), "sp");
    indexed += sp.strategy() == "SPARSE_INDEX";
  }
  EXPECT_EQ(indexed, 4);

  // Describe counts the field's memory.
  v1::GetCollectionRequest get;
  get.set_name("s");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  ASSERT_EQ(info.collection().schema().sparse_vectors_size(), 1);
  EXPECT_EQ(info.collection().schema().sparse_vectors(0).name(), "sp");
  bool found = false;
  for (const auto& vs : info.collection().stats().vectors()) {
    if (vs.name() == "sp") {
      found = true;
      EXPECT_GT(vs.memory_bytes(), 1800u * 10 * 8);
    }
  }
  EXPECT_TRUE(found);
  for (const auto& seg : info.collection().stats().segments()) {
    EXPECT_EQ(seg.state(), v1::SegmentInfo::INDEXED);
  }
}

TEST_F(SparseTest, WritesCompactionAndRestartKeepSearchesExact) { WritesCompactionAndRestart(); }

// The IDF modifier: queries weighted by statistics over the live points
// that stay exact through the same writes, compaction and restart.
TEST_F(SparseTest, IdfModifierStaysExactThroughWritesCompactionAndRestart) {
  idf_ = true;
  WritesCompactionAndRestart();
  v1::GetCollectionRequest get;
  get.set_name("s");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  EXPECT_EQ(info.collection().schema().sparse_vectors(0).modifier(), v1::IDF);
  // Explain says so.
  v1::SearchRequest req = SparseQuery(RandomSparse(4, 4), 5);
  req.set_explain(true);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  EXPECT_NE(resp.explain().text().find("modifier=IDF"), std::string::npos)
      << resp.explain().text();
  // A field added with the modifier, and an unknown modifier refused.
  v1::UpdateCollectionRequest upd;
  upd.set_name("s");
  v1::SparseVectorField* add = upd.add_add_sparse_vectors();
  add->set_name("sp2");
  add->set_modifier(static_cast<v1::SparseModifier>(7));
  v1::UpdateCollectionResponse uresp;
  EXPECT_THAT(engine_->UpdateCollection(upd, &uresp),
              StatusIs(absl::StatusCode::kInvalidArgument, "has an unknown modifier"));
  add->set_modifier(v1::IDF);
  QUIVER_ASSERT_OK(engine_->UpdateCollection(upd, &uresp));
  EXPECT_EQ(uresp.collection().schema().sparse_vectors(1).modifier(), v1::IDF);
  v1::CreateCollectionRequest bad;
  bad.set_name("bad");
  v1::SparseVectorField* f = bad.mutable_schema()->add_sparse_vectors();
  f->set_name("x");
  f->set_modifier(static_cast<v1::SparseModifier>(2));
  v1::CreateCollectionResponse cresp;
  EXPECT_THAT(engine_->CreateCollection(bad, &cresp),
              StatusIs(absl::StatusCode::kInvalidArgument, "has an unknown modifier"));
}

void SparseTest::WritesCompactionAndRestart() {
  Create();
  Fill(1500);
  engine_->SealAndWaitForIndexes();
  // Overwrite 200 points (new sparse vectors, some removed), delete 60% of
  // the first segment's points, and update others partially.
  std::vector<std::string> over;
  for (size_t i = 100; i < 300; ++i) {
    const std::string id = absl::StrCat("p", i);
    points_[id] = RandomRef(true);
    over.push_back(id);
  }
  QUIVER_ASSERT_OK(Upsert(over));
  v1::DeletePointsRequest del;
  del.set_collection("s");
  for (size_t i = 0; i < 500; ++i) {
    if (i % 5 < 3 && (i < 100 || i >= 300)) {
      del.add_ids(absl::StrCat("p", i));
      points_.erase(absl::StrCat("p", i));
    }
  }
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  v1::UpdatePointsRequest upd;
  upd.set_collection("s");
  for (size_t i = 600; i < 700; ++i) {
    const std::string id = absl::StrCat("p", i);
    v1::PointUpdate* u = upd.add_updates();
    u->set_id(id);
    if (i % 2 == 0) {
      points_[id].has = true;
      points_[id].sparse = RandomSparse(3, 10);
      SetSparse(points_[id].sparse, &(*u->mutable_sparse_vectors())["sp"]);
    } else {
      points_[id].has = false;
      points_[id].sparse.clear();
      u->add_remove_vectors("sp");
    }
  }
  v1::UpdatePointsResponse uresp;
  QUIVER_ASSERT_OK(engine_->Update(upd, &uresp));
  CheckAgainstBruteForce("after writes");

  // The maintenance thread compacts the first segment (60% deleted).
  v1::GetCollectionRequest get;
  get.set_name("s");
  v1::GetCollectionResponse info;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (;;) {
    engine_->SealAndWaitForIndexes();
    QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
    // About 540 rows were deleted or replaced; compacting the first
    // segment (60% of it) reclaims most of them.
    if (info.collection().stats().deleted_count() < 250) break;
    ASSERT_LT(absl::Now(), give_up) << info.DebugString();
    absl::SleepFor(absl::Milliseconds(50));
  }
  CheckAgainstBruteForce("after compaction");

  Reopen();
  EXPECT_EQ(Count(), points_.size());
  CheckAgainstBruteForce("after restart");
  engine_->SealAndWaitForIndexes();
  CheckAgainstBruteForce("after restart, indexed");

  // GetPoints returns each point's sparse vector sorted by index.
  v1::GetPointsRequest g;
  g.set_collection("s");
  g.set_with_vectors(true);
  for (const char* id : {"p150", "p601", "p602", "p1499"}) g.add_ids(id);
  v1::GetPointsResponse gresp;
  QUIVER_ASSERT_OK(engine_->GetPoints(g, &gresp));
  ASSERT_EQ(gresp.points_size(), 4);
  for (const v1::Point& p : gresp.points()) {
    const Ref& r = points_[p.id()];
    auto it = p.sparse_vectors().find("sp");
    ASSERT_EQ(it != p.sparse_vectors().end(), r.has) << p.id();
    if (!r.has) continue;
    std::vector<uint32_t> idx;
    std::vector<float> val;
    for (const auto& [i, x] : r.sparse) {
      idx.push_back(i);
      val.push_back(x);
    }
    EXPECT_EQ(std::vector<uint32_t>(it->second.indices().begin(), it->second.indices().end()),
              idx);
    EXPECT_EQ(std::vector<float>(it->second.values().begin(), it->second.values().end()), val);
  }
}

TEST_F(SparseTest, HybridFusesTheSparseAndDenseListsAsComputedByHand) {
  Create();
  Fill(1200);
  engine_->SealAndWaitForIndexes();
  for (v1::FusionMethod fusion : {v1::RRF, v1::WEIGHTED, v1::DBSF}) {
    for (int round = 0; round < 5; ++round) {
      v1::SearchRequest req;
      req.set_collection("s");
      req.set_k(10);
      req.set_fusion(fusion);
      req.set_with_field_results(true);
      req.set_explain(true);
      v1::FieldQuery* a = req.add_field_queries();
      a->set_field("sp");
      SetSparse(RandomSparse(3, 8), a->mutable_sparse_vector());
      a->set_k(30);
      a->set_weight(0.6f);
      v1::FieldQuery* b = req.add_field_queries();
      b->set_field("v");
      for (int d = 0; d < 4; ++d) b->mutable_vector()->add_values(0.25f * d);
      b->set_k(30);
      b->set_weight(0.4f);
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
      ASSERT_EQ(resp.field_results_size(), 2);
      EXPECT_EQ(resp.field_results(0).field(), "sp");
      EXPECT_TRUE(resp.field_results(0).exhaustive());
      // The fusion of the two lists as returned: sparse scores are
      // similarities (negated to distances), L2 scores distances.
      std::map<std::string, uint64_t> ids;
      auto id_of = [&](const std::string& s) { return ids.emplace(s, ids.size()).first->second; };
      std::vector<RankedList> lists(2);
      lists[0].weight = 0.6;
      lists[1].weight = 0.4;
      for (const v1::Hit& h : resp.field_results(0).hits()) {
        lists[0].hits.push_back({-h.score(), id_of(h.id())});
      }
      for (const v1::Hit& h : resp.field_results(1).hits()) {
        lists[1].hits.push_back({h.score(), id_of(h.id())});
      }
      const FusionKind kind = fusion == v1::RRF        ? FusionKind::kRrf
                              : fusion == v1::WEIGHTED ? FusionKind::kWeighted
                                                       : FusionKind::kDbsf;
      const std::vector<FusedHit> want = Fuse(kind, lists, 10);
      ASSERT_EQ(resp.results(0).hits_size(), static_cast<int>(want.size()));
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(resp.results(0).hits(static_cast<int>(i)).score(), want[i].score, 1e-5)
            << fusion << " rank " << i;
      }
      EXPECT_NE(resp.explain().text().find("Field(\"sp\""), std::string::npos);
    }
  }
}

TEST_F(SparseTest, CollectionWithSparseFieldsOnly) {
  Create(/*dense=*/false);
  Fill(700, /*dense=*/false);
  CheckAgainstBruteForce("sparse only");
  engine_->SealAndWaitForIndexes();
  Reopen();
  CheckAgainstBruteForce("sparse only, restarted");
  // A dense search names no field it could search.
  v1::SearchRequest dense;
  dense.set_collection("s");
  dense.set_k(1);
  dense.add_vectors()->add_values(1);
  v1::SearchResponse resp;
  EXPECT_THAT(engine_->Search(dense, absl::InfiniteFuture(), &resp),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SparseTest, AddedSparseFieldIsSearchableAtOnce) {
  Create();
  Fill(800);
  engine_->SealAndWaitForIndexes();
  v1::UpdateCollectionRequest add;
  add.set_name("s");
  add.add_add_sparse_vectors()->set_name("sp2");
  v1::UpdateCollectionResponse aresp;
  QUIVER_ASSERT_OK(engine_->UpdateCollection(add, &aresp));
  EXPECT_EQ(aresp.collection().schema().sparse_vectors_size(), 2);
  // A name any field or attribute has is taken.
  for (const char* taken : {"sp2", "v", "cat"}) {
    v1::UpdateCollectionRequest again;
    again.set_name("s");
    again.add_add_sparse_vectors()->set_name(taken);
    EXPECT_THAT(engine_->UpdateCollection(again, &aresp),
                StatusIs(absl::StatusCode::kAlreadyExists))
        << taken;
  }
  // Old points lack it; new ones and updated ones have it.
  v1::UpsertPointsRequest up;
  up.set_collection("s");
  v1::Point* p = up.add_points();
  p->set_id("new");
  p->mutable_vectors()->insert({"v", v1::Vector()});
  for (int d = 0; d < 4; ++d) (*p->mutable_vectors())["v"].add_values(1);
  (*p->mutable_sparse_vectors())["sp2"].add_indices(5);
  (*p->mutable_sparse_vectors())["sp2"].add_values(2);
  v1::UpsertPointsResponse uresp;
  QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
  v1::UpdatePointsRequest upd;
  upd.set_collection("s");
  v1::PointUpdate* u = upd.add_updates();
  u->set_id("p3");
  (*u->mutable_sparse_vectors())["sp2"].add_indices(5);
  (*u->mutable_sparse_vectors())["sp2"].add_values(1);
  v1::UpdatePointsResponse upresp;
  QUIVER_ASSERT_OK(engine_->Update(upd, &upresp));
  for (int restart = 0; restart < 2; ++restart) {
    v1::SearchRequest req;
    req.set_collection("s");
    req.set_field("sp2");
    req.set_k(10);
    req.add_sparse_vectors()->add_indices(5);
    req.mutable_sparse_vectors(0)->add_values(1);
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
    ASSERT_EQ(resp.results(0).hits_size(), 2) << resp.DebugString();
    EXPECT_EQ(resp.results(0).hits(0).id(), "new");
    EXPECT_FLOAT_EQ(resp.results(0).hits(0).score(), 2);
    EXPECT_EQ(resp.results(0).hits(1).id(), "p3");
    Reopen();
  }
  // p3 kept its other sparse vector.
  CheckAgainstBruteForce("with an added field");
}

TEST_F(SparseTest, BadInputsAreRefusedAndChangeNothing) {
  Create();
  Fill(50);
  const uint64_t before = Count();
  auto upsert_with = [&](const std::function<void(v1::Point*)>& edit) {
    v1::UpsertPointsRequest req;
    req.set_collection("s");
    v1::Point* p = req.add_points();
    p->set_id("bad");
    for (int d = 0; d < 4; ++d) (*p->mutable_vectors())["v"].add_values(1);
    edit(p);
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  };
  using Code = absl::StatusCode;
  EXPECT_THAT(upsert_with([](v1::Point* p) {
                auto& s = (*p->mutable_sparse_vectors())["sp"];
                s.add_indices(1);
                s.add_indices(2);
                s.add_values(1);
              }),
              StatusIs(Code::kInvalidArgument, "2 indices but 1 values"));
  EXPECT_THAT(upsert_with([](v1::Point* p) {
                auto& s = (*p->mutable_sparse_vectors())["sp"];
                s.add_indices(7);
                s.add_values(NAN);
              }),
              StatusIs(Code::kInvalidArgument, "not finite"));
  EXPECT_THAT(upsert_with([](v1::Point* p) {
                auto& s = (*p->mutable_sparse_vectors())["sp"];
                for (uint32_t i : {9u, 3u, 9u}) {
                  s.add_indices(i);
                  s.add_values(1);
                }
              }),
              StatusIs(Code::kInvalidArgument, "index 9 is given twice"));
  EXPECT_THAT(upsert_with([](v1::Point* p) {
                auto& s = (*p->mutable_sparse_vectors())["nope"];
                s.add_indices(1);
                s.add_values(1);
              }),
              StatusIs(Code::kInvalidArgument, "no sparse vector field \"nope\""));
  EXPECT_THAT(upsert_with([](v1::Point* p) { (*p->mutable_vectors())["sp"].add_values(1); }),
              StatusIs(Code::kInvalidArgument, "is a sparse vector field"));
  EXPECT_THAT(upsert_with([](v1::Point* p) {
                auto& s = (*p->mutable_sparse_vectors())["sp"];
                for (uint32_t i = 0; i <= kMaxSparseNonZeros; ++i) {
                  s.add_indices(i);
                  s.add_values(1);
                }
              }),
              StatusIs(Code::kInvalidArgument, "at most 65536 indices"));
  EXPECT_EQ(Count(), before);

  std::map<uint32_t, float> q{{1u * 7919u, 1.f}};
  auto search = [&](const std::function<void(v1::SearchRequest*)>& edit) {
    v1::SearchRequest req = SparseQuery(q, 10);
    edit(&req);
    v1::SearchResponse resp;
    return engine_->Search(req, absl::InfiniteFuture(), &resp);
  };
  QUIVER_ASSERT_OK(search([](v1::SearchRequest*) {}));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->set_field(""); }),
              StatusIs(Code::kInvalidArgument, "needs field"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->set_field("v"); }),
              StatusIs(Code::kInvalidArgument, "no sparse vector field \"v\""));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->add_vectors()->add_values(1); }),
              StatusIs(Code::kInvalidArgument, "not several"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->set_group_by("cat"); }),
              StatusIs(Code::kInvalidArgument, "sparse search"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->set_min_results(1); }),
              StatusIs(Code::kInvalidArgument, "sparse search"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->mutable_sparse_vectors(0)->Clear(); }),
              StatusIs(Code::kInvalidArgument, "is empty"));
  EXPECT_THAT(search([](v1::SearchRequest* r) { r->set_filter("sp = 1"); }),
              StatusIs(Code::kInvalidArgument));
  // A dense search of the sparse field says where its queries go.
  EXPECT_THAT(search([](v1::SearchRequest* r) {
                r->clear_sparse_vectors();
                r->add_vectors()->add_values(1);
              }),
              StatusIs(Code::kInvalidArgument, "give the queries in sparse_vectors"));
  // Hybrid: a sparse field needs a sparse_vector, and the other way round.
  EXPECT_THAT(search([](v1::SearchRequest* r) {
                r->clear_sparse_vectors();
                r->clear_field();
                v1::FieldQuery* fq = r->add_field_queries();
                fq->set_field("sp");
                fq->mutable_vector()->add_values(1);
              }),
              StatusIs(Code::kInvalidArgument, "give a sparse_vector"));
  EXPECT_THAT(search([](v1::SearchRequest* r) {
                r->clear_sparse_vectors();
                r->clear_field();
                v1::FieldQuery* fq = r->add_field_queries();
                fq->set_field("v");
                fq->mutable_sparse_vector()->add_indices(1);
                fq->mutable_sparse_vector()->add_values(1);
              }),
              StatusIs(Code::kInvalidArgument, "not a sparse vector field"));
  // Partial updates: removing and setting the same field, unknown names.
  v1::UpdatePointsRequest upd;
  upd.set_collection("s");
  v1::PointUpdate* u = upd.add_updates();
  u->set_id("p1");
  (*u->mutable_sparse_vectors())["sp"].add_indices(1);
  (*u->mutable_sparse_vectors())["sp"].add_values(1);
  u->add_remove_vectors("sp");
  v1::UpdatePointsResponse uresp;
  EXPECT_THAT(engine_->Update(upd, &uresp),
              StatusIs(Code::kInvalidArgument, "both given and removed"));
  // A schema naming a sparse field twice, or like a vector field.
  v1::CreateCollectionRequest create;
  create.set_name("t");
  create.mutable_schema()->add_sparse_vectors()->set_name("a");
  create.mutable_schema()->add_sparse_vectors()->set_name("a");
  v1::CreateCollectionResponse cresp;
  EXPECT_THAT(engine_->CreateCollection(create, &cresp),
              StatusIs(Code::kInvalidArgument, "duplicate field name"));
  create.mutable_schema()->mutable_sparse_vectors(1)->set_name("b c");
  EXPECT_THAT(engine_->CreateCollection(create, &cresp),
              StatusIs(Code::kInvalidArgument, "invalid sparse vector field name"));
  EXPECT_EQ(Count(), before);
  CheckAgainstBruteForce("after bad inputs");
}

TEST(DbsfTest, NormalizesEachListByItsMeanAndDeviation) {
  // Distances 1, 2, 3: mean 2, sd sqrt(2/3); d maps to (2 + 3 sd - d) / 6 sd.
  RankedList l;
  l.hits = {{1.f, 10}, {2.f, 11}, {3.f, 12}};
  const double sd = std::sqrt(2.0 / 3);
  const auto fused = Fuse(FusionKind::kDbsf, {l}, 3);
  ASSERT_EQ(fused.size(), 3u);
  EXPECT_EQ(fused[0].id, 10u);
  EXPECT_NEAR(fused[0].score, (2 + 3 * sd - 1) / (6 * sd), 1e-6);
  EXPECT_NEAR(fused[1].score, 0.5, 1e-6);
  EXPECT_NEAR(fused[2].score, (2 + 3 * sd - 3) / (6 * sd), 1e-6);
  // Ties give 0.5 each; an outlier is clamped at 0 without squashing the
  // rest (min-max would put them all near 1).
  RankedList tied;
  tied.hits = {{4.f, 1}, {4.f, 2}};
  for (const FusedHit& h : Fuse(FusionKind::kDbsf, {tied}, 2)) EXPECT_DOUBLE_EQ(h.score, 0.5);
  RankedList outlier;
  for (uint64_t i = 0; i < 20; ++i) outlier.hits.push_back({static_cast<float>(i % 2), i});
  outlier.hits.push_back({1000.f, 99});
  const auto o = Fuse(FusionKind::kDbsf, {outlier}, 21);
  EXPECT_EQ(o.back().id, 99u);
  EXPECT_DOUBLE_EQ(o.back().score, 0.0);
  EXPECT_LT(o.front().score, 0.7);  // the outlier does not squash the rest to the top
}

}  // namespace
}  // namespace quiver
