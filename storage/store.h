// Store: Quiver's persistent state in one RocksDB database.
//
// Column families and keys (all integers big-endian so keys sort by value):
//   catalog     "c/" + name          -> CollectionRecord
//               "n/" + cid(4)        -> next internal id of the collection (8)
//               "a/" + alias         -> AliasRecord (store_alias.cc)
//               "meta/next_cid"      -> next collection id (4)
//               "meta/last_seq"      -> last committed sequence number (8)
//   vectors     cid(4) field(2) iid(8) -> float32[dim], little-endian
//   attributes  cid(4) iid(8)        -> PointRecord
//   idmap       cid(4) external id   -> iid(8)
//   oplog       seq(8)               -> OpRecord
//
// Every mutation is one Batch written atomically; Write() makes it durable
// according to StoreOptions::durability before it returns. Store does not
// order or group writers itself: its single caller (the engine's commit
// thread) does, so the WAL order equals the sequence order.
//
// A full disk is not fatal: Write() fails with RESOURCE_EXHAUSTED, RocksDB
// stops writing (reads go on), and once space is free the next Write()
// resumes it (DB::Resume) and succeeds. Open() accepts a WAL cut short by a
// crash (a torn last record) but refuses one damaged before its tail, which
// would silently lose acknowledged writes, unless accept_wal_loss is set.
//
// Thread-safety: all methods are safe to call concurrently. A Batch is not.
#ifndef QUIVER_STORAGE_STORE_H_
#define QUIVER_STORAGE_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/file_system.h"
#include "storage/records.pb.h"

namespace rocksdb {
class DB;
class Env;
class Snapshot;
class Statistics;
class ColumnFamilyHandle;
class Logger;
class Slice;
class Status;
class WriteBatch;
struct ReadOptions;
}  // namespace rocksdb

namespace quiver::storage {

// RocksDB's own figures, for metrics (Store::Stats). Counters are since
// the store was opened.
struct StoreStats {
  uint64_t wal_bytes = 0;         // bytes written to the write-ahead log
  uint64_t wal_syncs = 0;         // WAL fsyncs
  uint64_t stall_micros = 0;      // time writes were delayed or stopped
  uint64_t pending_compaction_bytes = 0;  // estimate, all column families
  uint64_t block_cache_usage_bytes = 0;
  uint64_t block_cache_capacity_bytes = 0;
  uint64_t memtable_bytes = 0;    // all memtables, all column families
  uint64_t live_sst_bytes = 0;    // all column families
  bool write_stopped = false;     // writes stopped now (too many L0 files, ...)
};

enum class Durability {
  // The WAL is fsynced before a write is acknowledged: survives kill -9 and
  // power loss. Concurrent writers share one fsync (group commit).
  kSync,
  // The WAL is written to the OS but not fsynced: survives kill -9 of the
  // server, may lose the last writes on power loss or kernel crash.
  kAsync,
};

struct StoreOptions {
  // Directory of the RocksDB database; created if missing.
  std::string path;
  // Default: kSync.
  Durability durability = Durability::kSync;
  // RocksDB block cache. Default: 256 MiB.
  size_t block_cache_bytes = 256u << 20;
  // Operation-log entries kept; older ones are trimmed. The log is the change
  // stream replicas and index rebuilds replay; data itself is in the other
  // column families. Default: 1,000,000.
  uint64_t oplog_retention = 1'000'000;
  // When the WAL is damaged before its tail, open anyway: copy the WAL
  // files into damaged-wal-<UTC time>/ beside `path` (in its parent
  // directory), then recover up to the damage (point-in-time recovery),
  // discarding the writes after it, and log what was discarded. Without it
  // Open fails with DATA_LOSS naming the file and offset and changes
  // nothing. Default: false.
  bool accept_wal_loss = false;
  // What the database, its info log and the copies of a damaged WAL are
  // written through (RocksDB through fs->ForRocksDb()). The engine writes
  // its segment files through the same one. Default: POSIX.
  std::shared_ptr<FileSystem> fs = FileSystem::Default();
};

class Store;

// Whether a catalog key is an alias record's.
bool IsAliasKey(absl::string_view catalog_key);

// One atomic mutation under construction. Obtained from Store::NewBatch.
class Batch {
 public:
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  void PutCollection(const CollectionRecord& rec);
  // Removes the collection record and every key of the collection.
  void DropCollection(uint32_t cid, absl::string_view name);
  void PutNextCollectionId(uint32_t next);
  void PutNextInternalId(uint32_t cid, uint64_t next);
  // Aliases (storage/store_alias.cc): creates or re-points one, removes one.
  void PutAlias(const AliasRecord& rec);
  void DeleteAlias(absl::string_view alias);

