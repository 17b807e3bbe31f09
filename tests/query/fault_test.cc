// Power loss and I/O errors, in process, against the real engine with sync
// durability, through tests/common/fault_file_system.h:
//   - PowerLossTest cuts a run of mixed upserts, deletes, seals, index
//     builds, persists and compactions after N file operations, for N
//     across the whole run, drops everything not synced (in RocksDB's files
//     and ours) and reopens: recovery must succeed, every acknowledged
//     write must be there and nothing may be corrupt (VerifyCollection).
//   - IoErrorTest fails one file operation (EIO or ENOSPC) at each site
//     Quiver and RocksDB write through -- WAL, the recovery flush, RocksDB's
//     MANIFEST and CURRENT, segment index files, segment MANIFESTs and
//     directory renames, rerank tables -- and checks the client's status,
//     that the engine recovers once the fault is gone, and that after a
//     reopen the data is whole and no half-written file is trusted.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "tests/common/fault_file_system.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::quiver::testing::Attribute;
using ::quiver::testing::FaultFileSystem;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;
using Op = FaultFileSystem::Op;

constexpr char kColl[] = "c";
constexpr uint32_t kDim = 8;
constexpr int kIds = 120;

// The vector of point `id` at `version`: exact floats, compared exactly.
std::vector<float> Vec(int id, int version) {
  std::vector<float> v(kDim);
  for (uint32_t i = 0; i < kDim; ++i) {
    v[i] = static_cast<float>(std::sin(id * 7.0 + version * 13.0 + i));
  }
  return v;
}

// What the client was told: id -> version of the last acknowledged upsert
// (absent: never written or deleted). `maybe` holds ids whose last write's
// outcome is unknown (it returned while the power was off, or failed), with
// the version it would have left (-1: deleted).
struct Model {
  std::map<int, int> live;
  std::map<int, int> maybe;
};

class FaultEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { fs_ = FaultFileSystem::Create(dir_.path() + "/trash"); }
  void TearDown() override { engine_.reset(); }

  std::string data() const { return dir_.path() + "/" + run_; }

  absl::Status Open() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = data();
    o.store.fs = fs_;
    o.store.durability = storage::Durability::kSync;
    o.collection.segment_max_rows = 30;
    o.seal_idle = absl::Milliseconds(100);
    o.persist_retry = absl::Milliseconds(50);
    o.search_threads = 1;
    // Every upsert's rows are staged while its write runs, so every fault
    // below also meets rows to take back.
    o.stage_min_bytes = 0;
    absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Open(o);
    if (!e.ok()) return e.status();
    engine_ = *std::move(e);
    return absl::OkStatus();
  }

  absl::Status Create() {
    v1::CreateCollectionRequest req;
    req.set_name(kColl);
    v1::VectorField v = VectorField("v", kDim, v1::L2);
    v.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = v;
    v1::VectorField d = VectorField("d", kDim, v1::L2);
    d.mutable_index()->set_type("IVF_SQ8");
    (*d.mutable_index()->mutable_params())["nlist"] = "2";
    d.set_storage(v1::DISK);
    *req.mutable_schema()->add_vectors() = d;
    *req.mutable_schema()->add_attributes() = Attribute("n", v1::INT64);
    v1::CreateCollectionResponse resp;
    return engine_->CreateCollection(req, &resp);
  }

  absl::Status Upsert(const std::vector<std::pair<int, int>>& points) {
    v1::UpsertPointsRequest req;
    req.set_collection(kColl);
    for (const auto& [id, version] : points) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(id));
      const std::vector<float> v = Vec(id, version);
      for (const char* f : {"v", "d"}) {
        (*p->mutable_vectors())[f].mutable_values()->Add(v.begin(), v.end());
      }
      (*p->mutable_attributes())["n"].set_int_value(version);
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  absl::Status Delete(const std::vector<int>& ids) {
    v1::DeletePointsRequest req;
    req.set_collection(kColl);
    for (int id : ids) req.add_ids(std::to_string(id));
    v1::DeletePointsResponse resp;
    return engine_->Delete(req, &resp);
  }

  // Ids 0 .. 10 * batches - 1 at `version`, 10 a request, acknowledged
  // into *m. Six batches (60 points, 30 a segment): two sealed segments and
  // a growing one.
  void Load(Model* m, int version, int batches = 6) {
    for (int b = 0; b < batches; ++b) {
      std::vector<std::pair<int, int>> batch;
      for (int i = 0; i < 10; ++i) batch.emplace_back(b * 10 + i, version);
      QUIVER_ASSERT_OK(Upsert(batch));
      for (const auto& [id, v] : batch) m->live[id] = v;
    }
  }

  // Once a full disk has space again, the store resumes RocksDB at the next
  // write (at most once a second): retries `write` until it succeeds, for
  // up to 4 s, and returns its last status.
  static absl::Status UntilWritesResume(const std::function<absl::Status()>& write) {
    absl::Status s;
    for (int i = 0; i < 40; ++i) {
      s = write();
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return s;
  }

  // Fails the next append to RocksDB's WAL with `err`.
  void FailNextWalAppend(int err) {
    FaultFileSystem::Fault f;
    f.op = Op::kAppend;
    f.path_contains = ".log";
    f.err = err;
    f.times = 1;
    fs_->Inject(f);
  }

  // Checks every id against the model: exact vectors and attribute.
  void ExpectModel(const Model& m) {
    v1::GetPointsRequest req;
    req.set_collection(kColl);
    req.set_with_vectors(true);
    for (int id = 0; id < kIds; ++id) req.add_ids(std::to_string(id));
    v1::GetPointsResponse resp;
    QUIVER_ASSERT_OK(engine_->GetPoints(req, &resp));
    std::map<int, const v1::Point*> got;
    for (const v1::Point& p : resp.points()) got[std::stoi(p.id())] = &p;
    for (int id = 0; id < kIds; ++id) {
      std::set<int> allowed;  // versions; -1 for absent
      auto live = m.live.find(id);
      allowed.insert(live == m.live.end() ? -1 : live->second);
      if (auto maybe = m.maybe.find(id); maybe != m.maybe.end()) allowed.insert(maybe->second);
      auto it = got.find(id);
      if (it == got.end()) {
        EXPECT_TRUE(allowed.count(-1)) << "acknowledged point " << id << " lost";
        continue;
      }
      const v1::Point& p = *it->second;
      const int version = static_cast<int>(p.attributes().at("n").int_value());
      EXPECT_TRUE(allowed.count(version))
          << "point " << id << " has version " << version << ", expected " << *allowed.rbegin();
      const std::vector<float> want = Vec(id, version);
      for (const char* f : {"v", "d"}) {
        ASSERT_TRUE(p.vectors().contains(f)) << id << " " << f;
        const auto& vals = p.vectors().at(f).values();
        EXPECT_TRUE(std::equal(vals.begin(), vals.end(), want.begin(), want.end()))
            << "point " << id << " field " << f << " corrupt";
      }
    }
  }

  void ExpectVerifies(const std::string& collection = kColl) {
    v1::VerifyCollectionRequest req;
    req.set_name(collection);
    req.set_vector_sample_rows(1000);
    v1::VerifyCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->VerifyCollection(req, &resp));
    EXPECT_EQ(resp.defects_total(), 0u) << resp.DebugString();
  }

  // A search over both fields answers (the indexes and tables load).
  void ExpectSearches() {
    for (const char* f : {"v", "d"}) {
      v1::SearchRequest req;
      req.set_collection(kColl);
      req.set_field(f);
      req.set_k(5);
      const std::vector<float> q = Vec(1, 1);
      req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(req, StopToken(), &resp));
    }
  }

  // Waits until every indexed segment's files are written (disk_bytes).
  bool WaitPersisted(absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      v1::GetCollectionRequest req;
      req.set_name(kColl);
      v1::GetCollectionResponse resp;
      if (!engine_->GetCollection(req, &resp).ok()) return false;
      bool all = true;
      for (const v1::SegmentInfo& s : resp.collection().stats().segments()) {
        if (s.state() == v1::SegmentInfo::GROWING) continue;
        if (s.state() != v1::SegmentInfo::INDEXED) all = false;
        for (const auto& f : s.fields()) all = all && f.disk_bytes() > 0;
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // No temporary file or directory of a failed write is left behind. A
  // persist still running (a compaction's output, say) has one for a
  // moment: wait for it to go.
  void ExpectNoLeftovers() {
    std::vector<std::string> left;
    for (int i = 0; i < 100; ++i) {
      left.clear();
      std::error_code ec;
      for (const auto& e : fs::recursive_directory_iterator(data() + "/segments", ec)) {
        const std::string name = e.path().filename().string();
        if (absl::StartsWith(name, ".tmp-") || absl::EndsWith(name, ".tmp")) {
          left.push_back(e.path().string());
        }
      }
      if (left.empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "left behind: " << left.front() << " and " << left.size() - 1 << " more";
  }

  TempDir dir_;
  std::string run_ = "data";  // the data directory's name under dir_
  std::shared_ptr<FaultFileSystem> fs_;
  std::unique_ptr<Engine> engine_;
};

// ------------------------------------------------------------ power loss

class PowerLossTest : public FaultEngineTest {
 protected:
  // The workload; stops after the first write that returns with the power
  // off (its outcome goes to `maybe`). Returns whether the collection's
  // creation was acknowledged with the power on.
  bool Run(Model* m, uint64_t seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    if (!Create().ok() || fs_->powered_off()) return false;
    int version = 1;
    for (int round = 0; round < 14; ++round) {
      std::vector<std::pair<int, int>> batch;
      std::set<int> in_batch;
      for (int i = 0; i < 12; ++i) {
        const int id = static_cast<int>(rng() % kIds);
        if (in_batch.insert(id).second) batch.emplace_back(id, ++version);
      }
      absl::Status s = Upsert(batch);
      const bool off = fs_->powered_off();
      for (const auto& [id, v] : batch) {
        if (s.ok() && !off) {
          m->live[id] = v;
        } else {
          m->maybe[id] = v;
        }
      }
      if (off || !s.ok()) return true;
      if (round % 3 == 2) {
        std::vector<int> del;
        for (int i = 0; i < 8; ++i) del.push_back(static_cast<int>(rng() % kIds));
        s = Delete(del);
        const bool off2 = fs_->powered_off();
        for (int id : del) {
          if (s.ok() && !off2) {
            m->live.erase(id);
          } else {
            m->maybe[id] = -1;
          }
        }
        if (off2 || !s.ok()) return true;
      }
      // Seals, index builds, persists and (with the deletes) compactions.
      if (round % 4 == 3) engine_->SealAndWaitForIndexes();
    }
    return true;
  }

  // One cut: run, power off after `cut` operations (0: never), let the
  // background work go on a little, close, drop, reopen and check.
  void CutAt(uint64_t cut, bool torn_tail, uint64_t* total_ops) {
    SCOPED_TRACE(absl::StrCat("cut after ", cut, " file operations",
                              torn_tail ? " (torn tails)" : ""));
    if (cut > 0) fs_->PowerOffAfter(cut);
    QUIVER_ASSERT_OK(Open());
    Model m;
    const bool created = Run(&m, 7);
    engine_->SealAndWaitForIndexes();
    WaitPersisted(absl::Seconds(2));
    engine_.reset();
    if (total_ops != nullptr) *total_ops = fs_->ops();
    if (cut == 0) fs_->PowerOff();  // whatever the clean shutdown left unsynced
    QUIVER_ASSERT_OK(fs_->DropUnsyncedData(torn_tail, cut));
    absl::Status reopened = Open();
    ASSERT_TRUE(reopened.ok()) << "recovery failed: " << reopened;
    v1::GetCollectionRequest g;
    g.set_name(kColl);
    v1::GetCollectionResponse gr;
    if (!engine_->GetCollection(g, &gr).ok()) {
      EXPECT_FALSE(created) << "acknowledged collection lost";
      return;
    }
    ExpectModel(m);
    ExpectVerifies();
    ExpectSearches();
    // Writable after recovery, and what it writes persists.
    QUIVER_ASSERT_OK(Upsert({{0, 999}}));
    engine_->SealAndWaitForIndexes();
    EXPECT_TRUE(WaitPersisted());
    ExpectVerifies();
  }
};

TEST_F(PowerLossTest, EveryAcknowledgedWriteSurvivesAtEveryCut) {
  uint64_t total = 0;
  {
    SCOPED_TRACE("no cut");
    CutAt(0, false, &total);
  }
  ASSERT_GT(total, 100u);
  // The cut points: spread over the whole run, early ones denser (the
  // collection's creation and first flushes).
  std::vector<uint64_t> cuts = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
  constexpr int kSpread = 30;
  for (int i = 1; i <= kSpread; ++i) cuts.push_back(total * i / (kSpread + 1));
  int n = 0;
  for (uint64_t cut : cuts) {
    engine_.reset();
    std::error_code ec;
    fs::remove_all(data(), ec);
    run_ = absl::StrCat("cut", cut);
    fs_ = FaultFileSystem::Create(absl::StrCat(dir_.path(), "/trash", cut));
    CutAt(cut, (n++ % 2) == 1, nullptr);
    if (HasFatalFailure()) return;
  }
  std::printf("power-loss cut points: %zu (of %llu file operations in a full run)\n",
              cuts.size(), static_cast<unsigned long long>(total));
}

// ------------------------------------------------------------ I/O errors

// Where a fault is injected and what the client should see.
struct Site {
  const char* name;
  Op op;
  const char* path;  // substring of the path
  enum When { kWrite, kReopen, kPersist } when;
  bool torn = false;
};

// Every write and sync site, grouped by when it happens.
const Site kSites[] = {
    // The WAL, written and synced before a write is acknowledged.
    {"wal-write", Op::kAppend, ".log", Site::kWrite},
    {"wal-torn-write", Op::kAppend, ".log", Site::kWrite, true},
    {"wal-fsync", Op::kSync, ".log", Site::kWrite},
    // Recovery: the replayed WAL is flushed to an SST (the memtable flush),
    // recorded in RocksDB's MANIFEST, which CURRENT names.
    {"flush-sst-write", Op::kAppend, ".sst", Site::kReopen},
    {"flush-sst-fsync", Op::kSync, ".sst", Site::kReopen},
    {"flush-sst-create", Op::kCreate, ".sst", Site::kReopen},
    {"rocksdb-manifest-write", Op::kAppend, "/MANIFEST-", Site::kReopen},
    {"rocksdb-manifest-fsync", Op::kSync, "/MANIFEST-", Site::kReopen},
    {"rocksdb-current-rename", Op::kRename, ".dbtmp", Site::kReopen},
    {"rocksdb-dir-fsync", Op::kSyncDir, "/db", Site::kReopen},
    {"wal-create", Op::kCreate, ".log", Site::kReopen},
    // Segment persist: index files, the segment MANIFEST, the directory
    // rename, rerank tables.
    {"index-create", Op::kCreate, ".index", Site::kPersist},
    {"index-write", Op::kAppend, ".index", Site::kPersist},
    {"index-torn-write", Op::kAppend, ".index", Site::kPersist, true},
    {"index-fsync", Op::kSync, ".index", Site::kPersist},
    {"segment-manifest-write", Op::kAppend, "segments/*/MANIFEST", Site::kPersist},
    {"segment-manifest-torn-write", Op::kAppend, "segments/*/MANIFEST", Site::kPersist, true},
    {"segment-manifest-fsync", Op::kSync, "segments/*/MANIFEST", Site::kPersist},
    {"segment-dir-fsync", Op::kSyncDir, "/.tmp-", Site::kPersist},
    {"segment-rename", Op::kRename, "/.tmp-", Site::kPersist},
    {"segment-dir-create", Op::kCreate, "/.tmp-", Site::kPersist},
    {"rerank-table-create", Op::kCreate, ".rrt", Site::kPersist},
    {"rerank-table-write", Op::kAppend, ".rrt", Site::kPersist},
    {"rerank-table-torn-write", Op::kAppend, ".rrt", Site::kPersist, true},
    {"rerank-table-fsync", Op::kSync, ".rrt", Site::kPersist},
    {"rerank-table-rename", Op::kRename, ".rrt", Site::kPersist},
    {"rerank-dir-fsync", Op::kSyncDir, "/rerank", Site::kPersist},
    {"collection-dir-fsync", Op::kSyncDir, "segments/c", Site::kPersist},
};

struct IoErrorCase {
  Site site;
  int err;
};

// For test listings: "wal-write EIO" rather than the bytes of the case.
void PrintTo(const IoErrorCase& c, std::ostream* os) {
  *os << c.site.name << " " << (c.err == ENOSPC ? "ENOSPC" : "EIO");
}

std::string CaseName(const ::testing::TestParamInfo<IoErrorCase>& info) {
  std::string n = absl::StrCat(info.param.site.name, "_", info.param.err == ENOSPC ? "ENOSPC" : "EIO");
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
}

std::vector<IoErrorCase> AllCases() {
  std::vector<IoErrorCase> out;
  for (const Site& s : kSites) {
    for (int err : {EIO, ENOSPC}) out.push_back({s, err});
  }
  return out;
}

class IoErrorTest : public FaultEngineTest, public ::testing::WithParamInterface<IoErrorCase> {
 protected:
  FaultFileSystem::Fault MakeFault(int times) const {
    FaultFileSystem::Fault f;
    f.op = GetParam().site.op;
    f.path_contains = GetParam().site.path;
    f.err = GetParam().err;
    f.torn = GetParam().site.torn;
    f.times = times;
    return f;
  }

  void ReopenAndCheck(const Model& m) {
    engine_.reset();
    fs_->ClearFaults();
    QUIVER_ASSERT_OK(Open());
    ExpectModel(m);
    engine_->SealAndWaitForIndexes();
    EXPECT_TRUE(WaitPersisted());
    ExpectVerifies();
    ExpectSearches();
    ExpectNoLeftovers();
  }
};

TEST_P(IoErrorTest, ClearStatusNoLossNoTrustedDamage) {
  const Site& site = GetParam().site;
  const int err = GetParam().err;
  QUIVER_ASSERT_OK(Open());
  QUIVER_ASSERT_OK(Create());
  Model m;
  switch (site.when) {
    case Site::kWrite: {
      Load(&m, 1);
      fs_->Inject(MakeFault(1));
      absl::Status s = Upsert({{100, 5}, {101, 5}});
      ASSERT_GT(fs_->faults_fired(), 0) << "the fault never fired";
      m.maybe[100] = m.maybe[101] = 5;
      if (err == ENOSPC) {
        EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
        EXPECT_NE(s.message().find("disk full"), absl::string_view::npos) << s;
        // Space is back: writes resume.
        fs_->ClearFaults();
        QUIVER_ASSERT_OK(UntilWritesResume([&] { return Upsert({{102, 6}}); }));
        m.live[102] = 6;
      } else {
        EXPECT_TRUE(absl::IsInternal(s) || absl::IsUnavailable(s)) << s;
        // The engine stops taking writes until it is reopened.
        EXPECT_TRUE(absl::IsUnavailable(Upsert({{103, 6}}))) ;
        m.maybe[103] = 6;
      }
      break;
    }
    case Site::kReopen: {
      Load(&m, 1);
      // Closed without a flush: the reopen replays the WAL and flushes it.
      fs_->Inject(MakeFault(1));
      engine_.reset();
      absl::Status s = Open();
      // A failed recovery is reported, never a crash; a full disk may be
      // survived by keeping the replayed WAL in memory.
      if (!s.ok()) {
        EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsResourceExhausted(s) ||
                    absl::IsDataLoss(s))
            << s;
        EXPECT_FALSE(absl::IsDataLoss(s)) << "an I/O error reported as data loss: " << s;
      }
      if (fs_->faults_fired() == 0) {
        // RocksDB did not reach this site on this reopen (nothing to flush
        // from the WAL, say): force the site with the next write.
        GTEST_SKIP() << "site not reached on reopen";
      }
      break;
    }
    case Site::kPersist: {
      fs_->Inject(MakeFault(2));
      Load(&m, 1);
      engine_->SealAndWaitForIndexes();
      // Writes never see a derived file fail; the segment serves from
      // memory and its persist is retried until it succeeds.
      ASSERT_TRUE(WaitPersisted()) << "segment never persisted after the fault";
      EXPECT_GT(fs_->faults_fired(), 0) << "the fault never fired";
      ExpectModel(m);
      ExpectVerifies();
      ExpectNoLeftovers();
      break;
    }
  }
  ReopenAndCheck(m);
}

INSTANTIATE_TEST_SUITE_P(Sites, IoErrorTest, ::testing::ValuesIn(AllCases()), CaseName);

// The rows of an upsert are copied into the growing segment while its WAL
// write runs (staged, unpublished). When that write fails they must go: a
// later write (after a full disk) or the idle seal (after an I/O error)
// publishes the growing segment's rows, and a row left behind would be
// served though the client was told its write failed (and nothing of it
// reached the disk). Checked without a reopen, which would rebuild memory
// from disk and hide it.
class StagedWriteFailsTest : public FaultEngineTest, public ::testing::WithParamInterface<int> {};

TEST_P(StagedWriteFailsTest, ItsRowsAreNeverServed) {
  const int err = GetParam();
  QUIVER_ASSERT_OK(Open());
  QUIVER_ASSERT_OK(Create());
  Model m;
  // 20 rows in the growing segment (30 rows a segment): the two below fit,
  // so they are staged.
  Load(&m, 1, 2);
  FailNextWalAppend(err);
  absl::Status s = Upsert({{100, 5}, {101, 5}});
  ASSERT_GT(fs_->faults_fired(), 0) << "the fault never fired";
  fs_->ClearFaults();
  if (err == ENOSPC) {
    ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
    // Space is back: the next write publishes the growing segment.
    QUIVER_ASSERT_OK(UntilWritesResume([&] { return Upsert({{102, 6}}); }));
    m.live[102] = 6;
  } else {
    ASSERT_TRUE(absl::IsInternal(s) || absl::IsUnavailable(s)) << s;
    // Writes are refused until a reopen; the growing segment is sealed
    // (and published) once idle.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ExpectModel(m);  // 100 and 101 absent: not in m
  v1::CountPointsRequest count;
  count.set_collection(kColl);
  count.set_filter("n = 5");  // scans the rows, not the id map
  v1::CountPointsResponse counted;
  QUIVER_ASSERT_OK(engine_->CountPoints(count, &counted));
  EXPECT_EQ(counted.count(), 0u);
  for (bool exact : {true, false}) {
    v1::SearchRequest req;
    req.set_collection(kColl);
    req.set_field("v");
    req.set_k(5);
    req.mutable_params()->set_exact(exact);
    for (int id : {100, 101}) {
      const std::vector<float> q = Vec(id, 5);
      req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
    }
    v1::SearchResponse resp;
    QUIVER_ASSERT_OK(engine_->Search(req, StopToken(), &resp));
    for (const v1::SearchResult& r : resp.results()) {
      for (const v1::Hit& h : r.hits()) {
        EXPECT_NE(h.id(), "100");
        EXPECT_NE(h.id(), "101");
      }
    }
  }
  if (err == ENOSPC) {
    ExpectVerifies();
    // Later upserts fill the growing segment and seal it as usual.
    for (int i = 0; i < 15; ++i) {
      QUIVER_ASSERT_OK(Upsert({{30 + i, 2}}));
      m.live[30 + i] = 2;
    }
    ExpectModel(m);
    engine_->SealAndWaitForIndexes();
    ExpectVerifies();
  }
}

// The same for rows with every kind of per-row data a segment counts: an
// optional vector some points lack, a multi-vector set, a sparse vector.
// What the failed rows added to the growing segment's memory figures goes
// with them, and the points written next are whole.
TEST_F(FaultEngineTest, StagedRowsOfEveryKindAreTakenBackWhole) {
  QUIVER_ASSERT_OK(Open());
  v1::CreateCollectionRequest create;
  create.set_name("rich");
  *create.mutable_schema()->add_vectors() = VectorField("v", kDim, v1::L2);
  v1::VectorField o = VectorField("o", kDim, v1::L2);
  o.set_optional(true);
  *create.mutable_schema()->add_vectors() = o;
  v1::VectorField m = VectorField("m", kDim, v1::IP);
  m.mutable_multi_vector();
  *create.mutable_schema()->add_vectors() = m;
  create.mutable_schema()->add_sparse_vectors()->set_name("sp");
  v1::CreateCollectionResponse created;
  QUIVER_ASSERT_OK(engine_->CreateCollection(create, &created));
  auto point = [](int id, int version) {
    v1::Point p;
    p.set_id(std::to_string(id));
    const std::vector<float> v = Vec(id, version);
    (*p.mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
    if (id % 2 == 0) (*p.mutable_vectors())["o"].mutable_values()->Add(v.begin(), v.end());
    v1::MultiVector& set = (*p.mutable_multi_vectors())["m"];
    for (int j = 0; j < 1 + id % 4; ++j) set.add_vectors()->mutable_values()->Add(v.begin(), v.end());
    v1::SparseVector& sp = (*p.mutable_sparse_vectors())["sp"];
    for (int j = 0; j < 3 + id % 5; ++j) {
      sp.add_indices(static_cast<uint32_t>(id * 10 + j));
      sp.add_values(1.0f + j);
    }
    return p;
  };
  auto upsert = [&](int first, int n, int version) {
    v1::UpsertPointsRequest req;
    req.set_collection("rich");
    for (int id = first; id < first + n; ++id) *req.add_points() = point(id, version);
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  };
  // Per segment and field: rows and memory, as GetCollection reports them.
  auto figures = [&] {
    v1::GetCollectionRequest req;
    req.set_name("rich");
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    std::vector<uint64_t> out;
    for (const v1::SegmentInfo& seg : resp.collection().stats().segments()) {
      out.push_back(seg.rows());
      for (const auto& f : seg.fields()) out.push_back(f.memory_bytes());
    }
    return out;
  };
  QUIVER_ASSERT_OK(upsert(0, 10, 1));
  const std::vector<uint64_t> before = figures();
  FailNextWalAppend(ENOSPC);
  EXPECT_TRUE(absl::IsResourceExhausted(upsert(10, 8, 1)));
  ASSERT_GT(fs_->faults_fired(), 0) << "the fault never fired";
  fs_->ClearFaults();
  EXPECT_EQ(figures(), before);
  QUIVER_ASSERT_OK(UntilWritesResume([&] { return upsert(20, 5, 2); }));
  v1::GetPointsRequest get;
  get.set_collection("rich");
  get.set_with_vectors(true);
  for (int id = 0; id < 25; ++id) get.add_ids(std::to_string(id));
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(get, &got));
  std::set<std::string> ids;
  for (const v1::Point& p : got.points()) {
    ids.insert(p.id());
    const int id = std::stoi(p.id());
    const v1::Point want = point(id, id >= 20 ? 2 : 1);
    EXPECT_EQ(p.vectors().contains("o"), want.vectors().contains("o")) << id;
    ASSERT_TRUE(p.multi_vectors().contains("m")) << id;
    EXPECT_EQ(p.multi_vectors().at("m").vectors_size(), want.multi_vectors().at("m").vectors_size())
        << id;
    ASSERT_TRUE(p.sparse_vectors().contains("sp")) << id;
    EXPECT_EQ(p.sparse_vectors().at("sp").indices_size(),
              want.sparse_vectors().at("sp").indices_size())
        << id;
  }
  std::set<std::string> want_ids;
  for (int id = 0; id < 10; ++id) want_ids.insert(std::to_string(id));
  for (int id = 20; id < 25; ++id) want_ids.insert(std::to_string(id));
  EXPECT_EQ(ids, want_ids);
  ExpectVerifies("rich");
}

INSTANTIATE_TEST_SUITE_P(Errors, StagedWriteFailsTest, ::testing::Values(ENOSPC, EIO),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == ENOSPC ? "ENOSPC" : "EIO");
                         });

// A fault that lasts: every persist fails until the disk has space again,
// the data stays searchable meanwhile, and nothing half-written survives.
TEST_F(FaultEngineTest, LastingDiskFullOnPersistRecovers) {
  QUIVER_ASSERT_OK(Open());
  QUIVER_ASSERT_OK(Create());
  FaultFileSystem::Fault f;
  f.op = Op::kAppend;
  f.path_contains = "segments/";
  f.err = ENOSPC;
  f.times = -1;
  fs_->Inject(f);
  Model m;
  Load(&m, 3);
  engine_->SealAndWaitForIndexes();
  EXPECT_FALSE(WaitPersisted(absl::Milliseconds(500)));
  EXPECT_GT(fs_->faults_fired(), 1);
  ExpectModel(m);
  ExpectSearches();
  ExpectNoLeftovers();
  fs_->ClearFaults();
  EXPECT_TRUE(WaitPersisted());
  ExpectVerifies();
  engine_.reset();
  QUIVER_ASSERT_OK(Open());
  ExpectModel(m);
  ExpectVerifies();
}

// Compaction on a disk that stays full for segment files: the compacted
// segment (indexes and a DISK field's rerank table) cannot be written, yet
// it is swapped in and serves from memory, the collection keeps taking
// writes (RocksDB still has room) and answering, a restart meanwhile loses
// nothing, and its files are written once there is space again.
TEST_F(FaultEngineTest, CompactionOnAFullDiskServesFromMemoryAndPersistsLater) {
  QUIVER_ASSERT_OK(Open());
  QUIVER_ASSERT_OK(Create());
  Model m;
  for (int b = 0; b < 3; ++b) {  // three sealed segments of 30 rows
    std::vector<std::pair<int, int>> batch;
    for (int i = 0; i < 30; ++i) batch.emplace_back(b * 30 + i, 1);
    QUIVER_ASSERT_OK(Upsert(batch));
    for (const auto& [id, v] : batch) m.live[id] = v;
  }
  engine_->SealAndWaitForIndexes();
  ASSERT_TRUE(WaitPersisted());
  auto segments = [&] {
    v1::GetCollectionRequest req;
    req.set_name(kColl);
    v1::GetCollectionResponse resp;
    EXPECT_TRUE(engine_->GetCollection(req, &resp).ok());
    std::set<uint64_t> ids;
    for (const auto& s : resp.collection().stats().segments()) ids.insert(s.id());
    return ids;
  };
  const std::set<uint64_t> before = segments();

  FaultFileSystem::Fault f;
  f.op = Op::kAppend;
  f.path_contains = "segments/";
  f.err = ENOSPC;
  f.times = -1;
  fs_->Inject(f);
  // Two thirds of every segment deleted: each is due for compaction.
  std::vector<int> del;
  for (int id = 0; id < 90; ++id) {
    if (id % 3 != 0) del.push_back(id);
  }
  QUIVER_ASSERT_OK(Delete(del));
  for (int id : del) m.live.erase(id);
  // Compactions are planned by the maintenance tick; wait until one swapped.
  for (int i = 0; i < 200 && segments() == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    engine_->SealAndWaitForIndexes();
  }
  ASSERT_NE(segments(), before) << "no compaction ran";
  EXPECT_GT(fs_->faults_fired(), 0);
  EXPECT_FALSE(WaitPersisted(absl::Milliseconds(300)));
  ExpectModel(m);
  ExpectSearches();
  QUIVER_ASSERT_OK(Upsert({{100, 2}, {101, 2}}));
  m.live[100] = m.live[101] = 2;
  ExpectModel(m);
  ExpectNoLeftovers();

  // A restart with the disk still full: everything is there.
  engine_.reset();
  QUIVER_ASSERT_OK(Open());
  ExpectModel(m);
  ExpectSearches();

  fs_->ClearFaults();
  engine_->SealAndWaitForIndexes();
  EXPECT_TRUE(WaitPersisted());
  ExpectVerifies();
  engine_.reset();
  QUIVER_ASSERT_OK(Open());
  ExpectModel(m);
  ExpectVerifies();
}

}  // namespace
}  // namespace quiver
