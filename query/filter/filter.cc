#include "query/filter/filter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "query/filter/ast.h"
#include "query/filter/bound.h"
#include "query/filter/numeric_range.h"
#include "query/filter/parser.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "base/string_view.h"

namespace quiver::filter {
namespace {

using Ast = ::quiver::filter::Node;  // syntax tree; BoundNode is the evaluator's
using numeric::Bounds;
using numeric::DoubleBounds;
using numeric::IntBounds;
using numeric::Intersect;
using numeric::Range;
using numeric::RangeFor;

template <typename T>
void SortUnique(std::vector<T>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

}  // namespace


// Type-checks a syntax tree against a schema and appends the evaluator nodes
// to a Filter, children before parents. Recursion depth is that of the tree,
// which the parser bounds.
class Filter::Binder {
 public:
  Binder(const Schema& schema, Filter* out) : schema_(schema), out_(out) {}

  // Binds `n`, or NOT n when `neg`: NOTs are pushed down to the predicates
  // (bound.h), so the compiled form has none.
  absl::StatusOr<uint32_t> Bind(const Ast& n, bool neg = false) {
    BoundNode b;
    switch (n.kind) {
      case NodeKind::kConst:
        b.op = Op::kConst;
        b.value = n.const_value != neg;
        return Emit(std::move(b));
      case NodeKind::kNot:
        return Bind(*n.children.at(0), !neg);
      case NodeKind::kOr:
      case NodeKind::kAnd:
        return BindConnective(n, neg);
      default:
        break;
    }
    const int attr = schema_.AttributeIndex(n.field);
    if (attr < 0 && n.field == kIdName) return BindId(n, neg);
    if (attr < 0) {
      return FilterError(n.field_pos, absl::StrCat("unknown attribute \"",
                                                   TruncateForMessage(n.field), "\""));
    }
    b.attr = attr;
    referenced_.push_back(attr);
    const AttributeSpec& spec = schema_.attributes()[attr];
    switch (n.kind) {
      case NodeKind::kField:
        if (spec.type != AttrType::kBool) {
          return FilterError(n.field_pos, absl::StrCat(Describe(spec),
                                                       " cannot stand alone as a condition; "
                                                       "only a BOOL attribute can"));
        }
        b.op = Op::kBoolEq;
        b.value = !neg;  // NOT flag is flag = FALSE: both false on a null flag
        return Emit(std::move(b));
      case NodeKind::kIsNull:
        b.op = Op::kIsNull;
        b.negate = n.negated != neg;
        b.value_index = ValueIndex(spec.type);
        return Emit(std::move(b));
      case NodeKind::kCompare:
        QUIVER_RETURN_IF_ERROR(BindCompare(n, neg ? Complement(n.op) : n.op, spec, &b));
        break;
      case NodeKind::kIn:
        QUIVER_RETURN_IF_ERROR(BindIn(n, spec, &b));
        b.negate = n.negated != neg;
        break;
      case NodeKind::kBetween:
        QUIVER_RETURN_IF_ERROR(BindBetween(n, spec, &b));
        b.negate = n.negated != neg;
        break;
      case NodeKind::kContains:
        QUIVER_RETURN_IF_ERROR(BindContains(n, spec, &b));
        b.negate = neg;
        break;
      default:
        return absl::InternalError("filter: unexpected node kind");
    }
    return Emit(std::move(b));
  }

  // The predicates on the point id (the name `id` when no attribute has
  // it): =, !=, [NOT] IN with strings, IS [NOT] NULL (an id is never null).
  absl::StatusOr<uint32_t> BindId(const Ast& n, bool neg) {
    BoundNode b;
    b.attr = kIdAttr;
    uses_id_ = true;
    if (n.kind == NodeKind::kIsNull) {
      b.op = Op::kConst;
      b.value = n.negated != neg;
      return Emit(std::move(b));
    }
    const bool eq = n.kind == NodeKind::kCompare &&
                    (n.op == CompareOp::kEq || n.op == CompareOp::kNe);
    if (!eq && n.kind != NodeKind::kIn) {
      return FilterError(n.kind == NodeKind::kField ? n.field_pos : n.op_pos,
                         "the point id (`id`) takes only =, !=, IN, NOT IN and IS [NOT] NULL");
    }
    for (const Literal& lit : n.values) {
      if (!lit.is_string()) {
        return FilterError(lit.pos, absl::StrCat("type mismatch: the point id (`id`) needs a "
                                                 "string, got ", Sv(lit.KindName())));
      }
      b.strs.push_back(std::get<std::string>(lit.value));
    }
    SortUnique(&b.strs);
    b.op = Op::kIdIn;
    b.negate = (n.kind == NodeKind::kIn ? n.negated : n.op == CompareOp::kNe) != neg;
    return Emit(std::move(b));
  }