  // Writes a point under internal id `iid`: its record, one vector per field
  // (vectors[f] has the field's dim floats; null: the point has none, as an
  // optional field allows) and its id-map entry.
  void PutPoint(uint32_t cid, uint64_t iid, const PointRecord& rec,
                absl::Span<const float* const> vectors,
                absl::Span<const uint32_t> dims);
  // Removes the data of internal id `iid` (record and vectors), leaving the
  // id map alone.
  void DeletePointData(uint32_t cid, uint64_t iid, size_t num_vector_fields);
  void DeleteIdMapping(uint32_t cid, absl::string_view external_id);
  // Removes every vector of field `field` (a dropped field): one range
  // tombstone, whatever the number of points.
  void DeleteVectorField(uint32_t cid, uint16_t field);

  // Restores (storage/store_snapshot.cc). A restore marks the collection id
  // it imports into before it writes any data there, and removes the mark
  // in the batch that writes the collection's catalog record; a mark found
  // at start-up is a restore that never finished (Store::UnfinishedRestores).
  void PutRestoreMark(uint32_t cid);
  void DeleteRestoreMark(uint32_t cid);
  // Removes every key of collection `cid` except its catalog record.
  void DropCollectionData(uint32_t cid);

  // Appends the operation-log entry for sequence `seq` and records `seq` as
  // the last committed one.
  void LogOp(uint64_t seq, const OpRecord& op);

  // Save points nest: Rollback undoes everything since the latest Set, Pop
  // forgets the latest Set and keeps what came after it.
  void SetSavePoint();
  void RollbackToSavePoint();
  void PopSavePoint();
  size_t ByteSize() const;

 private:
  friend class Store;
  explicit Batch(Store* store);
  Store* store_;
  std::unique_ptr<rocksdb::WriteBatch> wb_;
  std::string scratch_;
  uint64_t last_seq_ = 0;   // highest sequence logged, 0 if none
  uint32_t next_cid_ = 0;   // next collection id recorded, 0 if none
  std::vector<std::pair<uint64_t, uint32_t>> saved_;  // at each save point
};

// A consistent read view of the whole database: scans given one see every
// write committed before it was taken and none after. Holding one keeps
// RocksDB from dropping the versions it sees, so hold it only for the scans
// that need it. Must not outlive its Store.
class StoreSnapshot {
 public:
  ~StoreSnapshot();
  StoreSnapshot(const StoreSnapshot&) = delete;
  StoreSnapshot& operator=(const StoreSnapshot&) = delete;

 private:
  friend class Store;
  StoreSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snap) : db_(db), snap_(snap) {}
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// What Store::Open found, for the engine to rebuild its in-memory state.
struct CollectionState {
  CollectionRecord record;
  uint64_t next_iid = 0;
};

class Store {
 public:
  // Opens or creates the database at options.path. Errors: DATA_LOSS for a
  // damaged WAL (one line naming the file and offset; nothing is changed;
  // this includes a damaged record length RocksDB would take for a torn
  // tail, see CheckWalTail)
  // or other damage RocksDB finds; RESOURCE_EXHAUSTED if even a recovery
  // that keeps the WAL's contents in memory finds no space; UNAVAILABLE
  // otherwise.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  std::unique_ptr<Batch> NewBatch();
  // Writes `batch` atomically with the configured durability.
  // RESOURCE_EXHAUSTED ("disk full: ...") when the file system is full:
  // nothing of the batch is acknowledged and the store stays usable; the
  // next call first asks RocksDB to resume (at most once a second) and
  // writes if that succeeds. INTERNAL for any other storage error, after
  // which the caller must stop writing (memory and disk may disagree).
  absl::Status Write(Batch& batch);
  // True from a failed write for lack of space until a resume succeeds.
  bool disk_full() const { return disk_full_.load(std::memory_order_acquire); }
  // Hands every column family's memtable to RocksDB's background flush and
  // returns without waiting. Once writes pause, the memtables hold a copy of
  // the latest writes (mostly vectors, which the segments hold too) until
  // later writes fill them: up to write_buffer_size each, memory for
  // nothing. Durability is unchanged (the WAL until the SST is written).
  // INTERNAL if RocksDB refuses.
  absl::Status FlushMemtables();

  // After an Open that accepted WAL loss: one line saying what was
  // discarded and where the copies are. Empty otherwise.
  const std::string& wal_loss_report() const { return wal_loss_report_; }

  uint64_t last_sequence() const { return last_seq_; }
  uint32_t next_collection_id() const { return next_cid_; }

  absl::StatusOr<std::vector<CollectionState>> LoadCollections();
  // Every alias record, by alias name. DATA_LOSS for one that does not parse.
  absl::StatusOr<std::vector<AliasRecord>> LoadAliases();

  // A snapshot of the database as of now (see StoreSnapshot).
  std::unique_ptr<StoreSnapshot> NewSnapshot();

