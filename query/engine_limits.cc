// The engine's write limits (query/write_limits.h): backpressure on
// upserts, the memory budget's account (kept on the commit thread, so the
// writes of one commit group are counted one after the other), and its
// measure.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "query/engine_writer.h"

namespace quiver {

void Engine::AdmitUpsert(std::unique_ptr<Writer> w) {
  const WritePressure p =
      EvaluatePressure(options_.limits, builder_->unindexed_rows(),
                       compaction_debt_rows_.load(std::memory_order_relaxed),
                       builder_->rows_per_second());
  if (!p.refused.ok()) {
    w->coll->HoldIdleSeal(absl::Now() + RetryAfter(p.refused).value_or(absl::ZeroDuration()));
    return w->done(p.refused);
  }
  if (p.delay <= absl::ZeroDuration()) return Enqueue(std::move(w));
  w->coll->HoldIdleSeal(absl::Now() + p.delay);
  // The delayer's jobs are copyable functions.
  auto held = std::make_shared<std::unique_ptr<Writer>>(std::move(w));
  delayer_->RunAt(absl::Now() + p.delay, [this, held] { Enqueue(std::move(*held)); });
}

void Engine::MeasureLimits() {
  uint64_t memory = 0, debt = 0;
  for (const auto& c : AllCollections()) {
    memory += c->MemoryBytes();
    debt += c->CompactionDebtRows();
  }
  memory_used_ = memory;
  compaction_debt_rows_.store(debt, std::memory_order_relaxed);
}

namespace {

absl::Status BudgetExhausted(uint64_t used, uint64_t need, uint64_t budget,
                             const std::string& what, bool restore) {
  auto mib = [](uint64_t b) { return absl::StrFormat("%.1f MiB", b / 1048576.0); };
  return absl::ResourceExhaustedError(absl::StrCat(
      "memory budget for vector data exhausted: vectors and indexes in memory take ", mib(used),
      " and ", what, " needs ", mib(need), " more, past --memory-budget-mb=", budget >> 20,
      restore ? " (nothing was restored)" : "",
      "; delete points (their memory is freed when their segments are "
      "compacted) or drop collections, or raise --memory-budget-mb"));
}

std::string RestoringWhat(const std::string& name) {
  return absl::StrCat("restoring collection \"", name, "\"");
}

}  // namespace

absl::Status Engine::ChargeMemory(const Writer& w) {
  const uint64_t budget = options_.limits.memory_budget_bytes;
  if (budget == 0) return absl::OkStatus();
  // A restored collection is charged whole, as loaded (its vectors and
  // indexes in memory, as describe reports them), like an upsert of all
  // its rows.
  const bool restore = w.kind == Writer::Kind::kRestore;
  const uint64_t need =
      restore ? w.coll->MemoryBytes()
              : UpsertRowBytes(w.coll->schema(), *w.coll->bind_target().stored_dims, w.up);
  if (memory_used_ + need > budget) {
    return BudgetExhausted(memory_used_, need, budget,
                           restore ? RestoringWhat(w.name) : "this upsert", restore);
  }
  memory_used_ += need;
  return absl::OkStatus();
}

absl::Status Engine::PrecheckRestoreMemory(uint64_t bytes, const std::string& name) {
  const uint64_t budget = options_.limits.memory_budget_bytes;
  if (budget == 0) return absl::OkStatus();
  const uint64_t used = BudgetedMemoryBytes();
  if (used + bytes <= budget) return absl::OkStatus();
  return BudgetExhausted(used, bytes, budget,
                         absl::StrCat(RestoringWhat(name), " (by its files, before loading it)"),
                         true);
}

uint64_t Engine::BudgetedMemoryBytes() {
  uint64_t bytes = 0;
  RunOnCommitThread([this, &bytes] {
    kCommitThread.Assume();
    MeasureLimits();
    bytes = memory_used_;
  });
  return bytes;
}

}  // namespace quiver
