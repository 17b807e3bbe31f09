// Engine: the data plane behind quiverd. Owns the Store, the collections and
// the commit thread; the gRPC services call it and nothing below it.
//
// Writes (create/drop collection, upsert, delete) are validated on the
// caller's thread, then queued to one commit thread, which takes every
// queued write at once (a commit group), assigns consecutive sequence
// numbers, writes the group as one RocksDB batch with one WAL sync (group
// commit), makes it visible, and then calls each writer's callback. So WAL
// order is sequence order, an acknowledged write is durable, and a write is
// visible to reads before its callback runs.
//
// Reads (search, get, count, describe) run on the caller's thread against a
// snapshot of the collection and never wait for the commit thread.
//
// Requests that read or write points are bound first (query/bind/): Bind*
// checks a request against its collection and returns it bound to that
// collection; the entry points taking Bound<...> run it. The forms taking
// protos bind and run in one call (tests and tools); quiverd binds
// explicitly (server/services.cc), so a read estimated expensive is
// already bound when it is queued.
//
// Thread-safety: all public methods are safe to call concurrently.
// Callbacks run on the commit thread (or inline for requests rejected before
// queueing) and must not block.
// Errors (returned, or passed to `done`): INVALID_ARGUMENT for a request that
// fails its checks, NOT_FOUND for an unknown or dropped collection,
// ALREADY_EXISTS for a duplicate create (a name is a collection's or an
// alias's), FAILED_PRECONDITION for a drop of an alias or of a collection
// aliases point to, DEADLINE_EXCEEDED for a write not
// committed by its deadline, UNAVAILABLE while shutting down or after a
// storage write failed (writes are refused until restart), and the write
// limits of query/write_limits.h: RESOURCE_EXHAUSTED for an upsert past the
// memory budget or a request past the per-request memory, UNAVAILABLE with
// a retry hint while index builds or compactions are behind. Open reports an
// unusable data directory as UNAVAILABLE and an unreadable stored schema as
// DATA_LOSS.
#ifndef QUIVER_QUERY_ENGINE_H_
#define QUIVER_QUERY_ENGINE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "absl/time/time.h"
#include "query/collection.h"
#include "query/index_builder.h"
#include "query/query_stats.h"
#include "query/recall_audit.h"
#include "query/side_thread.h"
#include "query/task_pool.h"
#include "query/write_limits.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"
#include "quiver/v1/search.pb.h"
#include "storage/snapshot_file.h"
#include "storage/store.h"

namespace quiver {

// Sets how many threads BLAS may use per exact-scan call (the search
// threads) and returns the BLAS library's description ("OpenBLAS 0.3.21 ...",
// or a warning that reference BLAS is in use), for quiverd's start-up log.
std::string ConfigureBlas(int threads_per_call);

struct EngineOptions {
  // Everything lives under here: RocksDB in db/, segment files in segments/.
  std::string data_dir;
  // store.path is set from data_dir.
  storage::StoreOptions store;
  CollectionOptions collection;
  IndexBuilderOptions builder;
  // A growing segment with rows that sees no write for this long is sealed
  // and indexed, so a collection that stops changing ends up fully indexed.
  // Default: 1 s.
  absl::Duration seal_idle = absl::Seconds(1);
  // Called once if a storage write fails; the engine then refuses writes
  // (UNAVAILABLE) until it is reopened. quiverd reports NOT_SERVING. A full
  // disk is the exception: those writes fail RESOURCE_EXHAUSTED ("disk
  // full: ..."), reads go on, and writes succeed again once space is free.
  std::function<void()> on_write_failure;
  // A segment whose files could not be written (a full disk, say) is
  // persisted again after this long, and again until it succeeds; it
  // serves from memory meanwhile. Default: 10 s.
  absl::Duration persist_retry = absl::Seconds(10);
  // A commit group stops growing past this many bytes of pending batch.
  // Default: 64 MiB.
  size_t max_group_bytes = 64u << 20;
  // A group with at least this many bytes of upserts has their rows copied
  // into memory (unpublished) while its storage write runs, rather than
  // after it; below it the hand-off to the writing thread costs about what
  // it hides. Default: 256 KiB (tests use 0 to stage every upsert).
  size_t stage_min_bytes = 256u << 10;
  // Threads that search the fields of a hybrid request in parallel (the
  // request's own thread takes part too). Default 0: one per core, less one.
  int search_threads = 0;
  // Memory budget, per-request memory and write backpressure
  // (query/write_limits.h). Default: none of them.
  LimitOptions limits;

