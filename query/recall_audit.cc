#include "query/recall_audit.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "query/collection.h"
#include "spdlog/spdlog.h"

namespace quiver {
namespace {

uint64_t Threshold(double rate) {
  if (rate >= 1.0) return UINT64_MAX;
  if (rate <= 0.0) return 0;
  return static_cast<uint64_t>(std::ldexp(rate, 64));
}

// splitmix64 over a per-thread state: a draw costs a few nanoseconds and
// no lock, and threads do not share a cache line.
uint64_t Draw() {
  thread_local uint64_t state =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      reinterpret_cast<uintptr_t>(&state);
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CPU time of the calling thread: what an audit cost, however long the
// idle-priority thread waited for a core meanwhile.
int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

RecallAuditor::RecallAuditor(double rate, size_t max_queued, double cpu_share)
    : rate_(rate),
      threshold_(Threshold(rate)),
      max_queued_(std::max<size_t>(1, max_queued)),
      cpu_share_(cpu_share > 0 && cpu_share < 1 ? cpu_share : 1.0) {
  thread_ = std::thread([this] { Loop(); });
}

RecallAuditor::~RecallAuditor() {
  stopping_.store(true, std::memory_order_relaxed);
  {
    MutexLock lock(&mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.NotifyAll();
  thread_.join();
}

bool RecallAuditor::Sampled() const {
  return threshold_ == UINT64_MAX || (threshold_ != 0 && Draw() < threshold_);
}

void RecallAuditor::MaybeAudit(const std::shared_ptr<Collection>& c, const BoundSearch& q,
                               const v1::SearchResponse& resp) {
  // Exact searches have nothing to audit; nor a field without an ANN
  // index, nor a multi-vector field scored by exact MaxSim only (no
  // encoder). Diversity, score_threshold and group_by return something
  // other than the top k by design, so the exact top k is no measure of
  // what they missed. Late-interaction searches are audited against exact
  // MaxSim: their candidates can miss.
  if (q.params.exact || q.mmr_fetch_k > 0 || q.has_threshold || q.group_by >= 0 ||
      !Sampled()) {
    return;
  }
  const size_t f = static_cast<size_t>(q.field);
  if (c->IndexSpecFor(f).type == "FLAT") return;
  const VectorFieldSpec& field = c->schema().vectors()[f];
  if (q.multi && !field.token_candidates && c->encoder(f) == nullptr) return;
  // Read only for the sampled few: the clock costs more than the draw.
  if (cpu_share_ < 1 && SteadyNowNs() < resume_ns_.load(std::memory_order_relaxed)) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    if (queue_.size() >= max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  Job job;
  job.collection = c;
  BoundSearch& e = job.exact;
  e.field = q.field;
  e.k = q.k;
  e.params = q.params;
  e.params.exact = true;
  e.params.strategy = FilterStrategy::kAuto;
  e.params.target_recall = 0;
  job.target = q.params.target_recall;
  e.filter = q.filter;
  e.filter_bytes = q.filter_bytes;
  e.queries = q.queries;
  e.qnorms = q.qnorms;
  if (q.multi) {
    // The sets again, owned by the job (the request's go with it).
    e.multi = true;
    for (const TokenSet& set : q.sets) {
      const size_t n = static_cast<size_t>(set.count) * field.dim;
      e.owned.push_back(std::make_unique<float[]>(n));
      std::copy(set.data, set.data + n, e.owned.back().get());
      e.sets.push_back(TokenSet{e.owned.back().get(), set.count});
    }
  }
  job.ann_ids.resize(static_cast<size_t>(resp.results_size()));
  for (int i = 0; i < resp.results_size(); ++i) {
    for (const v1::Hit& h : resp.results(i).hits()) job.ann_ids[i].push_back(h.id());
  }
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    if (queue_.size() >= max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(job));
  }
  cv_.NotifyOne();
}

void RecallAuditor::Loop() {
  // The lowest priority there is: the audit runs only on otherwise idle CPU.
  sched_param param{};
  param.sched_priority = 0;
  if (int err = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param); err != 0) {
    spdlog::warn("recall audit: cannot lower the audit thread's priority (error {})", err);
  }
  for (;;) {
    Job job;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const int64_t cpu_start = ThreadCpuNs();
    const std::optional<double> recall = Run(job);
    // The pause that keeps the average at cpu_share_: spent = share x
    // (spent + pause). Jobs queued before the pause wait it out too. Set
    // before the figure is recorded: whoever sees the audit counted also
    // sees the pause.
    int64_t pause = 0;
    if (cpu_share_ < 1) {
      const double spent = static_cast<double>(ThreadCpuNs() - cpu_start);
      pause = static_cast<int64_t>(spent * (1.0 / cpu_share_ - 1.0));
      resume_ns_.store(SteadyNowNs() + pause, std::memory_order_relaxed);
    }
    if (recall.has_value()) Record(job, *recall);
    if (pause <= 0) continue;
    MutexLock lock(&mu_);
    if (cv_.WaitUntil(&mu_, absl::Now() + absl::Nanoseconds(pause),
                      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; })) {
      return;
    }
  }
}

std::optional<double> RecallAuditor::Run(const Job& job) {
  const std::shared_ptr<Collection> held = job.collection.lock();
  if (held == nullptr || held->dropped()) return std::nullopt;
  const Collection& c = *held;
  v1::SearchResponse exact;
  const StopToken stop(absl::InfiniteFuture(), &stopping_);
  // Re-run in batches of kBatch queries. The thread runs at idle priority,
  // so on a busy machine it gets a sliver of a core, and a shutdown (which
  // joins it) waits for it to reach its next stop check: an exact scan of
  // one whole large batch between checks held closing for seconds.
  constexpr size_t kBatch = 16;
  const BoundSearch& all = job.exact;
  const size_t nq = all.num_queries();
  const size_t dim = nq == 0 ? 0 : all.queries.size() / nq;
  for (size_t first = 0; first < nq; first += kBatch) {
    const size_t end = std::min(nq, first + kBatch);
    BoundSearch part;
    part.field = all.field;
    part.k = all.k;
    part.params = all.params;
    part.filter = all.filter;
    part.filter_bytes = all.filter_bytes;
    if (all.multi) {
      // (The sets point into the job's buffers, which outlive the search.)
      part.multi = true;
      part.sets.assign(all.sets.begin() + first, all.sets.begin() + end);
    } else {
      part.queries.assign(all.queries.begin() + first * dim,
                          all.queries.begin() + end * dim);
      part.qnorms.assign(all.qnorms.begin() + first, all.qnorms.begin() + end);
    }
    v1::SearchResponse r;
    if (absl::Status s = c.Search(part, stop, &r); !s.ok()) {
      if (stop.stopped()) return std::nullopt;  // shutting down: not a failure
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("recall audit of \"{}\": exact search failed: {}", c.name(), s.ToString());
      return std::nullopt;
    }
    for (v1::SearchResult& res : *r.mutable_results()) exact.add_results()->Swap(&res);
    if (c.dropped()) return std::nullopt;
  }
  double sum = 0;
  size_t counted = 0;
  for (int i = 0; i < exact.results_size() && static_cast<size_t>(i) < job.ann_ids.size(); ++i) {
    const auto& truth = exact.results(i).hits();
    if (truth.empty()) continue;  // nothing to find: no figure
    absl::flat_hash_set<std::string> found(job.ann_ids[i].begin(), job.ann_ids[i].end());
    size_t hit = 0;
    for (const v1::Hit& h : truth) hit += found.contains(h.id());
    sum += static_cast<double>(hit) / truth.size();
    ++counted;
  }
  if (counted == 0) return std::nullopt;
  return sum / counted;
}

void RecallAuditor::Record(const Job& job, double recall) {
  const std::shared_ptr<Collection> held = job.collection.lock();
  if (held == nullptr) return;
  CollectionCounters::Field& counters =
      held->counters().field(static_cast<size_t>(job.exact.field));
  counters.recall.Add(recall);
  if (job.target > 0) {
    counters.target_recall.Add(job.target);
    counters.target_achieved.Add(recall);
  }
}

}  // namespace quiver
