// One copy of every vector: a sealed segment whose index keeps the rows
// (HNSW: hnswlib's level-0 block, one stride; IVF_FLAT: FAISS's lists, a
// pointer per row) reads them there and frees its own copy
// (Segment::AdoptRows). Checked for both kinds through what a user sees —
// exact and ANN search, returned vectors, verify, describe's memory — and
// the segment's rows against the points written, across index builds with
// several threads, deletes, a restart (indexes loaded from files, deleted
// rows become holes), a rebuild with other parameters and a change to FLAT.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/vector_index.h"
#include "query/bind/wire_schema.h"
#include "query/engine.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 64;
constexpr size_t kPoints = 6000;
constexpr uint32_t kSegmentRows = 2000;

// hnswlib's bytes per node: level-0 links (a count and 2M ids), the vector
// and its label.
size_t HnswRecordBytes(size_t m) { return 4 + 2 * m * 4 + kDim * 4 + 8; }
// IVF_FLAT's bytes per row: the vector in its list, its label, and the
// pointer to it by label.
constexpr size_t kIvfRecordBytes = kDim * 4 + 8 + 8;

bool IsHnsw(const std::string& kind) { return kind == "HNSW"; }

class SharedRowsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::mt19937 rng(5);
    std::normal_distribution<float> g;
    vectors_.resize(kPoints * kDim);
    for (float& x : vectors_) x = g(rng);
    Open();
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField f = VectorField("v", kDim, v1::L2);
    f.mutable_index()->set_type(GetParam());
    *req.mutable_schema()->add_vectors() = f;
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    for (size_t first = 0; first < kPoints; first += 1000) {
      v1::UpsertPointsRequest up;
      up.set_collection("c");
      for (size_t i = first; i < first + 1000; ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())["v"].mutable_values()->Add(Row(i), Row(i) + kDim);
      }
      v1::UpsertPointsResponse uresp;
      QUIVER_ASSERT_OK(engine_->Upsert(up, &uresp));
    }
    engine_->SealAndWaitForIndexes();
  }

  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = kSegmentRows;
    // Deleted rows stay (they become holes at a restart).
    o.collection.compact_deleted_ratio = 0.99;
    // Several insert threads: hnswlib numbers nodes in the order they went
    // in, which is then not row order.
    o.builder.threads_per_build = 3;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  const float* Row(size_t i) const { return vectors_.data() + i * kDim; }

  void Delete(size_t from, size_t to) {
    v1::DeletePointsRequest del;
    del.set_collection("c");
    for (size_t i = from; i < to; ++i) {
      del.add_ids(std::to_string(i));
      deleted_[i] = true;
    }
    v1::DeletePointsResponse resp;
    QUIVER_ASSERT_OK(engine_->Delete(del, &resp));
  }

  // Every sealed segment's rows are read from its index's block, or none
  // are, and every row still holding a point's vector holds the one written.
  void ExpectRows(bool adopted) {
    auto coll = engine_->Find("c");
    ASSERT_TRUE(coll.ok()) << coll.status();
    const View view = (*coll)->TakeView();
    int sealed = 0;
    for (const View::Part& part : view.parts) {
      const Segment& seg = *part.segment;
      if (!seg.sealed()) continue;
      ++sealed;
      EXPECT_EQ(seg.rows_adopted(0), adopted) << "segment " << seg.id();
      size_t wrong = 0;
      for (uint32_t off = 0; off < part.rows; ++off) {
        if (seg.delete_seq(off) == 0) continue;  // a hole: the point was gone at load
        const size_t i = std::stoul(seg.external_id(off));
        wrong += std::memcmp(seg.vector(0, off), Row(i), kDim * sizeof(float)) != 0;
      }
      EXPECT_EQ(wrong, 0u) << "segment " << seg.id();
    }
    EXPECT_EQ(sealed, 3);
  }

  // Describe's memory of the field in each indexed segment, per row.
  std::vector<double> MemoryPerRow() {
    v1::GetCollectionRequest req;
    req.set_name("c");
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    std::vector<double> out;
    for (const v1::SegmentInfo& s : resp.collection().stats().segments()) {
      if (s.state() != v1::SegmentInfo::INDEXED) continue;
      out.push_back(static_cast<double>(s.fields(0).memory_bytes()) / s.rows());
    }
    return out;
  }

  // The exact top 10 of live points, as the test computes it.
  std::vector<std::string> BruteForce(const float* q) const {
    std::vector<std::string> ids;
    for (size_t i : testing::ExactL2TopK(vectors_.data(), kPoints, kDim, q, 10,
                                         [&](size_t j) { return deleted_.contains(j); })) {
      ids.push_back(std::to_string(i));
    }
    return ids;
  }

  v1::SearchResponse Search(const float* q, bool exact, bool with_vectors = false) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(10);
    req.mutable_params()->set_exact(exact);
    req.mutable_params()->set_ef(128);
    req.mutable_params()->set_nprobe(64);  // every list: random data
    req.set_with_vectors(with_vectors);
    req.add_vectors()->mutable_values()->Add(q, q + kDim);
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Exact search (strided scans of the block) finds the true top 10 for
  // points' own vectors; ANN search with a wide ef nearly all of it; the
  // vectors returned are the ones written.
  void ExpectSearchesRight() {
    size_t ann_hits = 0, probes = 0;
    for (size_t i = 1; i < kPoints; i += 97) {
      if (deleted_.contains(i)) continue;
      ++probes;
      const std::vector<std::string> truth = BruteForce(Row(i));
      const v1::SearchResponse exact = Search(Row(i), /*exact=*/true, /*with_vectors=*/true);
      EXPECT_EQ(testing::HitIds(exact.results(0)), truth) << "query " << i;
      for (const v1::Hit& h : exact.results(0).hits()) {
        const float* want = Row(std::stoul(h.id()));
        const auto& got = h.vectors().at("v").values();
        ASSERT_EQ(got.size(), static_cast<int>(kDim));
        EXPECT_TRUE(std::equal(got.begin(), got.end(), want)) << "point " << h.id();
      }
      const std::vector<std::string> ann = testing::HitIds(Search(Row(i), false).results(0));
      for (const std::string& id : ann) {
        ann_hits += std::find(truth.begin(), truth.end(), id) != truth.end();
      }
    }
    EXPECT_GE(static_cast<double>(ann_hits) / (10.0 * probes), 0.95);
  }

  void ExpectVerifyClean() {
    v1::VerifyCollectionRequest req;
    req.set_name("c");
    v1::VerifyCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &resp));
    EXPECT_EQ(resp.defects_total(), 0u) << resp.DebugString();
    EXPECT_GT(resp.vectors_checked(), 0u);
  }

  absl::Status SetIndex(const std::string& type, const std::map<std::string, std::string>& params) {
    v1::UpdateCollectionRequest req;
    req.set_name("c");
    v1::VectorFieldUpdate* u = req.add_vectors();
    u->set_field("v");
    u->mutable_index()->set_type(type);
    for (const auto& [k, v] : params) (*u->mutable_index()->mutable_params())[k] = v;
    v1::UpdateCollectionResponse resp;
    return engine_->UpdateCollection(req, &resp);
  }

  // Bytes per row of the kind's one copy, with `param` (M or nlist) as set
  // by RebuildParams, or the defaults; the segment adds its norms and
  // bookkeeping, and IVF_FLAT its centroids, within 10%.
  size_t RecordBytes(bool rebuilt = false) const {
    return IsHnsw(GetParam()) ? HnswRecordBytes(rebuilt ? 8 : 16) : kIvfRecordBytes;
  }
  std::map<std::string, std::string> RebuildParams(int i) const {
    static const char* kM[] = {"8", "12", "16"};
    static const char* kNlist[] = {"16", "24", "32"};
    return IsHnsw(GetParam()) ? std::map<std::string, std::string>{{"M", kM[i]}}
                              : std::map<std::string, std::string>{{"nlist", kNlist[i]}};
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::vector<float> vectors_;
  std::map<size_t, bool> deleted_;
};

