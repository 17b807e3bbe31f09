// Filtered search: attribute indexes against the row evaluator, the
// planner's cost model, and filtered recall of every strategy and index kind
// on a Fashion-MNIST slice at selectivities from 100% to 0.01%.
#include "query/execute/rerank.h"
#include "query/execute/segment_search.h"
#include "query/plan/planner.h"
#include "query/plan/search_context.h"
#include "query/plan/segment_filter.h"
#include "query/plan/segment_planner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "query/attr_index.h"
#include "query/row_filter.h"
#include "query/engine.h"
#include "query/segment.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::ActualCount;
using ::quiver::testing::ActualLine;
using ::quiver::testing::Attribute;
using ::quiver::testing::RecallSum;
using ::quiver::testing::TempDir;
using ::quiver::testing::TieRule;
using ::quiver::testing::VectorField;

// ------------------------------------------- attribute index vs row evaluator

Schema AllTypesSchema(bool indexed) {
  v1::CollectionSchema p;
  *p.add_vectors() = VectorField("v", 4, v1::L2);
  const std::pair<const char*, v1::AttributeType> attrs[] = {
      {"i", v1::INT64}, {"d", v1::DOUBLE}, {"b", v1::BOOL},
      {"s", v1::STRING}, {"tags", v1::STRING_LIST}, {"plain", v1::INT64}};
  for (const auto& [name, type] : attrs) {
    v1::AttributeField a = Attribute(name, type);
    // `plain` stays unindexed, so mixed filters take both paths.
    a.set_indexed(indexed && std::string(name) != "plain");
    *p.add_attributes() = a;
  }
  auto s = bind::BindSchema(p);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

// Rows with small value domains (so equalities and ranges hit), some nulls,
// and a few holes (rows whose point is gone: no attributes at all).
std::shared_ptr<Segment> RandomSegment(const Schema& schema, uint32_t n, uint32_t seed) {
  auto seg = std::make_shared<Segment>(1, std::make_shared<const Schema>(schema), n);
  std::mt19937 rng(seed);
  const char* strs[] = {"", "a", "ab", "b", "ba", "zz"};
  const float v[4] = {0, 0, 0, 0};
  for (uint32_t r = 0; r < n; ++r) {
    if (rng() % 50 == 0) {
      seg->AppendHole(r);
      continue;
    }
    AttrRow row(schema.attributes().size());
    auto maybe = [&](auto value) -> AttrValue {
      if (rng() % 8 == 0) return std::monostate{};
      return value;
    };
    row[0] = maybe(static_cast<int64_t>(rng() % 21) - 10);
    row[1] = maybe(static_cast<double>(static_cast<int>(rng() % 41) - 20) / 4.0);
    row[2] = maybe(rng() % 2 == 0);
    row[3] = maybe(std::string(strs[rng() % 6]));
    std::vector<std::string> tags;
    for (int t = rng() % 4; t > 0; --t) tags.push_back(strs[rng() % 6]);
    row[4] = maybe(tags);
    row[5] = maybe(static_cast<int64_t>(rng() % 7));
    seg->Append(r, absl::StrCat("p", r), std::move(row), {v});
  }
  seg->Publish(seg->appended());
  seg->Seal();
  return seg;
}

const char* const kFilters[] = {
    "i = 3", "i != 3", "i < -2", "i <= -2", "i > 4.5", "i >= 4", "i BETWEEN -3 AND 3",
    "i NOT BETWEEN -3 AND 3", "i IN (1, 2, 3, 99)", "i NOT IN (1, 2, 3)", "i = 2.5",
    "d = 1.25", "d != 1.25", "d < 0", "d BETWEEN -1 AND 1.5", "d NOT BETWEEN -1 AND 1.5",
    "d IN (0.5, -5, 3)", "d NOT IN (0.5)", "d > 4.9", "b", "NOT b", "b = FALSE", "b != TRUE",
    "s = \"ab\"", "s != \"ab\"", "s < \"b\"", "s <= \"b\"", "s > \"b\"", "s >= \"b\"",
    "s = \"\"", "s BETWEEN \"a\" AND \"b\"", "s NOT BETWEEN \"a\" AND \"b\"",
    "s IN (\"a\", \"zz\", \"q\")", "s NOT IN (\"a\")", "tags CONTAINS \"a\"",
    "tags CONTAINS ANY (\"a\", \"zz\")", "tags CONTAINS ALL (\"a\", \"b\")",
    "tags CONTAINS \"nope\"", "NOT tags CONTAINS \"a\"", "i >= 0 AND i < 5", "i > 0 AND d < 0",
    "i > 0 OR d < 0", "NOT (i > 0 OR s = \"a\")", "plain = 3", "plain = 3 AND i > 0",
    "plain = 3 OR i > 0", "i > 0 AND (plain < 2 OR s = \"b\") AND NOT b",
    "NOT plain IN (1, 2)", "TRUE", "FALSE", "i > 0 AND FALSE", "i < 0 OR TRUE",
    "(i = 1 OR i = 2) AND (d > 0 OR tags CONTAINS \"b\") AND plain != 6",
    // Null tests, negations under three-valued logic, and the point id.
    "i IS NULL", "tags IS NOT NULL", "NOT tags CONTAINS ANY (\"a\")", "NOT s < \"b\"",
    "s IS NULL OR NOT s < \"b\"", "NOT (i > 0 AND plain = 3)", "NOT (b OR d > 0)",
    "id IN (\"p1\", \"p7\", \"p100\")", "NOT id = \"p3\" AND i > 0",
    "id NOT IN (\"p2\") OR i IS NULL"};

// An index that forwards to a real one and, on the search for one given
// query, sets a cancel flag: a request stopped while its last query's
// post-filter fetch ran, after the operator's last stop check.
class CancelOnQueryIndex final : public index::VectorIndex {
 public:
  CancelOnQueryIndex(std::shared_ptr<const index::VectorIndex> real, const float* query,
                     std::atomic<bool>* cancel)
      : real_(std::move(real)), query_(query), cancel_(cancel) {}
  absl::Status Build(const float*, size_t, int, const index::LabelFilter*) override {
    return absl::UnimplementedError("built already");
  }
  absl::Status Search(const float* query, const index::SearchParams& params,
                      const index::LabelFilter* filter, index::TopK* out) const override {
    if (query == query_) cancel_->store(true);
    return real_->Search(query, params, filter, out);
  }
  absl::Status Load(const std::string&) override { return absl::UnimplementedError("load"); }
  absl::Status SaveTo(storage::WritableFile&) const override {
    return absl::UnimplementedError("save");
  }
  size_t size() const override { return real_->size(); }
  size_t MemoryBytes() const override { return real_->MemoryBytes(); }
  bool approximate() const override { return real_->approximate(); }
  const index::IndexSpec& spec() const override { return real_->spec(); }
  index::IndexShape shape() const override { return real_->shape(); }
  std::string Describe() const override { return real_->Describe(); }

 private:
  std::shared_ptr<const index::VectorIndex> real_;
  const float* query_;
  std::atomic<bool>* cancel_;
};

// The planner learns from post-filter searches how often a filter makes
// queries fall back (PlanFeedback). A request stopped while it ran did not
// finish its work, so its counts are withheld: here the cancel arrives
// during the last query's fetch, after the operator's last stop check, and
// the segment's feedback stays empty; the same search not stopped reports.
TEST(PlanFeedbackTest, AStoppedPostFilterSearchTeachesNothing) {
  constexpr uint32_t kRows = 20000, kDim = 8;
  constexpr size_t kNq = 4;
  v1::CollectionSchema p;
  *p.add_vectors() = VectorField("v", kDim, v1::L2);
  *p.add_attributes() = Attribute("plain", v1::INT64);
  auto schema = bind::BindSchema(p);
  ASSERT_TRUE(schema.ok()) << schema.status();
  auto shared_schema = std::make_shared<const Schema>(*schema);
  auto seg = std::make_shared<Segment>(7, shared_schema, kRows);
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  std::vector<float> data(size_t{kRows} * kDim);
  for (float& x : data) x = g(rng);
  for (uint32_t r = 0; r < kRows; ++r) {
    AttrRow row(1);
    row[0] = static_cast<int64_t>(r % 7);
    seg->Append(r, absl::StrCat("p", r), std::move(row), {data.data() + size_t{r} * kDim});
  }
  seg->Publish(seg->appended());
  seg->Seal();
  index::IndexSpec spec;
  spec.type = "HNSW";
  spec.dim = kDim;
  auto built = index::CreateIndex(spec);
  ASSERT_TRUE(built.ok()) << built.status();
  QUIVER_ASSERT_OK((*built)->Build(data.data(), kRows, 2));
  std::shared_ptr<const index::VectorIndex> real(std::move(*built));

  std::vector<float> queries(kNq * kDim), qnorms(kNq);
  for (float& x : queries) x = g(rng);
  for (size_t q = 0; q < kNq; ++q) {
    for (uint32_t d = 0; d < kDim; ++d) qnorms[q] += queries[q * kDim + d] * queries[q * kDim + d];
  }
  // Six in seven rows pass: the planner post-filters, and one fetch per
  // query finds k passing rows.
  auto flt = filter::Filter::Compile("plain != 3", *schema);
  ASSERT_TRUE(flt.ok()) << flt.status();

  auto search = [&](bool cancel_last) {
    std::atomic<bool> cancelled{false};
    const float* trigger = cancel_last ? queries.data() + (kNq - 1) * kDim : nullptr;
    seg->SetIndex(0, std::make_shared<CancelOnQueryIndex>(real, trigger, &cancelled));
    PlanFeedback feedback;
    SearchContext ctx;
    ctx.dim = kDim;
    ctx.k = 10;
    ctx.queries = queries.data();
    ctx.qnorms = qnorms.data();
    ctx.nq = kNq;
    ctx.filter = flt->get();
    ctx.stop = StopToken(absl::InfiniteFuture(), &cancelled);
    ctx.feedback = &feedback;
    std::vector<index::TopK> topk(kNq, index::TopK(ctx.k));
    v1::SegmentPlan plan;
    const absl::Status s =
        SearchSegment(ctx, *seg, seg->published(), 1, 0, topk.data(), &plan);
    EXPECT_EQ(cancelled.load(), cancel_last);
    if (cancel_last) {
      // A stopped request's results never count (no explain either).
      EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
    } else {
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_EQ(plan.strategy(), "POST_FILTER") << plan.plan();
    }
    return feedback.Get(seg->id(), (*flt)->ToString()).attempts;
  };
  EXPECT_DOUBLE_EQ(search(/*cancel_last=*/false), static_cast<double>(kNq));
  EXPECT_DOUBLE_EQ(search(/*cancel_last=*/true), 0.0);
}

TEST(AttrIndexTest, EvaluationMatchesTheRowEvaluator) {
  for (bool indexed : {true, false}) {
    const Schema schema = AllTypesSchema(indexed);
    auto seg = RandomSegment(schema, 3000, 5);
    const uint32_t rows = seg->published();
    auto index = SegmentAttrIndex::Build(*seg, rows, seg->schema().attributes());
    ASSERT_EQ(index != nullptr, indexed);
    for (const char* expr : kFilters) {
      SCOPED_TRACE(absl::StrCat(expr, indexed ? " (indexed)" : " (unindexed)"));
      auto flt = filter::Filter::Compile(expr, schema);
      ASSERT_TRUE(flt.ok()) << flt.status();
      uint32_t want = 0;
      RowSet got;
      uint64_t checks = 0;
      QUIVER_ASSERT_OK(EvaluateFilter(**flt, *seg, rows, index.get(), &got, &checks));
      for (uint32_t off = 0; off < rows; ++off) {
        const bool m = RowMatches(**flt, *seg, off);
        want += m;
        ASSERT_EQ(got.Test(off), m) << "row " << off;
      }
      const FilterEstimate est = EstimateFilter(**flt, *seg, rows, index.get());
      EXPECT_GE(est.selectivity, 0.0);
      EXPECT_LE(est.selectivity, 1.0);
      if (est.exact) EXPECT_DOUBLE_EQ(est.selectivity, static_cast<double>(want) / rows);
      // Predicates on indexed attributes never read rows.
      if (est.indexable) EXPECT_EQ(checks, 0u);
    }
  }
}

TEST(AttrIndexTest, WindowEstimateIntersectsRanges) {
  const Schema schema = AllTypesSchema(true);
  auto seg = RandomSegment(schema, 3000, 9);
  auto index = SegmentAttrIndex::Build(*seg, seg->published(), seg->schema().attributes());
  auto flt = filter::Filter::Compile("i >= -2 AND i < 3", schema);
  ASSERT_TRUE(flt.ok());
  uint32_t want = 0;
  for (uint32_t off = 0; off < seg->published(); ++off) want += (*flt)->Matches(seg->attrs(off));
  const FilterEstimate est = EstimateFilter(**flt, *seg, seg->published(), index.get());
  EXPECT_NEAR(est.selectivity, static_cast<double>(want) / seg->published(), 1e-9);
}

TEST(AttrIndexTest, MatchingRowsDropsDeletedRows) {
  const Schema schema = AllTypesSchema(true);
  auto seg = RandomSegment(schema, 1000, 3);
  seg->SetAttrIndex(SegmentAttrIndex::Build(*seg, seg->published(), seg->schema().attributes()));
  auto flt = filter::Filter::Compile("i > 0", schema);
  ASSERT_TRUE(flt.ok());
  const RowSet before = MatchingRows(*seg, seg->published(), 10, flt->get());
  uint32_t victim = 0;
  while (!before.Test(victim)) ++victim;
  seg->MarkDeleted(victim, 11);
  EXPECT_TRUE(MatchingRows(*seg, seg->published(), 10, flt->get()).Test(victim));
  EXPECT_FALSE(MatchingRows(*seg, seg->published(), 11, flt->get()).Test(victim));
  EXPECT_EQ(MatchingRows(*seg, seg->published(), 11, flt->get()).Count(), before.Count() - 1);
}

// ------------------------------------------------------------ the cost model

// The planner's choice for a 60k x 784 HNSW (M=16) or IVF segment, k=10, one
// query, a filter on indexed attributes: exact pre-filtering while the
// filter keeps few rows, the index once it keeps many (HNSW: unfiltered with
// over-fetch, until experience says the filter avoids the neighbourhoods
// queries land in).
TEST(PlannerTest, ChoiceBySelectivity) {
  PlanInput in;
  in.rows = 60000;
  in.dim = 784;
  in.k = 10;
  in.has_index = true;
  in.indexable = true;
  in.checked_share = 0;
  in.shape = {index::IndexShape::Kind::kGraph, 64, 0, 0};
  const std::map<double, Strategy> hnsw = {
      {1.0, Strategy::kPostFilter},     {0.5, Strategy::kPostFilter},
      {0.1, Strategy::kPostFilter},     {0.01, Strategy::kPreFilter},
      {0.001, Strategy::kPreFilter},    {0.0001, Strategy::kPreFilter}};
  for (const auto& [s, want] : hnsw) {
    in.selectivity = s;
    const PlanChoice c = ChoosePlan(in);
    EXPECT_EQ(StrategyName(c.strategy), StrategyName(want)) << "HNSW at " << s << ": " << c.reason;
  }
  in.shape = {index::IndexShape::Kind::kLists, 0, 245, 8};
  const std::map<double, Strategy> ivf = {
      {1.0, Strategy::kPostFilter},     {0.5, Strategy::kFilteredIndex},
      {0.1, Strategy::kFilteredIndex},  {0.01, Strategy::kPreFilter},
      {0.001, Strategy::kPreFilter},    {0.0001, Strategy::kPreFilter}};
  for (const auto& [s, want] : ivf) {
    in.selectivity = s;
    const PlanChoice c = ChoosePlan(in);
    EXPECT_EQ(StrategyName(c.strategy), StrategyName(want)) << "IVF at " << s << ": " << c.reason;
  }
  // POST_FILTER that fell back for most queries so far is not chosen again:
  // the next cheapest is.
  in.shape = {index::IndexShape::Kind::kGraph, 64, 0, 0};
  in.selectivity = 0.1;
  in.post_fail_share = 0.9;
  EXPECT_EQ(ChoosePlan(in).strategy, Strategy::kPreFilter);
  in.selectivity = 0.5;
  EXPECT_EQ(ChoosePlan(in).strategy, Strategy::kFilteredIndex);
  EXPECT_EQ(ChoosePlan(in).fallback, Strategy::kFilteredIndex);
  in.post_fail_share = -1;
  // Without an ANN index there is only the exact scan; a forced strategy is
  // obeyed where an index exists.
  in.has_index = false;
  EXPECT_EQ(ChoosePlan(in).strategy, Strategy::kPreFilter);
  in.has_index = true;
  in.forced = FilterStrategy::kPostFilter;
  in.selectivity = 0.0001;
  EXPECT_EQ(ChoosePlan(in).strategy, Strategy::kPostFilter);
}

TEST(PlannerTest, FeedbackCountsFallbacksPerSegmentAndFilterAndFades) {
  PlanFeedback fb;
  EXPECT_EQ(fb.Get(1, "a = 1").attempts, 0);
  fb.Add(1, "a = 1", 10, 9);
  fb.Add(2, "a = 1", 10, 0);
  EXPECT_EQ(fb.Get(1, "a = 1").fallbacks, 9);
  EXPECT_EQ(fb.Get(2, "a = 1").fallbacks, 0);
  EXPECT_EQ(fb.Get(1, "a = 2").attempts, 0);
  for (int i = 0; i < 100; ++i) fb.Add(1, "a = 1", 10, 0);
  const PlanFeedback::Counts c = fb.Get(1, "a = 1");
  EXPECT_LE(c.attempts, 256);
  EXPECT_LT(c.fallbacks / c.attempts, 0.05);  // the early failures faded
}

TEST(PlannerTest, SearchParametersGrowAsSelectivityFalls) {
  PlanInput in;
  in.rows = 60000;
  in.dim = 784;
  in.k = 10;
  in.has_index = true;
  in.shape = {index::IndexShape::Kind::kGraph, 64, 0, 0};
  in.selectivity = 0.5;
  const uint32_t ef_half = ChoosePlan(in).params.ef;
  in.selectivity = 0.05;
  EXPECT_GT(ChoosePlan(in).params.ef, ef_half);
  in.shape = {index::IndexShape::Kind::kLists, 0, 245, 8};
  in.selectivity = 1;
  EXPECT_EQ(ChoosePlan(in).params.nprobe, 8u);
  in.selectivity = 0.1;
  EXPECT_GT(ChoosePlan(in).params.nprobe, 8u);
  EXPECT_LE(ChoosePlan(in).params.nprobe, 245u);
}

// -------------------------------------- filtered recall on Fashion-MNIST

// recall@k of `resp` (one result per query) against the exact L2 top-k of
// the base rows passing `keep`; a returned point as far as the k-th true one
// counts (ties). Also checks that every hit passes and no result holds more
// than k hits.
double FilteredRecall(const v1::SearchResponse& resp, const std::vector<float>& base,
                      const std::vector<float>& queries, size_t dim, size_t k,
                      const std::function<bool(size_t)>& keep, const std::string& what) {
  const size_t n = base.size() / dim, nq = queries.size() / dim;
  RecallSum sum;
  for (size_t q = 0; q < nq; ++q) {
    const float* qv = queries.data() + q * dim;
    auto dist = [&](size_t i) {
      float s = 0;
      for (size_t j = 0; j < dim; ++j) {
        const float x = qv[j] - base[i * dim + j];
        s += x * x;
      }
      return s;
    };
    std::vector<std::pair<float, size_t>> all;
    for (size_t i = 0; i < n; ++i) {
      if (keep(i)) all.emplace_back(dist(i), i);
    }
    const size_t want = std::min(k, all.size());
    std::partial_sort(all.begin(), all.begin() + want, all.end());
    std::vector<size_t> truth, got;
    for (size_t j = 0; j < want; ++j) truth.push_back(all[j].second);
    if (static_cast<int>(q) < resp.results_size()) {
      const auto& r = resp.results(static_cast<int>(q));
      EXPECT_LE(static_cast<size_t>(r.hits_size()), k);
      for (const auto& h : r.hits()) {
        const size_t i = std::stoul(h.id());
        EXPECT_TRUE(keep(i)) << what << ": hit " << i << " fails the filter";
        got.push_back(i);
      }
    }
    TieRule<size_t> ties;
    if (want > 0) ties = {all[want - 1].first, dist, all[want - 1].first * 1e-5};
    sum.Add(got, truth, ties);
  }
  return sum.value();
}

constexpr size_t kBase = 6000;
constexpr size_t kQueries = 40;
constexpr uint32_t kK = 10;

struct Data {
  size_t dim = 0;
  std::vector<float> base, queries;
  std::vector<int> labels;
  std::vector<int64_t> u;    // uniform in [0, 100000), indexed
  std::vector<std::string> cat;  // 10 values, unindexed
};

const Data& Fashion() {
  static const Data* d = [] {
    auto* d = new Data;
    size_t dq = 0;
    d->base = ::quiver::testing::FashionImages("train", kBase, &d->dim);
    d->queries = ::quiver::testing::FashionImages("t10k", kQueries, &dq);
    d->labels = ::quiver::testing::FashionLabels("train", kBase);
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < kBase; ++i) {
      d->u.push_back(static_cast<int64_t>(rng() % 100000));
      d->cat.push_back(absl::StrCat("c", rng() % 10));
    }
    return d;
  }();
  return *d;
}