  // Share of ANN searches re-run exactly in the background to measure
  // their recall (query/recall_audit.h). 0: no audit. Default: 0 (quiverd
  // passes --recall-audit-rate).
  double recall_audit_rate = 0;
  // The average share of one core the audits may use (RecallAuditor).
  // Default: 1, no pause (quiverd passes --recall-audit-cpu).
  double recall_audit_cpu_share = 1.0;
};

// A request bound against one collection: it runs there even if the name
// now belongs to a collection created since (a write then fails NOT_FOUND,
// as one queued across a drop does).
template <typename T>
struct Bound {
  std::shared_ptr<Collection> collection;
  T request;
};

class Engine {
 public:
  using Done = std::function<void(absl::Status)>;

  // Opens the data directory and recovers every collection.
  // FAILED_PRECONDITION if the data directory holds kRestoringMarker (an
  // offline restore that never finished: run it again).
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  // In DATA_DIR while an offline restore (RestoreDataDir) is under way.
  static constexpr char kRestoringMarker[] = "RESTORING";
  // Stops the commit thread after it has finished the queued writes.
  ~Engine();

  // --- Writes: `done` is called exactly once; `resp` is filled before it.
  // The request and response must stay alive until then.
  void CreateCollection(const v1::CreateCollectionRequest& req,
                        v1::CreateCollectionResponse* resp, Done done);
  void DropCollection(const v1::DropCollectionRequest& req, v1::DropCollectionResponse* resp,
                      Done done);
  void UpdateCollection(const v1::UpdateCollectionRequest& req,
                        v1::UpdateCollectionResponse* resp, Done done);
  void Upsert(const v1::UpsertPointsRequest& req, v1::UpsertPointsResponse* resp,
              absl::Time deadline, Done done);
  void Delete(const v1::DeletePointsRequest& req, v1::DeletePointsResponse* resp,
              absl::Time deadline, Done done);
  // The same for bound requests. An upsert points into the request it was
  // bound from, which must stay alive until `done`.
  void Upsert(Bound<BoundUpsert> up, v1::UpsertPointsResponse* resp, absl::Time deadline,
              Done done);
  void Delete(Bound<BoundDelete> del, v1::DeletePointsResponse* resp, absl::Time deadline,
              Done done);
  // Partial updates (query/engine_points.cc): committed as an upsert of the
  // merged points, in a commit group of its own, under the upserts' write
  // limits. NOT_FOUND for a missing id (without upsert): nothing applied.
  void Update(const v1::UpdatePointsRequest& req, v1::UpdatePointsResponse* resp,
              absl::Time deadline, Done done);
  void Update(Bound<BoundUpdate> up, v1::UpdatePointsResponse* resp, absl::Time deadline,
              Done done);

  // --- Binding (any thread): NOT_FOUND for an unknown collection, else
  // the binder's INVALID_ARGUMENT (query/bind/binder.h).
  absl::StatusOr<Bound<BoundSearchRequest>> BindSearch(const v1::SearchRequest& req) const;
  absl::StatusOr<Bound<BoundUpsert>> BindUpsert(const v1::UpsertPointsRequest& req) const;
  absl::StatusOr<Bound<BoundDelete>> BindDelete(const v1::DeletePointsRequest& req) const;
  absl::StatusOr<Bound<BoundUpdate>> BindUpdate(const v1::UpdatePointsRequest& req) const;

