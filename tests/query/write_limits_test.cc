// The engine's write limits (query/write_limits.h), below gRPC: the memory
// budget for vector data (its account against what Describe reports, a
// refused upsert that changes nothing, deletes and drops that still work
// and bring writes back), the memory estimate of requests checked before
// any of it is allocated (multi-vector upserts and late-interaction
// searches), and the backpressure rule (delay, then UNAVAILABLE with a
// retry hint).
#include "query/write_limits.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/mutex.h"
#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 64;

class WriteLimitsTest : public ::testing::Test {
 protected:
  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.limits = limits_;
    o.collection.segment_max_rows = 1024;
    o.seal_idle = absl::Seconds(2);  // maintenance ticks every 500 ms
    o.search_threads = 1;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  void Create(const std::string& name) {
    v1::CreateCollectionRequest req;
    req.set_name(name);
    *req.mutable_schema()->add_vectors() = VectorField("v", kDim, v1::L2);
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  absl::Status Upsert(const std::string& coll, int first, int n) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    for (int i = first; i < first + n; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", i));
      auto* v = (*p->mutable_vectors())["v"].mutable_values();
      for (uint32_t d = 0; d < kDim; ++d) v->Add(static_cast<float>((i + d) % 17));
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  uint64_t Count(const std::string& coll) {
    v1::CountPointsRequest req;
    req.set_collection(coll);
    v1::CountPointsResponse resp;
    EXPECT_TRUE(engine_->CountPoints(req, &resp).ok());
    return resp.count();
  }

  // What describe reports: the fields' memory_bytes, summed over collections.
  uint64_t DescribedMemory() {
    v1::ListCollectionsResponse list;
    EXPECT_TRUE(engine_->ListCollections(&list).ok());
    uint64_t bytes = 0;
    for (const auto& c : list.collections()) {
      for (const auto& f : c.stats().vectors()) bytes += f.memory_bytes();
    }
    return bytes;
  }

  TempDir dir_;
  LimitOptions limits_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(WriteLimitsTest, MemoryBudgetRefusesUpsertsButNotDeletesOrDrops) {
  // 8 MiB: a few segments of 1024 rows x 65 floats (260 KiB each).
  limits_.memory_budget_bytes = 8 << 20;
  Open();
  Create("a");
  Create("b");
  int next = 0;
  absl::Status s;
  for (int i = 0; i < 200 && s.ok(); ++i) {
    s = Upsert("a", next, 500);
    if (s.ok()) next += 500;
  }
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, "--memory-budget-mb=8"));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, "memory budget"));
  const uint64_t have = Count("a");
  EXPECT_EQ(have, static_cast<uint64_t>(next));
  EXPECT_GT(next, 5000);
  // The account is what describe reports, measured afresh, and it is
  // within one refused batch of the budget.
  engine_->SealAndWaitForIndexes();
  const uint64_t used = engine_->BudgetedMemoryBytes();
  EXPECT_EQ(used, DescribedMemory());
  // (Describe counts growing segments by whole chunks: one chunk over.)
  EXPECT_LE(used, limits_.memory_budget_bytes + 1024 * (kDim + 1) * sizeof(float));
  EXPECT_GT(used + 500 * (kDim + 1) * sizeof(float) * 2, limits_.memory_budget_bytes / 2);

  // The budget is the server's: another collection is refused too (after
  // at most a batch or two, as the fresh measure counts whole chunks where
  // the account counted rows), and a refused upsert changes nothing.
  int b_rows = 0;
  absl::Status b;
  for (int i = 0; i < 3 && b.ok(); ++i) {
    b = Upsert("b", b_rows, 500);
    if (b.ok()) b_rows += 500;
  }
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kResourceExhausted, "--memory-budget-mb=8"));
  EXPECT_EQ(Count("a"), have);
  EXPECT_EQ(Count("b"), static_cast<uint64_t>(b_rows));
  v1::GetPointsRequest get;
  get.set_collection("a");
  get.add_ids(absl::StrCat("p", next));
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  EXPECT_EQ(got.points_size(), 0);

  // Deletes still work; a drop frees the memory at once and writes resume.
  v1::DeletePointsRequest del;
  del.set_collection("a");
  del.add_ids("p0");
  v1::DeletePointsResponse del_resp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &del_resp));
  EXPECT_EQ(del_resp.deleted_count(), 1u);
  v1::DropCollectionRequest drop;
  drop.set_name("a");
  v1::DropCollectionResponse drop_resp;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &drop_resp));
  EXPECT_EQ(engine_->BudgetedMemoryBytes(), DescribedMemory());
  QUIVER_ASSERT_OK(Upsert("b", b_rows, 500));
  EXPECT_EQ(Count("b"), static_cast<uint64_t>(b_rows + 500));

  // A restart counts what recovery loaded before the first write.
  engine_.reset();
  Open();
  EXPECT_EQ(engine_->BudgetedMemoryBytes(), DescribedMemory());
  EXPECT_GT(DescribedMemory(), 0u);
}

