#include "query/write_limits.h"

#include <algorithm>
#include <cmath>
#include <variant>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "index/topk.h"
#include "query/plan/segment_planner.h"
#include "base/units.h"

namespace quiver {
namespace {

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / kMiB);
}

// Candidates kept per query vector for k and a refine factor (0: `dflt`),
// as the searches compute them.
uint64_t Candidates(uint32_t k, float refine, float dflt) {
  const float rf = refine > 0 ? refine : dflt;
  return static_cast<uint64_t>(std::min<double>(
      kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
}

// One field's candidate lists: single vectors keep k (or k x refine for
// compressed indexes, counted at the largest default), query sets their
// late-interaction candidates.
uint64_t FieldWork(const VectorFieldSpec& field, uint32_t k, const BoundSearchParams& p,
                   size_t single, const std::vector<TokenSet>& sets) {
  uint64_t lists = 0;
  lists += single * Candidates(k, p.refine_factor, p.exact ? 1 : kDefaultRefinePq);
  for (const TokenSet& s : sets) {
    if (field.token_candidates) {
      // Each query vector's nearest token vectors, then the set's points.
      lists += static_cast<uint64_t>(s.count) * Candidates(k, p.refine_factor, kDefaultTokenRefine);
    }
    lists += Candidates(k, p.refine_factor, p.exact ? 1 : kDefaultMultiRefine);
  }
  // A list per segment pass and the merged one.
  return 2 * lists * sizeof(index::Neighbor);
}

// A sparse search's lists: a top-k heap per query and segment pass, the
// merged one, and the index's own heap.
uint64_t SparseWork(uint32_t k, size_t queries) {
  return 3 * static_cast<uint64_t>(k) * queries * sizeof(index::Neighbor);
}

}  // namespace

absl::Status RetryLater(const std::string& message, absl::Duration after) {
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(after));
  absl::Status s = absl::UnavailableError(absl::StrCat(
      message, "; retry in about ", absl::FormatDuration(absl::Milliseconds(ms))));
  s.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(ms)));
  return s;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& s) {
  const auto p = s.GetPayload(kRetryAfterPayload);
  int64_t ms = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

uint64_t UpsertPrepareBytes(const Schema& schema, const std::vector<uint32_t>& stored_dims,
                            const v1::UpsertPointsRequest& req) {
  uint64_t bytes = 0;
  const auto& fields = schema.vectors();
  for (const v1::Point& p : req.points()) {
    // The stored record (id and attributes) and the row's attribute copies.
    bytes += 2 * (p.id().size() + 64);
    for (const auto& [name, value] : p.attributes()) {
      bytes += 2 * (name.size() + value.string_value().size() +
                    16 * static_cast<size_t>(value.string_list_value().values_size()) + 32);
    }
    for (size_t f = 0; f < fields.size(); ++f) {
      const VectorFieldSpec& spec = fields[f];
      if (spec.dropped) continue;
      if (spec.multi) {
        auto it = p.multi_vectors().find(spec.name);
        const uint64_t n = it == p.multi_vectors().end() ? 0 : it->second.vectors_size();
        bytes += (n * spec.dim + stored_dims[f]) * sizeof(float);
      } else if (spec.metric == Metric::kCosine) {
        bytes += static_cast<uint64_t>(spec.dim) * sizeof(float);
      }
    }
  }
  return bytes;
}

uint64_t UpsertRowBytes(const Schema& schema, const std::vector<uint32_t>& stored_dims,
                        const BoundUpsert& up) {
  uint64_t per_row = 0;
  // (stored_dims has room for fields not added yet: the schema's count.)
  for (size_t f = 0; f < schema.vectors().size(); ++f) {
    if (!schema.vectors()[f].dropped) per_row += (stored_dims[f] + 1) * sizeof(float);
  }
  uint64_t bytes = per_row * up.points.size();
  for (const BoundUpsert::Point& p : up.points) {
    for (size_t f = 0; f < p.tokens.size(); ++f) {
      bytes += static_cast<uint64_t>(p.tokens[f].count) * schema.vectors()[f].dim * sizeof(float);
    }
    for (const SparseValue& v : p.sparse) bytes += v == nullptr ? 0 : v->MemoryBytes();
  }
  return bytes;
}

uint64_t SearchWorkBytes(const BoundSearchRequest& q, const Schema& schema) {
  if (const auto* h = std::get_if<BoundHybridSearch>(&q)) {
    uint64_t bytes = 0;
    for (const BoundFieldQuery& fq : h->fields) {
      bytes += fq.term_query() ? SparseWork(fq.k, 1)
                               : FieldWork(schema.vectors()[fq.field], fq.k, fq.params,
                                           fq.qnorms.size(), fq.sets);
    }
    return bytes;
  }
  if (const auto* sp = std::get_if<BoundSparseSearch>(&q)) {
    return SparseWork(sp->k, sp->queries.size());
  }
  if (const auto* tx = std::get_if<BoundTextSearch>(&q)) {
    return SparseWork(tx->k, tx->queries.size());
  }
  const BoundSearch& s = std::get<BoundSearch>(q);
  return FieldWork(schema.vectors()[s.field], s.k, s.params, s.multi ? 0 : s.qnorms.size(),
                   s.sets);
}

absl::Status CheckRequestMemory(const LimitOptions& o, uint64_t bytes, const std::string& what) {
  if (o.max_request_memory_bytes == 0 || bytes <= o.max_request_memory_bytes) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the request would take about ", Mib(bytes), " of memory (", what, "), more than ",
      "--max-request-memory-mb=", o.max_request_memory_bytes / kMiB,
      "; split it into smaller requests"));
}