  // Blocking forms of the writes, for tests and tools.
  absl::Status CreateCollection(const v1::CreateCollectionRequest& req,
                                v1::CreateCollectionResponse* resp);
  absl::Status DropCollection(const v1::DropCollectionRequest& req,
                              v1::DropCollectionResponse* resp);
  absl::Status UpdateCollection(const v1::UpdateCollectionRequest& req,
                                v1::UpdateCollectionResponse* resp);
  absl::Status Upsert(const v1::UpsertPointsRequest& req, v1::UpsertPointsResponse* resp);
  absl::Status Delete(const v1::DeletePointsRequest& req, v1::DeletePointsResponse* resp);
  absl::Status Update(const v1::UpdatePointsRequest& req, v1::UpdatePointsResponse* resp);

  // --- Aliases (query/engine_alias.cc; the rules are CreateAlias's in
  // collections.proto). Changes are barriers on the commit thread, written
  // with their operation-log entry; `resp` gets the sequence. Find resolves
  // an alias, so every entry point taking a collection name takes one, and
  // a request bound through an alias stays on that collection.
  void CreateAlias(const v1::CreateAliasRequest& req, v1::CreateAliasResponse* resp, Done done);
  void SwitchAlias(const v1::SwitchAliasRequest& req, v1::SwitchAliasResponse* resp, Done done);
  void DeleteAlias(const v1::DeleteAliasRequest& req, v1::DeleteAliasResponse* resp, Done done);
  absl::Status CreateAlias(const v1::CreateAliasRequest& req, v1::CreateAliasResponse* resp);
  absl::Status SwitchAlias(const v1::SwitchAliasRequest& req, v1::SwitchAliasResponse* resp);
  absl::Status DeleteAlias(const v1::DeleteAliasRequest& req, v1::DeleteAliasResponse* resp);
  absl::Status ListAliases(const v1::ListAliasesRequest& req,
                           v1::ListAliasesResponse* resp) const;

  // --- Reads.
  absl::Status GetCollection(const v1::GetCollectionRequest& req,
                             v1::GetCollectionResponse* resp) const;
  absl::Status ListCollections(v1::ListCollectionsResponse* resp) const;
  absl::Status GetPoints(const v1::GetPointsRequest& req, v1::GetPointsResponse* resp) const;
  // Reads that may run long stop with CANCELLED or DEADLINE_EXCEEDED once
  // `stop` says so (a bare deadline converts).
  absl::Status CountPoints(const v1::CountPointsRequest& req, v1::CountPointsResponse* resp,
                           const StopToken& stop = StopToken()) const;
  absl::Status Search(const v1::SearchRequest& req, const StopToken& stop,
                      v1::SearchResponse* resp) const;
  // One page of ScrollPoints (Collection::Scroll; query/engine_points.cc).
  absl::Status ScrollPoints(const v1::ScrollPointsRequest& req, v1::ScrollPointsResponse* resp,
                            const StopToken& stop = StopToken()) const;
  absl::Status Search(const Bound<BoundSearchRequest>& q, const StopToken& stop,
                      v1::SearchResponse* resp) const;

  // Whether a read is estimated to take long (Collection::EstimateWork past
  // kExpensiveWork). False for an unknown collection: the read fails fast.
  bool IsExpensive(const Bound<BoundSearchRequest>& q) const;
  bool IsExpensive(const v1::CountPointsRequest& req) const;
  // A page walks every row that passes the filter.
  bool IsExpensive(const v1::ScrollPointsRequest& req) const;
  // Checks a collection's segments, files and indexes against RocksDB
  // (Collection::Verify), at one consistent point in time. NOT_FOUND,
  // INVALID_ARGUMENT (sample sizes); UNAVAILABLE when the engine no longer
  // takes writes (shutting down, or after a failed storage write), since the
  // consistent point is found on the commit thread.
  absl::Status VerifyCollection(const v1::VerifyCollectionRequest& req,
                                v1::VerifyCollectionResponse* resp,
                                const StopToken& stop = StopToken());

  // After this, new writes fail UNAVAILABLE; queued ones still complete.
  void StopAcceptingWrites();
  // Stops index builds and compactions (running ones end within
  // milliseconds, queued ones are dropped; the next start redoes them), so
  // a shutdown's grace period goes to the requests it drains. Idempotent.
  void StopIndexBuilds();

