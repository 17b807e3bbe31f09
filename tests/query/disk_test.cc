// DISK storage: a field whose sealed segments keep only a compressed index
// in memory and serve full vectors from rerank tables. Checked against the
// same data in a MEMORY field and an exact FLAT field, through restarts,
// corrupted / truncated / missing tables, deletes, filters and compaction.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "query/execute/rerank.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/recall.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::quiver::testing::Attribute;
using ::quiver::testing::HitIds;
using ::quiver::testing::RecallSum;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr size_t kBase = 3000;
constexpr size_t kQueries = 20;
constexpr uint32_t kK = 10;

struct Data {
  std::vector<float> base, queries;
};

const Data& Fashion() {
  static const Data* d = [] {
    auto* d = new Data;
    size_t dim = 0;
    d->base = testing::FashionImages("train", kBase, &dim);
    d->queries = testing::FashionImages("t10k", kQueries, &dim);
    return d;
  }();
  return *d;
}

// Bytes of `path`'s mappings resident in this process (the Rss lines of
// /proc/self/smaps under that file's mappings).
uint64_t MappedResidentBytes(const std::string& path) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool ours = false;
  uint64_t kb = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      ours = line.size() >= path.size() &&
             line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (ours && line.rfind("Rss:", 0) == 0) {
      kb += std::stoull(line.substr(4));
    }
  }
  return kb * 1024;
}