WritePressure EvaluatePressure(const LimitOptions& o, uint64_t unindexed_rows,
                               uint64_t debt_rows, double rows_per_second) {
  WritePressure w;
  double worst = 0;
  uint64_t over = 0;  // rows past half the limit that set `worst`
  std::string why;
  auto consider = [&](uint64_t rows, uint64_t max, const char* what, const char* flag) {
    if (max == 0) return;
    const double p = static_cast<double>(rows) / static_cast<double>(max);
    if (p <= worst) return;
    worst = p;
    over = rows - std::min(rows, max / 2);
    why = absl::StrCat(what, ": ", rows, " rows wait, the limit set by ", flag, "=", max);
  };
  consider(unindexed_rows, o.max_unindexed_rows, "index builds are behind",
           "--max-unindexed-rows");
  consider(debt_rows, o.max_compaction_debt_rows, "compaction is behind",
           "--max-compaction-debt-rows");
  if (worst < 0.5) return w;
  if (worst >= 1) {
    // Until the backlog is back under half the limit, at the rate the
    // builder has been going (a second when that is not known yet).
    absl::Duration after = absl::Seconds(1);
    if (rows_per_second > 0) {
      after = absl::Seconds(static_cast<double>(over) / rows_per_second);
    }
    w.refused = RetryLater(absl::StrCat("writes are refused while ", why),
                           std::clamp(after, absl::Milliseconds(100), absl::Seconds(60)));
    return w;
  }
  // Linear from nothing at half the limit to the longest delay at it.
  w.delay = o.max_write_delay * ((worst - 0.5) * 2);
  return w;
}

WriteDelayer::WriteDelayer() : thread_([this] { Loop(); }) {}

WriteDelayer::~WriteDelayer() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
}

void WriteDelayer::RunAt(absl::Time when, std::function<void()> job) {
  {
    MutexLock lock(&mu_);
    if (!stop_) {
      jobs_.emplace(when, std::move(job));
      cv_.NotifyAll();
      return;
    }
  }
  job();  // shutting down: no waiting any more
}

void WriteDelayer::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      MutexLock lock(&mu_);
      for (;;) {
        if (stop_ && jobs_.empty()) return;
        if (!jobs_.empty() && (stop_ || jobs_.begin()->first <= absl::Now())) break;
        const absl::Time next = jobs_.empty() ? absl::InfiniteFuture() : jobs_.begin()->first;
        // Wakes for the first job's time, and for a job due before it.
        cv_.WaitUntil(&mu_, next, [this, next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || (!jobs_.empty() && (jobs_.begin()->first < next ||
                                              jobs_.begin()->first <= absl::Now()));
        });
      }
      job = std::move(jobs_.begin()->second);
      jobs_.erase(jobs_.begin());
    }
    job();
  }
}

}  // namespace quiver
