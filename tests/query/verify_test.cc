// Trusting what is read back: damaged or inconsistent segment MANIFESTs are
// rebuilt at start-up, and VerifyCollection checks a live collection's
// segments, files and vectors against RocksDB without false alarms while
// writes, seals and compactions go on.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "query/bind/binder.h"
#include "query/engine.h"
#include "storage/segment_files.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 16;

std::vector<float> VectorOf(int i, int version = 0) {
  std::mt19937 rng(static_cast<uint32_t>(i) * 7919u + static_cast<uint32_t>(version) * 104729u + 1);
  std::normal_distribution<float> g;
  std::vector<float> v(kDim);
  for (float& x : v) x = g(rng);
  return v;
}

std::string Defects(const v1::VerifyCollectionResponse& r) {
  std::string out;
  for (const auto& d : r.defects()) {
    absl::StrAppend(&out, "segment ", d.segment_id(), " ", v1::VerifyDefect::Kind_Name(d.kind()),
                    " ", d.field(), ": ", d.detail(), "\n");
  }
  return out;
}

class VerifyTest : public ::testing::Test {
 protected:
  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = rows_per_segment_;
    o.seal_idle = seal_idle_;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  // `v`: IVF_SQ8 stored DISK (rerank tables); `m`: HNSW in memory.
  void Create() {
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField v = VectorField("v", kDim);
    v.mutable_index()->set_type("IVF_SQ8");
    v.set_storage(v1::DISK);
    *req.mutable_schema()->add_vectors() = v;
    v1::VectorField m = VectorField("m", kDim);
    m.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = m;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
  }

