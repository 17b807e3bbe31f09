// Distance kernels over float32 vectors. Compiled with the project's
// -march flags (x86-64-v3 by default), so they use AVX2/FMA where built for.
#ifndef QUIVER_INDEX_DISTANCE_H_
#define QUIVER_INDEX_DISTANCE_H_

#include <cstddef>

namespace quiver::index {

float Dot(const float* a, const float* b, size_t dim);
float L2Sqr(const float* a, const float* b, size_t dim);
// Squared norm of a.
inline float NormSqr(const float* a, size_t dim) { return Dot(a, a, dim); }

}  // namespace quiver::index

#endif  // QUIVER_INDEX_DISTANCE_H_
