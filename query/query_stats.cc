#include "query/query_stats.h"

#include "query/execute/operator.h"
#include "query/plan/segment_planner.h"

namespace quiver {
namespace {

uint64_t SumFallbacks(const Operator& op) {
  uint64_t n = op.stats().fallbacks;
  for (size_t i = 0; i < op.num_children(); ++i) n += SumFallbacks(*op.child(i));
  return n;
}

}  // namespace

void QueryStats::RecordSegment(const PhysicalPlan& plan, const Operator& root) {
  const size_t s = static_cast<size_t>(plan.choice.strategy);
  if (s < kNumStrategies) segment_searches[s].fetch_add(1, std::memory_order_relaxed);
  if (const uint64_t fb = SumFallbacks(root); fb > 0) {
    post_filter_fallbacks.fetch_add(fb, std::memory_order_relaxed);
  }
  if (root.node().kind == OpKind::kRerank) {
    rerank_candidates.fetch_add(root.stats().rows_in, std::memory_order_relaxed);
    rerank_table_reads.fetch_add(root.stats().reads, std::memory_order_relaxed);
  }
}

void RunningMean::Add(double v) {
  MutexLock lock(&mu_);
  values_.push_back(v);
  sum_ += v;
  if (values_.size() > window_) {
    sum_ -= values_.front();
    values_.pop_front();
  }
  // Recomputed now and then so rounding errors of the running sum do not add up.
  if (count_.fetch_add(1, std::memory_order_relaxed) % 1024 == 1023) {
    sum_ = 0;
    for (double x : values_) sum_ += x;
  }
}

double RunningMean::Mean() const {
  MutexLock lock(&mu_);
  return values_.empty() ? 0 : sum_ / static_cast<double>(values_.size());
}

CollectionCounters::CollectionCounters(size_t num_fields) {
  for (size_t f = 0; f < num_fields; ++f) fields_.push_back(std::make_unique<Field>());
}

}  // namespace quiver
