// Engine restores (engine.h, "Snapshots"): a collection of a snapshot file
// restored online under a new name, and a whole data directory offline.
#include <unistd.h>

#include <algorithm>
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "google/protobuf/util/message_differencer.h"
#include "query/engine.h"
#include "query/engine_writer.h"
#include "spdlog/spdlog.h"

namespace quiver {
namespace {

// The bytes of collection `id`'s segment files in the snapshot that load
// into memory: vectors and indexes; rerank tables stay on disk.
uint64_t LoadedSegmentBytes(const storage::SnapshotManifest& manifest, uint32_t id) {
  const std::string dir = absl::StrCat("segments/c", id, "/");
  const std::string rerank = dir + "rerank/";
  uint64_t bytes = 0;
  for (const auto& f : manifest.files()) {
    if (absl::StartsWith(f.path(), dir) && !absl::StartsWith(f.path(), rerank)) bytes += f.size();
  }
  return bytes;
}

// Bytes of data imported per commit-thread job: writers wait for one chunk
// at most.
constexpr size_t kImportChunkBytes = 4u << 20;

// The segment manifests unpacked into `staging`: a snapshot's checksums say
// only that it is what its maker packed, and a manifest naming a file
// outside its segment's directory would have the restore link it there.
absl::Status CheckSegments(storage::FileSystem* fs, const std::string& staging,
                           const storage::SnapshotManifest& m) {
  storage::SegmentFiles files(staging + "/segments",
                              std::shared_ptr<storage::FileSystem>(fs, [](auto*) {}));
  absl::Status s = files.CheckManifests();
  if (s.ok()) return s;
  return absl::DataLossError(
      absl::StrCat("snapshot \"", m.name(), "\" is damaged: ", s.message()));
}

// Written into DATA_DIR by a finished offline restore, before its marker
// goes: the manifest of the snapshot restored. quiverd started again with
// the same --restore-from (a container's fixed arguments after a restart)
// then finds the restore applied instead of refusing a non-empty directory.
constexpr char kRestoredFrom[] = "RESTORED_FROM";

std::string SnapshotLabel(const storage::SnapshotManifest& m) {
  const absl::Time created = absl::FromUnixMillis(m.created_unix_ms());
  return absl::StrCat("snapshot \"", m.name(), "\" (sequence ", m.sequence(), ", created ",
                      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", created, absl::UTCTimeZone()), ")");
}

// For a non-empty `data_dir` with no unfinished restore: OK if it holds a
// finished restore of the very snapshot at `path` (its files and their
// checksums, not only its name), FAILED_PRECONDITION otherwise.
absl::Status CheckAlreadyRestored(storage::FileSystem& fs, const std::string& path,
                                  const std::string& data_dir) {
  const std::string record = absl::StrCat(data_dir, "/", kRestoredFrom);
  absl::StatusOr<std::string> bytes = fs.ReadFile(record);
  if (absl::IsNotFound(bytes.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--restore-from: data directory ", data_dir,
        " is not empty and holds no restore of a snapshot (no ", kRestoredFrom,
        "); restore into a new or empty directory"));
  }
  if (!bytes.ok()) return bytes.status();
  storage::SnapshotManifest done;
  if (!done.ParseFromString(*bytes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--restore-from: data directory ", data_dir, " is not empty and its ", kRestoredFrom,
        " is damaged; restore into a new or empty directory"));
  }
  absl::StatusOr<storage::SnapshotManifest> wanted = storage::ReadSnapshotManifest(path);
  if (absl::IsNotFound(wanted.status())) {
    // The snapshot was moved or deleted after its restore (to free space):
    // the directory records a finished restore, so start on it rather than
    // refuse every restart of a container whose arguments still name it.
    spdlog::warn("--restore-from: {} no longer exists; {} was restored from {} and starts on "
                 "that data (its writes since the restore are kept)",
                 path, data_dir, SnapshotLabel(done));
    return absl::OkStatus();
  }
  if (!wanted.ok()) {
    return absl::Status(wanted.status().code(),
                        absl::StrCat("--restore-from ", path, ": ", wanted.status().message()));
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(done, *wanted)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--restore-from: data directory ", data_dir, " is not empty: it was restored from ",
        SnapshotLabel(done), ", not from ", SnapshotLabel(*wanted), " in ", path,
        "; drop --restore-from to start on that directory, or restore into a new or empty one"));
  }
  spdlog::warn("--restore-from: {} was already restored into {}; starting on that directory "
               "(its writes since the restore are kept; to roll back, restore into a new or "
               "empty directory)",
               SnapshotLabel(done), data_dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status Engine::RunJobOnCommitThread(const std::function<absl::Status()>& fn) {
  absl::Status result = absl::UnavailableError("server is shutting down");
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kInternal;
  w->barrier = true;
  w->internal = [&] { result = fn(); };
  w->respond = [](Writer&) {};
  w->done = [&p](absl::Status s) { p.set_value(std::move(s)); };
  Enqueue(std::move(w));
  const absl::Status queued = f.get();
  if (queued.ok()) return result;
  bool write_failed = false;
  {
    MutexLock lock(&queue_mu_);
    write_failed = write_failed_;
  }
  // Not a full disk (the store resumes by itself once space is back, and
  // snapshots with it): another write error, after which memory and disk
  // may disagree, so the engine takes nothing more until a restart
  // recovers from what is on disk.
  if (write_failed) {
    return absl::UnavailableError(
        "a storage write failed earlier (not a full disk): quiverd is read-only until it is "
        "restarted, which recovers from what is on disk; reads and searches go on, writes, "
        "snapshots and restores are refused");
  }
  return queued;
}

void Engine::AbandonRestore(uint32_t cid) {
  absl::Status s = RunJobOnCommitThread([&]() -> absl::Status {
    std::unique_ptr<storage::Batch> b = store_->NewBatch();
    b->DropCollectionData(cid);
    b->DeleteRestoreMark(cid);
    return store_->Write(*b);
  });
  if (!s.ok()) {
    spdlog::warn("restore: cannot remove the partial import into collection id {} now ({}); "
                 "the next start removes it",
                 cid, s.ToString());
  }
  (void)files_->RemoveCollection(cid);
}

absl::Status Engine::ImportCollection(storage::Store& src, const storage::SegmentFiles& src_files,
                                      uint32_t src_cid, uint32_t cid, uint64_t seq) {
  storage::Store::ImportCursor cursor;
  while (!cursor.done) {
    QUIVER_RETURN_IF_ERROR(RunJobOnCommitThread([&]() -> absl::Status {
      std::unique_ptr<storage::Batch> b = store_->NewBatch();
      QUIVER_RETURN_IF_ERROR(
          store_->AddImportChunk(src, src_cid, cid, kImportChunkBytes, &cursor, b.get()));
      return b->ByteSize() > 0 ? store_->Write(*b) : absl::OkStatus();
    }));
  }
  // Segment files: linked (not copied) from the unpacked snapshot, each
  // MANIFEST rewritten for the new collection id and dated `seq`, a
  // sequence this server has passed (a later one would mark it superseded).
  storage::FileSystem& fs = *options_.store.fs;
  std::vector<storage::SegmentManifest> ms =
      src_files.List(src_cid, [](uint64_t, const std::string&, const std::string&) {});
  for (storage::SegmentManifest m : ms) {
    QUIVER_ASSIGN_OR_RETURN(const std::string tmp, files_->BeginWrite(cid, m.segment_id()));
    const std::string from_dir = src_files.SegmentDir(src_cid, m.segment_id());
    for (const auto& e : m.indexes()) {
      QUIVER_RETURN_IF_ERROR(
          fs.LinkFile(absl::StrCat(from_dir, "/", e.file()), absl::StrCat(tmp, "/", e.file())));
    }
    for (const auto& t : m.rerank_tables()) {
      const std::string to = files_->RerankTablePath(cid, m.segment_id(), t.field());
      QUIVER_RETURN_IF_ERROR(fs.CreateDirs(storage::DirName(to)));
      QUIVER_RETURN_IF_ERROR(
          fs.LinkFile(src_files.RerankTablePath(src_cid, m.segment_id(), t.field()), to));
      QUIVER_RETURN_IF_ERROR(fs.SyncDir(storage::DirName(to)));
    }
    QUIVER_RETURN_IF_ERROR(fs.SyncDir(tmp));
    m.set_collection_id(cid);
    m.set_sequence(std::min(m.sequence(), seq));
    QUIVER_RETURN_IF_ERROR(files_->Commit(tmp, m));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Collection>> Engine::RestoreCollection(const std::string& path,
                                                                      const std::string& source,
                                                                      const std::string& new_name) {
  if (!IsValidName(new_name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid collection name \"", TruncateForMessage(new_name),
        "\": names must match [A-Za-z][A-Za-z0-9_]{0,63}"));
  }
  QUIVER_RETURN_IF_ERROR(CheckNameFree(new_name));
  MutexLock lock(&snapshot_mu_);
  storage::FileSystem& fs = *options_.store.fs;
  QUIVER_RETURN_IF_ERROR(fs.CreateDirs(SnapshotDir()));
  static std::atomic<uint64_t> counter{0};
  const std::string staging =
      absl::StrCat(SnapshotDir(), "/.restore-", ::getpid(), "-", counter.fetch_add(1));
  struct Cleanup {
    storage::FileSystem& fs;
    const std::string& dir;
    std::unique_ptr<storage::Store> src;
    ~Cleanup() {
      src.reset();
      (void)fs.DeleteTree(dir);
    }
  } cleanup{fs, staging, nullptr};
  QUIVER_RETURN_IF_ERROR(fs.DeleteTree(staging));
  // Every file is checked before anything of this server changes.
  QUIVER_ASSIGN_OR_RETURN(const storage::SnapshotManifest manifest,
                          storage::ExtractSnapshot(fs, path, staging));
  QUIVER_RETURN_IF_ERROR(CheckSegments(&fs, staging, manifest));
  storage::StoreOptions so;
  so.path = staging + "/db";
  so.durability = storage::Durability::kAsync;
  so.block_cache_bytes = 8u << 20;
  so.fs = options_.store.fs;
  QUIVER_ASSIGN_OR_RETURN(cleanup.src, storage::Store::Open(so));
  QUIVER_ASSIGN_OR_RETURN(std::vector<storage::CollectionState> states,
                          cleanup.src->LoadCollections());
  const storage::CollectionState* st = nullptr;
  std::vector<std::string> names;
  for (const auto& s : states) {
    names.push_back(s.record.name());
    if (s.record.name() == source || (source.empty() && states.size() == 1)) st = &s;
  }
  if (st == nullptr) {
    if (source.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot \"", manifest.name(), "\" holds ", states.size(),
          " collections (", absl::StrJoin(names, ", "), "); name the one to restore"));
    }
    return absl::NotFoundError(absl::StrCat("snapshot \"", manifest.name(),
                                            "\" has no collection \"", TruncateForMessage(source),
                                            "\" (it holds: ", absl::StrJoin(names, ", "), ")"));
  }
  QUIVER_ASSIGN_OR_RETURN(Schema schema, SchemaFromRecord(st->record.schema()));
  // Vectors are loaded from the store or from segment files, and indexes
  // from theirs: each is a lower bound of what loading takes.
  QUIVER_RETURN_IF_ERROR(PrecheckRestoreMemory(
      std::max(cleanup.src->ApproximateVectorBytes(st->record.id()),
               LoadedSegmentBytes(manifest, st->record.id())),
      new_name));
  // A fresh collection id, marked so that a crash before the end has the
  // next start remove what was imported.
  uint32_t cid = 0;
  uint64_t seq = 0;
  QUIVER_RETURN_IF_ERROR(RunJobOnCommitThread([&]() -> absl::Status {
    cid = store_->next_collection_id();
    seq = store_->last_sequence();
    std::unique_ptr<storage::Batch> b = store_->NewBatch();
    b->PutNextCollectionId(cid + 1);
    b->PutRestoreMark(cid);
    return store_->Write(*b);
  }));
  const absl::Time start = absl::Now();
  std::shared_ptr<Collection> coll;
  absl::Status s = [&]() -> absl::Status {
    storage::SegmentFiles src_files(staging + "/segments", options_.store.fs);
    QUIVER_RETURN_IF_ERROR(ImportCollection(*cleanup.src, src_files, st->record.id(), cid, seq));
    storage::CollectionRecord rec = st->record;
    rec.set_id(cid);
    rec.set_name(new_name);
    rec.set_created_at_unix_ms(absl::ToUnixMillis(absl::Now()));
    coll = NewCollection(rec, schema, st->next_iid);
    QUIVER_RETURN_IF_ERROR(coll->Recover(*store_, *files_, store_->last_sequence()));
    std::promise<absl::Status> p;
    std::future<absl::Status> f = p.get_future();
    auto w = std::make_unique<Writer>();
    w->kind = Writer::Kind::kRestore;
    w->barrier = true;
    w->name = new_name;
    w->coll = coll;
    w->created = rec;
    w->next_iid = st->next_iid;
    w->respond = [](Writer&) {};
    w->done = [&p](absl::Status s) { p.set_value(std::move(s)); };
    Enqueue(std::move(w));
    return f.get();
  }();
  if (!s.ok()) {
    if (coll != nullptr) {
      coll->MarkDropped();
      // A persist under way finishes before the files go; what one that
      // checked the mark just before it was set still writes is removed
      // at the next start (RemoveOrphanSegmentDirs).
      coll->WithPersistLocked([] {});
    }
    AbandonRestore(cid);
    return s;
  }
  spdlog::info("restored collection \"{}\" of snapshot \"{}\" (sequence {}) as \"{}\" in {:.3f}s",
               st->record.name(), manifest.name(), manifest.sequence(), new_name,
               absl::ToDoubleSeconds(absl::Now() - start));
  return coll;
}