// An online restore is charged against the budget as its rows would be if
// upserted: one that would pass it is refused (RESOURCE_EXHAUSTED naming
// the flag; one whose segment files alone pass it, before it is loaded)
// and changes nothing; one that fits is counted, so the writes
// after it meet the budget with it included.
TEST_F(WriteLimitsTest, RestoreIsChargedAgainstTheMemoryBudget) {
  limits_.memory_budget_bytes = 8 << 20;
  Open();
  Create("a");
  // ~5 MiB: 20 segments of 1024 rows x 65 floats.
  for (int at = 0; at < 20480; at += 1024) QUIVER_ASSERT_OK(Upsert("a", at, 1024));
  engine_->SealAndWaitForIndexes();
  const uint64_t before = engine_->BudgetedMemoryBytes();
  ASSERT_GT(before, 4u << 20);
  ASSERT_LT(before, 6u << 20);
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", "a"));
  absl::StatusOr<std::string> path = engine_->SnapshotPath("s");
  QUIVER_ASSERT_OK(path);

  absl::StatusOr<std::shared_ptr<Collection>> r = engine_->RestoreCollection(*path, "", "b");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, "--memory-budget-mb=8"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, "restoring collection \"b\""));
  // Refused from the snapshot's file sizes, before anything was loaded.
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, "before loading"));
  EXPECT_THAT(engine_->Find("b"), StatusIs(absl::StatusCode::kNotFound));
  v1::ListCollectionsResponse list;
  QUIVER_ASSERT_OK(engine_->ListCollections(&list));
  EXPECT_EQ(list.collections_size(), 1);
  EXPECT_EQ(engine_->BudgetedMemoryBytes(), before);
  // (Segment files, if any were written, are only the source's.)
  int segment_dirs = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/segments", ec)) {
    (void)e;
    ++segment_dirs;
  }
  EXPECT_LE(segment_dirs, 1) << "the refused restore left segment files";
  // Upserts that fit still go in.
  QUIVER_ASSERT_OK(Upsert("a", 100000, 500));

  // A small collection's restore fits, and is counted at once (before the
  // next measure).
  Create("small");
  QUIVER_ASSERT_OK(Upsert("small", 0, 2000));
  engine_->SealAndWaitForIndexes();
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("t", "small"));
  absl::StatusOr<std::string> small = engine_->SnapshotPath("t");
  QUIVER_ASSERT_OK(small);
  const uint64_t with_small = engine_->BudgetedMemoryBytes();
  QUIVER_ASSERT_OK(engine_->RestoreCollection(*small, "", "small2"));
  EXPECT_EQ(Count("small2"), 2000u);
  EXPECT_GT(engine_->BudgetedMemoryBytes(), with_small + (2000u * (kDim + 1) * sizeof(float)) / 2);
  EXPECT_EQ(engine_->BudgetedMemoryBytes(), DescribedMemory());
}

