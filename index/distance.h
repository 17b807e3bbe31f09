// Distance kernels over float32 vectors. Compiled with the project's
// -march flags (x86-64-v3 by default), so they use AVX2/FMA where built for.
// Pure functions over caller-owned arrays of `dim` floats (REQUIRES: both
// valid for `dim` reads); no state, so safe from any thread; they do not fail.
#ifndef QUIVER_INDEX_DISTANCE_H_
#define QUIVER_INDEX_DISTANCE_H_

#include <cstddef>

namespace quiver::index {

float Dot(const float* a, const float* b, size_t dim);
float L2Sqr(const float* a, const float* b, size_t dim);
// Squared norm of a.
inline float NormSqr(const float* a, size_t dim) { return Dot(a, a, dim); }

// Distances in the ranking convention of index/flat_search.h (lower is
// better), as types: hot loops take one as a template argument, so the
// kernel is picked once per search and called directly per distance.
struct L2Metric {
  static float Distance(const float* a, const float* b, size_t dim) { return L2Sqr(a, b, dim); }
};
struct IpMetric {
  static float Distance(const float* a, const float* b, size_t dim) { return -Dot(a, b, dim); }
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_DISTANCE_H_