// A filter, its meaning on the reference data, and the recall the planner
// must reach with it.
struct Case {
  std::string expr;
  std::function<bool(size_t)> keep;
};

std::vector<Case> Cases() {
  const Data& d = Fashion();
  return {
      {"u >= 0", [&](size_t) { return true; }},
      {"u < 50000", [&](size_t i) { return d.u[i] < 50000; }},
      {"u < 10000", [&](size_t i) { return d.u[i] < 10000; }},
      {"u < 1000", [&](size_t i) { return d.u[i] < 1000; }},
      {"u < 100", [&](size_t i) { return d.u[i] < 100; }},
      {"u < 10", [&](size_t i) { return d.u[i] < 10; }},
      // Correlated with the vectors: the class label.
      {"label IN (0, 2, 4, 6, 8)", [&](size_t i) { return d.labels[i] % 2 == 0; }},
      {"label = 3", [&](size_t i) { return d.labels[i] == 3; }},
      {"label = 3 AND u < 10000", [&](size_t i) { return d.labels[i] == 3 && d.u[i] < 10000; }},
      {"label = 7 AND u < 1000", [&](size_t i) { return d.labels[i] == 7 && d.u[i] < 1000; }},
      // Unindexed parts and compounds.
      {"cat = \"c3\"", [&](size_t i) { return d.cat[i] == "c3"; }},
      {"cat = \"c3\" AND u < 20000", [&](size_t i) { return d.cat[i] == "c3" && d.u[i] < 20000; }},
      {"cat = \"c1\" OR label = 2", [&](size_t i) { return d.cat[i] == "c1" || d.labels[i] == 2; }},
      {"NOT label IN (1, 2, 3) AND u >= 30000",
       [&](size_t i) { return !(d.labels[i] >= 1 && d.labels[i] <= 3) && d.u[i] >= 30000; }},
      {"u < 0", [&](size_t) { return false; }},
  };
}

class FilteredSearchTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Data& d = Fashion();
    if (d.base.size() != kBase * 784 || d.labels.size() != kBase) {
      GTEST_SKIP() << "Fashion-MNIST not found under " << ::quiver::testing::kFashionDir;
    }
    EngineOptions o;
    o.data_dir = dir_.path();
    o.builder.threads_per_build = 2;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
    v1::CreateCollectionRequest req;
    req.set_name("f");
    *req.mutable_schema()->add_vectors() = VectorField("img", 784, v1::L2);
    req.mutable_schema()->mutable_vectors(0)->mutable_index()->set_type(GetParam());
    for (const char* name : {"label", "u"}) {
      v1::AttributeField a = Attribute(name, v1::INT64);
      a.set_indexed(true);
      *req.mutable_schema()->add_attributes() = a;
    }
    *req.mutable_schema()->add_attributes() = Attribute("cat", v1::STRING);
    v1::CreateCollectionResponse cresp;
    ASSERT_TRUE(engine_->CreateCollection(req, &cresp).ok());
    for (size_t start = 0; start < kBase; start += 1000) {
      v1::UpsertPointsRequest up;
      up.set_collection("f");
      for (size_t i = start; i < start + 1000; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())["img"].mutable_values()->Add(d.base.begin() + i * 784,
                                                            d.base.begin() + (i + 1) * 784);
        (*p->mutable_attributes())["label"].set_int_value(d.labels[i]);
        (*p->mutable_attributes())["u"].set_int_value(d.u[i]);
        (*p->mutable_attributes())["cat"].set_string_value(d.cat[i]);
      }
      v1::UpsertPointsResponse uresp;
      ASSERT_TRUE(engine_->Upsert(up, &uresp).ok());
    }
    engine_->SealAndWaitForIndexes();
  }

  v1::SearchResponse Search(const std::string& filter, v1::FilterStrategy strategy,
                            bool explain = false) {
    const Data& d = Fashion();
    v1::SearchRequest req;
    req.set_collection("f");
    req.set_k(kK);
    req.set_filter(filter);
    req.set_explain(explain);
    req.mutable_params()->set_filter_strategy(strategy);
    for (size_t q = 0; q < kQueries; ++q) {
      req.add_vectors()->mutable_values()->Add(d.queries.begin() + q * 784,
                                               d.queries.begin() + (q + 1) * 784);
    }
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  double Recall(const v1::SearchResponse& resp, const Case& c) {
    const Data& d = Fashion();
    return FilteredRecall(resp, d.base, d.queries, 784, kK, c.keep, c.expr);
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(FilteredSearchTest, RecallAtEverySelectivityAndStrategy) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.expr);
    const double planner = Recall(Search(c.expr, v1::FILTER_STRATEGY_AUTO), c);
    const double pre = Recall(Search(c.expr, v1::PRE_FILTER), c);
    const double inline_filter = Recall(Search(c.expr, v1::FILTERED_INDEX), c);
    const double post = Recall(Search(c.expr, v1::POST_FILTER), c);
    std::printf("%-10s %-40s planner %.3f  pre %.3f  filtered %.3f  post %.3f\n",
                GetParam().c_str(), c.expr.c_str(), planner, pre, inline_filter, post);
    EXPECT_GE(planner, 0.95);
    EXPECT_EQ(pre, 1.0);  // exact distances over the exact filtered set
    // Forced strategies are approximate but must stay useful.
    EXPECT_GE(inline_filter, 0.8);
    EXPECT_GE(post, 0.8);
  }
}

