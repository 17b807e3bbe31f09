// IndexBuilder: background threads that build the ANN indexes of sealed
// segments and run compactions, so writers and searches never wait for
// either. A segment is searched exactly until its index is set, then
// through the index. A compaction copies live rows into a new segment,
// builds its indexes and hands it back for the swap.
//
// Jobs hold their collection weakly: the jobs of a dropped collection are
// skipped. Builds run with an explicit thread count so they do not
// oversubscribe the cores that gRPC and searches use.
//
// Stop (and the destructor) end running builds and compactions promptly, for
// a server shutting down inside `docker stop`'s 10 s: index builds check a
// stop flag between steps (each HNSW insert, IVF training and adding,
// fields, windows) and give up; their segments stay unindexed on disk, so a
// restart builds them again, and a stopped compaction's inputs stay in place
// and are compacted again after the restart.
//
// Thread-safety: all methods are safe to call concurrently.
// Errors never reach the caller (the Enqueue methods return nothing): a build
// that fails, or fails its recall self-check, is logged and its segment
// stays searched exactly until a later rebuild.
#ifndef QUIVER_QUERY_INDEX_BUILDER_H_
#define QUIVER_QUERY_INDEX_BUILDER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "query/collection.h"
#include "query/recall_calibration.h"
#include "query/segment.h"

namespace quiver {

struct IndexBuilderOptions {
  // Concurrent builds. Default: 1.
  int workers = 1;
  // Threads one build may use (hnswlib inserts, FAISS k-means). Default: 1.
  int threads_per_build = 1;
  // The builder threads' nice value (and so that of the threads a build
  // starts, which inherit it): above 0 they yield the CPU to searches and
  // writes and take what those leave idle. 0 leaves it unchanged.
  // Default: 10 (a nice-0 thread gets ~10x the CPU of a nice-10 one).
  int nice = 10;
  // Rows each new index is checked on before it is served
  // (query/index_check.h); an index that fails is logged as an error and not
  // used. 0 turns the check off. Default: kDefaultIndexCheckSamples (32).
  uint32_t check_samples = 32;
  // Recall calibration of each new index (query/recall_calibration.h), for
  // target-recall searches; samples == 0 turns it off.
  CalibrationOptions calibration;
};

class IndexBuilder {
 public:
  // Called after a segment's indexes are all built (on a builder thread).
  using BuiltCallback = std::function<void(Collection&, const std::shared_ptr<Segment>&)>;
  // Called with a compaction's finished output (indexed and persisted).
  using CompactedCallback = std::function<void(const std::shared_ptr<Collection>&,
                                               CompactionPlan, std::shared_ptr<Segment>)>;

  IndexBuilder(IndexBuilderOptions options, BuiltCallback on_built,
               CompactedCallback on_compacted);
  // Stop(), then joins the workers.
  ~IndexBuilder();

  // Drops queued jobs and makes running builds and compactions give up
  // within milliseconds (see above); later Enqueue calls are ignored. Does
  // not wait for them (the destructor does).
  void Stop();

  // Builds every missing index of `segment` (fields whose kind is not FLAT).
  void Enqueue(std::weak_ptr<Collection> collection, std::shared_ptr<Segment> segment);
  void EnqueueCompaction(std::weak_ptr<Collection> collection, CompactionPlan plan);
  // Calls the built callback for `segment` again, its indexes as they are:
  // a retry of a persist that failed (say on a full disk).
  void EnqueuePersist(std::weak_ptr<Collection> collection, std::shared_ptr<Segment> segment);
  // Blocks until no job is queued or running.
  void WaitIdle();
  // Jobs waiting for a worker (metrics).
  size_t queued() {
    MutexLock lock(&mu_);
    return queue_.size();
  }

  // Rows of the segments queued or being built that have no index yet for
  // some indexed field (rebuilds of a segment that still serves its old
  // index do not count), and of compactions' outputs: what searches scan
  // exactly until the builder catches up. Write backpressure watches it.
  uint64_t unindexed_rows() const { return unindexed_rows_.load(std::memory_order_relaxed); }
  // Rows per second the builder has been getting through such jobs lately
  // (0 before the first).
  double rows_per_second() const;

 private:
  struct Job {
    std::weak_ptr<Collection> collection;
    std::shared_ptr<Segment> segment;  // index build
    CompactionPlan plan;               // compaction, when it has inputs
    bool persist_only = false;         // EnqueuePersist
    uint64_t unindexed = 0;            // its share of unindexed_rows_
  };
  void Work();
  // False if Stop() cut it short: the segment's new indexes are neither
  // persisted nor reported.
  bool Build(Collection& coll, const std::shared_ptr<Segment>& seg);

  const IndexBuilderOptions options_;
  const BuiltCallback on_built_;
  const CompactedCallback on_compacted_;
  Mutex mu_;
  CondVar cv_;  // queue, running_ or stopping_ changed
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by Stop(); read by running builds (VectorIndex::set_build_stop).
  std::atomic<bool> stop_builds_{false};
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> unindexed_rows_{0};
  // An exponential average of unindexed rows per second of job.
  mutable Mutex rate_mu_;
  double rows_per_second_ ABSL_GUARDED_BY(rate_mu_) = 0;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_INDEX_BUILDER_H_
