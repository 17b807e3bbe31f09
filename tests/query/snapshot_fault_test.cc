// Snapshots against a failing disk: ENOSPC (and EIO) at each place a
// snapshot writes -- the exported database, the linked (here: copied, the
// fault file system has no links) segment files and rerank tables, the
// packed file, its sync and its rename -- gives the file system's status
// (RESOURCE_EXHAUSTED for a full disk), lists nothing and leaves nothing in
// the snapshot directory; once the disk is back the same snapshot is taken
// and restores. Also: a restore whose import fails midway leaves no
// collection and no data behind. A crafted snapshot whose segment MANIFEST
// names an index file outside its directory is refused before anything
// changes, online and offline.
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "storage/segment_files.h"
#include "storage/snapshot_file.h"
#include "tests/common/fault_file_system.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::FaultFileSystem;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using Op = FaultFileSystem::Op;

constexpr uint32_t kDim = 8;

class SnapshotFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = FaultFileSystem::Create(dir_.path() + "/trash");
    options_.data_dir = dir_.path() + "/data";
    options_.store.fs = fs_;
    options_.collection.segment_max_rows = 50;
    options_.seal_idle = absl::Milliseconds(50);
    options_.search_threads = 1;
    Reopen();
    if (HasFatalFailure()) return;
    v1::CreateCollectionRequest req;
    req.set_name("c");
    v1::VectorField v = ::quiver::testing::VectorField("v", kDim, v1::L2);
    v.mutable_index()->set_type("HNSW");
    *req.mutable_schema()->add_vectors() = v;
    v1::VectorField d = ::quiver::testing::VectorField("d", kDim, v1::L2);
    d.mutable_index()->set_type("IVF_SQ8");
    (*d.mutable_index()->mutable_params())["nlist"] = "2";
    d.set_storage(v1::DISK);
    *req.mutable_schema()->add_vectors() = d;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    for (int i = 0; i < 200; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(absl::StrCat("p", i));
      for (const char* f : {"v", "d"}) {
        auto* vals = (*p->mutable_vectors())[f].mutable_values();
        for (uint32_t k = 0; k < kDim; ++k) vals->Add(static_cast<float>((i * 13 + k) % 17));
      }
    }
    v1::UpsertPointsResponse ur;
    QUIVER_ASSERT_OK(engine_->Upsert(up, &ur));
    engine_->SealAndWaitForIndexes();
  }

  // Closes the engine (if open) and opens it again on the same files.
  void Reopen() {
    engine_.reset();
    absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Open(options_);
    QUIVER_ASSERT_OK(e);
    engine_ = *std::move(e);
  }

  uint64_t Count(const std::string& coll) {
    v1::CountPointsRequest cr;
    cr.set_collection(coll);
    v1::CountPointsResponse count;
    const absl::Status s = engine_->CountPoints(cr, &count);
    EXPECT_TRUE(s.ok()) << s;
    return count.count();
  }

  std::vector<std::string> SnapshotDirEntries() {
    absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir_.path() + "/data/snapshots");
    return names.ok() ? *names : std::vector<std::string>{};
  }

  TempDir dir_;
  std::shared_ptr<FaultFileSystem> fs_;
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
};

struct Site {
  const char* name;
  Op op;
  const char* path;
};

