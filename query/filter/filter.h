// Filter: a compiled attribute filter, the public entry point of the filter
// language (syntax and semantics in GRAMMAR.md).
//
// Compile() parses an expression, binds every attribute name to its index in
// the schema, type-checks each predicate and converts its literals into the
// attribute's own representation (numeric comparisons become inclusive
// ranges, IN lists sorted vectors), so Matches() does no name lookup, no
// parsing and no allocation.
//
// Null semantics (SQL's three-valued logic): a comparison with a null
// attribute is UNKNOWN, NOT UNKNOWN is UNKNOWN, AND / OR follow Kleene's
// tables, and a point matches only when the whole filter is TRUE. So
// `a != 1`, `NOT a = 1` and `NOT (a = 1 OR b)` all fail on a null `a`;
// `a IS NULL` / `a IS NOT NULL` test for null and are never UNKNOWN.
// Compile pushes the NOTs down to the predicates, after which the
// evaluation is two-valued (bound.h).
//
// The name `id`, when no attribute has it, is the point id: `id = "x"`,
// `id IN ("a", "b")` and their negations.
//
// A Filter is immutable and does not refer to the Schema after Compile
// returns. Thread-safety: all methods are const and may be called
// concurrently. Errors: Compile reports a malformed, unknown-attribute or
// ill-typed expression as INVALID_ARGUMENT naming its position; Matches does
// not fail.
#ifndef QUIVER_QUERY_FILTER_FILTER_H_
#define QUIVER_QUERY_FILTER_FILTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/filter/bound.h"
#include "storage/schema.h"

namespace quiver::filter {

// A compiled, immutable filter bound to one schema. Thread-safe: Matches may
// be called concurrently.
class Filter {
 public:
  // Parses and type-checks `expr` against `schema`'s attributes.
  // INVALID_ARGUMENT "filter: at position N: ..." on syntax errors, unknown
  // attributes and type mismatches (a string literal for an INT64 attribute,
  // CONTAINS on a non-list, '<' on BOOL or STRING_LIST, ...); BETWEEN with
  // lo > hi is allowed and matches nothing. An expression longer than
  // kMaxExpressionBytes or nested deeper than kMaxNestingDepth (parser.h) is
  // INVALID_ARGUMENT too.
  static absl::StatusOr<std::shared_ptr<const Filter>> Compile(std::string_view expr,
                                                               const Schema& schema);

  ~Filter();
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  // True if the point with attributes `row` (indexed like the schema's
  // attributes) and id `id` satisfies the filter. A row shorter than the
  // schema, or a value whose type differs from its attribute's, reads as
  // null. `id` is read only when uses_id(): callers with ids at hand pass
  // them (query/row_filter.h does for a segment's rows). Never throws.
  bool Matches(const AttrRow& row, std::string_view id = {}) const {
    return EvalNode(root_, row, id);
  }
  // Whether the filter tests the point id (`id = ...`, `id IN (...)`).
  bool uses_id() const { return uses_id_; }

  // Normalized expression, for logs and explain; compiling it again against
  // the same schema gives an equivalent filter with the same ToString().
  const std::string& ToString() const { return text_; }

  // Indices (into Schema::attributes()) of the attributes the filter reads,
  // ascending, without duplicates.
  const std::vector<int>& referenced_attributes() const { return referenced_; }

  // The compiled nodes (bound.h), children before parents, and the root's
  // index, for the planner's estimation and index-based evaluation.
  const std::vector<BoundNode>& nodes() const { return nodes_; }
  uint32_t root() const { return root_; }
  // Matches() restricted to the subtree at `node`.
  bool EvalNode(uint32_t node, const AttrRow& row, std::string_view id = {}) const;

 private:
  class Binder;

  Filter();
  // An OR through its dispatch table (bound.h).
  bool EvalDispatch(const OrDispatch& d, const AttrRow& row, std::string_view id) const;

  // All constant after Compile.
  std::vector<BoundNode> nodes_;  // nodes_[root_] is the root
  uint32_t root_ = 0;
  std::string text_;
  std::vector<int> referenced_;
  bool uses_id_ = false;
};

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_FILTER_H_