// The planner's choice per selectivity on this data set (one sealed segment
// of 6000 rows), read back through explain.
TEST_P(FilteredSearchTest, ExplainShowsThePlanPerSegment) {
  // (`u < 10` matches no row of this slice: the count says so and nothing
  // is searched. Selectivities near the pre-filter / index crossover are
  // left to PlannerTest.ChoiceBySelectivity.)
  // ("u >= 0" passes everything: searching the index with or without the
  // filter costs the same, so either index strategy is right.)
  const std::map<std::string, std::string> want_hnsw = {
      {"u >= 0", "FILTERED_INDEX|POST_FILTER"},
      {"u < 1000", "PRE_FILTER"}, {"u < 100", "PRE_FILTER"},
      {"u < 10", "EMPTY"},        {"u < 0", "EMPTY"}};
  for (const auto& [expr, strategy] : want_hnsw) {
    SCOPED_TRACE(expr);
    const v1::SearchResponse r = Search(expr, v1::FILTER_STRATEGY_AUTO, /*explain=*/true);
    ASSERT_EQ(r.explain().segments_size(), 1) << r.explain().text();
    const v1::SegmentPlan& sp = r.explain().segments(0);
    EXPECT_EQ(sp.rows(), kBase);
    EXPECT_EQ(sp.live_rows(), kBase);
    EXPECT_NE(r.explain().text().find(expr), std::string::npos) << r.explain().text();
    EXPECT_GE(sp.search_micros(), 0.0);
    // `u` is indexed: estimates are counts.
    EXPECT_DOUBLE_EQ(sp.estimated_selectivity(), sp.actual_selectivity());
    if (GetParam() == "FLAT") {
      EXPECT_EQ(sp.strategy(), strategy == "EMPTY" ? "EMPTY" : "PRE_FILTER") << r.explain().text();
    } else if (GetParam() == "HNSW") {
      EXPECT_THAT(strategy, ::testing::HasSubstr(sp.strategy())) << r.explain().text();
    }
    if (sp.strategy() == "EMPTY") {
      EXPECT_EQ(sp.distances(), 0u);
      for (const auto& res : r.results()) EXPECT_EQ(res.hits_size(), 0);
    }
    if (sp.strategy() == "PRE_FILTER") {
      // Exactly one distance per passing row and query.
      EXPECT_EQ(sp.distances(),
                static_cast<uint64_t>(std::llround(sp.actual_selectivity() * kBase)) * kQueries);
    }
  }
}