  absl::Status Upsert(int first, int count, int version = 0) {
    v1::UpsertPointsRequest req;
    req.set_collection("c");
    for (int i = first; i < first + count; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", i));
      const auto v = VectorOf(i, version);
      (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
      const auto m = VectorOf(i + 100000, version);
      (*p->mutable_vectors())["m"].mutable_values()->Add(m.begin(), m.end());
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  v1::VerifyCollectionResponse Verify(bool index = true) {
    v1::VerifyCollectionRequest req;
    req.set_name("c");
    req.set_skip_index_check(!index);
    v1::VerifyCollectionResponse resp;
    const absl::Status s = engine_->VerifyCollection(req, &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Every point p<i> in [0, n) has its own vectors.
  void ExpectOwnVectors(int n) {
    v1::GetPointsRequest get;
    get.set_collection("c");
    get.set_with_vectors(true);
    for (int i = 0; i < n; ++i) get.add_ids(absl::StrCat("p", i));
    v1::GetPointsResponse got;
    QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
    ASSERT_EQ(got.points_size(), n);
    int wrong = 0;
    for (const v1::Point& p : got.points()) {
      const int i = std::stoi(p.id().substr(1));
      const auto want = VectorOf(i);
      const auto& v = p.vectors().at("v").values();
      wrong += !std::equal(want.begin(), want.end(), v.begin(), v.end());
    }
    EXPECT_EQ(wrong, 0);
  }

  std::vector<uint64_t> SegmentIds() {
    std::vector<uint64_t> ids;
    for (const auto& e : fs::directory_iterator(dir_.path() + "/segments/c1")) {
      const std::string name = e.path().filename().string();
      if (name.size() > 1 && name[0] == 's') ids.push_back(std::stoull(name.substr(1)));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  TempDir dir_;
  uint32_t rows_per_segment_ = 500;
  absl::Duration seal_idle_ = absl::Milliseconds(20);
  std::unique_ptr<Engine> engine_;
};

TEST_F(VerifyTest, CleanCollectionHasNoDefectsAndCountsWhatItChecked) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1200));
  engine_->SealAndWaitForIndexes();
  v1::VerifyCollectionResponse r = Verify();
  EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
  EXPECT_EQ(r.segments_checked(), 3u);
  EXPECT_EQ(r.rows_checked(), 1200u);
  EXPECT_EQ(r.vectors_checked(), 2400u);  // two fields
  // Per segment: MANIFEST, two index files, one rerank table.
  EXPECT_EQ(r.files_checked(), 12u);
  EXPECT_EQ(r.indexes_checked(), 6u);  // two fields' indexes per segment
  EXPECT_EQ(r.sequence(), engine_->last_sequence());

  // A sample compares fewer vectors; sampling does not apply to files.
  v1::VerifyCollectionRequest req;
  req.set_name("c");
  req.set_vector_sample_rows(10);
  req.set_skip_index_check(true);
  v1::VerifyCollectionResponse sampled;
  QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &sampled));
  EXPECT_EQ(sampled.defects_total(), 0u) << Defects(sampled);
  EXPECT_EQ(sampled.vectors_checked(), 3u * 10 * 2);
  EXPECT_EQ(sampled.files_checked(), 12u);
  EXPECT_EQ(sampled.indexes_checked(), 0u);  // skipped

  req.set_name("nope");
  EXPECT_THAT(engine_->VerifyCollection(req, &sampled), StatusIs(absl::StatusCode::kNotFound));
  req.set_name("c");
  req.set_index_samples(10001);
  EXPECT_THAT(engine_->VerifyCollection(req, &sampled),
              StatusIs(absl::StatusCode::kInvalidArgument, "index_samples"));
}

// Writers overwrite and delete while segments seal, get indexed, persist and
// compact; every verify, at whatever moment, must find nothing wrong.
TEST_F(VerifyTest, NoFalseDefectsUnderConcurrentWrites) {
  rows_per_segment_ = 200;
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1000));
  // Several writers, so commit groups follow each other closely and a check
  // lands between a group's RocksDB write and its becoming visible as often
  // as it can.
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937 rng(7 + t);
      int version = 1;
      while (!stop.load()) {
        const int first = static_cast<int>(rng() % 980);
        if (rng() % 3 == 0) {
          v1::DeletePointsRequest del;
          del.set_collection("c");
          for (int i = first; i < first + 20; ++i) del.add_ids(absl::StrCat("p", i));
          v1::DeletePointsResponse resp;
          EXPECT_TRUE(engine_->Delete(del, &resp).ok());
        } else {
          EXPECT_TRUE(Upsert(first, 20, version++).ok());
        }
        ++writes;
      }
    });
  }
  uint32_t max_files = 0;
  for (int round = 0; round < 80; ++round) {
    // Most rounds check rows only (fast, so many land mid-commit); some
    // check everything.
    v1::VerifyCollectionRequest req;
    req.set_name("c");
    const bool full = round % 20 == 19;
    req.set_skip_index_check(!full);
    req.set_vector_sample_rows(full ? 0 : 1);
    v1::VerifyCollectionResponse r;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &r));
    EXPECT_EQ(r.defects_total(), 0u) << "round " << round << "\n" << Defects(r);
    max_files = std::max(max_files, r.files_checked());
  }
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_GT(writes.load(), 50);
  EXPECT_GT(max_files, 0u);  // some checks did see persisted segments
  engine_->SealAndWaitForIndexes();
  v1::VerifyCollectionResponse r = Verify();
  EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
}

// A MANIFEST with a valid frame that still disagrees with RocksDB (rows
// swapped, a row claimed twice, an internal id never assigned) is not
// trusted: the segment is rebuilt, every point keeps its own vectors.
// A segment still growing at verify's view, sealed and persisted before
// verify reads its files, has a MANIFEST listing more rows than the view
// shows it: that is no defect (the crash loop saw "MANIFEST lists 100
// rows, the segment has 78" on a healthy collection). The view is taken by
// hand here, with its RocksDB snapshot, before the segment fills.
TEST_F(VerifyTest, ASegmentSealedAfterTheViewIsNoDefect) {
  rows_per_segment_ = 100;
  seal_idle_ = absl::Hours(1);  // sealed only when full
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 78));
  absl::StatusOr<std::shared_ptr<Collection>> c = engine_->Find("c");
  QUIVER_ASSERT_OK(c);
  // No write runs meanwhile: the view and the snapshot show one state.
  const View view = (*c)->TakeView();
  const std::unique_ptr<storage::StoreSnapshot> snap = engine_->store().NewSnapshot();
  ASSERT_EQ(view.parts.size(), 1u);
  ASSERT_EQ(view.parts[0].rows, 78u);
  ASSERT_FALSE(view.parts[0].segment->sealed());

  QUIVER_ASSERT_OK(Upsert(78, 22));  // fills the segment: sealed, built, persisted
  engine_->SealAndWaitForIndexes();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!view.parts[0].segment->persisted() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(view.parts[0].segment->persisted());

  v1::VerifyCollectionRequest req;
  req.set_name("c");
  req.set_skip_index_check(true);
  v1::VerifyCollectionResponse resp;
  storage::SegmentFiles files(dir_.path() + "/segments");
  absl::StatusOr<BoundVerify> bound = bind::BindVerify(req);
  QUIVER_ASSERT_OK(bound);
  QUIVER_ASSERT_OK((*c)->Verify(*bound, view, engine_->store(), *snap, files, &resp));
  EXPECT_EQ(resp.defects_size(), 0) << Defects(resp);
  EXPECT_GT(resp.files_checked(), 0u);
}

