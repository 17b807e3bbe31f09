// Numeric literals as exact ranges of an attribute's type: where a number
// falls among the INT64 or DOUBLE values (Bounds), and the inclusive range of
// values that satisfy `v op literal` (RangeFor), so a compiled filter compares
// in the attribute's own type with no rounding (`i < 2.5` is `i <= 2`).
// Used by the filter binder (filter.cc) only. Pure functions on values;
// reentrant; nothing fails.
#ifndef QUIVER_QUERY_FILTER_NUMERIC_RANGE_H_
#define QUIVER_QUERY_FILTER_NUMERIC_RANGE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <variant>

#include "query/filter/ast.h"

namespace quiver::filter::numeric {

constexpr int64_t kMinInt = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTwo63 = 9223372036854775808.0;  // 2^63, exactly a double

// Where a numeric literal falls among the values of T (int64_t or double):
// floor is the largest T <= literal, ceil the smallest T >= literal (absent
// when the literal lies beyond every T), exact if the literal is a T. Lets
// `int_attr < 2.5` or `double_attr = 9007199254740993` compile to exact
// comparisons in T, with no mixed-type arithmetic at evaluation time.
template <typename T>
struct Bounds {
  bool has_floor = false;
  bool has_ceil = false;
  T floor{};
  T ceil{};
  bool exact = false;
};

inline Bounds<int64_t> IntBounds(const Literal& lit) {
  Bounds<int64_t> b;
  if (const auto* i = std::get_if<int64_t>(&lit.value)) {
    b.has_floor = b.has_ceil = b.exact = true;
    b.floor = b.ceil = *i;
    return b;
  }
  const double f = std::get<double>(lit.value);  // finite: the lexer checks
  const double fl = std::floor(f);
  const double ce = std::ceil(f);
  if (fl >= -kTwo63) {
    b.has_floor = true;
    b.floor = fl >= kTwo63 ? kMaxInt : static_cast<int64_t>(fl);
  }
  if (ce < kTwo63) {
    b.has_ceil = true;
    b.ceil = ce < -kTwo63 ? kMinInt : static_cast<int64_t>(ce);
  }
  b.exact = fl == f && f >= -kTwo63 && f < kTwo63;
  return b;
}

inline Bounds<double> DoubleBounds(const Literal& lit) {
  Bounds<double> b;
  b.has_floor = b.has_ceil = true;
  if (const auto* f = std::get_if<double>(&lit.value)) {
    b.floor = b.ceil = *f;
    b.exact = true;
    return b;
  }
  const int64_t i = std::get<int64_t>(lit.value);
  const double d = static_cast<double>(i);  // nearest double
  int order = 1;  // sign of d - i; d >= 2^63 cannot be converted back
  if (d < kTwo63) {
    const int64_t back = static_cast<int64_t>(d);
    order = back > i ? 1 : (back < i ? -1 : 0);
  }
  if (order == 0) {
    b.floor = b.ceil = d;
    b.exact = true;
  } else if (order > 0) {
    b.ceil = d;
    b.floor = std::nextafter(d, -kInf);
  } else {
    b.floor = d;
    b.ceil = std::nextafter(d, kInf);
  }
  return b;
}

// The next / previous value of T, or nullopt-like `false` at the end of T.
inline bool Prev(int64_t v, int64_t* out) {
  if (v == kMinInt) return false;
  *out = v - 1;
  return true;
}
inline bool Next(int64_t v, int64_t* out) {
  if (v == kMaxInt) return false;
  *out = v + 1;
  return true;
}
inline bool Prev(double v, double* out) {
  *out = std::nextafter(v, -kInf);
  return true;
}
inline bool Next(double v, double* out) {
  *out = std::nextafter(v, kInf);
  return true;
}

// Inclusive range of T; lo > hi is empty.
template <typename T>
struct Range {
  T lo;
  T hi;
};

template <typename T>
Range<T> EmptyRange();
template <>
inline Range<int64_t> EmptyRange() { return {1, 0}; }
template <>
inline Range<double> EmptyRange() { return {kInf, -kInf}; }

template <typename T>
Range<T> FullRange();
template <>
inline Range<int64_t> FullRange() { return {kMinInt, kMaxInt}; }
template <>
inline Range<double> FullRange() { return {-kInf, kInf}; }

// The values v of T with `v op literal`; for kNe the range of kEq (the
// caller negates it).
template <typename T>
Range<T> RangeFor(CompareOp op, const Bounds<T>& b) {
  Range<T> r = FullRange<T>();
  switch (op) {
    case CompareOp::kEq:
    case CompareOp::kNe:
      if (!b.exact) return EmptyRange<T>();
      return {b.floor, b.floor};
    case CompareOp::kLe:
      if (!b.has_floor) return EmptyRange<T>();
      r.hi = b.floor;
      return r;
    case CompareOp::kLt:
      if (!b.has_floor) return EmptyRange<T>();
      r.hi = b.floor;
      if (b.exact && !Prev(b.floor, &r.hi)) return EmptyRange<T>();
      return r;
    case CompareOp::kGe:
      if (!b.has_ceil) return EmptyRange<T>();
      r.lo = b.ceil;
      return r;
    case CompareOp::kGt:
      if (!b.has_ceil) return EmptyRange<T>();
      r.lo = b.ceil;
      if (b.exact && !Next(b.ceil, &r.lo)) return EmptyRange<T>();
      return r;
  }
  return EmptyRange<T>();
}

template <typename T>
Range<T> Intersect(Range<T> a, Range<T> b) {
  if (a.lo > a.hi || b.lo > b.hi) return EmptyRange<T>();
  Range<T> r{std::max(a.lo, b.lo), std::min(a.hi, b.hi)};
  return r.lo > r.hi ? EmptyRange<T>() : r;
}


}  // namespace quiver::filter::numeric

#endif  // QUIVER_QUERY_FILTER_NUMERIC_RANGE_H_
