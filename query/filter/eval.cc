// Evaluation of a compiled filter on one row: Filter::Matches, the
// connectives (with the OR dispatch) and the predicates on one value.
#include <algorithm>
#include <string>
#include <variant>
#include <vector>

#include "query/filter/bound.h"
#include "query/filter/filter.h"

namespace quiver::filter {
namespace {

// Whether a comparison whose three-way result is `c` holds for `cmp`.
bool Compared(CompareOp cmp, int c) {
  switch (cmp) {
    case CompareOp::kEq: return c == 0;
    case CompareOp::kNe: return c != 0;
    case CompareOp::kLt: return c < 0;
    case CompareOp::kLe: return c <= 0;
    case CompareOp::kGt: return c > 0;
    case CompareOp::kGe: return c >= 0;
  }
  return false;
}

// Whether the list `x` passes a CONTAINS node, before `negate`.
bool ContainsTest(const BoundNode& n, const std::vector<std::string>& x) {
  switch (n.op) {
    case Op::kContainsOne:
      return std::find(x.begin(), x.end(), n.slo) != x.end();
    case Op::kContainsAny:
      for (const std::string& tag : x) {
        if (std::binary_search(n.strs.begin(), n.strs.end(), tag)) return true;
      }
      return false;
    case Op::kContainsAll:
      for (const std::string& want : n.strs) {
        if (std::find(x.begin(), x.end(), want) == x.end()) return false;
      }
      return true;
    default:
      return false;
  }
}

// The CONTAINS predicates, on a string-list value; false on null, else
// flipped by `negate`.
bool EvalTags(const BoundNode& n, const AttrValue& v) {
  const auto* x = std::get_if<std::vector<std::string>>(&v);
  return x != nullptr && (ContainsTest(n, *x) != n.negate);
}

// A predicate node on the row's value `v`: false on null and on a value of
// the wrong type (each get_if below fails for those).
bool EvalPredicate(const BoundNode& n, const AttrValue& v) {
  switch (n.op) {
    case Op::kIntRange: {
      const int64_t* x = std::get_if<int64_t>(&v);
      return x != nullptr && ((n.ilo <= *x && *x <= n.ihi) != n.negate);
    }
    case Op::kDoubleRange: {
      const double* x = std::get_if<double>(&v);
      return x != nullptr && ((n.dlo <= *x && *x <= n.dhi) != n.negate);
    }
    case Op::kBoolEq: {
      const bool* x = std::get_if<bool>(&v);
      return x != nullptr && *x == n.value;
    }
    case Op::kStrCmp: {
      const std::string* x = std::get_if<std::string>(&v);
      if (x == nullptr) return false;
      return Compared(n.cmp, x->compare(n.slo));
    }
    case Op::kStrRange: {
      const std::string* x = std::get_if<std::string>(&v);
      return x != nullptr && ((n.slo <= *x && *x <= n.shi) != n.negate);
    }
    case Op::kIntIn: {
      const int64_t* x = std::get_if<int64_t>(&v);
      return x != nullptr &&
             (std::binary_search(n.ints.begin(), n.ints.end(), *x) != n.negate);
    }
    case Op::kDoubleIn: {
      const double* x = std::get_if<double>(&v);
      return x != nullptr &&
             (std::binary_search(n.doubles.begin(), n.doubles.end(), *x) != n.negate);
    }
    case Op::kStrIn: {
      const std::string* x = std::get_if<std::string>(&v);
      return x != nullptr &&
             (std::binary_search(n.strs.begin(), n.strs.end(), *x) != n.negate);
    }
    case Op::kContainsOne:
    case Op::kContainsAny:
    case Op::kContainsAll:
      return EvalTags(n, v);
    default:
      return false;
  }
}

// Null to the evaluator: absent, or of another type than the attribute's.
bool IsNull(const BoundNode& n, const AttrValue& v) { return v.index() != n.value_index; }

}  // namespace

bool Filter::EvalDispatch(const OrDispatch& d, const AttrRow& row, std::string_view id) const {
  const std::vector<uint32_t>* bucket = nullptr;
  if (static_cast<size_t>(d.attr) < row.size()) {
    const AttrValue& v = row[d.attr];
    if (d.strings) {
      if (const auto* s = std::get_if<std::string>(&v)) {
        auto it = d.by_str.find(*s);
        if (it != d.by_str.end()) bucket = &it->second;
      }
    } else if (const auto* x = std::get_if<int64_t>(&v)) {
      auto it = d.by_int.find(*x);
      if (it != d.by_int.end()) bucket = &it->second;
    }
  }
  if (bucket != nullptr) {
    for (uint32_t k : *bucket) {
      if (EvalNode(k, row, id)) return true;
    }
  }
  for (uint32_t k : d.always) {
    if (EvalNode(k, row, id)) return true;
  }
  return false;
}

bool Filter::EvalNode(uint32_t i, const AttrRow& row, std::string_view id) const {
  const BoundNode& n = nodes_[i];
  switch (n.op) {
    case Op::kConst:
      return n.value;
    case Op::kAnd:
      for (uint32_t k : n.kids) {
        if (!EvalNode(k, row, id)) return false;
      }
      return true;
    case Op::kOr:
      if (n.dispatch != nullptr) return EvalDispatch(*n.dispatch, row, id);
      for (uint32_t k : n.kids) {
        if (EvalNode(k, row, id)) return true;
      }
      return false;
    case Op::kIdIn:
      return std::binary_search(n.strs.begin(), n.strs.end(), id,
                                [](std::string_view a, std::string_view b) { return a < b; }) !=
             n.negate;
    case Op::kIsNull:
      return (static_cast<size_t>(n.attr) >= row.size() || IsNull(n, row[n.attr])) !=
             n.negate;
    default:
      break;
  }
  // A predicate: false on a missing value too.
  if (static_cast<size_t>(n.attr) >= row.size()) return false;
  return EvalPredicate(n, row[n.attr]);
}

}  // namespace quiver::filter