// Post-filtering a filter correlated with the vectors (half the classes):
// queries of the other classes find too few passing neighbours and fall back
// one by one, and the results stay exact-quality.
TEST_P(FilteredSearchTest, PostFilterFallsBackPerQuery) {
  if (GetParam() != "HNSW") GTEST_SKIP() << "the planner post-filters this on HNSW";
  const Case c = Cases()[6];
  ASSERT_EQ(c.expr, "label IN (0, 2, 4, 6, 8)");
  const v1::SearchResponse r = Search(c.expr, v1::FILTER_STRATEGY_AUTO, /*explain=*/true);
  ASSERT_EQ(r.explain().segments_size(), 1);
  const v1::SegmentPlan& sp = r.explain().segments(0);
  ASSERT_EQ(sp.strategy(), "POST_FILTER") << r.explain().text();
  EXPECT_THAT(sp.plan(), ::testing::ContainsRegex("fallback=[A-Z_]+ for [1-9][0-9]* queries"))
      << r.explain().text();
  EXPECT_GE(Recall(r, c), 0.95);
}

// Each operator reports what it did while it ran: an exact scan the rows it
// scanned and the distances it computed, a row set the rows that passed, a
// post-filter its fetches and the queries that fell back, which its fallback
// operator ran one by one.
TEST_P(FilteredSearchTest, OperatorsReportWhatTheyDid) {
  // Forced PRE_FILTER: RowSet -> ExactScan over the passing rows.
  v1::SearchResponse r = Search("u < 10000", v1::PRE_FILTER, /*explain=*/true);
  ASSERT_EQ(r.explain().segments_size(), 1);
  const v1::SegmentPlan& pre = r.explain().segments(0);
  ASSERT_EQ(pre.strategy(), "PRE_FILTER") << pre.plan();
  const uint64_t passing = std::llround(pre.actual_selectivity() * kBase);
  const std::string set_line = ActualLine(pre.plan(), "RowSet(");
  ASSERT_FALSE(set_line.empty()) << pre.plan();
  EXPECT_EQ(ActualCount(set_line, "rows_in"), kBase) << set_line;
  EXPECT_EQ(ActualCount(set_line, "rows_out"), passing) << set_line;
  const std::string scan_line = ActualLine(pre.plan(), "ExactScan(");
  ASSERT_FALSE(scan_line.empty()) << pre.plan();
  EXPECT_EQ(ActualCount(scan_line, "rows_in"), passing) << scan_line;
  EXPECT_EQ(ActualCount(scan_line, "distances"), passing * kQueries) << scan_line;
  EXPECT_EQ(pre.distances(), passing * kQueries);
  EXPECT_NE(scan_line.find("time="), std::string::npos) << scan_line;
  // Over the segments, the Limit keeps each query's best k of the merged
  // heaps.
  const std::string limit_line = ActualLine(r.explain().text(), "Limit(");
  ASSERT_FALSE(limit_line.empty()) << r.explain().text();
  uint64_t hits = 0;
  for (const v1::SearchResult& res : r.results()) hits += res.hits_size();
  EXPECT_GT(hits, 0u);
  EXPECT_EQ(ActualCount(limit_line, "rows_out"), hits) << r.explain().text();
  EXPECT_EQ(ActualCount(limit_line, "rows_in"), hits) << r.explain().text();

  if (GetParam() != "HNSW") return;
  // POST_FILTER on a filter correlated with the vectors: some queries fall
  // back, and the fallback operator ran once per such query.
  r = Search(Cases()[6].expr, v1::FILTER_STRATEGY_AUTO, /*explain=*/true);
  ASSERT_EQ(r.explain().segments_size(), 1);
  const v1::SegmentPlan& post = r.explain().segments(0);
  ASSERT_EQ(post.strategy(), "POST_FILTER") << r.explain().text();
  std::printf("%s", r.explain().text().c_str());
  const std::string post_line = ActualLine(post.plan(), "PostFilter(");
  ASSERT_FALSE(post_line.empty()) << post.plan();
  const uint64_t fallbacks = ActualCount(post_line, "fallbacks");
  EXPECT_GE(fallbacks, 1u) << post.plan();
  EXPECT_GE(ActualCount(post_line, "fetches"), kQueries) << post.plan();
  EXPECT_GT(ActualCount(post_line, "checks"), 0u) << post.plan();
  EXPECT_NE(post.plan().find(absl::StrCat("for ", fallbacks, " queries")), std::string::npos)
      << post.plan();
  // The index it fetched from ran at least once per query.
  EXPECT_GE(std::max<uint64_t>(ActualCount(ActualLine(post.plan(), "IndexSearch("), "runs"), 1),
            kQueries)
      << post.plan();
  // The fallback (the planner's next choice) ran once per query that fell
  // back.
  const std::string fb = ActualLine(post.plan(), "ExactScan(").empty()
                             ? ActualLine(post.plan(), "FilteredIndexSearch(")
                             : ActualLine(post.plan(), "ExactScan(");
  ASSERT_FALSE(fb.empty()) << post.plan();
  EXPECT_EQ(std::max<uint64_t>(ActualCount(fb, "runs"), 1), fallbacks) << post.plan();
}

