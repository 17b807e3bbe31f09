// Collection: one collection's live state in memory — schema, points (Rows),
// the external-id map — and the read paths over it (exact search, get,
// count).
//
// Writes follow the engine's commit protocol, in three steps that all run on
// the engine's single commit thread:
//   1. ValidateUpsert / ValidateDelete (any thread): check the request
//      against the schema and copy out what is needed. Nothing changes.
//   2. Prepare*(seq, batch): resolve ids (seeing earlier, not yet applied
//      writes of the same commit group), assign internal ids and add the
//      mutation to the RocksDB batch.
//   3. Apply*(seq): after the batch is durable, make the mutation visible.
// EndGroup() is called after every commit group, applied or failed.
//
// Thread-safety: read methods may run concurrently with each other and with
// the commit thread's Apply*. Prepare*/Apply*/EndGroup/Recover must only be
// called from one thread at a time (the commit thread).
#ifndef QUIVER_QUERY_COLLECTION_H_
#define QUIVER_QUERY_COLLECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "query/filter/filter.h"
#include "query/rows.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"
#include "quiver/v1/search.pb.h"
#include "storage/records.pb.h"
#include "storage/schema.h"
#include "storage/store.h"

namespace quiver {

// Request limits a client can hit; each violation is INVALID_ARGUMENT.
inline constexpr uint32_t kMaxK = 16384;
inline constexpr size_t kMaxQueriesPerRequest = 1024;
inline constexpr size_t kMaxIdBytes = 512;

// A validated upsert, ready to commit. Vector pointers point either into the
// request (which must outlive this object) or into `owned` (normalized
// copies for COSINE fields).
struct PreparedUpsert {
  struct Point {
    storage::PointRecord record;  // id + attributes, as stored
    AttrRow attrs;
    std::vector<const float*> vectors;  // one per vector field
  };
  std::vector<Point> points;
  std::vector<float> owned;
};

// A validated delete: by ids, or by a compiled filter.
struct PreparedDelete {
  std::vector<std::string> ids;
  std::shared_ptr<const filter::Filter> filter;
};

// What Prepare* decided, for Apply*.
struct WriteEffects {
  std::vector<uint64_t> added;        // iid per point of a PreparedUpsert
  std::vector<uint64_t> removed;      // iids deleted or overwritten
  std::vector<std::string> removed_ids;  // external ids deleted (delete only)
};

class Collection {
 public:
  Collection(const storage::CollectionRecord& record, Schema schema, uint64_t next_iid);

  const std::string& name() const { return name_; }
  uint32_t id() const { return id_; }
  const Schema& schema() const { return schema_; }

  // --- Reads (any thread) ---
  absl::Status Search(const v1::SearchRequest& req, absl::Time deadline,
                      v1::SearchResponse* resp) const;
  absl::Status Get(const v1::GetPointsRequest& req, v1::GetPointsResponse* resp) const;
  absl::StatusOr<uint64_t> Count(const std::string& filter_expr) const;
  // Fills name, schema and stats; `storage_bytes` comes from the store.
  void Describe(v1::CollectionInfo* info) const;

  // --- Validation (any thread; changes nothing) ---
  absl::StatusOr<PreparedUpsert> ValidateUpsert(const v1::UpsertPointsRequest& req) const;
  absl::StatusOr<PreparedDelete> ValidateDelete(const v1::DeletePointsRequest& req) const;

  // --- Commit protocol (commit thread only) ---
  void PrepareUpsert(uint64_t seq, const PreparedUpsert& up, storage::Batch* batch,
                     WriteEffects* fx);
  void PrepareDelete(uint64_t seq, const PreparedDelete& del, storage::Batch* batch,
                     WriteEffects* fx);
  void ApplyUpsert(uint64_t seq, const PreparedUpsert& up, const WriteEffects& fx);
  void ApplyDelete(uint64_t seq, const WriteEffects& fx);
  // Records that `seq` touched this collection without changing rows.
  void ApplyNoop(uint64_t seq);
  void EndGroup() { pending_.clear(); }

  // Loads all points from the store (at start-up, before serving).
  absl::Status Recover(storage::Store& store, uint64_t last_seq);

  // Marks the collection dropped: later writes queued for it fail NOT_FOUND.
  void MarkDropped() { dropped_.store(true, std::memory_order_release); }
  bool dropped() const { return dropped_.load(std::memory_order_acquire); }

 private:
  Snapshot TakeSnapshot() const;
  // Resolves an external id as the commit thread sees it: pending writes of
  // the current group first, then the applied id map. -1 if absent.
  int64_t ResolveForWrite(const std::string& id) const;
  // Writes a point's data into its row slot (beyond the published rows).
  void FillRow(uint64_t iid, const std::string& id, AttrRow attrs,
               const std::vector<const float*>& vectors);
  Chunk* ChunkForWrite(uint64_t iid);
  void Publish(uint64_t rows, uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int> ResolveField(const std::string& field) const;

  // Constant after construction.
  const uint32_t id_;
  const std::string name_;
  const Schema schema_;
  const int64_t created_at_unix_ms_;

  std::atomic<bool> dropped_{false};

  // Commit thread only.
  uint64_t next_iid_;
  absl::flat_hash_map<std::string, int64_t> pending_;
  // The writer's own view of the directory (may be ahead of the published one).
  std::shared_ptr<ChunkDir> writer_chunks_;

  // State below is what readers see; changed only under mu_ by the commit
  // thread, read under a reader lock (briefly: readers copy a Snapshot).
  mutable absl::Mutex mu_;
  std::shared_ptr<const ChunkDir> chunks_ ABSL_GUARDED_BY(mu_);
  uint64_t rows_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t live_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dead_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> id_map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_COLLECTION_H_