  bool uses_id() const { return uses_id_; }

  // An AND or OR, with NOT pushed into its children when `neg`. An OR whose
  // children include several equalities or IN lists on one INT64, DOUBLE or
  // STRING attribute binds those as one IN list (NOT IN under a NOT), which
  // a row answers with one binary search: `a = 1 OR a = 2 OR ...` (a 64 KiB
  // filter holds ~8000 of them) otherwise costs a comparison per value per
  // row, and, on an indexed attribute, a row set per value. The meaning is
  // the same, nulls included (both are false on a null). Errors are those
  // of the equalities: a literal of the wrong type is reported at its
  // position.
  absl::StatusOr<uint32_t> BindConnective(const Ast& n, bool neg) {
    auto mergeable = [&](const Ast& c) {
      if (n.kind != NodeKind::kOr) return false;
      if (!((c.kind == NodeKind::kCompare && c.op == CompareOp::kEq) ||
            (c.kind == NodeKind::kIn && !c.negated))) {
        return false;
      }
      const int a = schema_.AttributeIndex(c.field);
      if (a < 0) return false;
      const AttrType t = schema_.attributes()[a].type;
      return t == AttrType::kInt64 || t == AttrType::kDouble || t == AttrType::kString;
    };
    // Per attribute: the mergeable children, in order (attributes are few,
    // so a linear search of the groups is fine; children may be thousands).
    std::vector<std::pair<std::string, std::vector<const Ast*>>> groups;
    std::vector<int> group_of(n.children.size(), -1);
    for (size_t i = 0; i < n.children.size(); ++i) {
      const Ast& child = *n.children[i];
      if (!mergeable(child)) continue;
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const auto& e) { return e.first == child.field; });
      if (g == groups.end()) {
        groups.emplace_back(child.field, std::vector<const Ast*>());
        g = groups.end() - 1;
      }
      g->second.push_back(&child);
      group_of[i] = static_cast<int>(g - groups.begin());
    }
    // NOT (x OR y) is NOT x AND NOT y; NOT (x AND y) is NOT x OR NOT y.
    BoundNode b;
    b.op = (n.kind == NodeKind::kOr) != neg ? Op::kOr : Op::kAnd;
    for (size_t i = 0; i < n.children.size(); ++i) {
      const auto& child = n.children[i];
      const std::vector<const Ast*>* group =
          group_of[i] >= 0 && groups[group_of[i]].second.size() > 1 ? &groups[group_of[i]].second
                                                                    : nullptr;
      if (group == nullptr) {
        QUIVER_ASSIGN_OR_RETURN(uint32_t k, Bind(*child, neg));
        b.kids.push_back(k);
        continue;
      }
      if (group->front() != child.get()) continue;  // bound with the first member
      Ast in;
      in.kind = NodeKind::kIn;
      in.pos = child->pos;
      in.field = child->field;
      in.field_pos = child->field_pos;
      in.op_pos = child->op_pos;
      for (const Ast* m : *group) in.values.insert(in.values.end(), m->values.begin(), m->values.end());
      QUIVER_ASSIGN_OR_RETURN(uint32_t k, Bind(in, neg));
      b.kids.push_back(k);
    }
    if (b.kids.size() == 1) return b.kids[0];
    if (b.op == Op::kOr) b.dispatch = MakeDispatch(b.kids);
    return Emit(std::move(b));
  }