// A multi-vector point of one small vector becomes a 2048-float encoding:
// a request of 30,000 such points (~1.5 MB) would take ~250 MB to bind. It
// is refused before any of it is allocated, and changes nothing.
TEST_F(WriteLimitsTest, RequestMemoryIsCheckedBeforeBindingAndSearching) {
  limits_.max_request_memory_bytes = 64 << 20;
  Open();
  v1::CreateCollectionRequest create;
  create.set_name("m");
  v1::VectorField f = VectorField("m", 4, v1::IP);
  f.mutable_multi_vector()->set_max_vectors_per_point(16);
  *create.mutable_schema()->add_vectors() = f;
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine_->CreateCollection(create, &cresp));
  auto upsert = [&](int n) {
    v1::UpsertPointsRequest req;
    req.set_collection("m");
    for (int i = 0; i < n; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("m", i));
      auto* v = (*p->mutable_multi_vectors())["m"].add_vectors()->mutable_values();
      for (int d = 0; d < 4; ++d) v->Add(static_cast<float>(1 + (i + d) % 3));
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  };
  const absl::Status big = upsert(30000);
  EXPECT_THAT(big, StatusIs(absl::StatusCode::kResourceExhausted, "--max-request-memory-mb=64"));
  EXPECT_THAT(big, StatusIs(absl::StatusCode::kResourceExhausted, "30000 points"));
  EXPECT_EQ(Count("m"), 0u);
  QUIVER_ASSERT_OK(upsert(1000));
  EXPECT_EQ(Count("m"), 1000u);

  // 1024 query sets x k 64 x refine 1024: 65,536 candidates per set, 2 GiB
  // of candidate lists over a collection of 1000 points.
  v1::SearchRequest search;
  search.set_collection("m");
  search.set_k(64);
  search.mutable_params()->set_refine_factor(1024);
  for (int q = 0; q < 1024; ++q) {
    auto* v = search.add_multi_vectors()->add_vectors()->mutable_values();
    for (int d = 0; d < 4; ++d) v->Add(1.0f);
  }
  v1::SearchResponse resp;
  EXPECT_THAT(engine_->Search(search, StopToken(), &resp),
              StatusIs(absl::StatusCode::kResourceExhausted, "--max-request-memory-mb=64"));
  search.set_k(8);
  search.mutable_params()->set_refine_factor(0);  // the default: 8 x 50 per set
  QUIVER_ASSERT_OK(engine_->Search(search, StopToken(), &resp));
  EXPECT_EQ(resp.results_size(), 1024);
}

// Deleted rows due for compaction count as debt from the maintenance tick
// that plans their compaction until the one after its swap: upserts are
// refused with UNAVAILABLE naming the flag, with a retry hint, meanwhile,
// and accepted again by themselves once compaction has caught up.
TEST_F(WriteLimitsTest, CompactionDebtRefusesUpsertsUntilCompactionCatchesUp) {
  limits_.max_compaction_debt_rows = 100;
  Open();
  Create("c");
  QUIVER_ASSERT_OK(Upsert("c", 0, 1100));  // a sealed segment of 1024 rows
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 0; i < 600; ++i) del.add_ids(absl::StrCat("p", i));
  v1::DeletePointsResponse del_resp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &del_resp));
  absl::Status refused;
  int next = 2000;
  for (int i = 0; i < 300 && refused.ok(); ++i) {
    refused = Upsert("c", next, 1);
    if (refused.ok()) ++next;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kUnavailable, "--max-compaction-debt-rows=100"));
  EXPECT_TRUE(RetryAfter(refused).has_value());
  EXPECT_EQ(Count("c"), static_cast<uint64_t>(1100 - 600 + (next - 2000)));
  absl::Status again = refused;
  for (int i = 0; i < 100 && !again.ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    again = Upsert("c", next, 1);
  }
  QUIVER_ASSERT_OK(again);
}


