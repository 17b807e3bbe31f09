// Operator: the base of the physical operators that search one segment, and
// the per-segment state they share (SegmentRun).
//
// The planner decides a tree of PlanNodes per segment and query batch
// (query/plan/segment_planner.h); query/execute/segment_search.cc builds one
// operator per node (one class per file in this folder) and runs the root.
// Each operator records what it actually did while it runs: how often it ran,
// the rows it took in and gave out, distance computations, filter checks,
// reads, and its wall time (inclusive of the children it ran). EXPLAIN
// prints the tree those operators filled (ToExplain), each operator's line
// followed by a "| actual:" line when it ran.
//
// Operators are built per segment and batch, not per row: a virtual call is
// made per run of an operator (per batch, or per query where a parent runs a
// child query by query), never per row.
//
// Ownership: an operator points at its PlanNode (owned by the PhysicalPlan)
// and at its children (owned by the OperatorTree that built them); the
// SegmentRun points at the plan, the segment and the explain message, which
// outlive the run. Thread-safety: none; a segment's operators run on the
// search's thread. Errors: absl::Status from Run: CANCELLED or
// DEADLINE_EXCEEDED once the request's StopToken says so, index or read
// errors as the index reports them.
#ifndef QUIVER_QUERY_EXECUTE_OPERATOR_H_
#define QUIVER_QUERY_EXECUTE_OPERATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "index/topk.h"
#include "query/attr_index.h"
#include "query/plan/plan_node.h"
#include "query/plan/segment_planner.h"
#include "query/segment.h"

namespace quiver {

namespace v1 {
class SegmentPlan;
}  // namespace v1

// Search hits carry (part << 32 | offset) until they are resolved to points.
inline uint64_t HitId(size_t part, uint32_t offset) {
  return (static_cast<uint64_t>(part) << 32) | offset;
}

// Wall time since construction, in microseconds (steady clock).
class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double Micros() const {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// What an operator actually did; zero where it does not apply.
struct OpStats {
  uint64_t runs = 0;       // Run calls, plus RunOne calls (one query each)
  uint64_t rows_in = 0;    // rows considered: scanned, visited, or candidates taken in
  uint64_t rows_out = 0;   // results given out (hits, or rows of a row set)
  uint64_t distances = 0;  // query-to-vector distance computations
  uint64_t checks = 0;     // rows checked against the filter one by one
  uint64_t reads = 0;      // records read from a rerank table
  uint64_t fetches = 0;    // PostFilter: index fetches over all queries
  uint64_t fallbacks = 0;  // PostFilter: queries that fell back
  double micros = 0;       // wall time, inclusive of children run from it

  void Add(const OpStats& o);
};

// One segment's search in progress: what the operators share.
struct SegmentRun {
  SegmentRun(const PhysicalPlan& p, const Segment& s, uint32_t r, uint64_t sq, size_t pt)
      : plan(p), ctx(p.ctx), seg(s), rows(r), seq(sq), part(pt) {}
  // Some of `parent`'s queries, as `chunk` (a context over them, which must
  // outlive this run) says: the same plan, segment and explain message. The
  // row set is not copied: the caller moves it in and back.
  SegmentRun(const SegmentRun& parent, const SearchContext& chunk)
      : plan(parent.plan),
        ctx(chunk),
        seg(parent.seg),
        rows(parent.rows),
        seq(parent.seq),
        part(parent.part),
        explain(parent.explain) {}
  const PhysicalPlan& plan;
  const SearchContext& ctx;  // plan.ctx: k and knobs as widened for a rerank
  const Segment& seg;
  const uint32_t rows;
  const uint64_t seq;
  const size_t part;
  // The filter's live, passing rows, once a RowSet operator evaluated them.
  RowSet set;
  bool have_set = false;
  // Explain: the message being filled (a queued rerank adds its wait to
  // it), and the counted selectivity the Filter line prints.
  v1::SegmentPlan* explain = nullptr;
  double actual_selectivity = 0;
};

class Operator {
 public:
  explicit Operator(const PlanNode& node) : node_(&node) {}
  virtual ~Operator() = default;
  Operator(const Operator&) = delete;
  Operator& operator=(const Operator&) = delete;

  // Runs the operator over every query of the batch, pushing its hits into
  // topk[q]; times it into stats().
  absl::Status Run(SegmentRun& run, index::TopK* topk);
  // One query q into *out (how PostFilter falls back query by query).
  // UNIMPLEMENTED for operators that only run whole batches.
  absl::Status RunOne(SegmentRun& run, size_t q, index::TopK* out);

  const PlanNode& node() const { return *node_; }
  const OpStats& stats() const { return stats_; }
  void AddChild(Operator* child) { children_.push_back(child); }
  size_t num_children() const { return children_.size(); }
  Operator* child(size_t i) const { return children_[i]; }

  // Appends this operator's line (indented two spaces per depth), its
  // "| actual:" line if it ran, then its children's.
  void ToExplain(const SegmentRun& run, int depth, std::string* out) const;
  // Distances and filter checks over the tree (the segment's totals).
  void SumWork(uint64_t* distances, uint64_t* checks) const;
  // Time spent in RowSet operators of the tree (explain's filter time).
  double FilterMicros() const;

 protected:
  virtual absl::Status Execute(SegmentRun& run, index::TopK* topk) = 0;
  virtual absl::Status ExecuteOne(SegmentRun& run, size_t q, index::TopK* out);
  // "Name(details)", as explain prints it.
  virtual std::string Describe(const SegmentRun& run) const = 0;
  // "k=10, queries=5": the shape of the batch.
  std::string BatchText(const SegmentRun& run) const;

  OpStats stats_;

 private:
  const PlanNode* node_;
  std::vector<Operator*> children_;
};

// An operator with no work of its own, shown in explain under the operator
// that uses it: the filter, a window range, inline row checks.
class NoteOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun&, index::TopK*) override { return absl::OkStatus(); }
  std::string Describe(const SegmentRun& run) const override;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_OPERATOR_H_