  // The equality values node `k` requires of an attribute: itself an
  // equality or IN list, or an AND with one among its conjuncts. Appends
  // (attr, values) pairs; ints or strs as the attribute's type is.
  struct Requirement {
    int attr;
    bool strings;
    std::vector<int64_t> ints;
    std::vector<std::string> strs;
  };
  std::vector<Requirement> Requirements(uint32_t k) const {
    std::vector<Requirement> out;
    auto add = [&](const BoundNode& n) {
      if (n.negate) return;
      if (n.op == Op::kIntRange && n.ilo == n.ihi) {
        out.push_back({n.attr, false, {n.ilo}, {}});
      } else if (n.op == Op::kIntIn) {
        out.push_back({n.attr, false, n.ints, {}});
      } else if (n.op == Op::kStrCmp && n.cmp == CompareOp::kEq) {
        out.push_back({n.attr, true, {}, {n.slo}});
      } else if (n.op == Op::kStrIn) {
        out.push_back({n.attr, true, {}, n.strs});
      }
    };
    const BoundNode& n = out_->nodes_[k];
    if (n.op == Op::kAnd) {
      for (uint32_t c : n.kids) add(out_->nodes_[c]);
    } else {
      add(n);
    }
    return out;
  }

  // A dispatch table for an OR with many branches keyed by one attribute,
  // or null when too few are (a plain scan of the branches is as cheap).
  std::shared_ptr<const OrDispatch> MakeDispatch(const std::vector<uint32_t>& kids) const {
    constexpr size_t kMinKeyed = 16;
    if (kids.size() < kMinKeyed) return nullptr;
    std::vector<std::vector<Requirement>> reqs;
    absl::flat_hash_map<int, size_t> keyed;  // attr -> branches requiring a value of it
    for (uint32_t k : kids) {
      reqs.push_back(Requirements(k));
      absl::flat_hash_map<int, bool> seen;
      for (const Requirement& r : reqs.back()) {
        if (seen.emplace(r.attr, true).second) ++keyed[r.attr];
      }
    }
    int best = -1;
    size_t best_count = 0;
    for (const auto& [attr, count] : keyed) {
      if (count > best_count || (count == best_count && attr < best)) {
        best = attr;
        best_count = count;
      }
    }
    if (best < 0 || best_count < kMinKeyed) return nullptr;
    auto d = std::make_shared<OrDispatch>();
    d->attr = best;
    for (size_t i = 0; i < kids.size(); ++i) {
      const Requirement* r = nullptr;
      for (const Requirement& x : reqs[i]) {
        if (x.attr == best) r = &x;  // an AND requiring two: either serves
      }
      if (r == nullptr) {
        d->always.push_back(kids[i]);
        continue;
      }
      d->strings = r->strings;
      for (int64_t v : r->ints) d->by_int[v].push_back(kids[i]);
      for (const std::string& v : r->strs) d->by_str[v].push_back(kids[i]);
    }
    return d;
  }

  std::vector<int> TakeReferenced() {
    SortUnique(&referenced_);
    return std::move(referenced_);
  }

 private:
  static std::string Describe(const AttributeSpec& spec) {
    return absl::StrCat(Sv(AttrTypeName(spec.type)), " attribute \"", spec.name, "\"");
  }

  static bool IsNumeric(const AttributeSpec& spec) {
    return spec.type == AttrType::kInt64 || spec.type == AttrType::kDouble;
  }

  // OK if `lit` may be compared with `spec`'s values: a number for INT64 and
  // DOUBLE, a string for STRING, TRUE/FALSE for BOOL.
  static absl::Status CheckLiteral(const Literal& lit, const AttributeSpec& spec) {
    bool ok = false;
    std::string_view want;
    switch (spec.type) {
      case AttrType::kInt64:
      case AttrType::kDouble:
        ok = lit.is_number();
        want = "a number";
        break;
      case AttrType::kString:
      case AttrType::kStringList:
        ok = lit.is_string();
        want = "a string";
        break;
      case AttrType::kBool:
        ok = lit.is_bool();
        want = "TRUE or FALSE";
        break;
    }
    if (ok) return absl::OkStatus();
    return FilterError(lit.pos, absl::StrCat("type mismatch: ", Describe(spec), " needs ", Sv(want),
                                             ", got ", Sv(lit.KindName())));
  }