TEST_F(VerifyTest, InconsistentManifestsAreRebuiltAtStartUp) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1200));
  engine_->SealAndWaitForIndexes();
  storage::SegmentFiles files(dir_.path() + "/segments");
  const std::vector<std::function<void(storage::SegmentManifest*)>> damage = {
      [](storage::SegmentManifest* m) {  // two rows swapped
        const uint64_t a = m->iids(5);
        m->set_iids(5, m->iids(6));
        m->set_iids(6, a);
      },
      [](storage::SegmentManifest* m) { m->set_iids(5, m->iids(6)); },  // claimed twice
      [](storage::SegmentManifest* m) { m->set_iids(7, 1u << 30); },   // never assigned
  };
  for (size_t d = 0; d < damage.size(); ++d) {
    SCOPED_TRACE(absl::StrCat("damage ", d));
    engine_.reset();
    const uint64_t victim = SegmentIds()[d % 3];
    absl::StatusOr<storage::SegmentManifest> m = files.ReadManifest(1, victim);
    QUIVER_ASSERT_OK(m);
    damage[d](&*m);
    {
      std::ofstream out(files.SegmentDir(1, victim) + "/MANIFEST",
                        std::ios::binary | std::ios::trunc);
      out << storage::EncodeManifest(*m);
    }
    Open();
    ExpectOwnVectors(1200);
    engine_->SealAndWaitForIndexes();
    const std::vector<uint64_t> ids = SegmentIds();
    EXPECT_EQ(std::count(ids.begin(), ids.end(), victim), 0) << "segment not rebuilt";
    v1::VerifyCollectionResponse r = Verify();
    EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
    ExpectOwnVectors(1200);
  }
}