TEST_F(SnapshotFaultTest, AFailedWriteLeavesNoSnapshot) {
  const Site sites[] = {
      {"export", Op::kAppend, "snapshots/.tmp-*/db/"},
      {"export_create", Op::kCreate, "snapshots/.tmp-*/db/"},
      {"segment_copy", Op::kAppend, "snapshots/.tmp-*/segments/*index"},
      {"table_copy", Op::kAppend, "snapshots/.tmp-*/rerank/"},
      {"pack", Op::kAppend, "snapshots/s.qsnap.tmp"},
      {"pack_sync", Op::kSync, "snapshots/s.qsnap.tmp"},
      {"rename", Op::kRename, "snapshots/s.qsnap"},
  };
  for (const Site& site : sites) {
    for (int err : {ENOSPC, EIO}) {
      SCOPED_TRACE(absl::StrCat(site.name, " ", err == ENOSPC ? "ENOSPC" : "EIO"));
      FaultFileSystem::Fault f;
      f.op = site.op;
      f.err = err;
      f.path_contains = site.path;
      f.times = -1;
      fs_->Inject(f);
      absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("s", "");
      const int fired = fs_->faults_fired();
      fs_->ClearFaults();
      ASSERT_GT(fired, 0) << "the fault site was never reached";
      ASSERT_FALSE(m.ok());
      if (err == ENOSPC) {
        EXPECT_THAT(m, StatusIs(absl::StatusCode::kResourceExhausted, "disk full"));
      }
      absl::StatusOr<std::vector<storage::SnapshotManifest>> list = engine_->ListSnapshots(nullptr);
      QUIVER_ASSERT_OK(list);
      EXPECT_TRUE(list->empty());
      EXPECT_TRUE(SnapshotDirEntries().empty())
          << "left: " << (SnapshotDirEntries().empty() ? "" : SnapshotDirEntries()[0]);
    }
  }
  // The disk is back: the same snapshot now, and it restores.
  absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("s", "");
  QUIVER_ASSERT_OK(m);
  absl::StatusOr<std::string> path = engine_->SnapshotPath("s");
  QUIVER_ASSERT_OK(path);
  QUIVER_ASSERT_OK(engine_->RestoreCollection(*path, "", "r"));
  EXPECT_EQ(Count("r"), 200u);
}

// A directory of the staging tree that cannot be listed (EIO, EMFILE) part
// way through the walk fails the snapshot: packing the files found so far
// would give a snapshot that verifies but cannot be restored.
TEST_F(SnapshotFaultTest, AFailedListingLeavesNoSnapshot) {
  for (int err : {EIO, EMFILE}) {
    SCOPED_TRACE(err == EIO ? "EIO" : "EMFILE");
    FaultFileSystem::Fault f;
    f.op = Op::kList;
    f.err = err;
    // A collection's directory, below the top of the staged segments.
    f.path_contains = "snapshots/.tmp-*/segments/c";
    fs_->Inject(f);
    absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("s", "");
    const int fired = fs_->faults_fired();
    fs_->ClearFaults();
    ASSERT_GT(fired, 0) << "the walk never listed a collection directory through the fs";
    EXPECT_THAT(m, StatusIs(absl::StatusCode::kInternal, "snapshot \"s\": list "));
    absl::StatusOr<std::vector<storage::SnapshotManifest>> list = engine_->ListSnapshots(nullptr);
    QUIVER_ASSERT_OK(list);
    EXPECT_TRUE(list->empty());
    EXPECT_TRUE(SnapshotDirEntries().empty());
  }
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", ""));
}

// Too little free space for the estimate: refused before anything is
// written, naming the shortfall; with room, the same snapshot is taken.
TEST_F(SnapshotFaultTest, TooLittleFreeSpaceRefusesTheSnapshot) {
  fs_->SetAvailableBytes(1u << 20);
  for (const char* coll : {"", "c"}) {
    absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("s", coll);
    EXPECT_THAT(m, StatusIs(absl::StatusCode::kResourceExhausted, "MiB more"));
    EXPECT_THAT(m, StatusIs(absl::StatusCode::kResourceExhausted, "snapshot \"s\""));
    absl::StatusOr<std::vector<storage::SnapshotManifest>> list = engine_->ListSnapshots(nullptr);
    QUIVER_ASSERT_OK(list);
    EXPECT_TRUE(list->empty());
    EXPECT_TRUE(SnapshotDirEntries().empty());
  }
  fs_->SetAvailableBytes(uint64_t{1} << 40);
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", ""));
  fs_->SetAvailableBytes(std::nullopt);
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s2", "c"));
}