  static absl::Status NotAllowed(std::string_view what, const Ast& n,
                                 const AttributeSpec& spec, std::string_view hint) {
    return FilterError(n.op_pos, absl::StrCat(Sv(what), " is not allowed on ", Describe(spec),
                                              hint.empty() ? "" : "; ", Sv(hint)));
  }

  // `n` with comparison `op` (n.op, or its complement under a NOT).
  static absl::Status BindCompare(const Ast& n, CompareOp op, const AttributeSpec& spec,
                                  BoundNode* b) {
    const std::string what = absl::StrCat("operator ", Sv(CompareOpSymbol(n.op)));
    if (spec.type == AttrType::kStringList) {
      return NotAllowed(what, n, spec, "use CONTAINS");
    }
    if (spec.type == AttrType::kBool && n.op != CompareOp::kEq && n.op != CompareOp::kNe) {
      return NotAllowed(what, n, spec, "use = or !=");
    }
    const Literal& lit = n.values.at(0);
    QUIVER_RETURN_IF_ERROR(CheckLiteral(lit, spec));
    b->negate = op == CompareOp::kNe;
    switch (spec.type) {
      case AttrType::kInt64: {
        b->op = Op::kIntRange;
        Range<int64_t> r = RangeFor(op, IntBounds(lit));
        b->ilo = r.lo;
        b->ihi = r.hi;
        break;
      }
      case AttrType::kDouble: {
        b->op = Op::kDoubleRange;
        Range<double> r = RangeFor(op, DoubleBounds(lit));
        b->dlo = r.lo;
        b->dhi = r.hi;
        break;
      }
      case AttrType::kBool:
        b->op = Op::kBoolEq;
        // Values are non-null here, so `v != x` is `v == !x`.
        b->value = std::get<bool>(lit.value) != b->negate;
        b->negate = false;
        break;
      case AttrType::kString:
        b->op = Op::kStrCmp;
        b->cmp = op;
        b->negate = false;
        b->slo = std::get<std::string>(lit.value);
        break;
      case AttrType::kStringList:
        break;  // rejected above
    }
    return absl::OkStatus();
  }

  static absl::Status BindIn(const Ast& n, const AttributeSpec& spec, BoundNode* b) {
    const std::string what = n.negated ? "NOT IN" : "IN";
    if (spec.type == AttrType::kStringList) return NotAllowed(what, n, spec, "use CONTAINS ANY");
    if (spec.type == AttrType::kBool) return NotAllowed(what, n, spec, "use = or !=");
    b->negate = n.negated;
    for (const Literal& lit : n.values) {
      QUIVER_RETURN_IF_ERROR(CheckLiteral(lit, spec));
      // A number that no value of the attribute's type equals (2.5 for
      // INT64) can never match, so it is left out.
      if (spec.type == AttrType::kInt64) {
        Bounds<int64_t> bd = IntBounds(lit);
        if (bd.exact) b->ints.push_back(bd.floor);
      } else if (spec.type == AttrType::kDouble) {
        Bounds<double> bd = DoubleBounds(lit);
        if (bd.exact) b->doubles.push_back(bd.floor);
      } else {
        b->strs.push_back(std::get<std::string>(lit.value));
      }
    }
    switch (spec.type) {
      case AttrType::kInt64:
        b->op = Op::kIntIn;
        SortUnique(&b->ints);
        break;
      case AttrType::kDouble:
        b->op = Op::kDoubleIn;
        SortUnique(&b->doubles);
        break;
      default:
        b->op = Op::kStrIn;
        SortUnique(&b->strs);
        break;
    }
    return absl::OkStatus();
  }

