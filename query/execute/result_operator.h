// ResultOperator: the base of the operators that work on a whole view's
// results after the per-segment operators (operator.h) merged them: the
// MaxSim rerank of late interaction, the fusion of a hybrid search's lists,
// and the final limit to k. Like the per-segment operators, each records
// what it actually did (OpStats: runs, rows in and out, distances, reads,
// wall time) and prints its explain line with a "| actual:" line under it.
//
// Ownership: an operator is a local of the search that runs it and owns its
// statistics; it borrows whatever its Run arguments point at for the call.
// Thread-safety: none; one search thread runs an operator (a hybrid search
// gives each field its own). Errors: each operator's Run says.
#ifndef QUIVER_QUERY_EXECUTE_RESULT_OPERATOR_H_
#define QUIVER_QUERY_EXECUTE_RESULT_OPERATOR_H_

#include <string>

#include "query/execute/operator.h"

namespace quiver {

// " | actual: time=1.2us runs=3 rows_in=40 ..." without the indent: what
// every operator's explain shows under its own line (zero counts left out).
std::string ActualText(const OpStats& s);

class ResultOperator {
 public:
  ResultOperator() = default;
  virtual ~ResultOperator() = default;
  ResultOperator(const ResultOperator&) = delete;
  ResultOperator& operator=(const ResultOperator&) = delete;

  const OpStats& stats() const { return stats_; }

  // Appends this operator's line and, if it ran, its "| actual:" line, each
  // prefixed by `indent`.
  void ToExplain(const std::string& indent, std::string* out) const;

 protected:
  // "Name(details)", as explain prints it.
  virtual std::string Describe() const = 0;

  // Counts one run and adds its wall time to stats_ when it goes out of
  // scope.
  class Timed {
   public:
    explicit Timed(OpStats* stats) : stats_(stats) { ++stats_->runs; }
    ~Timed() { stats_->micros += watch_.Micros(); }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;

   private:
    OpStats* stats_;
    Stopwatch watch_;
  };

  OpStats stats_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_RESULT_OPERATOR_H_
