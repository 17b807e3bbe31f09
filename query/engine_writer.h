// Engine::Writer: one queued unit of work for the engine's commit thread (a
// write, a catalog change, or an internal job), shared by engine.cc, which
// queues reads' barriers and starts the threads, and engine_commit.cc, which
// runs the queue. Internal to the engine; include nowhere else.
//
// Ownership: the queue owns each Writer until its group is done; a Writer
// owns its bound request and holds its collection.
// Thread-safety: built on the caller's thread, then touched only by the
// commit thread.
// Errors: a Writer's outcome is the status passed to `done`.
#ifndef QUIVER_QUERY_ENGINE_WRITER_H_
#define QUIVER_QUERY_ENGINE_WRITER_H_

#include <functional>
#include <future>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "query/engine.h"

namespace quiver {

struct Engine::Writer {
  // kInternal runs `internal` on the commit thread: segment-list changes
  // that write nothing to storage and take no sequence number.
  // kRestore publishes a collection a restore imported (coll, recovered
  // already, and its record in `created`).
  // kPointUpdate: a partial update (UpdatePoints), a barrier: merged into
  // `up` in Prepare (Collection::MergeUpdate), then committed as kUpsert is.
  // kAlias: an alias change (query/engine_alias.cc), a barrier: alias_op
  // says which, `name` is the alias, alias_target the collection.
  enum class Kind {
    kCreate, kDrop, kUpdate, kUpsert, kDelete, kInternal, kRestore, kPointUpdate, kAlias
  };
  Kind kind;
  // Runs as a commit group of its own, so its Prepare sees only applied
  // state (catalog changes and filter deletes).
  bool barrier = false;
  std::string name;
  std::optional<Schema> schema;  // kCreate
  std::shared_ptr<Collection> coll;
  BoundUpsert up;
  BoundDelete del;
  BoundUpdate point_update;  // kPointUpdate
  View merge_view;           // kPointUpdate: keeps the merged rows alive
  uint32_t points_created = 0;  // kPointUpdate: points created (upsert)
  WriteEffects fx;
  absl::Time deadline = absl::InfiniteFuture();
  size_t bytes = 0;
  uint64_t seq = 0;
  storage::CollectionRecord created;  // kCreate, kRestore
  uint64_t next_iid = 0;              // kRestore
  std::function<void()> internal;     // kInternal
  std::vector<std::pair<size_t, index::IndexSpec>> index_updates;  // kUpdate
  // kUpdate: the request's schema changes, applied in Prepare to the schema
  // then current (query/schema_update.h), giving next_schema (null: none).
  v1::UpdateCollectionRequest schema_update;
  std::shared_ptr<const Schema> next_schema;
  storage::OpRecord::Type alias_op = storage::OpRecord::UNKNOWN;  // kAlias
  std::string alias_target;                                       // kAlias
  // Fills the response after a successful apply.
  std::function<void(Writer&)> respond;
  Done done;
};

// Runs an asynchronous write (`start` is given its Done) and waits for it:
// the blocking forms of the engine's writes.
template <typename Fn>
absl::Status Wait(Fn&& start) {
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  start([&p](absl::Status s) { p.set_value(std::move(s)); });
  return f.get();
}

}  // namespace quiver

#endif  // QUIVER_QUERY_ENGINE_WRITER_H_