TEST_P(FilteredSearchTest, DeleteAndCountByFilterUseTheIndexes) {
  v1::CountPointsRequest count;
  count.set_collection("f");
  count.set_filter("label = 3 AND u < 50000");
  v1::CountPointsResponse cresp;
  ASSERT_TRUE(engine_->CountPoints(count, &cresp).ok());
  const Data& d = Fashion();
  uint64_t want = 0;
  for (size_t i = 0; i < kBase; ++i) want += d.labels[i] == 3 && d.u[i] < 50000;
  EXPECT_EQ(cresp.count(), want);
  v1::DeletePointsRequest del;
  del.set_collection("f");
  del.set_filter("label = 3 AND u < 50000");
  v1::DeletePointsResponse dresp;
  ASSERT_TRUE(engine_->Delete(del, &dresp).ok());
  EXPECT_EQ(dresp.deleted_count(), want);
  ASSERT_TRUE(engine_->CountPoints(count, &cresp).ok());
  EXPECT_EQ(cresp.count(), 0u);
  // Searches see the deletion whatever the strategy.
  const Case c{"label = 3", [&](size_t i) { return d.labels[i] == 3 && d.u[i] >= 50000; }};
  for (auto strategy : {v1::FILTER_STRATEGY_AUTO, v1::PRE_FILTER, v1::FILTERED_INDEX,
                        v1::POST_FILTER}) {
    EXPECT_GE(Recall(Search("label = 3", strategy), c), 0.9) << v1::FilterStrategy_Name(strategy);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, FilteredSearchTest,
                         ::testing::Values("FLAT", "HNSW", "IVF_FLAT"),
                         [](const auto& info) { return info.param; });

// ------------------------------------------------------------ window filters

// 20,000 clustered 16-d points with a timestamp-like `ts` declared `window`
// (5 partitions of ~4,000 rows in the one sealed segment) and a `label`.
class WindowFilterTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr size_t kN = 20000, kDim = 16, kQ = 30;

  void SetUp() override {
    std::mt19937 rng(3);
    std::normal_distribution<float> g;
    std::vector<float> centers(40 * kDim);
    for (float& c : centers) c = 3 * g(rng);
    auto draw = [&](std::vector<float>* out, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        const float* c = centers.data() + (rng() % 40) * kDim;
        for (size_t j = 0; j < kDim; ++j) out->push_back(c[j] + g(rng));
      }
    };
    draw(&base_, kN);
    draw(&queries_, kQ);
    for (size_t i = 0; i < kN; ++i) {
      ts_.push_back(static_cast<int64_t>(rng() % 1000000));
      label_.push_back(static_cast<int>(rng() % 10));
    }
    Open();
    v1::CreateCollectionRequest req;
    req.set_name("w");
    *req.mutable_schema()->add_vectors() = VectorField("v", kDim, v1::L2);
    req.mutable_schema()->mutable_vectors(0)->mutable_index()->set_type(GetParam());
    v1::AttributeField ts = Attribute("ts", v1::INT64);
    ts.set_window(true);
    *req.mutable_schema()->add_attributes() = ts;
    *req.mutable_schema()->add_attributes() = Attribute("label", v1::INT64);
    v1::CreateCollectionResponse cresp;
    ASSERT_TRUE(engine_->CreateCollection(req, &cresp).ok());
    for (size_t start = 0; start < kN; start += 2000) {
      v1::UpsertPointsRequest up;
      up.set_collection("w");
      for (size_t i = start; i < start + 2000; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())["v"].mutable_values()->Add(base_.begin() + i * kDim,
                                                          base_.begin() + (i + 1) * kDim);
        (*p->mutable_attributes())["ts"].set_int_value(ts_[i]);
        (*p->mutable_attributes())["label"].set_int_value(label_[i]);
      }
      v1::UpsertPointsResponse uresp;
      ASSERT_TRUE(engine_->Upsert(up, &uresp).ok());
    }
    engine_->SealAndWaitForIndexes();
  }

  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.builder.threads_per_build = 2;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
  }

  v1::SearchResponse Search(const std::string& filter, v1::FilterStrategy strategy) {
    v1::SearchRequest req;
    req.set_collection("w");
    req.set_k(10);
    req.set_filter(filter);
    req.set_explain(true);
    req.mutable_params()->set_filter_strategy(strategy);
    for (size_t q = 0; q < kQ; ++q) {
      req.add_vectors()->mutable_values()->Add(queries_.begin() + q * kDim,
                                               queries_.begin() + (q + 1) * kDim);
    }
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  double Recall(const v1::SearchResponse& resp, const std::function<bool(size_t)>& keep) {
    return FilteredRecall(resp, base_, queries_, kDim, 10, keep, "window");
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::vector<float> base_, queries_;
  std::vector<int64_t> ts_;
  std::vector<int> label_;
};

TEST_P(WindowFilterTest, WindowsOfEveryWidthAreAccurate) {
  for (int64_t width : {1000000, 400000, 100000, 20000, 2000}) {
    const int64_t lo = 300000, hi = lo + width - 1;
    const std::string expr = absl::StrCat("ts BETWEEN ", lo, " AND ", hi);
    SCOPED_TRACE(expr);
    auto in = [&](size_t i) { return ts_[i] >= lo && ts_[i] <= hi; };
    const v1::SearchResponse forced = Search(expr, v1::WINDOW_FILTER);
    ASSERT_EQ(forced.explain().segments_size(), 1);
    EXPECT_EQ(forced.explain().segments(0).strategy(), "WINDOW_FILTER")
        << forced.explain().text();
    EXPECT_NE(forced.explain().text().find("WindowSearch(WINDOW(5 x"), std::string::npos)
        << forced.explain().text();
    EXPECT_GE(Recall(forced, in), 0.95);
    const v1::SearchResponse planned = Search(expr, v1::FILTER_STRATEGY_AUTO);
    EXPECT_GE(Recall(planned, in), 0.95) << planned.explain().text();
    // The same window written as two comparisons, and with a condition on
    // another attribute checked per row.
    const std::string two = absl::StrCat("ts >= ", lo, " AND ts < ", hi + 1, " AND label = 4");
    auto in_and_label = [&](size_t i) { return in(i) && label_[i] == 4; };
    const v1::SearchResponse rest = Search(two, v1::WINDOW_FILTER);
    EXPECT_EQ(rest.explain().segments(0).strategy(), "WINDOW_FILTER") << rest.explain().text();
    EXPECT_GE(Recall(rest, in_and_label), 0.95) << rest.explain().text();
  }
  // A filter with no range on `ts` cannot use the window index: forcing it
  // leaves the choice to the planner.
  const v1::SearchResponse other = Search("label = 4", v1::WINDOW_FILTER);
  EXPECT_NE(other.explain().segments(0).strategy(), "WINDOW_FILTER");
}

TEST_P(WindowFilterTest, DeletedRowsStayHiddenAndWindowsComeBackAfterRestart) {
  v1::DeletePointsRequest del;
  del.set_collection("w");
  del.set_filter("ts < 500000 AND label < 5");
  v1::DeletePointsResponse dresp;
  ASSERT_TRUE(engine_->Delete(del, &dresp).ok());
  ASSERT_GT(dresp.deleted_count(), 0u);
  auto alive = [&](size_t i) { return !(ts_[i] < 500000 && label_[i] < 5); };
  auto in = [&](size_t i) { return ts_[i] >= 200000 && ts_[i] < 700000 && alive(i); };
  EXPECT_GE(Recall(Search("ts >= 200000 AND ts < 700000", v1::WINDOW_FILTER), in), 0.95);
  Open();
  engine_->SealAndWaitForIndexes();
  const v1::SearchResponse r = Search("ts >= 200000 AND ts < 700000", v1::WINDOW_FILTER);
  EXPECT_EQ(r.explain().segments(0).strategy(), "WINDOW_FILTER") << r.explain().text();
  EXPECT_GE(Recall(r, in), 0.95);
}

// A sealed segment where no row has a value for the window attribute has no
// window index; a range on it matches nothing, whatever the strategy.
TEST(WindowNullTest, SegmentWithoutValuesForTheWindowAttribute) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  v1::CreateCollectionRequest req;
  req.set_name("n");
  *req.mutable_schema()->add_vectors() = VectorField("v", 4, v1::L2);
  req.mutable_schema()->mutable_vectors(0)->mutable_index()->set_type("HNSW");
  v1::AttributeField ts = Attribute("ts", v1::INT64);
  ts.set_window(true);
  *req.mutable_schema()->add_attributes() = ts;
  v1::CreateCollectionResponse cresp;
  ASSERT_TRUE((*engine)->CreateCollection(req, &cresp).ok());
  v1::UpsertPointsRequest up;
  up.set_collection("n");
  for (int i = 0; i < 300; ++i) {
    v1::Point* p = up.add_points();
    p->set_id(std::to_string(i));
    const float v[4] = {float(i), 1, 2, 3};
    (*p->mutable_vectors())["v"].mutable_values()->Add(v, v + 4);
  }
  v1::UpsertPointsResponse uresp;
  ASSERT_TRUE((*engine)->Upsert(up, &uresp).ok());
  (*engine)->SealAndWaitForIndexes();
  for (auto strategy : {v1::FILTER_STRATEGY_AUTO, v1::WINDOW_FILTER, v1::FILTERED_INDEX}) {
    v1::SearchRequest s;
    s.set_collection("n");
    s.set_k(5);
    s.set_filter("ts >= 0");
    s.set_explain(true);
    s.mutable_params()->set_filter_strategy(strategy);
    const float q[4] = {1, 1, 2, 3};
    s.add_vectors()->mutable_values()->Add(q, q + 4);
    v1::SearchResponse resp;
    ASSERT_TRUE((*engine)->Search(s, absl::InfiniteFuture(), &resp).ok());
    EXPECT_EQ(resp.results(0).hits_size(), 0) << resp.explain().text();
  }
}

TEST(WindowSchemaTest, WindowNeedsANumericAttributeAndImpliesIndexed) {
  v1::CollectionSchema p;
  *p.add_vectors() = VectorField("v", 4, v1::L2);
  v1::AttributeField a = Attribute("s", v1::STRING);
  a.set_window(true);
  *p.add_attributes() = a;
  EXPECT_THAT(bind::BindSchema(p),
              ::quiver::testing::StatusIs(absl::StatusCode::kInvalidArgument, "window needs"));
  p.mutable_attributes(0)->set_type(v1::DOUBLE);
  auto s = bind::BindSchema(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->attributes()[0].indexed);
  EXPECT_TRUE(bind::SchemaToProto(*s).attributes(0).indexed());
}

INSTANTIATE_TEST_SUITE_P(Kinds, WindowFilterTest, ::testing::Values("HNSW", "IVF_FLAT"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace quiver
