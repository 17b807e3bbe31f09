// The compiled form of a filter: a flat array of evaluator nodes that
// Filter::Compile produces (children before parents). Exposed so that the
// planner (query/attr_index.h) can estimate and evaluate a filter against
// attribute indexes node by node, with the same meaning Filter::Matches
// gives each node. Plain data, immutable once compiled, so any number of
// threads may read it at once (OrDispatch is shared by shared_ptr for that
// reason). Compile reports errors; evaluating bound nodes does not fail.
#ifndef QUIVER_QUERY_FILTER_BOUND_H_
#define QUIVER_QUERY_FILTER_BOUND_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "query/filter/ast.h"

namespace quiver::filter {

// What the evaluator does at a node. "v" is the row's value of `attr`.
//
// The compiled form is two-valued and has no NOT: Compile pushes every NOT
// down to the predicates (De Morgan; NOT flips a comparison, IN, BETWEEN,
// CONTAINS, a BOOL test or IS NULL), which in SQL's three-valued logic is
// exact, and then a node holds (TRUE) or does not (FALSE or UNKNOWN alike):
// with no NOT above it, an UNKNOWN can only ever make its parents UNKNOWN or
// FALSE, never TRUE. So a predicate is false when v is null or of another
// type, and `negate` flips the test on non-null values only (`a != 1` and
// `NOT a = 1` are both false for a null a). Every path that evaluates a
// filter (row by row, through attribute indexes, window indexes) gives each
// node this meaning, so they all agree.
enum class Op : uint8_t {
  kConst,         // `value`
  kAnd,           // all kids
  kOr,            // any kid
  kIsNull,        // v is null (never UNKNOWN), != negate (IS NOT NULL)
  kIntRange,      // ilo <= v <= ihi (int64 attribute), != negate
  kDoubleRange,   // dlo <= v <= dhi (double attribute), != negate
  kBoolEq,        // v == value
  kStrCmp,        // v <cmp> slo, byte-wise
  kStrRange,      // slo <= v <= shi, != negate
  kIntIn,         // v in ints (sorted), != negate
  kDoubleIn,      // v in doubles (sorted), != negate
  kStrIn,         // v in strs (sorted), != negate
  kContainsOne,   // slo is an element of v, != negate
  kContainsAny,   // some element of v is in strs (sorted), != negate
  kContainsAll,   // every element of strs is in v, != negate
  kIdIn,          // the point's id is in strs (sorted), != negate; attr is kIdAttr
};

// BoundNode::attr of the predicates on the point id (never null).
inline constexpr int kIdAttr = -2;

inline bool IsPredicate(Op op) {
  return op != Op::kConst && op != Op::kAnd && op != Op::kOr;
}

// For an OR of many branches that each require an equality on one INT64 or
// STRING attribute (`(a = 1 AND b > 2) OR (a = 7 AND ...) OR ...`): the
// branches by the value they require, so a row evaluates only the branches
// its value can satisfy (and the `always` ones, which require none) instead
// of every branch. Same meaning as the plain OR: a branch requiring a = v is
// false on a row whose a is not v, null included.
struct OrDispatch {
  int attr = -1;
  bool strings = false;  // STRING keys (else INT64)
  absl::flat_hash_map<int64_t, std::vector<uint32_t>> by_int;      // value -> kid nodes
  absl::flat_hash_map<std::string, std::vector<uint32_t>> by_str;  // value -> kid nodes
  std::vector<uint32_t> always;                                    // kid nodes
};

struct BoundNode {
  Op op = Op::kConst;
  bool negate = false;
  bool value = false;
  CompareOp cmp = CompareOp::kEq;
  uint8_t value_index = 0;  // kIsNull: AttrValue's alternative for the attribute's type
  int attr = -1;  // index into Schema::attributes() (predicates only), or kIdAttr
  int64_t ilo = 1, ihi = 0;
  double dlo = std::numeric_limits<double>::infinity();
  double dhi = -std::numeric_limits<double>::infinity();
  std::string slo, shi;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<std::string> strs;
  std::vector<uint32_t> kids;
  // kOr only, when worth it: its kids by the value they require. `kids`
  // still lists them all (estimation and index evaluation use it).
  std::shared_ptr<const OrDispatch> dispatch;
};

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_BOUND_H_