TEST_F(SnapshotFaultTest, AFailedRestoreLeavesNothing) {
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", "c"));
  absl::StatusOr<std::string> path = engine_->SnapshotPath("s");
  QUIVER_ASSERT_OK(path);
  // The segment files of the new collection cannot be written.
  FaultFileSystem::Fault f;
  f.op = Op::kAppend;
  f.err = ENOSPC;
  f.path_contains = "segments/c2/";
  f.times = -1;
  fs_->Inject(f);
  absl::StatusOr<std::shared_ptr<Collection>> r = engine_->RestoreCollection(*path, "", "r");
  fs_->ClearFaults();
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(engine_->Find("r"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(SnapshotDirEntries().size() == 1) << "restore staging left behind";
  absl::StatusOr<bool> dir = fs_->Exists(dir_.path() + "/data/segments/c2");
  QUIVER_ASSERT_OK(dir);
  EXPECT_FALSE(*dir);
  // Nothing of the import stays in RocksDB under the abandoned id.
  uint64_t rows = 0;
  QUIVER_ASSERT_OK(engine_->store().ScanIdMap(2, [&](absl::string_view, uint64_t) {
    ++rows;
    return absl::OkStatus();
  }));
  EXPECT_EQ(rows, 0u);
  // And the next restore works.
  QUIVER_ASSERT_OK(engine_->RestoreCollection(*path, "", "r"));
}

absl::Status UpsertOne(Engine& e, int i) {
  v1::UpsertPointsRequest up;
  up.set_collection("c");
  v1::Point* p = up.add_points();
  p->set_id(absl::StrCat("w", i));
  for (const char* f : {"v", "d"}) {
    auto* vals = (*p->mutable_vectors())[f].mutable_values();
    for (uint32_t k = 0; k < kDim; ++k) vals->Add(static_cast<float>((i + k) % 7));
  }
  v1::UpsertPointsResponse ur;
  return e.Upsert(up, &ur);
}

// A full disk under the database (ENOSPC on its write-ahead log) fails
// writes with RESOURCE_EXHAUSTED; once space is back the store resumes by
// itself, and snapshots work again with no restart, holding the writes
// made after the recovery.
TEST_F(SnapshotFaultTest, SnapshotsWorkAgainOnceAFullDiskHasSpace) {
  FaultFileSystem::Fault f;
  f.op = Op::kAppend;
  f.err = ENOSPC;
  f.path_contains = "data/db/*.log";
  f.times = -1;
  fs_->Inject(f);
  EXPECT_THAT(UpsertOne(*engine_, 0), StatusIs(absl::StatusCode::kResourceExhausted, "disk full"));
  ASSERT_GT(fs_->faults_fired(), 0);
  fs_->ClearFaults();
  absl::Status again;
  for (int i = 0; i < 40; ++i) {
    again = UpsertOne(*engine_, 1);
    if (again.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  QUIVER_ASSERT_OK(again);
  absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("after", "");
  QUIVER_ASSERT_OK(m);
  absl::StatusOr<std::string> path = engine_->SnapshotPath("after");
  QUIVER_ASSERT_OK(path);
  QUIVER_ASSERT_OK(engine_->RestoreCollection(*path, "c", "r"));
  EXPECT_EQ(Count("r"), 201u);
}

// Any other write error (EIO on the write-ahead log) leaves memory and disk
// possibly at odds: the engine is read-only until a restart, and a snapshot
// or restore is refused saying so (not "writes are refused", which reads
// as if a snapshot were a write); after the restart both work.
TEST_F(SnapshotFaultTest, AfterAWriteErrorSnapshotsAreRefusedAsReadOnlyUntilRestart) {
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("before", "c"));
  absl::StatusOr<std::string> path = engine_->SnapshotPath("before");
  QUIVER_ASSERT_OK(path);
  FaultFileSystem::Fault f;
  f.op = Op::kAppend;
  f.err = EIO;
  f.path_contains = "data/db/*.log";
  fs_->Inject(f);
  EXPECT_FALSE(UpsertOne(*engine_, 0).ok());
  ASSERT_GT(fs_->faults_fired(), 0);
  fs_->ClearFaults();
  absl::StatusOr<storage::SnapshotManifest> m = engine_->CreateSnapshot("s", "");
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kUnavailable, "read-only until it is restarted"));
  EXPECT_THAT(engine_->RestoreCollection(*path, "", "r"),
              StatusIs(absl::StatusCode::kUnavailable, "read-only until it is restarted"));
  EXPECT_EQ(SnapshotDirEntries(), std::vector<std::string>{"before.qsnap"});
  // Reads go on.
  EXPECT_EQ(Count("c"), 200u);

  Reopen();
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", ""));
  QUIVER_ASSERT_OK(engine_->RestoreCollection(*path, "", "r"));
}

// What an abandoned restore racing an index build can leave: the build
// passed its collection's dropped check before the abandon marked it, and
// committed a segment directory after the abandon removed the collection's
// files. The next start removes segment directories of no collection and
// keeps those of live ones.
TEST_F(SnapshotFaultTest, SegmentFilesOfNoCollectionAreRemovedAtStart) {
  absl::StatusOr<std::shared_ptr<Collection>> c = engine_->Find("c");
  QUIVER_ASSERT_OK(c);
  const uint32_t cid = (*c)->id();
  c->reset();
  engine_.reset();
  const std::string segs = dir_.path() + "/data/segments";
  const std::string live = absl::StrCat(segs, "/c", cid);
  const std::string orphan = absl::StrCat(segs, "/c", cid + 7);
  ASSERT_TRUE(std::filesystem::exists(live));
  std::filesystem::copy(live, orphan, std::filesystem::copy_options::recursive);
  std::ofstream(segs + "/not-a-collection") << "kept";

  Reopen();
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_TRUE(std::filesystem::exists(live));
  EXPECT_TRUE(std::filesystem::exists(segs + "/not-a-collection"));
  EXPECT_EQ(Count("c"), 200u);
  // The live collection's segments still load from their files.
  v1::GetCollectionRequest get;
  get.set_name("c");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  int persisted = 0;
  for (const auto& seg : info.collection().stats().segments()) {
    if (seg.state() == v1::SegmentInfo::INDEXED) ++persisted;
  }
  EXPECT_GT(persisted, 0);
}

// Rewrites every segment MANIFEST of the snapshot at `in` so that its first
// index file is `evil_name` (with a correct checksum, as an attacker can
// compute), adds a file "evil" at the top of the archive, and packs the
// result at `out`. Returns a directory path of the unpacked copy.
void CraftSnapshot(const std::string& in, const std::string& unpacked, const std::string& out,
                   const std::string& evil_name) {
  storage::FileSystem& fs = *storage::FileSystem::Default();
  absl::StatusOr<storage::SnapshotManifest> m = storage::ExtractSnapshot(fs, in, unpacked);
  QUIVER_ASSERT_OK(m);
  int rewritten = 0;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(unpacked)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = std::filesystem::relative(e.path(), unpacked).string();
    files.push_back(rel);
    if (e.path().filename() != "MANIFEST" || rel.rfind("segments/", 0) != 0) continue;
    absl::StatusOr<std::string> bytes = fs.ReadFile(e.path().string());
    QUIVER_ASSERT_OK(bytes);
    absl::StatusOr<storage::SegmentManifest> sm = storage::DecodeManifest(*bytes);
    QUIVER_ASSERT_OK(sm);
    ASSERT_GT(sm->indexes_size(), 0);
    sm->mutable_indexes(0)->set_file(evil_name);
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << storage::EncodeManifest(*sm);
    ++rewritten;
  }
  ASSERT_GT(rewritten, 0) << "the snapshot has no segment";
  std::ofstream(unpacked + "/evil") << "attacker's bytes";
  files.push_back("evil");
  absl::StatusOr<std::unique_ptr<storage::SnapshotWriter>> w =
      storage::SnapshotWriter::Create(fs, out);
  QUIVER_ASSERT_OK(w);
  for (const std::string& rel : files) QUIVER_ASSERT_OK((*w)->AddFile(rel, unpacked + "/" + rel));
  m->clear_files();
  QUIVER_ASSERT_OK((*w)->Finish(*m));
  QUIVER_ASSERT_OK(storage::VerifySnapshot(out));
}