  // Seals every growing segment now and waits until all sealed segments
  // have their indexes and queued compactions are swapped in (tests,
  // benchmarks, and the Flush of a later API). Compactions planned later
  // by the maintenance thread may still follow.
  void SealAndWaitForIndexes();

  // The collection `name` names, directly or as an alias. NOT_FOUND if
  // there is no such collection or alias.
  absl::StatusOr<std::shared_ptr<Collection>> Find(const std::string& name) const;

  // Vector data in memory as the memory budget counts it (vectors and
  // indexes, as describe reports them, plus upserts accepted since the
  // last measure), measured now on the commit thread. For tests and logs.
  uint64_t BudgetedMemoryBytes();

  // --- Snapshots (query/engine_snapshot.cc). Snapshot files live in
  // DATA_DIR/snapshots/NAME.qsnap (storage/snapshot_file.h).
  //
  // Takes a snapshot of collection `collection` (empty: all of them and
  // the operation log) consistent at one sequence number, while writes go
  // on: the sequence and a RocksDB snapshot are taken on the commit thread
  // between two commit groups (writers wait for that only), then the data
  // is exported, the segment files of that moment are hard-linked and
  // everything is packed into NAME.qsnap.tmp, renamed into place once
  // synced. `name` empty: "snap-<UTC time>-<sequence>". One at a time.
  // Errors: INVALID_ARGUMENT (name), ALREADY_EXISTS, NOT_FOUND
  // (collection), RESOURCE_EXHAUSTED when the disk fills (nothing is left
  // behind), UNAVAILABLE while shutting down.
  absl::StatusOr<storage::SnapshotManifest> CreateSnapshot(const std::string& name,
                                                           const std::string& collection);
  // Every snapshot file's manifest, by name; `damaged` gets the names of
  // files whose manifest cannot be read, with why.
  absl::StatusOr<std::vector<storage::SnapshotManifest>> ListSnapshots(
      std::vector<std::pair<std::string, std::string>>* damaged) const;
  // NOT_FOUND if there is no such snapshot.
  absl::Status DeleteSnapshot(const std::string& name);
  // The path of snapshot `name`: INVALID_ARGUMENT for a bad name,
  // NOT_FOUND if it does not exist.
  absl::StatusOr<std::string> SnapshotPath(const std::string& name) const;
  // A path for an uploaded snapshot file; the caller removes it.
  std::string NewUploadPath();
  // What every file is written through.
  storage::FileSystem& file_system() const { return *options_.store.fs; }
  // Restores collection `source` (empty: the snapshot's only one) of the
  // snapshot file at `path` as a new collection `new_name`, online. The
  // whole file is checked before anything changes: DATA_LOSS naming the
  // packed file that failed its checksum or was cut. Its data is imported
  // under a fresh collection id in chunks ordered with writes, its segment
  // files (indexes, rerank tables) are linked in so nothing is rebuilt,
  // and one catalog write makes it visible; a crash before that leaves
  // nothing (the next start removes the partial import). Also
  // ALREADY_EXISTS, NOT_FOUND (source), INVALID_ARGUMENT.
  absl::StatusOr<std::shared_ptr<Collection>> RestoreCollection(const std::string& path,
                                                                const std::string& source,
                                                                const std::string& new_name);
  // Describes a collection as GetCollection does.
  void DescribeCollection(const Collection& c, v1::CollectionInfo* info) const {
    Describe(c, info);
  }
  // Offline restore: unpacks the snapshot at `path` into `data_dir`, which
  // must be missing, empty, or hold what an interrupted offline restore
  // left (its kRestoringMarker; that is removed and the restore redone);
  // FAILED_PRECONDITION otherwise. Every file is checked first. The marker
  // is written (and synced) before anything else and removed last, so a
  // crash in between leaves a directory Open refuses rather than serves
  // half restored. On failure the directory is left empty.
  static absl::Status RestoreDataDir(const std::string& path, const std::string& data_dir,
                                     storage::FileSystem& fs);

