// RecallAuditor: measures, on the live traffic, how close a collection's
// approximate (ANN) searches come to the exact answer. A sampled fraction
// of successful single-field, non-exact searches of indexed fields
// (late-interaction ones included, re-run by exact MaxSim) is
// copied (queries, filter, k, and the ids the search returned) into a small
// bounded queue; one background thread at the lowest CPU priority
// (SCHED_IDLE) runs each again exactly and records recall@k, the share of
// the exact top k the ANN search returned, averaged over the request's
// queries, in the collection's CollectionCounters (a running mean over the
// last kRecallAuditWindow audits per field, and a count).
//
// An exact re-run costs in proportion to the collection: at 1M x 128 one
// query scans 512 MB, tens of milliseconds, so at a few thousand searches a
// second a fixed sampling rate alone spent a fifth of a core and streamed
// the whole collection through the caches every second. Audits therefore
// also keep to a CPU budget, `cpu_share` of one core on average: after an
// audit that used t seconds of CPU, the next starts no sooner than
// t * (1 / cpu_share - 1) seconds later, and searches sampled in between
// are skipped (counted) instead of queued. Small collections are audited at
// the sampling rate; large ones as often as the budget allows.
//
// The request never waits for its audit: sampling is a thread-local random
// draw, a sampled search is copied under a short lock, and when the queue
// is full the audit is dropped (counted). Writes between the search and its
// re-run can lower the figure slightly on a collection that changes fast;
// ties in distance can too. The re-runs count in the planner's counters
// (QueryStats) like any search: at the default rate, a few in a thousand.
//
// Ownership: the Engine owns the auditor; queued audits hold their
// collection weakly (a dropped or freed collection's audits are skipped, and
// never keep its vectors in memory). Destruction stops the exact re-run in
// progress (through its StopToken), so shutdown never waits for a long
// exact scan at idle priority. Thread-safety:
// MaybeAudit may be called from any thread. Errors: an audit whose exact
// search fails is dropped and counted in failed(); nothing is reported to
// the request.
#ifndef QUIVER_QUERY_RECALL_AUDIT_H_
#define QUIVER_QUERY_RECALL_AUDIT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "query/bind/bound.h"
#include "quiver/v1/search.pb.h"

namespace quiver {

class Collection;

class RecallAuditor {
 public:
  // `rate` in (0, 1]: the share of eligible searches audited. At most
  // `max_queued` audits wait; more are dropped. `cpu_share` in (0, 1]: the
  // average share of one core audits may use (1: no pause between them).
  explicit RecallAuditor(double rate, size_t max_queued = 16, double cpu_share = 1.0);
  // Stops the audit it is running and joins the thread; queued ones are
  // dropped.
  ~RecallAuditor();
  RecallAuditor(const RecallAuditor&) = delete;
  RecallAuditor& operator=(const RecallAuditor&) = delete;

  // Called after `q` searched `c` successfully and produced `resp`.
  void MaybeAudit(const std::shared_ptr<Collection>& c, const BoundSearch& q,
                  const v1::SearchResponse& resp);

  double rate() const { return rate_; }
  double cpu_share() const { return cpu_share_; }
  // Audits dropped because the queue was full, sampled searches skipped
  // while the CPU budget paused audits, and exact re-runs that failed.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    std::weak_ptr<Collection> collection;
    BoundSearch exact;  // the search again, exact, ids only
    float target = 0;   // the search's target_recall (0: none)
    std::vector<std::vector<std::string>> ann_ids;  // per query
  };
  bool Sampled() const;
  void Loop();
  // The exact re-run: the recall@k it measured, or none (nothing to
  // measure, the collection dropped, a failure or a stop).
  std::optional<double> Run(const Job& job);
  // Adds a measured recall to the collection's counters.
  static void Record(const Job& job, double recall);

  const double rate_;
  const uint64_t threshold_;  // a 64-bit draw below it samples
  const size_t max_queued_;
  const double cpu_share_;
  // Steady-clock nanoseconds before which no audit is queued or started
  // (the CPU budget's pause after the last one).
  std::atomic<int64_t> resume_ns_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> failed_{0};
  // Set by the destructor: the running exact search's StopToken watches it.
  std::atomic<bool> stopping_{false};
  Mutex mu_;
  CondVar cv_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_RECALL_AUDIT_H_