// A writer held back by backpressure is not idle: while its upserts are
// refused (and for the retry hint they carry) the growing segment stays
// open, instead of being sealed small every time the builder falls behind
// (what a throttled 1M-point import did: a few-hundred-row segment after
// almost every full one). Once the writer stops retrying it is sealed.
TEST_F(WriteLimitsTest, RefusedWritesDoNotSealTheGrowingSegmentAsIdle) {
  limits_.max_compaction_debt_rows = 100;
  Open();
  Create("c");
  engine_->StopIndexBuilds();  // no compaction: the debt below stays
  QUIVER_ASSERT_OK(Upsert("c", 0, 1100));  // 1024 sealed + 76 growing
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 0; i < 600; ++i) del.add_ids(absl::StrCat("p", i));
  v1::DeletePointsResponse del_resp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &del_resp));
  auto growing_rows = [&]() -> int64_t {
    v1::GetCollectionRequest get;
    get.set_name("c");
    v1::GetCollectionResponse got;
    EXPECT_TRUE(engine_->GetCollection(get, &got).ok());
    for (const auto& seg : got.collection().stats().segments()) {
      if (seg.state() == v1::SegmentInfo::GROWING) return static_cast<int64_t>(seg.rows());
    }
    return 0;
  };
  // Refused once the maintenance tick has measured the debt.
  absl::Status refused;
  for (int i = 0; i < 100 && refused.ok(); ++i) {
    refused = Upsert("c", 5000, 1);
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(refused, StatusIs(absl::StatusCode::kUnavailable, "--max-compaction-debt-rows=100"));
  const int64_t rows = growing_rows();
  ASSERT_GT(rows, 0);
  // Retried for twice seal_idle (2 s), every 100 ms: all refused, and the
  // growing segment stays open.
  const absl::Time until = absl::Now() + absl::Seconds(4);
  while (absl::Now() < until) {
    EXPECT_THAT(Upsert("c", 6000, 1), StatusIs(absl::StatusCode::kUnavailable));
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(growing_rows(), rows) << "sealed while the writer was refused";
  // The writer gives up: sealed once the hint (1 s: no build rate known)
  // and seal_idle have passed.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (growing_rows() != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(growing_rows(), 0);
}

TEST(WritePressureTest, DelaysFromHalfTheLimitAndRefusesAtIt) {
  LimitOptions o;
  o.max_unindexed_rows = 1000;
  o.max_compaction_debt_rows = 4000;
  o.max_write_delay = absl::Milliseconds(200);
  WritePressure p = EvaluatePressure(o, 400, 1000, 0);
  EXPECT_EQ(p.delay, absl::ZeroDuration());
  EXPECT_TRUE(p.refused.ok());
  p = EvaluatePressure(o, 750, 0, 0);
  EXPECT_EQ(p.delay, absl::Milliseconds(100));
  EXPECT_TRUE(p.refused.ok());
  // The worse of the two decides.
  p = EvaluatePressure(o, 100, 3800, 0);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(p.delay), 180, 0.01);

  p = EvaluatePressure(o, 1200, 0, 350);
  EXPECT_THAT(p.refused, StatusIs(absl::StatusCode::kUnavailable, "--max-unindexed-rows=1000"));
  EXPECT_THAT(p.refused, StatusIs(absl::StatusCode::kUnavailable, "retry in about 2s"));
  // 700 rows past half the limit at 350 rows/s: 2 s.
  ASSERT_TRUE(RetryAfter(p.refused).has_value());
  EXPECT_EQ(*RetryAfter(p.refused), absl::Seconds(2));
  p = EvaluatePressure(o, 0, 5000, 0);
  EXPECT_THAT(p.refused,
              StatusIs(absl::StatusCode::kUnavailable, "--max-compaction-debt-rows=4000"));
  EXPECT_EQ(*RetryAfter(p.refused), absl::Seconds(1));  // no rate known yet
  // No limits, no pressure.
  EXPECT_TRUE(EvaluatePressure(LimitOptions(), 1 << 30, 1 << 30, 0).refused.ok());
  EXPECT_FALSE(RetryAfter(absl::UnavailableError("x")).has_value());
}

// Jobs run at their time (never before it), in time order, whenever they
// were added (a later-added earlier job included), and the rest at once on
// destruction.
TEST(WriteDelayerTest, RunsJobsAtTheirTimesAndTheRestWhenDestroyed) {
  Mutex mu;
  std::vector<std::pair<int, absl::Time>> ran;
  auto record = [&](int i) {
    return [&, i] {
      MutexLock lock(&mu);
      ran.emplace_back(i, absl::Now());
    };
  };
  auto delayer = std::make_unique<WriteDelayer>();
  const absl::Time t0 = absl::Now();
  delayer->RunAt(t0 + absl::Milliseconds(200), record(2));
  delayer->RunAt(t0 + absl::Milliseconds(50), record(1));
  delayer->RunAt(t0 + absl::Hours(1), record(3));
  for (int i = 0; i < 300; ++i) {
    {
      MutexLock lock(&mu);
      if (ran.size() == 2) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  {
    MutexLock lock(&mu);
    ASSERT_EQ(ran.size(), 2u);
    EXPECT_EQ(ran[0].first, 1);
    EXPECT_GE(ran[0].second, t0 + absl::Milliseconds(50));
    EXPECT_EQ(ran[1].first, 2);
    EXPECT_GE(ran[1].second, t0 + absl::Milliseconds(200));
  }
  const absl::Time before_reset = absl::Now();
  delayer.reset();
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[2].first, 3);
  EXPECT_LT(ran[2].second - before_reset, absl::Seconds(5));
}

}  // namespace
}  // namespace quiver