std::vector<std::string> TableFiles(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(data_dir + "/segments", ec)) {
    if (e.path().extension() == ".rrt") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The first kBase training images as points "0".."kBase-1": each image in
// every one of `fields`, and its index in attribute "n" when `with_n`.
v1::UpsertPointsRequest FashionPoints(const std::string& collection,
                                      const std::vector<std::string>& fields, bool with_n) {
  const Data& d = Fashion();
  v1::UpsertPointsRequest up;
  up.set_collection(collection);
  for (size_t i = 0; i < kBase; ++i) {
    v1::Point* p = up.add_points();
    p->set_id(std::to_string(i));
    for (const std::string& f : fields) {
      (*p->mutable_vectors())[f].mutable_values()->Add(d.base.begin() + i * 784,
                                                       d.base.begin() + (i + 1) * 784);
    }
    if (with_n) (*p->mutable_attributes())["n"].set_int_value(static_cast<int64_t>(i));
  }
  return up;
}

// Appends test query q (a t10k image) to `req`.
void AddQuery(size_t q, v1::SearchRequest* req) {
  const Data& d = Fashion();
  req->add_vectors()->mutable_values()->Add(d.queries.begin() + q * 784,
                                            d.queries.begin() + (q + 1) * 784);
}

// The index kind under test for the `disk` and `mem` fields.
class DiskTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (Fashion().base.empty()) GTEST_SKIP() << "Fashion-MNIST not installed";
    Open();
    v1::CreateCollectionRequest req;
    req.set_name("d");
    *req.mutable_schema()->add_vectors() = Field("disk", v1::DISK);
    *req.mutable_schema()->add_vectors() = Field("mem", v1::MEMORY);
    *req.mutable_schema()->add_vectors() = VectorField("exact", 784, v1::L2);
    *req.mutable_schema()->add_attributes() = Attribute("n", v1::INT64);
    v1::CreateCollectionResponse cresp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &cresp));
    v1::UpsertPointsResponse uresp;
    QUIVER_ASSERT_OK(
        engine_->Upsert(FashionPoints("d", {"disk", "mem", "exact"}, true), &uresp));
    engine_->SealAndWaitForIndexes();
  }

  v1::VectorField Field(const std::string& name, v1::StorageMode storage) {
    v1::VectorField f = VectorField(name, 784, v1::L2);
    f.mutable_index()->set_type(GetParam());
    if (GetParam() == "IVF_PQ") (*f.mutable_index()->mutable_params())["m"] = "49";
    f.set_storage(storage);
    return f;
  }

  void Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 1000;  // three sealed segments
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  v1::SearchResponse Search(const std::string& field, float refine, uint32_t nprobe = 0,
                            const std::string& filter = "", bool explain = false) {
    return SearchQueries(field, 0, kQueries, refine, nprobe, filter, explain);
  }

  // Queries [q0, q1) of the test queries in one request.
  v1::SearchResponse SearchQueries(const std::string& field, size_t q0, size_t q1, float refine,
                                   uint32_t nprobe, const std::string& filter, bool explain,
                                   v1::FilterStrategy strategy = v1::FILTER_STRATEGY_AUTO) {
    v1::SearchRequest req;
    req.set_collection("d");
    req.set_field(field);
    req.set_k(kK);
    req.set_filter(filter);
    req.set_explain(explain);
    req.mutable_params()->set_refine_factor(refine);
    req.mutable_params()->set_nprobe(nprobe);
    req.mutable_params()->set_ef(nprobe);  // HNSW_SQ8: the same knob, widened
    req.mutable_params()->set_filter_strategy(strategy);
    for (size_t q = q0; q < q1; ++q) AddQuery(q, &req);
    v1::SearchResponse resp;
    const absl::Status s = engine_->Search(req, absl::InfiniteFuture(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    return resp;
  }

  // Same ids in the same order and the same scores (relative tolerance for
  // the exact scan's sgemm rounding), query by query.
  static void ExpectSame(const v1::SearchResponse& a, const v1::SearchResponse& b,
                         double tol = 0) {
    ASSERT_EQ(a.results_size(), b.results_size());
    for (int q = 0; q < a.results_size(); ++q) {
      ASSERT_EQ(a.results(q).hits_size(), b.results(q).hits_size()) << "query " << q;
      for (int i = 0; i < a.results(q).hits_size(); ++i) {
        const v1::Hit& x = a.results(q).hits(i);
        const v1::Hit& y = b.results(q).hits(i);
        if (tol == 0) {
          EXPECT_EQ(x.id(), y.id()) << "query " << q << " rank " << i;
          EXPECT_EQ(x.score(), y.score()) << "query " << q << " rank " << i;
        } else {
          // Near-ties may swap under rounding: compare scores rank by rank.
          EXPECT_NEAR(x.score(), y.score(), tol * std::max(1.0f, std::abs(y.score())))
              << "query " << q << " rank " << i;
        }
      }
    }
  }

  double Recall(const v1::SearchResponse& got, const v1::SearchResponse& exact) {
    RecallSum sum;
    for (int q = 0; q < exact.results_size(); ++q) {
      sum.Add(HitIds(got.results(q)), HitIds(exact.results(q)));
    }
    return sum.value();
  }

  // VerifyCollection finds nothing wrong (files, rows, vectors, indexes).
  void ExpectVerifyClean() {
    v1::VerifyCollectionRequest req;
    req.set_name("d");
    v1::VerifyCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &resp));
    EXPECT_EQ(resp.defects_total(), 0u) << resp.DebugString();
    EXPECT_EQ(resp.rows_checked(), static_cast<uint64_t>(Describe().stats().point_count()));
  }

  v1::CollectionInfo Describe() {
    v1::GetCollectionRequest req;
    req.set_name("d");
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    return resp.collection();
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(DiskTest, DiskEqualsMemoryAndExactWhenRefineCoversEveryCandidate) {
  // Every list probed and every candidate reranked: both are exact.
  const v1::SearchResponse exact = Search("exact", 0);
  const v1::SearchResponse disk_all = Search("disk", 100, 4096);
  const v1::SearchResponse mem_all = Search("mem", 100, 4096);
  ExpectSame(disk_all, mem_all);
  ExpectSame(disk_all, exact, 1e-4);
  EXPECT_EQ(Recall(disk_all, exact), 1.0);
  // At any refine factor DISK and MEMORY rerank the same candidates with
  // the same exact distances.
  for (float rf : {0.0f, 1.0f, 3.0f}) ExpectSame(Search("disk", rf), Search("mem", rf));
  // The defaults keep recall where the issue wants it.
  const double r = Recall(Search("disk", 0), exact);
  std::printf("%s default refine: recall@10 %.3f\n", GetParam().c_str(), r);
  EXPECT_GE(r, 0.95);
  // Refine 1 (no rerank beyond k) is no better than the default.
  EXPECT_LE(Recall(Search("disk", 1), exact), r + 1e-9);
}

TEST_P(DiskTest, ExplainShowsRerankFromTheTable) {
  const v1::SearchResponse disk = Search("disk", 4, 0, "", true);
  ASSERT_EQ(disk.explain().segments_size(), 3) << disk.explain().text();
  // The first segment reads all its k x 4 candidates; later ones only those
  // still among the best k x 4 estimates over the segments seen.
  uint64_t reads = 0;
  for (int i = 0; i < 3; ++i) {
    const v1::SegmentPlan& sp = disk.explain().segments(i);
    if (i == 0) {
      EXPECT_EQ(sp.rerank_candidates(), kQueries * kK * 4) << disk.explain().text();
    }
    EXPECT_LE(sp.rerank_candidates(), kQueries * kK * 4) << disk.explain().text();
    EXPECT_EQ(sp.rerank_reads(), sp.rerank_candidates());
    EXPECT_NE(sp.plan().find("from rerank table"), std::string::npos) << sp.plan();
    reads += sp.rerank_reads();
  }
  std::printf("%s: %llu reads for 3 segments x %llu candidates\n", GetParam().c_str(),
              static_cast<unsigned long long>(reads),
              static_cast<unsigned long long>(kQueries * kK * 4));
  EXPECT_LT(reads, 3u * kQueries * kK * 4);
  // MEMORY reranks the same candidates, from memory.
  const v1::SearchResponse mem = Search("mem", 4, 0, "", true);
  ASSERT_EQ(mem.explain().segments_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const v1::SegmentPlan& sp = mem.explain().segments(i);
    EXPECT_EQ(sp.rerank_candidates(), disk.explain().segments(i).rerank_candidates());
    EXPECT_EQ(sp.rerank_reads(), 0u);
    EXPECT_NE(sp.plan().find("from memory"), std::string::npos) << sp.plan();
  }
}

TEST_P(DiskTest, ABatchReadsInChunksAndAnswersAsItsQueriesAlone) {
  // A batch submits its reads a chunk of queries at a time, so the device
  // reads while the later queries are searched; each query's answer is what
  // it gets alone, with each kind of candidate search under the rerank.
  const std::vector<std::pair<std::string, v1::FilterStrategy>> cases = {
      {"", v1::FILTER_STRATEGY_AUTO},
      {"n < 2000", v1::FILTERED_INDEX},
      {"n >= 1500", v1::POST_FILTER}};
  for (float refine : {1.0f, 4.0f}) {
    for (const auto& [filter, strategy] : cases) {
      SCOPED_TRACE(absl::StrCat("refine ", refine, " filter '", filter, "'"));
      const v1::SearchResponse batch =
          SearchQueries("disk", 0, kQueries, refine, 0, filter, true, strategy);
      ASSERT_EQ(batch.results_size(), static_cast<int>(kQueries));
      for (size_t q = 0; q < kQueries; ++q) {
        v1::SearchResponse got;
        *got.add_results() = batch.results(static_cast<int>(q));
        v1::SearchResponse want =
            SearchQueries("disk", q, q + 1, refine, 0, filter, true, strategy);
        want.clear_explain();
        ExpectSame(got, want);
      }
      // Chunks of RerankOp::kChunkReads records (at most kMaxChunks): every
      // segment that reranks from its table submits one batch of reads per
      // chunk (three segments never fill the queue).
      const size_t per_chunk =
          RerankOp::ChunkQueries(kQueries, static_cast<uint32_t>(kK * refine));
      const size_t chunks = (kQueries + per_chunk - 1) / per_chunk;
      ASSERT_LE(3 * chunks, RerankQueue::kMaxPending);
      ASSERT_GT(chunks, 1u);
      int reranked = 0;
      for (const v1::SegmentPlan& sp : batch.explain().segments()) {
        if (sp.plan().find("from rerank table") == std::string::npos) continue;
        ++reranked;
        EXPECT_NE(sp.plan().find(absl::StrCat(" in ", chunks, " batches)")), std::string::npos)
            << sp.plan();
      }
      EXPECT_GT(reranked, 0) << batch.explain().text();
    }
  }
}

TEST_P(DiskTest, MemoryAndDiskAccounting) {
  const v1::CollectionInfo info = Describe();
  ASSERT_EQ(info.stats().segments_size(), 3);
  for (const v1::SegmentInfo& seg : info.stats().segments()) {
    ASSERT_EQ(seg.state(), v1::SegmentInfo::INDEXED);
    std::map<std::string, const v1::SegmentInfo::Field*> f;
    for (const auto& x : seg.fields()) f[x.name()] = &x;
    const uint64_t vectors = seg.rows() * 784 * sizeof(float);
    // The DISK field holds its codes (and per-row norms); the MEMORY field
    // of the same kind holds those plus the vectors.
    EXPECT_LT(f["disk"]->memory_bytes(), vectors / 3) << f["disk"]->index();
    EXPECT_GE(f["mem"]->memory_bytes(), vectors);
    EXPECT_GE(f["disk"]->disk_bytes(), vectors);  // the table, plus the index file
    EXPECT_LT(f["mem"]->disk_bytes(), vectors);   // the index file only
  }
  EXPECT_EQ(TableFiles(dir_.path()).size(), 3u);
}

TEST_P(DiskTest, TablesSurviveRestartAndBadOnesAreRebuilt) {
  const v1::SearchResponse before = Search("disk", 3);
  const std::vector<std::string> tables = TableFiles(dir_.path());
  ASSERT_EQ(tables.size(), 3u);
  std::map<std::string, fs::file_time_type> mtime;
  for (const auto& t : tables) mtime[t] = fs::last_write_time(t);

  // A clean restart reuses every table.
  Open();
  ExpectSame(Search("disk", 3), before);
  for (const auto& t : TableFiles(dir_.path())) EXPECT_EQ(fs::last_write_time(t), mtime[t]) << t;

  // One bit flipped, one truncated, one gone.
  engine_.reset();
  {
    std::fstream f(tables[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(4096 + 784 * 4 * 17 + 5);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(4096 + 784 * 4 * 17 + 5);
    f.write(&c, 1);
  }
  fs::resize_file(tables[1], fs::file_size(tables[1]) - 100);
  fs::remove(tables[2]);
  Open();
  // Served correctly from memory (loaded from RocksDB) meanwhile, then from
  // rebuilt tables.
  ExpectSame(Search("disk", 3), before);
  engine_->SealAndWaitForIndexes();
  const std::vector<std::string> rebuilt = TableFiles(dir_.path());
  ASSERT_EQ(rebuilt.size(), 3u);
  const v1::SearchResponse after = Search("disk", 3, 0, "", true);
  ExpectSame(after, before);
  for (const v1::SegmentPlan& sp : after.explain().segments()) {
    EXPECT_NE(sp.plan().find("from rerank table"), std::string::npos) << sp.plan();
  }
  // And they verify on the next start.
  std::map<std::string, fs::file_time_type> mtime2;
  for (const auto& t : rebuilt) mtime2[t] = fs::last_write_time(t);
  Open();
  for (const auto& t : TableFiles(dir_.path())) EXPECT_EQ(fs::last_write_time(t), mtime2[t]) << t;
  ExpectSame(Search("disk", 3), before);
  ExpectVerifyClean();
}

// A restart reads every table row through its mapping (norms, the
// comparison with RocksDB, the indexes' self-checks); that must not leave
// the tables resident in the process, or a DISK field would cost as much
// resident memory as a MEMORY one. An exact scan maps what it reads again.
TEST_P(DiskTest, ARestartLeavesTheTablesOutOfResidentMemory) {
  const v1::SearchResponse before = Search("disk", 3);
  Open();
  const std::vector<std::string> tables = TableFiles(dir_.path());
  ASSERT_EQ(tables.size(), 3u);
  uint64_t table_bytes = 0, resident = 0;
  for (const auto& t : tables) {
    table_bytes += fs::file_size(t);
    resident += MappedResidentBytes(fs::canonical(t).string());
  }
  EXPECT_LT(resident, table_bytes / 20) << resident << " of " << table_bytes << " bytes resident";
  ExpectSame(Search("disk", 3), before);
  v1::SearchRequest req;
  req.set_collection("d");
  req.set_field("disk");
  req.set_k(kK);
  req.mutable_params()->set_exact(true);
  AddQuery(0, &req);
  v1::SearchResponse exact;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &exact));
  uint64_t after_scan = 0;
  for (const auto& t : tables) after_scan += MappedResidentBytes(fs::canonical(t).string());
  EXPECT_GT(after_scan, table_bytes / 2) << "an exact scan reads the tables through the mapping";
}

TEST_P(DiskTest, VectorsFiltersDeletesAndCompactionReadTheTable) {
  // Vectors returned by Get and by search come from the table, exactly.
  v1::GetPointsRequest get;
  get.set_collection("d");
  get.set_with_vectors(true);
  for (int id : {0, 999, 1000, 2999}) get.add_ids(std::to_string(id));
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  ASSERT_EQ(got.points_size(), 4);
  for (const v1::Point& p : got.points()) {
    const size_t i = std::stoul(p.id());
    const auto& v = p.vectors().at("disk").values();
    ASSERT_EQ(v.size(), 784);
    for (int j = 0; j < 784; ++j) ASSERT_EQ(v[j], Fashion().base[i * 784 + j]) << p.id();
  }
  // A filter evaluated exactly (PRE_FILTER reads the table's vectors).
  const v1::SearchResponse pre_exact = Search("exact", 0, 0, "n < 300");
  const v1::SearchResponse pre_disk = Search("disk", 0, 0, "n < 300");
  EXPECT_GE(Recall(pre_disk, pre_exact), 0.95);
  for (const auto& r : pre_disk.results()) {
    for (const auto& h : r.hits()) EXPECT_LT(std::stoi(h.id()), 300);
  }
  // Delete most of the first two segments: compaction rewrites them from
  // the tables into a new segment with a new table.
  v1::DeletePointsRequest del;
  del.set_collection("d");
  for (int i = 0; i < 1700; i += 2) del.add_ids(std::to_string(i));
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  EXPECT_EQ(dresp.deleted_count(), 850u);
  engine_->SealAndWaitForIndexes();
  const v1::SearchResponse exact = Search("exact", 0);
  const v1::SearchResponse disk = Search("disk", 100, 4096);
  ExpectSame(disk, exact, 1e-4);
  for (const auto& r : disk.results()) {
    for (const auto& h : r.hits()) {
      const int i = std::stoi(h.id());
      EXPECT_FALSE(i < 1700 && i % 2 == 0) << "deleted point " << i << " returned";
    }
  }
  Open();
  ExpectSame(Search("disk", 100, 4096), disk);
  ExpectVerifyClean();
}

INSTANTIATE_TEST_SUITE_P(Kinds, DiskTest, ::testing::Values("IVF_SQ8", "IVF_PQ", "HNSW_SQ8"),
                         [](const auto& info) { return info.param; });

// A large batch over many segments: at most kMaxChunks read batches a
// segment, and once RerankQueue::kMaxPending batches wait, later segments
// read in one batch each (every batch holds an io_uring ring until the
// search finishes).
TEST(DiskChunkTest, ALargeBatchKeepsItsPendingReadsBounded) {
  if (Fashion().base.empty()) GTEST_SKIP() << "Fashion-MNIST not installed";
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.collection.segment_max_rows = 300;  // ten sealed segments
  auto opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Engine> engine = *std::move(opened);
  v1::CreateCollectionRequest req;
  req.set_name("d");
  v1::VectorField f = VectorField("v", 784, v1::L2);
  f.mutable_index()->set_type("IVF_SQ8");
  f.set_storage(v1::DISK);
  *req.mutable_schema()->add_vectors() = f;
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine->CreateCollection(req, &cresp));
  v1::UpsertPointsResponse uresp;
  QUIVER_ASSERT_OK(engine->Upsert(FashionPoints("d", {"v"}, false), &uresp));
  engine->SealAndWaitForIndexes();

  constexpr size_t kBatch = 10 * kQueries;  // each query ten times
  v1::SearchRequest sreq;
  sreq.set_collection("d");
  sreq.set_k(kK);
  sreq.set_explain(true);
  sreq.mutable_params()->set_refine_factor(1);
  for (size_t r = 0; r < kBatch; ++r) AddQuery(r % kQueries, &sreq);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine->Search(sreq, absl::InfiniteFuture(), &resp));
  ASSERT_EQ(resp.results_size(), static_cast<int>(kBatch));
  for (size_t r = kQueries; r < kBatch; ++r) {  // repeats answer as the first
    const v1::SearchResult& a = resp.results(static_cast<int>(r % kQueries));
    const v1::SearchResult& b = resp.results(static_cast<int>(r));
    ASSERT_EQ(HitIds(a), HitIds(b)) << "query " << r;
  }
  ASSERT_EQ(RerankOp::ChunkQueries(kBatch, kK), kBatch / RerankOp::kMaxChunks);
  std::vector<size_t> batches;
  for (const v1::SegmentPlan& sp : resp.explain().segments()) {
    ASSERT_NE(sp.plan().find("from rerank table"), std::string::npos) << sp.plan();
    const size_t at = sp.plan().find(" batches)");
    size_t n = 1;
    if (at != std::string::npos) {
      const size_t from = sp.plan().rfind(' ', at - 1) + 1;
      n = std::stoul(sp.plan().substr(from, at - from));
    }
    batches.push_back(n);
  }
  ASSERT_EQ(batches.size(), 10u) << resp.explain().text();
  size_t pending = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    // Split in kMaxChunks while the queue has room; the one that reaches the
    // limit sends its rest at once; every segment after it, one batch.
    const size_t want = pending + 1 >= RerankQueue::kMaxPending ? 1
                        : pending + RerankOp::kMaxChunks <= RerankQueue::kMaxPending
                            ? RerankOp::kMaxChunks
                            : RerankQueue::kMaxPending - pending;
    EXPECT_EQ(batches[i], want) << "segment " << i << "\n" << resp.explain().text();
    pending += batches[i];
  }
  EXPECT_LE(pending, RerankQueue::kMaxPending + batches.size());
}