  static absl::Status BindBetween(const Ast& n, const AttributeSpec& spec, BoundNode* b) {
    const std::string what = n.negated ? "NOT BETWEEN" : "BETWEEN";
    if (spec.type == AttrType::kStringList || spec.type == AttrType::kBool) {
      return NotAllowed(what, n, spec, "");
    }
    const Literal& lo = n.values.at(0);
    const Literal& hi = n.values.at(1);
    QUIVER_RETURN_IF_ERROR(CheckLiteral(lo, spec));
    QUIVER_RETURN_IF_ERROR(CheckLiteral(hi, spec));
    b->negate = n.negated;
    if (spec.type == AttrType::kInt64) {
      b->op = Op::kIntRange;
      Range<int64_t> r = Intersect(RangeFor(CompareOp::kGe, IntBounds(lo)),
                                   RangeFor(CompareOp::kLe, IntBounds(hi)));
      b->ilo = r.lo;
      b->ihi = r.hi;
    } else if (spec.type == AttrType::kDouble) {
      b->op = Op::kDoubleRange;
      Range<double> r = Intersect(RangeFor(CompareOp::kGe, DoubleBounds(lo)),
                                  RangeFor(CompareOp::kLe, DoubleBounds(hi)));
      b->dlo = r.lo;
      b->dhi = r.hi;
    } else {
      b->op = Op::kStrRange;
      b->slo = std::get<std::string>(lo.value);
      b->shi = std::get<std::string>(hi.value);
    }
    return absl::OkStatus();
  }

  static absl::Status BindContains(const Ast& n, const AttributeSpec& spec, BoundNode* b) {
    if (spec.type != AttrType::kStringList) {
      return NotAllowed("CONTAINS", n, spec, "it needs a STRING_LIST attribute");
    }
    for (const Literal& lit : n.values) QUIVER_RETURN_IF_ERROR(CheckLiteral(lit, spec));
    switch (n.contains_mode) {
      case ContainsMode::kOne:
        b->op = Op::kContainsOne;
        b->slo = std::get<std::string>(n.values.at(0).value);
        return absl::OkStatus();
      case ContainsMode::kAny:
        b->op = Op::kContainsAny;
        break;
      case ContainsMode::kAll:
        b->op = Op::kContainsAll;
        break;
    }
    for (const Literal& lit : n.values) b->strs.push_back(std::get<std::string>(lit.value));
    SortUnique(&b->strs);
    return absl::OkStatus();
  }

  // The AttrValue alternative that holds values of type `t`.
  static uint8_t ValueIndex(AttrType t) {
    AttrValue v;
    switch (t) {
      case AttrType::kInt64: v = int64_t{0}; break;
      case AttrType::kDouble: v = 0.0; break;
      case AttrType::kBool: v = false; break;
      case AttrType::kString: v = std::string(); break;
      case AttrType::kStringList: v = std::vector<std::string>(); break;
    }
    return static_cast<uint8_t>(v.index());
  }

  // The comparison that holds on a non-null value exactly when `op` fails.
  static CompareOp Complement(CompareOp op) {
    switch (op) {
      case CompareOp::kEq: return CompareOp::kNe;
      case CompareOp::kNe: return CompareOp::kEq;
      case CompareOp::kLt: return CompareOp::kGe;
      case CompareOp::kLe: return CompareOp::kGt;
      case CompareOp::kGt: return CompareOp::kLe;
      case CompareOp::kGe: return CompareOp::kLt;
    }
    return op;
  }

  uint32_t Emit(BoundNode b) {
    out_->nodes_.push_back(std::move(b));
    return static_cast<uint32_t>(out_->nodes_.size() - 1);
  }

  static constexpr std::string_view kIdName = "id";

  const Schema& schema_;
  Filter* out_;
  std::vector<int> referenced_;
  bool uses_id_ = false;
};

Filter::Filter() = default;
Filter::~Filter() = default;

absl::StatusOr<std::shared_ptr<const Filter>> Filter::Compile(std::string_view expr,
                                                              const Schema& schema) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<Ast> tree, Parse(expr));
  std::shared_ptr<Filter> f(new Filter());
  Binder binder(schema, f.get());
  QUIVER_ASSIGN_OR_RETURN(f->root_, binder.Bind(*tree));
  f->referenced_ = binder.TakeReferenced();
  f->uses_id_ = binder.uses_id();
  f->text_ = tree->ToString();
  return std::shared_ptr<const Filter>(std::move(f));
}

}  // namespace quiver::filter