  // The scans read the latest state, or `snapshot`'s when given.
  // Calls `fn(iid, record)` for every point of collection `cid` in iid order.
  absl::Status ScanPoints(
      uint32_t cid,
      const std::function<absl::Status(uint64_t iid, PointRecord& rec)>& fn,
      const StoreSnapshot* snapshot = nullptr);
  // Calls `fn(iid, data, dim)` for every stored vector of field `field`.
  absl::Status ScanVectors(
      uint32_t cid, uint16_t field,
      const std::function<absl::Status(uint64_t iid, const float* data, size_t dim)>& fn,
      const StoreSnapshot* snapshot = nullptr);
  // Calls `fn(external_id, iid)` for every id-map entry of collection `cid`.
  absl::Status ScanIdMap(
      uint32_t cid,
      const std::function<absl::Status(absl::string_view external_id, uint64_t iid)>& fn,
      const StoreSnapshot* snapshot = nullptr);

  // Operation-log entries with sequence >= from, in order (for tests, change
  // streams and index replay).
  absl::Status ScanOplog(uint64_t from,
                         const std::function<absl::Status(uint64_t seq, const OpRecord&)>& fn);

  // Approximate bytes on disk of one collection (SST files, all CFs).
  uint64_t ApproximateCollectionBytes(uint32_t cid);
  // The same of its vectors only (compressed as stored: at most what they
  // take in memory).
  uint64_t ApproximateVectorBytes(uint32_t cid);

  // RocksDB's statistics and properties now (storage/store_stats.cc). Cheap
  // (no I/O); any thread.
  StoreStats Stats() const;

  const StoreOptions& options() const { return options_; }

  // --- Snapshots (storage/store_snapshot.cc).
  // Copies the state `snapshot` shows into a new database at `dest_path`
  // (which must not exist), written through this store's FileSystem. With
  // `cids` null: everything (catalog, data, operation log). Otherwise
  // those collections' catalog records, data, next internal ids and
  // aliases, the last sequence and the next collection id, and no
  // operation log. The
  // copy is flushed and closed when this returns. RESOURCE_EXHAUSTED
  // ("disk full: ...") when space runs out.
  absl::Status ExportTo(const StoreSnapshot& snapshot, const std::vector<uint32_t>* cids,
                        const std::string& dest_path);
  // Where an import (AddImportChunk) has got to.
  struct ImportCursor {
    int cf = 0;          // vectors, attributes, idmap
    std::string next;    // the first key of that column family not copied
    bool done = false;
  };
  // Adds to `batch` the next keys, about `max_bytes`, of collection
  // `src_cid`'s points, vectors and id map in `src`, renamed to collection
  // `dst_cid` of this store. Sets cursor->done after the last.
  absl::Status AddImportChunk(Store& src, uint32_t src_cid, uint32_t dst_cid, size_t max_bytes,
                              ImportCursor* cursor, Batch* batch);
  // Collection ids a restore marked and never finished (see Batch).
  absl::StatusOr<std::vector<uint32_t>> UnfinishedRestores();

 private:
  // Bytes of collection `cid`'s keys in the column families `cfs`.
  uint64_t ApproximateBytes(uint32_t cid,
                            std::initializer_list<rocksdb::ColumnFamilyHandle*> cfs);
  friend class Batch;
  Store() = default;
  // Read options of a whole-range scan up to `upper`, at `snapshot` (null:
  // the latest state), not filling the block cache.
  static rocksdb::ReadOptions ScanOptions(const StoreSnapshot* snapshot,
                                          const rocksdb::Slice* upper);
  // Classifies a failed write; sets disk_full_ for lack of space.
  absl::Status WriteError(const rocksdb::Status& s);
  // Asks RocksDB to resume after a lack of space, at most once a second.
  absl::Status TryResume();

  StoreOptions options_;
  // RocksDB's Env over options_.fs; outlives db_.
  std::unique_ptr<rocksdb::Env> env_;
  // RocksDB's info log (see InfoLog in store.cc); outlives db_.
  std::shared_ptr<rocksdb::Logger> info_log_;
  // Tickers only (no timers or histograms): WAL, stall and cache figures
  // for Stats(). Outlives db_.
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* catalog_ = nullptr;
  rocksdb::ColumnFamilyHandle* vectors_ = nullptr;
  rocksdb::ColumnFamilyHandle* attributes_ = nullptr;
  rocksdb::ColumnFamilyHandle* idmap_ = nullptr;
  rocksdb::ColumnFamilyHandle* oplog_ = nullptr;
  // Written by the single committing caller, read by anyone.
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<uint32_t> next_cid_{1};
  std::atomic<bool> disk_full_{false};
  // Written by the committing caller only.
  std::chrono::steady_clock::time_point last_resume_;
  std::string disk_full_error_;
  std::string wal_loss_report_;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_STORE_H_