TEST_P(SharedRowsTest, SegmentsReadTheirRowsFromTheIndex) {
  ExpectRows(/*adopted=*/true);
  ExpectSearchesRight();
  ExpectVerifyClean();
  // One copy: the index's, and the segment's norms and bookkeeping.
  for (double per_row : MemoryPerRow()) EXPECT_LE(per_row, 1.1 * RecordBytes());
  EXPECT_EQ(MemoryPerRow().size(), 3u);
}

TEST_P(SharedRowsTest, DeletesAndARestartKeepOneCopyAndTheRightRows) {
  Delete(100, 700);    // in the first segment
  Delete(2500, 2600);  // in the second
  ExpectSearchesRight();
  // Loaded from the index files, compared with the rows loaded from
  // RocksDB (the deleted ones are holes now, and not compared).
  Open();
  engine_->SealAndWaitForIndexes();
  ExpectRows(/*adopted=*/true);
  ExpectSearchesRight();
  ExpectVerifyClean();
  for (double per_row : MemoryPerRow()) EXPECT_LE(per_row, 1.1 * RecordBytes());
}

TEST_P(SharedRowsTest, RebuildAdoptsTheNewBlockAndFlatKeepsTheOld) {
  QUIVER_ASSERT_OK(SetIndex(GetParam(), RebuildParams(0)));
  engine_->SealAndWaitForIndexes();
  ExpectRows(/*adopted=*/true);
  ExpectSearchesRight();
  for (double per_row : MemoryPerRow()) EXPECT_LE(per_row, 1.1 * RecordBytes(/*rebuilt=*/true));
  // No index keeps the rows now: the segments go on reading the last
  // block, counted as their own memory.
  QUIVER_ASSERT_OK(SetIndex("FLAT", {}));
  engine_->SealAndWaitForIndexes();
  ExpectRows(/*adopted=*/true);
  ExpectSearchesRight();
  ExpectVerifyClean();
  v1::GetCollectionRequest req;
  req.set_name("c");
  v1::GetCollectionResponse resp;
  QUIVER_ASSERT_OK(engine_->GetCollection(req, &resp));
  for (const v1::SegmentInfo& s : resp.collection().stats().segments()) {
    if (s.state() == v1::SegmentInfo::GROWING) continue;
    EXPECT_GE(s.fields(0).memory_bytes(),
              s.rows() * (IsHnsw(GetParam()) ? HnswRecordBytes(8) : kDim * 4))
        << s.DebugString();
  }
  // After a restart a FLAT field has no index to share: the rows are the
  // segment's own again, loaded from RocksDB.
  Open();
  engine_->SealAndWaitForIndexes();
  ExpectRows(/*adopted=*/false);
  ExpectSearchesRight();
}