// An HNSW index file whose checksum holds but whose vectors are not
// RocksDB's (a bug that wrote it so, or a hand that rewrote it and its
// MANIFEST) is not served: at start-up the segment's rows are compared with
// RocksDB's before it reads them in the index, and one that differs is
// read from RocksDB and its index rebuilt.
TEST_F(VerifyTest, IndexFileHoldingOtherVectorsIsNotServed) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1200));
  engine_->SealAndWaitForIndexes();
  engine_.reset();
  storage::SegmentFiles files(dir_.path() + "/segments");
  const uint64_t victim = SegmentIds()[1];
  const std::string seg_dir = files.SegmentDir(1, victim);
  // Field "m" (1) is HNSW: hnswlib records after a 96-byte header, each the
  // level-0 links (4 + 2 * 16 * 4 bytes), the vector, an 8-byte label.
  const size_t record = 4 + 2 * 16 * 4 + kDim * sizeof(float) + 8;
  {
    std::fstream f(seg_dir + "/f1.index", std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open());
    const std::vector<float> other(kDim, 1000.0f);
    for (size_t row : {7, 123}) {
      f.seekp(static_cast<std::streamoff>(96 + row * record + 4 + 2 * 16 * 4));
      f.write(reinterpret_cast<const char*>(other.data()),
              static_cast<std::streamsize>(kDim * sizeof(float)));
    }
  }
  absl::StatusOr<storage::SegmentManifest> m = files.ReadManifest(1, victim);
  QUIVER_ASSERT_OK(m);
  bool rewritten = false;
  for (auto& e : *m->mutable_indexes()) {
    if (e.file() != "f1.index") continue;
    QUIVER_ASSERT_OK(files.Checksum(seg_dir, &e));
    rewritten = true;
  }
  ASSERT_TRUE(rewritten);
  {
    std::ofstream out(seg_dir + "/MANIFEST", std::ios::binary | std::ios::trunc);
    out << storage::EncodeManifest(*m);
  }
  // Every point's "m" vector is its own, and a search for it finds it at
  // distance 0 (an index over the other vectors would not).
  auto expect_own_m = [&] {
    v1::GetPointsRequest get;
    get.set_collection("c");
    get.set_with_vectors(true);
    for (int i = 0; i < 1200; ++i) get.add_ids(absl::StrCat("p", i));
    v1::GetPointsResponse got;
    QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
    ASSERT_EQ(got.points_size(), 1200);
    int wrong = 0, not_found = 0;
    for (const v1::Point& p : got.points()) {
      const int i = std::stoi(p.id().substr(1));
      const auto want = VectorOf(i + 100000);
      const auto& v = p.vectors().at("m").values();
      wrong += !std::equal(want.begin(), want.end(), v.begin(), v.end());
      v1::SearchRequest req;
      req.set_collection("c");
      req.set_field("m");
      req.set_k(1);
      req.add_vectors()->mutable_values()->Add(want.begin(), want.end());
      v1::SearchResponse r;
      QUIVER_ASSERT_OK(engine_->Search(req, StopToken(), &r));
      not_found += r.results(0).hits_size() == 0 || r.results(0).hits(0).id() != p.id() ||
                   r.results(0).hits(0).score() > 1e-3f;
    }
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(not_found, 0);
  };
  Open();
  expect_own_m();
  engine_->SealAndWaitForIndexes();
  expect_own_m();
  v1::VerifyCollectionResponse r = Verify();
  EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
  // The index was rebuilt and written again: the file no longer holds the
  // other vectors.
  auto holds_other = [&] {
    std::ifstream f(seg_dir + "/f1.index", std::ios::binary);
    if (!f.is_open()) return true;
    std::vector<float> v(kDim);
    for (size_t row : {7, 123}) {
      f.seekg(static_cast<std::streamoff>(96 + row * record + 4 + 2 * 16 * 4));
      f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(kDim * sizeof(float)));
      if (!f || v == std::vector<float>(kDim, 1000.0f)) return true;
    }
    return false;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (holds_other() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(holds_other());
  Open();
  expect_own_m();
}

// A mapped index file damaged in place while quiverd runs is not written
// back under a checksum that holds when its segment is persisted again
// (here: another field's index rebuilt): the persist refuses it, verify
// keeps reporting the damage, and the next start rebuilds the index.
TEST_F(VerifyTest, MappedIndexFileDamagedInPlaceIsNotWrittenBack) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1200));
  engine_->SealAndWaitForIndexes();
  Open();  // "m" (field 1, HNSW) is now read in place from its files
  storage::SegmentFiles files(dir_.path() + "/segments");
  const uint64_t victim = SegmentIds()[1];
  const std::string path = files.SegmentDir(1, victim) + "/f1.index";
  const size_t record = 4 + 2 * 16 * 4 + kDim * sizeof(float) + 8;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open());
    const std::vector<float> other(kDim, 1000.0f);
    f.seekp(static_cast<std::streamoff>(96 + 7 * record + 4 + 2 * 16 * 4));
    f.write(reinterpret_cast<const char*>(other.data()),
            static_cast<std::streamsize>(kDim * sizeof(float)));
  }
  auto f1_entry_verifies = [&]() -> absl::Status {
    absl::StatusOr<storage::SegmentManifest> m = files.ReadManifest(1, victim);
    if (!m.ok()) return m.status();
    for (const auto& e : m->indexes()) {
      if (e.file() == "f1.index") return files.VerifyFile(1, victim, e);
    }
    return absl::NotFoundError("no f1.index in the MANIFEST");
  };
  EXPECT_THAT(f1_entry_verifies(), StatusIs(absl::StatusCode::kDataLoss));
  // Field "v"'s index changes: every segment is rebuilt and persisted again.
  v1::UpdateCollectionRequest up;
  up.set_name("c");
  v1::VectorFieldUpdate* u = up.add_vectors();
  u->set_field("v");
  u->mutable_index()->set_type("IVF_SQ8");
  (*u->mutable_index()->mutable_params())["nlist"] = "4";
  v1::UpdateCollectionResponse uresp;
  QUIVER_ASSERT_OK(engine_->UpdateCollection(up, &uresp));
  engine_->SealAndWaitForIndexes();
  // The other segments were written again; the victim's damage was not
  // blessed with a new checksum.
  EXPECT_THAT(f1_entry_verifies(), StatusIs(absl::StatusCode::kDataLoss));
  v1::VerifyCollectionResponse r = Verify(/*index=*/false);
  bool corrupt = false;
  for (const auto& d : r.defects()) {
    corrupt = corrupt || (d.segment_id() == victim && d.kind() == v1::VerifyDefect::FILE_CORRUPT);
  }
  EXPECT_TRUE(corrupt) << Defects(r);
  // Restarted, the damaged file fails its checksum and is rebuilt.
  Open();
  ExpectOwnVectors(1200);
  engine_->SealAndWaitForIndexes();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!f1_entry_verifies().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(f1_entry_verifies().ok()) << f1_entry_verifies();
  r = Verify();
  EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
}

