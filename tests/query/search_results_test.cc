// Honest results and the filter's null rule through the engine, for each
// index kind: what a short list says about itself, the min_results /
// exhaustive fallback, range search and grouped search against a
// brute-force reference, and one answer for one filter on every path
// (search with every strategy, count, delete) on data with missing
// attributes, sealed (indexed) segments and a growing one.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "query/bind/wire_schema.h"
#include "query/engine.h"
#include "query/filter/filter.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr int kDim = 8;
constexpr size_t kN = 2600;  // two sealed segments of 1,000 and a growing one

struct Pt {
  std::string id;
  std::vector<float> v;
  AttrRow attrs;  // i (INT64, indexed), s (STRING), b (BOOL, indexed), tags, ts (window)
};

class SearchResultsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.data_dir = dir_.path();
    o.builder.threads_per_build = 2;
    o.collection.segment_max_rows = 1000;
    o.seal_idle = absl::Hours(1);  // the tail stays a growing segment
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField* f = req.mutable_schema()->add_vectors();
    *f = VectorField("v", kDim, v1::L2);
    f->mutable_index()->set_type(GetParam());
    auto& params = *f->mutable_index()->mutable_params();
    if (GetParam().rfind("IVF", 0) == 0) params["nlist"] = "8";
    if (GetParam() == "IVF_PQ") params["m"] = "4";
    if (GetParam() == "HNSW") params["M"] = "4";  // a sparse graph, easy to strand
    auto add = [&](const char* name, v1::AttributeType t, bool indexed, bool window = false) {
      v1::AttributeField a = Attribute(name, t);
      a.set_indexed(indexed);
      a.set_window(window);
      *req.mutable_schema()->add_attributes() = a;
    };
    add("i", v1::INT64, true);
    add("s", v1::STRING, false);
    add("b", v1::BOOL, true);
    add("tags", v1::STRING_LIST, true);
    add("ts", v1::INT64, true, true);
    add("d", v1::DOUBLE, false);
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    auto schema = bind::BindSchema(req.schema());
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = std::make_unique<Schema>(*std::move(schema));
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    for (size_t n = 0; n < kN; ++n) {
      Pt p;
      p.id = absl::StrCat("p", n);
      for (int j = 0; j < kDim; ++j) p.v.push_back(g(rng));
      p.attrs.resize(6);
      auto maybe = [&](AttrValue v) { return rng() % 5 == 0 ? AttrValue() : v; };
      p.attrs[0] = maybe(static_cast<int64_t>(rng() % 7));
      p.attrs[1] = maybe(std::string(1, static_cast<char>('a' + rng() % 4)));
      p.attrs[2] = maybe(rng() % 2 == 0);
      std::vector<std::string> tags;
      for (int t = rng() % 3; t > 0; --t) tags.push_back(rng() % 2 ? "x" : "y");
      p.attrs[3] = maybe(tags);
      p.attrs[4] = maybe(static_cast<int64_t>(rng() % 1000));
      p.attrs[5] = AttrValue(0.5 * (rng() % 4));
      pts_.push_back(std::move(p));
    }
    Upsert(0, 2000);
    engine_->SealAndWaitForIndexes();
    Upsert(2000, kN);
  }

  void Upsert(size_t from, size_t to) {
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    const char* names[] = {"i", "s", "b", "tags", "ts", "d"};
    for (size_t n = from; n < to; ++n) {
      v1::Point* p = up.add_points();
      p->set_id(pts_[n].id);
      (*p->mutable_vectors())["v"].mutable_values()->Add(pts_[n].v.begin(), pts_[n].v.end());
      for (int a = 0; a < 6; ++a) {
        const AttrValue& v = pts_[n].attrs[a];
        v1::Value out;
        if (const auto* x = std::get_if<int64_t>(&v)) out.set_int_value(*x);
        else if (const auto* x = std::get_if<std::string>(&v)) out.set_string_value(*x);
        else if (const auto* x = std::get_if<bool>(&v)) out.set_bool_value(*x);
        else if (const auto* x = std::get_if<double>(&v)) out.set_double_value(*x);
        else if (const auto* x = std::get_if<std::vector<std::string>>(&v)) {
          out.mutable_string_list_value();  // an empty list is a value too
          for (const std::string& t : *x) out.mutable_string_list_value()->add_values(t);
        } else continue;
        (*p->mutable_attributes())[names[a]] = out;
      }
    }
    v1::UpsertPointsResponse uresp;
    QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
  }

  // The ids the row evaluator matches, from the test's own copy of the data.
  std::set<std::string> Reference(const std::string& filter) {
    auto flt = filter::Filter::Compile(filter, *schema_);
    EXPECT_TRUE(flt.ok()) << flt.status();
    std::set<std::string> out;
    for (const Pt& p : pts_) {
      if (flt.ok() && (*flt)->Matches(p.attrs, p.id)) out.insert(p.id);
    }
    return out;
  }

  static float L2(const std::vector<float>& a, const std::vector<float>& b) {
    float d = 0;
    for (int j = 0; j < kDim; ++j) d += (a[j] - b[j]) * (a[j] - b[j]);
    return d;
  }

  v1::SearchRequest Request(uint32_t k, const std::string& filter, int query = 0) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(k);
    req.set_filter(filter);
    req.add_vectors()->mutable_values()->Add(pts_[query].v.begin(), pts_[query].v.end());
    return req;
  }

  v1::SearchResponse Run(const v1::SearchRequest& req) {
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  uint64_t Count(const std::string& filter) {
    v1::CountPointsRequest count;
    count.set_collection("c");
    count.set_filter(filter);
    v1::CountPointsResponse resp;
    const absl::Status s = engine_->CountPoints(count, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp.count();
  }

  static std::set<std::string> Ids(const v1::SearchResult& r) {
    std::set<std::string> ids;
    for (const v1::Hit& h : r.hits()) ids.insert(h.id());
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Schema> schema_;
  std::vector<Pt> pts_;
};

const char* const kNullFilters[] = {
    "NOT b", "NOT i = 3", "i != 3", "NOT (i < 2 OR b)", "NOT (i < 2 AND b)",
    "NOT tags CONTAINS \"x\"", "tags IS NULL", "i IS NOT NULL AND NOT s = \"a\"",
    "s IS NULL OR NOT s < \"c\"", "NOT ts BETWEEN 100 AND 600", "ts >= 200 AND ts < 300",
    "NOT (ts < 200 OR ts >= 300) AND NOT b", "id IN (\"p1\", \"p5\", \"p2500\") OR i = 6",
    "NOT id IN (\"p1\", \"p2\") AND tags CONTAINS ALL (\"x\", \"y\")",
    "NOT (NOT i = 1)", "NOT (i = 1 AND FALSE)", "i = 1 OR NOT i = 1"};

// Every filter path agrees with the row evaluator (whose three-valued
// logic filter_test checks against a reference): exhaustive search under
// every forced strategy, and count.
TEST_P(SearchResultsTest, OneAnswerPerFilterOnEveryPath) {
  for (const char* filter : kNullFilters) {
    SCOPED_TRACE(filter);
    const std::set<std::string> want = Reference(filter);
    EXPECT_EQ(Count(filter), want.size());
    for (auto strategy : {v1::FILTER_STRATEGY_AUTO, v1::PRE_FILTER, v1::FILTERED_INDEX,
                          v1::POST_FILTER, v1::WINDOW_FILTER}) {
      v1::SearchRequest req = Request(kN, filter);
      req.set_exhaustive(true);
      req.mutable_params()->set_filter_strategy(strategy);
      const v1::SearchResponse resp = Run(req);
      ASSERT_EQ(resp.results_size(), 1);
      const v1::SearchResult& r = resp.results(0);
      EXPECT_EQ(Ids(r), want) << v1::FilterStrategy_Name(strategy);
      EXPECT_EQ(r.count(), want.size());
      EXPECT_EQ(r.shortfall(), want.size() < kN ? v1::SHORTFALL_FEWER_MATCHES : v1::SHORTFALL_NONE);
      // A short list is counted, so it knows it is complete; a full one (k
      // hits) is not counted, and knows only how it was searched.
      if (want.size() < kN) {
        EXPECT_TRUE(r.exhaustive());
        EXPECT_EQ(r.matching_points(), want.size());
      }
    }
  }
  // Delete by filter removes exactly those points.
  const std::string filter = "NOT (i < 2 OR b)";
  const std::set<std::string> gone = Reference(filter);
  v1::DeletePointsRequest del;
  del.set_collection("c");
  del.set_filter(filter);
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  EXPECT_EQ(dresp.deleted_count(), gone.size());
  EXPECT_EQ(Count(filter), 0u);
  v1::SearchRequest all = Request(kN, "");
  all.set_exhaustive(true);
  const std::set<std::string> left = Ids(Run(all).results(0));
  EXPECT_EQ(left.size(), kN - gone.size());
  for (const std::string& id : gone) EXPECT_EQ(left.count(id), 0u) << id;
}

// k past the collection: a short list says why; exhaustive returns all.
TEST_P(SearchResultsTest, KPastTheCollectionSaysWhatHappened) {
  for (const std::string filter : {"", "i IN (1, 2) AND s IS NOT NULL"}) {
    SCOPED_TRACE(filter);
    const size_t matching = filter.empty() ? kN : Reference(filter).size();
    const v1::SearchResult plain = Run(Request(16384, filter)).results(0);
    EXPECT_EQ(plain.count(), static_cast<uint32_t>(plain.hits_size()));
    EXPECT_EQ(plain.matching_points(), matching);
    if (plain.count() == matching) {
      EXPECT_EQ(plain.shortfall(), v1::SHORTFALL_FEWER_MATCHES);
      EXPECT_TRUE(plain.exhaustive());
    } else {
      EXPECT_LT(plain.count(), matching);
      EXPECT_EQ(plain.shortfall(), v1::SHORTFALL_INDEX_STOPPED_EARLY);
      EXPECT_FALSE(plain.exhaustive());
    }
    v1::SearchRequest req = Request(16384, filter);
    req.set_exhaustive(true);
    req.set_explain(true);
    const v1::SearchResponse resp = Run(req);
    EXPECT_EQ(resp.results(0).count(), matching);
    EXPECT_EQ(resp.results(0).shortfall(), v1::SHORTFALL_FEWER_MATCHES);
    EXPECT_TRUE(resp.results(0).exhaustive());
    if (plain.count() < matching) {
      EXPECT_NE(resp.explain().text().find("Fallback("), std::string::npos)
          << resp.explain().text();
    }
    // min_results below what came back asks for nothing more.
    v1::SearchRequest some = Request(16384, filter);
    some.set_min_results(std::min<uint32_t>(plain.count(), 5));
    EXPECT_GE(Run(some).results(0).count(), some.min_results());
  }
  // A full list: no shortfall, nothing counted.
  const v1::SearchResult full = Run(Request(10, "")).results(0);
  EXPECT_EQ(full.count(), 10u);
  EXPECT_EQ(full.shortfall(), v1::SHORTFALL_NONE);
  EXPECT_EQ(full.matching_points(), 0u);
  EXPECT_EQ(full.exhaustive(), GetParam() == "FLAT");
}

TEST_P(SearchResultsTest, RangeSearchMatchesBruteForce) {
  for (float threshold : {0.0f, 4.0f, 9.0f, 1e6f}) {
    for (const std::string filter : {"", "NOT b"}) {
      SCOPED_TRACE(absl::StrCat(threshold, " ", filter));
      const std::set<std::string> pass = Reference(filter.empty() ? "TRUE" : filter);
      std::vector<std::pair<float, std::string>> ref;
      for (const Pt& p : pts_) {
        const float d = L2(p.v, pts_[3].v);
        if (pass.count(p.id) && d <= threshold) ref.push_back({d, p.id});
      }
      std::sort(ref.begin(), ref.end());
      // k past the collection: a full list would be the index's top k, which
      // exhaustive does not re-check; a short one ends exact.
      const uint32_t k = kN;
      v1::SearchRequest req = Request(k, filter, 3);
      req.set_score_threshold(threshold);
      req.set_exhaustive(true);
      const v1::SearchResult r = Run(req).results(0);
      std::set<std::string> want;
      for (size_t i = 0; i < ref.size() && i < k; ++i) want.insert(ref[i].second);
      EXPECT_EQ(Ids(r), want);
      for (const v1::Hit& h : r.hits()) EXPECT_LE(h.score(), threshold * 1.0001f + 1e-4f);
      if (ref.size() < k) {
        EXPECT_EQ(r.count(), ref.size());
        EXPECT_EQ(r.shortfall(), ref.size() == pass.size() ? v1::SHORTFALL_FEWER_MATCHES
                                                           : v1::SHORTFALL_SCORE_THRESHOLD);
        EXPECT_TRUE(r.exhaustive());
      }
    }
  }
}

TEST_P(SearchResultsTest, GroupedSearchMatchesBruteForce) {
  for (uint32_t group_size : {1u, 3u}) {
    for (const std::string filter : {"", "ts < 500"}) {
      SCOPED_TRACE(absl::StrCat(group_size, " ", filter));
      const std::set<std::string> pass = Reference(filter.empty() ? "TRUE" : filter);
      std::vector<std::pair<float, const Pt*>> ranked;
      for (const Pt& p : pts_) {
        if (pass.count(p.id)) ranked.push_back({L2(p.v, pts_[9].v), &p});
      }
      std::sort(ranked.begin(), ranked.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      const uint32_t k = 4;
      std::vector<std::pair<int64_t, std::vector<std::string>>> want;
      for (const auto& [d, p] : ranked) {
        const int64_t* key = std::get_if<int64_t>(&p->attrs[0]);
        if (key == nullptr) continue;  // no group
        auto it = std::find_if(want.begin(), want.end(), [&](auto& g) { return g.first == *key; });
        if (it == want.end()) {
          if (want.size() == k) continue;
          want.push_back({*key, {}});
          it = want.end() - 1;
        }
        if (it->second.size() < group_size) it->second.push_back(p->id);
      }
      // Exact candidates, so the groups can be compared one for one (an ANN
      // search's groups are as good as its candidates).
      v1::SearchRequest req = Request(k, filter, 9);
      req.set_group_by("i");
      req.set_group_size(group_size);
      req.mutable_params()->set_exact(true);
      const v1::SearchResult r = Run(req).results(0);
      EXPECT_EQ(r.hits_size(), 0);
      ASSERT_EQ(r.groups_size(), static_cast<int>(want.size()));
      EXPECT_EQ(r.count(), want.size());
      for (size_t g = 0; g < want.size(); ++g) {
        EXPECT_EQ(r.groups(g).key().int_value(), want[g].first);
        std::vector<std::string> got;
        for (const v1::Hit& h : r.groups(g).hits()) got.push_back(h.id());
        EXPECT_EQ(got, want[g].second) << "group " << g;
      }
    }
  }
  // Through the index: k full groups, each hit of its group, groups ordered
  // by their best hit.
  v1::SearchRequest ann = Request(4, "", 9);
  ann.set_group_by("s");
  ann.set_group_size(2);
  ann.add_output_attributes("s");
  const v1::SearchResult a = Run(ann).results(0);
  ASSERT_EQ(a.groups_size(), 4);  // s is one of "a".."d"
  float prev = -1;
  for (const v1::HitGroup& g : a.groups()) {
    ASSERT_EQ(g.hits_size(), 2);
    EXPECT_GE(g.hits(0).score(), prev);
    prev = g.hits(0).score();
    EXPECT_LE(g.hits(0).score(), g.hits(1).score());
    for (const v1::Hit& h : g.hits()) {
      EXPECT_EQ(h.attributes().at("s").string_value(), g.key().string_value());
    }
  }
  // Fewer groups than k: all of them, and the list says so.
  v1::SearchRequest req = Request(50, "", 9);
  req.set_group_by("b");
  req.set_exhaustive(true);
  const v1::SearchResult r = Run(req).results(0);
  EXPECT_EQ(r.groups_size(), 2);
  EXPECT_EQ(r.shortfall(), v1::SHORTFALL_FEWER_MATCHES);
}

TEST_P(SearchResultsTest, BadOptionsAreInvalidArgument) {
  auto code = [&](const v1::SearchRequest& req, const char* substr) {
    v1::SearchResponse resp;
    EXPECT_THAT(engine_->Search(req, absl::InfiniteFuture(), &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, substr));
  };
  v1::SearchRequest r = Request(10, "");
  r.set_group_size(0);
  r.set_group_by("nope");
  code(r, "group_by: collection \"c\" has no attribute \"nope\"");
  r.set_group_by("v");
  code(r, "\"v\" is a vector field");
  r.set_group_by("tags");
  code(r, "groups need an INT64, STRING or BOOL attribute");
  r.set_group_by("d");
  code(r, "groups need an INT64, STRING or BOOL attribute");
  r = Request(10, "");
  r.set_group_size(3);
  code(r, "group_size needs group_by");
  r = Request(10, "");
  r.set_score_threshold(std::nanf(""));
  code(r, "score_threshold must be a finite number");
  r.set_score_threshold(INFINITY);
  code(r, "score_threshold must be a finite number");
  r = Request(10, "");
  r.set_min_results(11);
  code(r, "min_results must be at most k (10), got 11");
  r = Request(100, "");
  r.set_group_by("i");
  r.set_group_size(16384);
  code(r, "k x group_size at most 262144");
  v1::SearchRequest hybrid;
  hybrid.set_collection("c");
  hybrid.set_k(5);
  hybrid.set_group_by("i");
  v1::FieldQuery* fq = hybrid.add_field_queries();
  fq->set_field("v");
  fq->mutable_vector()->mutable_values()->Add(pts_[0].v.begin(), pts_[0].v.end());
  code(hybrid, "not to hybrid search (field_queries)");
  hybrid.clear_group_by();
  hybrid.set_exhaustive(true);
  code(hybrid, "min_results and exhaustive apply only to a search of a single-vector field");
  // Nothing changed.
  EXPECT_EQ(Count(""), kN);
}

// An optional field's searches skip points without its vector, and so do
// the counts that explain a short list: matching_points is the points that
// match and have the vector, and an exhaustive search returns all of them.
TEST_P(SearchResultsTest, OptionalFieldCountsOnlyPointsWithItsVector) {
  v1::CreateCollectionRequest create;
  create.set_name("opt");
  *create.mutable_schema()->add_vectors() = VectorField("v", kDim, v1::L2);
  v1::VectorField* w = create.mutable_schema()->add_vectors();
  *w = VectorField("w", kDim, v1::L2);
  w->set_optional(true);
  w->mutable_index()->set_type(GetParam());
  if (GetParam().rfind("IVF", 0) == 0) (*w->mutable_index()->mutable_params())["nlist"] = "4";
  if (GetParam() == "IVF_PQ") (*w->mutable_index()->mutable_params())["m"] = "4";
  *create.mutable_schema()->add_attributes() = Attribute("i", v1::INT64);
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine_->CreateCollection(create, &cresp));
  v1::UpsertPointsRequest up;
  up.set_collection("opt");
  size_t with_w = 0, with_w_even = 0;
  for (size_t n = 0; n < 1500; ++n) {
    v1::Point* p = up.add_points();
    p->set_id(absl::StrCat("o", n));
    (*p->mutable_vectors())["v"].mutable_values()->Add(pts_[n].v.begin(), pts_[n].v.end());
    (*p->mutable_attributes())["i"].set_int_value(static_cast<int64_t>(n % 2));
    if (n % 3 == 0) {
      (*p->mutable_vectors())["w"].mutable_values()->Add(pts_[n].v.begin(), pts_[n].v.end());
      ++with_w;
      if (n % 2 == 0) ++with_w_even;
    }
  }
  v1::UpsertPointsResponse uresp;
  QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
  engine_->SealAndWaitForIndexes();
  for (const std::string filter : {"", "i = 0"}) {
    SCOPED_TRACE(filter);
    const uint64_t matching = filter.empty() ? with_w : with_w_even;
    v1::SearchRequest req;
    req.set_collection("opt");
    req.set_field("w");
    req.set_k(16384);
    req.set_filter(filter);
    req.add_vectors()->mutable_values()->Add(pts_[0].v.begin(), pts_[0].v.end());
    const v1::SearchResult plain = Run(req).results(0);
    EXPECT_EQ(plain.matching_points(), matching);
    EXPECT_LE(plain.count(), matching);
    req.set_exhaustive(true);
    const v1::SearchResult all = Run(req).results(0);
    EXPECT_EQ(all.count(), matching);
    EXPECT_EQ(all.matching_points(), matching);
    EXPECT_EQ(all.shortfall(), v1::SHORTFALL_FEWER_MATCHES);
    EXPECT_TRUE(all.exhaustive());
    for (const v1::Hit& h : all.hits()) {
      size_t n = 0;
      ASSERT_TRUE(absl::SimpleAtoi(h.id().substr(1), &n)) << h.id();
      EXPECT_EQ(n % 3, 0u) << h.id() << " has no vector in w";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, SearchResultsTest,
                         ::testing::Values("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace quiver