TEST_P(SharedRowsTest, SearchesDuringRebuildsAndAdoptionStayRight) {
  // Exact scans and returned vectors read the rows while rebuilds swap
  // where they are read from; the old memory must outlive every reader.
  std::atomic<bool> done{false};
  std::atomic<size_t> wrong{0}, searches{0};
  std::thread reader([&] {
    for (size_t i = 3; !done.load(); i = (i + 131) % kPoints) {
      if (deleted_.contains(i)) continue;
      const v1::SearchResponse r = Search(Row(i), /*exact=*/true, /*with_vectors=*/true);
      ++searches;
      if (r.results(0).hits_size() == 0 || r.results(0).hits(0).id() != std::to_string(i) ||
          !std::equal(r.results(0).hits(0).vectors().at("v").values().begin(),
                      r.results(0).hits(0).vectors().at("v").values().end(), Row(i))) {
        ++wrong;
      }
    }
  });
  for (int i = 0; i < 3; ++i) {
    QUIVER_ASSERT_OK(SetIndex(GetParam(), RebuildParams(i)));
    engine_->SealAndWaitForIndexes();
  }
  done = true;
  reader.join();
  EXPECT_GT(searches.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
  ExpectRows(/*adopted=*/true);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SharedRowsTest, ::testing::Values("HNSW", "IVF_FLAT"),
                         [](const auto& info) { return info.param; });

// A compaction's output borrows its inputs' rows until its own index takes
// them over (Segment::LendRows): nothing is copied, the rows read are the
// lender's, and the lender is let go once the index adopted the rows or, if
// none did, once OwnRows copied them.
TEST(LentRowsTest, BorrowedUntilAdoptedOrCopiedAndThenLetGo) {
  constexpr size_t n = 1500;
  std::mt19937 rng(17);
  std::normal_distribution<float> g;
  std::vector<float> want(n * kDim);
  for (float& x : want) x = g(rng);
  auto bound = bind::BindSchema([] {
    v1::CollectionSchema s;
    v1::VectorField f = VectorField("v", kDim, v1::L2);
    f.mutable_index()->set_type("HNSW");
    *s.add_vectors() = f;
    return s;
  }());
  ASSERT_TRUE(bound.ok()) << bound.status();
  auto schema = std::make_shared<const Schema>(*std::move(bound));
  // Adopted by an index of each kind that keeps the rows, or copied.
  for (const std::string kind : {"HNSW", "IVF_FLAT", ""}) {
    const bool adopt = !kind.empty();
    SCOPED_TRACE(adopt ? "adopted by " + kind : "copied by OwnRows");
    auto lender = std::make_shared<std::vector<float>>(want);
    const std::weak_ptr<std::vector<float>> watch = lender;
    const float* lent = lender->data();
    Segment seg(1, schema, static_cast<uint32_t>(n));
    seg.LendRows(0, std::move(lender));
    for (size_t i = 0; i < n; ++i) {
      seg.Append(i, std::to_string(i), AttrRow(), {lent + i * kDim});
    }
    seg.Publish(static_cast<uint32_t>(n));
    seg.Seal();
    ASSERT_TRUE(seg.lends_rows(0));
    size_t borrowed = 0;
    for (uint32_t i = 0; i < n; ++i) borrowed += seg.vector(0, i) == lent + i * kDim;
    EXPECT_EQ(borrowed, n) << "rows were copied";
    EXPECT_FALSE(watch.expired());

    std::vector<std::shared_ptr<const void>> retired;
    std::shared_ptr<index::VectorIndex> idx;
    if (adopt) {
      index::IndexSpec spec;
      spec.type = kind;
      spec.dim = kDim;
      auto built = index::CreateIndex(spec);
      ASSERT_TRUE(built.ok()) << built.status();
      idx = *std::move(built);
      QUIVER_ASSERT_OK(idx->BuildFromRows(
          [&](size_t i) { return seg.vector(0, static_cast<uint32_t>(i)); }, n, 2, nullptr, {},
          nullptr));
      QUIVER_ASSERT_OK(seg.AdoptRows(0, *idx, &retired));
      EXPECT_TRUE(seg.rows_adopted(0));
      const std::optional<index::SharedRows> held = seg.adopted_rows(0);
      ASSERT_TRUE(held.has_value());
      EXPECT_EQ(held->row(7), seg.vector(0, 7));
    } else {
      seg.OwnRows();
      EXPECT_FALSE(seg.rows_adopted(0));
      EXPECT_FALSE(seg.adopted_rows(0).has_value());
    }
    EXPECT_FALSE(seg.lends_rows(0));
    retired.clear();  // what a collection's epoch frees once no search holds it
    EXPECT_TRUE(watch.expired()) << "the lender's rows are still held";
    size_t right = 0;
    for (uint32_t i = 0; i < n; ++i) {
      right += std::memcmp(seg.vector(0, i), want.data() + i * kDim, kDim * sizeof(float)) == 0;
    }
    EXPECT_EQ(right, n);
  }
}

}  // namespace
}  // namespace quiver