absl::Status Engine::RestoreDataDir(const std::string& path, const std::string& data_dir,
                                    storage::FileSystem& fs) {
  const std::string marker = absl::StrCat(data_dir, "/", kRestoringMarker);
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(data_dir);
  if (!names.ok() && !absl::IsNotFound(names.status())) return names.status();
  const bool resumed = names.ok() && std::find(names->begin(), names->end(),
                                               kRestoringMarker) != names->end();
  // A fresh ext4 volume (a Kubernetes PVC, say) holds lost+found: empty.
  if (names.ok()) std::erase(*names, std::string("lost+found"));
  if (names.ok() && !names->empty() && !resumed) return CheckAlreadyRestored(fs, path, data_dir);
  // Everything but the marker, which goes last: until it does, a crash
  // leaves a directory that Open refuses.
  auto remove_all_but_marker = [&]() -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(const std::vector<std::string> left, fs.ListDir(data_dir));
    for (const std::string& n : left) {
      if (n != kRestoringMarker && n != "lost+found") {
        QUIVER_RETURN_IF_ERROR(fs.DeleteTree(absl::StrCat(data_dir, "/", n)));
      }
    }
    return fs.SyncDir(data_dir);
  };
  if (resumed) {
    spdlog::warn("--restore-from: {} holds an unfinished restore; removing it and restoring again",
                 data_dir);
    QUIVER_RETURN_IF_ERROR(remove_all_but_marker());
  } else {
    QUIVER_RETURN_IF_ERROR(fs.CreateDirs(data_dir));
    QUIVER_RETURN_IF_ERROR(storage::WriteFileSynced(fs, marker, path + "\n"));
    QUIVER_RETURN_IF_ERROR(fs.SyncDir(data_dir));
  }
  const std::string staging = data_dir + "/.restore-tmp";
  absl::Status s = [&]() -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(const storage::SnapshotManifest m,
                            storage::ExtractSnapshot(fs, path, staging));
    QUIVER_RETURN_IF_ERROR(CheckSegments(&fs, staging, m));
    QUIVER_RETURN_IF_ERROR(fs.SyncDir(staging + "/db"));
    QUIVER_ASSIGN_OR_RETURN(const bool segs, fs.Exists(staging + "/segments"));
    if (segs) QUIVER_RETURN_IF_ERROR(fs.Rename(staging + "/segments", data_dir + "/segments"));
    QUIVER_RETURN_IF_ERROR(fs.Rename(staging + "/db", data_dir + "/db"));
    QUIVER_RETURN_IF_ERROR(fs.DeleteTree(staging));
    QUIVER_RETURN_IF_ERROR(storage::WriteFileSynced(fs, absl::StrCat(data_dir, "/", kRestoredFrom),
                                                    m.SerializeAsString()));
    QUIVER_RETURN_IF_ERROR(fs.SyncDir(data_dir));
    // The restore is whole and durable: only now may Open use it.
    QUIVER_RETURN_IF_ERROR(fs.DeleteFile(marker));
    QUIVER_RETURN_IF_ERROR(fs.SyncDir(data_dir));
    spdlog::info("restored snapshot \"{}\" (sequence {}, {} collections) into {}", m.name(),
                 m.sequence(), m.collections_size(), data_dir);
    return absl::OkStatus();
  }();
  if (!s.ok() && remove_all_but_marker().ok()) {
    (void)fs.DeleteFile(marker);
    (void)fs.SyncDir(data_dir);
  }
  return s;
}

}  // namespace quiver