// A MANIFEST written before the frame existed is damaged data: rebuilt.
TEST_F(VerifyTest, UnframedManifestIsRebuilt) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1000));
  engine_->SealAndWaitForIndexes();
  engine_.reset();
  storage::SegmentFiles files(dir_.path() + "/segments");
  const uint64_t victim = SegmentIds()[0];
  absl::StatusOr<storage::SegmentManifest> m = files.ReadManifest(1, victim);
  QUIVER_ASSERT_OK(m);
  {
    std::ofstream out(files.SegmentDir(1, victim) + "/MANIFEST",
                      std::ios::binary | std::ios::trunc);
    out << m->SerializeAsString();
  }
  EXPECT_THAT(files.ReadManifest(1, victim), StatusIs(absl::StatusCode::kDataLoss, "frame"));
  Open();
  ExpectOwnVectors(1000);
  engine_->SealAndWaitForIndexes();
  const std::vector<uint64_t> ids = SegmentIds();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), victim), 0);
  v1::VerifyCollectionResponse r = Verify();
  EXPECT_EQ(r.defects_total(), 0u) << Defects(r);
}

// Files damaged under a running server: verify names each one.
TEST_F(VerifyTest, FindsFilesDamagedWhileRunning) {
  Open();
  Create();
  QUIVER_ASSERT_OK(Upsert(0, 1500));
  engine_->SealAndWaitForIndexes();
  const std::vector<uint64_t> ids = SegmentIds();
  ASSERT_EQ(ids.size(), 3u);
  storage::SegmentFiles files(dir_.path() + "/segments");
  auto flip = [](const std::string& path, std::streamoff at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    char b = 0;
    f.read(&b, 1);
    b ^= 0x40;
    f.seekp(at);
    f.write(&b, 1);
  };
  // Segment 0: an index file. Segment 1: a rerank table's data (which the
  // segment serves from, so its vectors differ from RocksDB's too).
  // Segment 2: its MANIFEST is gone.
  flip(files.SegmentDir(1, ids[0]) + "/f1.index", 200);
  flip(files.RerankTablePath(1, ids[1], 0), 4096 + 17 * kDim * 4 + 1);
  fs::remove(files.SegmentDir(1, ids[2]) + "/MANIFEST");

  v1::VerifyCollectionResponse r = Verify();
  std::map<std::pair<uint64_t, int>, int> kinds;
  for (const auto& d : r.defects()) ++kinds[{d.segment_id(), d.kind()}];
  EXPECT_EQ((kinds[{ids[0], v1::VerifyDefect::FILE_CORRUPT}]), 1) << Defects(r);
  EXPECT_EQ((kinds[{ids[1], v1::VerifyDefect::FILE_CORRUPT}]), 1) << Defects(r);
  EXPECT_EQ((kinds[{ids[1], v1::VerifyDefect::VECTOR_MISMATCH}]), 1) << Defects(r);
  EXPECT_EQ((kinds[{ids[2], v1::VerifyDefect::FILE_MISSING}]), 1) << Defects(r);
  EXPECT_EQ(r.defects_total(), 4u) << Defects(r);
  for (const auto& d : r.defects()) {
    if (d.segment_id() == ids[0]) {
      EXPECT_EQ(d.field(), "m");
    }
    if (d.segment_id() == ids[1]) {
      EXPECT_EQ(d.field(), "v");
    }
    if (d.kind() == v1::VerifyDefect::VECTOR_MISMATCH) {
      EXPECT_NE(d.detail().find("p517"), std::string::npos) << d.detail();
    }
  }
}

}  // namespace
}  // namespace quiver
