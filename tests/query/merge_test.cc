// Segments sized for search: sealed segments merge in the background, four
// of one size tier at a time, up to CollectionOptions::merge_target_bytes
// (quiverd's --merge-target-mb), and once writes pause across tiers
// (merge_idle). The merged segments must serve exactly
// what the inputs did: searches (ANN and exact), filters, deletes and
// overwrites made while a merge runs, a restart, and verify.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 16;
constexpr uint32_t kSegmentRows = 500;
constexpr size_t kPoints = 16 * kSegmentRows;
// A row's stored vector and norm.
constexpr uint64_t kRowBytes = (kDim + 1) * sizeof(float);

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(9);
    std::normal_distribution<float> g;
    vectors_.resize(kPoints * kDim);
    for (float& x : vectors_) x = g(rng);
  }

  void Open(uint64_t target_bytes, absl::Duration merge_idle = absl::InfiniteDuration()) {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = kSegmentRows;
    o.collection.merge_target_bytes = target_bytes;
    o.collection.merge_factor = 4;
    o.collection.merge_idle = merge_idle;
    o.seal_idle = absl::Milliseconds(100);
    o.builder.threads_per_build = 2;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  void Create() {
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField f = VectorField("v", kDim, v1::L2);
    f.mutable_index()->set_type(kind_);
    *req.mutable_schema()->add_vectors() = f;
    v1::AttributeField n = Attribute("n", v1::INT64);
    n.set_indexed(true);
    *req.mutable_schema()->add_attributes() = n;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  const float* Row(size_t i) const { return vectors_.data() + i * kDim; }

  // Points [from, to), kSegmentRows per request (each fills one segment).
  void Upsert(size_t from, size_t to) {
    for (size_t first = from; first < to; first += kSegmentRows) {
      v1::UpsertPointsRequest up;
      up.set_collection("c");
      for (size_t i = first; i < std::min(to, first + kSegmentRows); ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())["v"].mutable_values()->Add(Row(i), Row(i) + kDim);
        (*p->mutable_attributes())["n"].set_int_value(static_cast<int64_t>(i));
      }
      v1::UpsertPointsResponse resp;
      QUIVER_ASSERT_OK(engine_->Upsert(up, &resp));
    }
  }

  void Delete(const std::vector<size_t>& ids) {
    v1::DeletePointsRequest del;
    del.set_collection("c");
    for (size_t i : ids) {
      del.add_ids(std::to_string(i));
      deleted_[i] = true;
    }
    v1::DeletePointsResponse resp;
    QUIVER_ASSERT_OK(engine_->Delete(del, &resp));
  }

  v1::CollectionStats Stats() {
    v1::GetCollectionRequest req;
    req.set_name("c");
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    return resp.collection().stats();
  }

  // Sealed segments' live row counts, once every segment is indexed and
  // `done` holds of them; fails after two minutes.
  std::vector<uint64_t> WaitFor(const std::function<bool(const std::vector<uint64_t>&)>& done) {
    const absl::Time give_up = absl::Now() + absl::Seconds(120);
    for (;;) {
      engine_->SealAndWaitForIndexes();
      const v1::CollectionStats st = Stats();
      std::vector<uint64_t> live;
      bool indexed = true;
      for (const auto& s : st.segments()) {
        indexed = indexed && s.state() == v1::SegmentInfo::INDEXED;
        live.push_back(s.rows() - s.deleted());
      }
      if (indexed && done(live)) return live;
      if (absl::Now() > give_up) {
        ADD_FAILURE() << "segments never got there: " << st.DebugString();
        return live;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  uint64_t Count(const std::string& filter = "") {
    v1::CountPointsRequest req;
    req.set_collection("c");
    req.set_filter(filter);
    v1::CountPointsResponse resp;
    EXPECT_TRUE(engine_->CountPoints(req, &resp).ok());
    return resp.count();
  }

  v1::SearchResponse Search(const float* q, bool exact, const std::string& filter = "") {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(10);
    req.set_filter(filter);
    req.mutable_params()->set_exact(exact);
    req.add_vectors()->mutable_values()->Add(q, q + kDim);
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Live points find themselves first; deleted ones never come back; a
  // filter returns only what it matches; exact search is the true top 10.
  void ExpectServesEverything() {
    size_t first = 0, probes = 0;
    for (size_t i = 0; i < kPoints; i += 41) {
      const v1::SearchResponse r = Search(Row(i), false);
      for (const v1::Hit& h : r.results(0).hits()) {
        EXPECT_FALSE(deleted_.contains(std::stoul(h.id()))) << h.id() << " is deleted";
      }
      if (deleted_.contains(i)) continue;
      ++probes;
      first += r.results(0).hits_size() > 0 && r.results(0).hits(0).id() == std::to_string(i);
      const v1::SearchResponse f = Search(Row(i), false, "n < 4000");
      for (const v1::Hit& h : f.results(0).hits()) EXPECT_LT(std::stoul(h.id()), 4000u);
    }
    EXPECT_GE(first, probes * 98 / 100);
    for (size_t i = 5; i < kPoints; i += 997) {
      std::vector<std::string> truth;
      for (size_t j : testing::ExactL2TopK(vectors_.data(), kPoints, kDim, Row(i), 10,
                                           [&](size_t r) { return deleted_.contains(r); })) {
        truth.push_back(std::to_string(j));
      }
      EXPECT_EQ(testing::HitIds(Search(Row(i), true).results(0)), truth) << "query " << i;
    }
    size_t live_below = 0;
    for (size_t i = 0; i < 4000; ++i) live_below += !deleted_.contains(i);
    EXPECT_EQ(Count("n < 4000"), live_below);
    EXPECT_EQ(Count(), kPoints - deleted_.size());
    v1::VerifyCollectionRequest vreq;
    vreq.set_name("c");
    v1::VerifyCollectionResponse v;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(vreq, &v));
    EXPECT_EQ(v.defects_total(), 0u) << v.DebugString();
  }

  // Room for all 8,000 rows: 16 segments of 500 become 4 of 2,000, then 1.
  void TiersMergeIntoOneAndServeEverything() {
    Open(kPoints * kRowBytes + 1000);
    Create();
    Upsert(0, kPoints);
    const std::vector<uint64_t> live =
        WaitFor([](const std::vector<uint64_t>& l) { return l.size() == 1; });
    EXPECT_EQ(live, std::vector<uint64_t>{kPoints});
    ExpectServesEverything();
    // Deletes in the merged segment, then a restart from its files.
    std::vector<size_t> gone;
    for (size_t i = 0; i < kPoints; i += 8) gone.push_back(i);
    Delete(gone);
    ExpectServesEverything();
    Open(kPoints * kRowBytes + 1000);
    EXPECT_EQ(Stats().segments_size(), 1);
    ExpectServesEverything();
  }

  std::string kind_ = "HNSW";
  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::vector<float> vectors_;
  std::map<size_t, bool> deleted_;
};

TEST_F(MergeTest, TiersMergeIntoOneSegmentThatServesEverything) {
  TiersMergeIntoOneAndServeEverything();
}

// IVF_FLAT segments read their rows in their lists, a pointer per row: a
// merge's output borrows them from there while its lists are built.
TEST_F(MergeTest, IvfFlatTiersMergeIntoOneSegmentThatServesEverything) {
  kind_ = "IVF_FLAT";
  TiersMergeIntoOneAndServeEverything();
}

TEST_F(MergeTest, AnImportBetweenTiersBecomesOneSegmentOnceWritesPause) {
  // 14 segments: the tiers alone leave three of 2,000 rows and two of 500
  // (no fourth of either size); once idle they pack into one.
  Open(kPoints * kRowBytes + 1000, absl::Milliseconds(300));
  Create();
  Upsert(0, 7000);
  std::vector<size_t> never;
  for (size_t i = 7500; i < kPoints; ++i) never.push_back(i);
  Delete(never);  // points 7500.. are never written: served as deleted
  std::vector<uint64_t> live =
      WaitFor([](const std::vector<uint64_t>& l) { return l.size() == 1; });
  EXPECT_EQ(live, std::vector<uint64_t>{7000});
  // 500 new points next to 7,000: too few to rebuild it for; they wait.
  Upsert(7000, 7500);
  live = WaitFor([](const std::vector<uint64_t>& l) { return l.size() == 2; });
  absl::SleepFor(absl::Seconds(1));  // three times merge_idle
  live = WaitFor([](const std::vector<uint64_t>& l) { return l.size() >= 1; });
  EXPECT_EQ(live, (std::vector<uint64_t>{7000, 500}));
  ExpectServesEverything();
  // A restart keeps the merged segment (no merge redone: still 2).
  Open(kPoints * kRowBytes + 1000, absl::Milliseconds(300));
  live = WaitFor([](const std::vector<uint64_t>& l) { return l.size() >= 1; });
  EXPECT_EQ(live, (std::vector<uint64_t>{7000, 500}));
  ExpectServesEverything();
}

TEST_F(MergeTest, ATierThatWouldPassTheTargetStaysAsItIs) {
  // Room for 2,000 rows but not 8,000: four segments of 2,000.
  Open(4 * kSegmentRows * kRowBytes + 1000);
  Create();
  Upsert(0, kPoints);
  std::vector<uint64_t> live =
      WaitFor([](const std::vector<uint64_t>& l) { return l.size() == 4; });
  EXPECT_EQ(live, std::vector<uint64_t>(4, 4 * kSegmentRows));
  absl::SleepFor(absl::Milliseconds(500));  // a few more maintenance ticks
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(Stats().segments_size(), 4);
  ExpectServesEverything();
}

TEST_F(MergeTest, NoTargetNoMerge) {
  Open(0);
  Create();
  Upsert(0, kPoints);
  WaitFor([](const std::vector<uint64_t>& l) { return l.size() == 16; });
  absl::SleepFor(absl::Milliseconds(500));
  engine_->SealAndWaitForIndexes();
  EXPECT_EQ(Stats().segments_size(), 16);
}

TEST_F(MergeTest, SmallSegmentsBetweenFullOnesRideAlong) {
  // As an import throttled by index builds leaves them: full segments with
  // a small one (a growing segment sealed while writes paused) after each.
  Open(kPoints * kRowBytes + 1000);
  Create();
  constexpr size_t kSmall = 30, kRounds = 8, kWritten = kRounds * (kSegmentRows + kSmall);
  for (size_t r = 0; r < kRounds; ++r) {
    const size_t first = r * (kSegmentRows + kSmall);
    Upsert(first, first + kSegmentRows);          // fills a segment: sealed
    Upsert(first + kSegmentRows, first + kSegmentRows + kSmall);
    absl::SleepFor(absl::Milliseconds(300));      // idle: sealed small
  }
  for (size_t i = kWritten; i < kPoints; ++i) deleted_[i] = true;  // never written
  // Eight full segments make two merged ones of four each, with the small
  // ones between them. A small one still being built when its neighbours'
  // merge was planned stays (it waits for a small neighbour), so up to two
  // are left.
  const std::vector<uint64_t> live = WaitFor([](const std::vector<uint64_t>& l) {
    return std::count_if(l.begin(), l.end(), [](uint64_t n) { return n >= 4 * kSegmentRows; }) == 2;
  });
  EXPECT_LE(live.size(), 4u);
  for (uint64_t n : live) EXPECT_TRUE(n >= 4 * kSegmentRows || n == kSmall) << n;
  ExpectServesEverything();
}

TEST_F(MergeTest, WritesWhileMergesRunAreKept) {
  Open(kPoints * kRowBytes + 1000);
  Create();
  Upsert(0, kPoints);
  // While the merges are planned and built: deletes across every input,
  // and overwrites that move points (their new vectors must win).
  std::vector<size_t> gone;
  for (size_t i = 3; i < kPoints; i += 13) gone.push_back(i);
  Delete(gone);
  std::vector<size_t> moved;
  for (size_t i = 7; i < kPoints; i += 101) {
    if (!deleted_.contains(i)) moved.push_back(i);
  }
  for (size_t i : moved) {
    for (uint32_t k = 0; k < kDim; ++k) vectors_[i * kDim + k] += 0.5f;
  }
  v1::UpsertPointsRequest up;
  up.set_collection("c");
  for (size_t i : moved) {
    v1::Point* p = up.add_points();
    p->set_id(std::to_string(i));
    (*p->mutable_vectors())["v"].mutable_values()->Add(Row(i), Row(i) + kDim);
    (*p->mutable_attributes())["n"].set_int_value(static_cast<int64_t>(i));
  }
  v1::UpsertPointsResponse resp;
  QUIVER_ASSERT_OK(engine_->Upsert(up, &resp));
  // The overwrites sit in a growing segment, which never merges by size:
  // the sealed rows end in one merged segment beside it.
  WaitFor([](const std::vector<uint64_t>& l) { return l.size() <= 2 && l[0] > 4000; });
  ExpectServesEverything();
  Open(kPoints * kRowBytes + 1000);
  ExpectServesEverything();
}

}  // namespace
}  // namespace quiver