TEST_F(SnapshotFaultTest, ManifestNamingAFileOutsideItsSegmentIsRefused) {
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", "c"));
  absl::StatusOr<std::string> path = engine_->SnapshotPath("s");
  QUIVER_ASSERT_OK(path);
  // From the restore's staging segment directory, three levels up is the
  // staging root (where the archive's "evil" lands); from the new
  // segment's temporary directory, it is the data directory.
  const std::string data = dir_.path() + "/data";
  const std::string crafted = dir_.path() + "/crafted.qsnap";
  CraftSnapshot(*path, dir_.path() + "/unpacked", crafted, "../../../evil");
  if (HasFatalFailure()) return;

  // The reading side refuses such a MANIFEST wherever it is found.
  storage::SegmentFiles unpacked(dir_.path() + "/unpacked/segments");
  absl::Status check = unpacked.CheckManifests();
  EXPECT_THAT(check, StatusIs(absl::StatusCode::kDataLoss, "../../../evil"));
  int bad = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/unpacked/segments")) {
    const uint32_t cid = static_cast<uint32_t>(std::stoul(e.path().filename().string().substr(1)));
    EXPECT_TRUE(unpacked.List(cid, [&](uint64_t, const std::string&, const std::string& why) {
                          ++bad;
                          EXPECT_NE(why.find("not a plain file name"), std::string::npos) << why;
                        }).empty());
  }
  EXPECT_GT(bad, 0);
  for (const char* name : {"", ".", "..", "a/b", "../x"}) {
    EXPECT_FALSE(storage::SafeFileName(name)) << name;
  }
  EXPECT_FALSE(storage::SafeFileName(std::string("f0\0.index", 9)));
  EXPECT_TRUE(storage::SafeFileName("f0.index"));

  // Online: DATA_LOSS naming the file, and nothing changed.
  absl::StatusOr<std::shared_ptr<Collection>> r = engine_->RestoreCollection(crafted, "", "r");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss, "../../../evil"));
  EXPECT_FALSE(std::filesystem::exists(data + "/evil"));
  EXPECT_THAT(engine_->Find("r"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(SnapshotDirEntries(), std::vector<std::string>{"s.qsnap"});
  std::vector<std::string> colls;
  for (const auto& e : std::filesystem::directory_iterator(data + "/segments")) {
    colls.push_back(e.path().filename().string());
  }
  EXPECT_EQ(colls.size(), 1u) << "a segment directory of a new collection was made";

  // Offline: refused, the directory left empty, nothing written beside it.
  const std::string fresh = dir_.path() + "/fresh";
  EXPECT_THAT(Engine::RestoreDataDir(crafted, fresh, *fs_),
              StatusIs(absl::StatusCode::kDataLoss, "../../../evil"));
  EXPECT_TRUE(std::filesystem::is_empty(fresh));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/evil"));
}

// An offline restore cut between its renames (here: the rename of db/
// fails, and so does every removal, which leaves what kill -9 would) is
// not served by a normal start, and --restore-from redoes it.
TEST_F(SnapshotFaultTest, AnInterruptedOfflineRestoreIsRefusedAndRedone) {
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("s", ""));
  absl::StatusOr<std::string> path = engine_->SnapshotPath("s");
  QUIVER_ASSERT_OK(path);
  const std::string file = dir_.path() + "/s.qsnap";
  std::filesystem::copy_file(*path, file);
  engine_.reset();
  const std::string fresh = dir_.path() + "/fresh";
  FaultFileSystem::Fault rename;
  rename.op = Op::kRename;
  rename.path_contains = "fresh/.restore-tmp/db";
  fs_->Inject(rename);
  FaultFileSystem::Fault del;
  del.op = Op::kDelete;
  del.path_contains = "fresh/";
  del.times = -1;
  fs_->Inject(del);
  EXPECT_FALSE(Engine::RestoreDataDir(file, fresh, *fs_).ok());
  fs_->ClearFaults();
  ASSERT_TRUE(std::filesystem::exists(fresh + "/segments")) << "not cut between the renames";
  ASSERT_FALSE(std::filesystem::exists(fresh + "/db"));

  EngineOptions o;
  o.data_dir = fresh;
  o.store.fs = fs_;
  o.search_threads = 1;
  EXPECT_THAT(Engine::Open(o),
              StatusIs(absl::StatusCode::kFailedPrecondition, "--restore-from"));
  EXPECT_FALSE(std::filesystem::exists(fresh + "/db")) << "an empty database was made";

  QUIVER_ASSERT_OK(Engine::RestoreDataDir(file, fresh, *fs_));
  EXPECT_FALSE(std::filesystem::exists(fresh + "/" + Engine::kRestoringMarker));
  absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Open(o);
  QUIVER_ASSERT_OK(e);
  v1::CountPointsRequest cr;
  cr.set_collection("c");
  v1::CountPointsResponse count;
  QUIVER_ASSERT_OK((*e)->CountPoints(cr, &count));
  EXPECT_EQ(count.count(), 200u);
  e->reset();
  // A finished restore is not redone by the same --restore-from (a
  // restarted container's arguments): it is applied already.
  QUIVER_ASSERT_OK(Engine::RestoreDataDir(file, fresh, *fs_));
  EXPECT_TRUE(std::filesystem::exists(fresh + "/db"));
}

}  // namespace
}  // namespace quiver
