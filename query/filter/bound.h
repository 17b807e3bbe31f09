// The compiled form of a filter: a flat array of evaluator nodes that
// Filter::Compile produces (children before parents). Exposed so that the
// planner (query/attr_index.h) can estimate and evaluate a filter against
// attribute indexes node by node, with the same meaning Filter::Matches
// gives each node. Plain data, immutable once compiled.
#ifndef QUIVER_QUERY_FILTER_BOUND_H_
#define QUIVER_QUERY_FILTER_BOUND_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "query/filter/ast.h"

namespace quiver::filter {

// What the evaluator does at a node. "v" is the row's value of `attr`; a
// predicate is false when v is null or of another type, and `negate` flips
// the test on non-null values only (so `a != 1` is false for a null a).
enum class Op : uint8_t {
  kConst,         // `value`
  kAnd,           // all kids
  kOr,            // any kid
  kNot,           // !kids[0] (plain negation: true on null)
  kIntRange,      // ilo <= v <= ihi (int64 attribute), != negate
  kDoubleRange,   // dlo <= v <= dhi (double attribute), != negate
  kBoolEq,        // v == value
  kStrCmp,        // v <cmp> slo, byte-wise
  kStrRange,      // slo <= v <= shi, != negate
  kIntIn,         // v in ints (sorted), != negate
  kDoubleIn,      // v in doubles (sorted), != negate
  kStrIn,         // v in strs (sorted), != negate
  kContainsOne,   // slo is an element of v
  kContainsAny,   // some element of v is in strs (sorted)
  kContainsAll,   // every element of strs is in v
};

inline bool IsPredicate(Op op) {
  return op != Op::kConst && op != Op::kAnd && op != Op::kOr && op != Op::kNot;
}

struct BoundNode {
  Op op = Op::kConst;
  bool negate = false;
  bool value = false;
  CompareOp cmp = CompareOp::kEq;
  int attr = -1;  // index into Schema::attributes(), predicates only
  int64_t ilo = 1, ihi = 0;
  double dlo = std::numeric_limits<double>::infinity();
  double dhi = -std::numeric_limits<double>::infinity();
  std::string slo, shi;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<std::string> strs;
  std::vector<uint32_t> kids;
};

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_BOUND_H_
