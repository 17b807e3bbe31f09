// Distance kernels over float32 vectors, for callers outside hot loops:
// each call runs the variant index/kernels.h chose for this CPU (AVX2/FMA
// or baseline). Hot loops take a variant as a type instead (the metrics
// below, with WithKernels), so the choice is made once per search.
// Pure functions over caller-owned arrays of `dim` floats (REQUIRES: both
// valid for `dim` reads); no state, so safe from any thread; they do not fail.
#ifndef QUIVER_INDEX_DISTANCE_H_
#define QUIVER_INDEX_DISTANCE_H_

#include <cstddef>

#include "index/kernels.h"

namespace quiver::index {

float Dot(const float* a, const float* b, size_t dim);
float L2Sqr(const float* a, const float* b, size_t dim);
// Squared norm of a.
inline float NormSqr(const float* a, size_t dim) { return Dot(a, a, dim); }

// Distances in the ranking convention of index/flat_search.h (lower is
// better), as types over one kernel variant K (index/kernels.h): hot loops
// take one as a template argument, so the kernel is picked once per search
// and called directly per distance.
template <class K>
struct L2MetricOf {
  static float Distance(const float* a, const float* b, size_t dim) { return K::L2Sqr(a, b, dim); }
};
template <class K>
struct IpMetricOf {
  static float Distance(const float* a, const float* b, size_t dim) { return -K::Dot(a, b, dim); }
};
// The same with the variant in use, looked up per call.
struct L2Metric {
  static float Distance(const float* a, const float* b, size_t dim) { return L2Sqr(a, b, dim); }
};
struct IpMetric {
  static float Distance(const float* a, const float* b, size_t dim) { return -Dot(a, b, dim); }
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_DISTANCE_H_