TEST(DiskSchemaTest, DiskNeedsACompressedIndexAndGoodParams) {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  auto e = Engine::Open(o);
  ASSERT_TRUE(e.ok());
  auto create = [&](const std::string& type, v1::StorageMode storage) {
    v1::CreateCollectionRequest req;
    req.set_name("c" + type + std::to_string(storage));
    v1::VectorField f = VectorField("v", 8, v1::L2);
    f.mutable_index()->set_type(type);
    f.set_storage(storage);
    *req.mutable_schema()->add_vectors() = f;
    v1::CreateCollectionResponse resp;
    return (*e)->CreateCollection(req, &resp);
  };
  EXPECT_THAT(create("HNSW", v1::DISK), StatusIs(absl::StatusCode::kInvalidArgument, "compressed"));
  EXPECT_THAT(create("FLAT", v1::DISK), StatusIs(absl::StatusCode::kInvalidArgument, "compressed"));
  EXPECT_THAT(create("IVF_FLAT", v1::DISK), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(create("FLAT", static_cast<v1::StorageMode>(7)),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage"));
  EXPECT_TRUE(create("IVF_SQ8", v1::DISK).ok());
  EXPECT_TRUE(create("IVF_SQ8", v1::MEMORY).ok());

  // A DISK field cannot be switched to an index that needs its vectors.
  v1::UpdateCollectionRequest up;
  up.set_name("cIVF_SQ82");
  v1::VectorFieldUpdate* u = up.add_vectors();
  u->set_field("v");
  u->mutable_index()->set_type("HNSW");
  v1::UpdateCollectionResponse uresp;
  EXPECT_THAT((*e)->UpdateCollection(up, &uresp),
              StatusIs(absl::StatusCode::kInvalidArgument, "compressed"));

  // refine_factor must be 0 or >= 1.
  for (float rf : {0.5f, -1.0f, std::nanf("")}) {
    v1::SearchRequest req;
    req.set_collection("cIVF_SQ82");
    req.set_k(1);
    req.add_vectors()->mutable_values()->Resize(8, 0.5f);
    req.mutable_params()->set_refine_factor(rf);
    v1::SearchResponse resp;
    EXPECT_THAT((*e)->Search(req, absl::InfiniteFuture(), &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, "refine_factor"));
  }
}

}  // namespace
}  // namespace quiver