  uint64_t last_sequence() const { return store_->last_sequence(); }
  storage::Store& store() { return *store_; }

  // --- For metrics (server/metrics_collector.h); any thread.
  // Every collection now, in no particular order.
  std::vector<std::shared_ptr<Collection>> Collections() const { return AllCollections(); }
  const QueryStats& query_stats() const { return query_stats_; }
  // Null when the audit is off.
  const RecallAuditor* recall_auditor() const { return auditor_.get(); }
  // Index builds, compactions and persist retries waiting for a builder.
  size_t builder_queue() const { return builder_->queued(); }

 private:
  struct Writer;
  Engine() = default;

  void Enqueue(std::unique_ptr<Writer> w);
  // Runs `fn` on the commit thread, ordered with writes, and waits for it.
  void RunOnCommitThread(std::function<void()> fn);
  void RunOnCommitThreadAsync(std::function<void()> fn);
  std::shared_ptr<Collection> NewCollection(const storage::CollectionRecord& rec, Schema schema,
                                            uint64_t next_iid);
  void MaintenanceLoop();
  // Hands the persists whose retry is due to the builder.
  void RetryPersists();
  std::vector<std::shared_ptr<Collection>> AllCollections() const;
  void CommitLoop();
  void CommitGroup(std::vector<std::unique_ptr<Writer>>& group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Whether CommitGroup stages the group's upserts while its write runs:
  // enough upsert bytes to be worth the hand-off, and no internal job.
  bool StagesRows(const std::vector<std::unique_ptr<Writer>>& group) const;
  // Prepares one writer into the batch; returns its status (the batch is
  // rolled back to before it on failure).
  absl::Status Prepare(Writer& w, uint64_t seq, storage::Batch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void Apply(Writer& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void Describe(const Collection& c, v1::CollectionInfo* info) const;
  // Aliases (query/engine_alias.cc). Loads the stored aliases at Open.
  absl::Status RecoverAliases();
  // ALREADY_EXISTS, saying which, if a collection or alias is called `name`.
  absl::Status CheckNameFree(const std::string& name) const;
  // FAILED_PRECONDITION if `name` is an alias or aliases point to it.
  absl::Status CheckDroppable(const std::string& name) const;
  void EnqueueAlias(storage::OpRecord::Type op, const std::string& alias,
                    const std::string& collection,
                    std::function<void(uint64_t)> set_sequence, Done done);
  absl::Status PrepareAlias(Writer& w, uint64_t seq, storage::Batch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void ApplyAlias(const Writer& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Write limits (engine_limits.cc). Queues an upsert now, after a
  // backpressure delay, or refuses it (UNAVAILABLE with a retry hint).
  void AdmitUpsert(std::unique_ptr<Writer> w);
  // Measures the memory the budget counts and the compaction debt.
  void MeasureLimits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Flushes RocksDB's memtables once writes have paused for seal_idle
  // (`last_write`: the latest write to any collection), if they hold at
  // least kIdleFlushBytes.
  void FlushIfIdle(absl::Time last_write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  static constexpr uint64_t kIdleFlushBytes = 8u << 20;
  absl::Time idle_flushed_ ABSL_GUARDED_BY(kCommitThread) = absl::InfinitePast();
  // RESOURCE_EXHAUSTED if the upsert's rows (or the restored collection,
  // for a restore) would take the memory past the budget; else counts them.
  absl::Status ChargeMemory(const Writer& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Before a restore loads anything: RESOURCE_EXHAUSTED if the memory in
  // use plus `bytes` (a lower bound of what the restored collection takes
  // once loaded, from the snapshot's files) would pass the budget, so a
  // snapshot far over the budget is refused before it can take the memory;
  // ChargeMemory, once loaded, stays the exact check.
  // Runs a job on the commit thread: never call it from there.
  absl::Status PrecheckRestoreMemory(uint64_t bytes, const std::string& name);

  // Snapshot helpers (query/engine_snapshot.cc).
  std::string SnapshotDir() const { return options_.data_dir + "/snapshots"; }
  // Removes what an interrupted snapshot or restore left: temporary files
  // in the snapshot directory, data of restores never finished, and
  // segment directories of no collection (RemoveOrphanSegmentDirs).
  absl::Status CleanSnapshotLeftovers();
  absl::Status RemoveOrphanSegmentDirs();
  // Links the segment files of `c` (sequence <= seq) under `dest`. A
  // segment whose files went meanwhile is left out; other errors return.
  absl::Status LinkSegmentFiles(const Collection& c, uint64_t seq, const std::string& dest);
  // RESOURCE_EXHAUSTED, naming the shortfall, if the data file system has
  // less free space than snapshot `name` of `colls` (`all`: of everything)
  // would take at its peak, plus a margin.
  absl::Status CheckSnapshotSpace(const std::string& name,
                                  const std::vector<std::shared_ptr<Collection>>& colls, bool all);
  // Packs `staging` into the snapshot file `final_path`.
  absl::Status PackSnapshot(const std::string& staging, const std::string& final_path,
                            const storage::SnapshotManifest& m);
  // Imports collection `src_cid` of `src` (files under `src_files`) as
  // collection `cid`: its data, then its segment files.
  absl::Status ImportCollection(storage::Store& src, const storage::SegmentFiles& src_files,
                                uint32_t src_cid, uint32_t cid, uint64_t seq);
  // Removes the data and files of an unfinished restore into `cid`.
  void AbandonRestore(uint32_t cid);
  // Runs `fn` on the commit thread as a commit group of its own (every
  // earlier group written and applied, no later one started) and returns
  // its status; UNAVAILABLE, without running it, once writes are refused.
  absl::Status RunJobOnCommitThread(const std::function<absl::Status()>& fn);

  EngineOptions options_;
  std::unique_ptr<storage::Store> store_;
  // Declared before the collections, which point to it, so it outlives them.
  QueryStats query_stats_;
  // Declared before the collections, which point to it, so it outlives them.
  std::unique_ptr<TaskPool> search_pool_;

  mutable Mutex collections_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Collection>> collections_
      ABSL_GUARDED_BY(collections_mu_);
  // Alias -> its collection's name. Under the same lock as collections_,
  // so a lookup sees both at one moment; changed only on the commit thread.
  absl::flat_hash_map<std::string, std::string> aliases_ ABSL_GUARDED_BY(collections_mu_);

  Mutex queue_mu_;
  CondVar queue_cv_;
  std::deque<std::unique_ptr<Writer>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool accepting_ ABSL_GUARDED_BY(queue_mu_) = true;
  bool write_failed_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread commit_thread_;
  // Runs a large group's storage write while the commit thread stages its
  // rows (CommitGroup).
  SideThread write_thread_;

  std::unique_ptr<storage::SegmentFiles> files_;
  // One snapshot or restore at a time.
  Mutex snapshot_mu_;
  std::atomic<uint64_t> upload_counter_{0};
  std::unique_ptr<IndexBuilder> builder_;
  struct PersistRetry {
    std::weak_ptr<Collection> collection;
    std::weak_ptr<Segment> segment;
    absl::Time due;
  };
  Mutex persist_retry_mu_;
  std::vector<PersistRetry> persist_retries_ ABSL_GUARDED_BY(persist_retry_mu_);
  // Vector memory as last measured plus upserts accepted since.
  uint64_t memory_used_ ABSL_GUARDED_BY(kCommitThread) = 0;
  // Written on the commit thread, read by writers' threads.
  std::atomic<uint64_t> compaction_debt_rows_{0};
  // Upserts held back by backpressure; destroyed (running what it holds)
  // before the commit thread stops.
  std::unique_ptr<WriteDelayer> delayer_;
  Mutex maintenance_mu_;
  CondVar maintenance_cv_;
  bool maintenance_stop_ ABSL_GUARDED_BY(maintenance_mu_) = false;
  std::thread maintenance_thread_;
  // Null when off. Reset first in the destructor: its thread searches.
  std::unique_ptr<RecallAuditor> auditor_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_ENGINE_H_
