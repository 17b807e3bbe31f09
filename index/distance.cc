#include "index/distance.h"

namespace quiver::index {

float Dot(const float* a, const float* b, size_t dim) { return ActiveKernels().dot(a, b, dim); }

float L2Sqr(const float* a, const float* b, size_t dim) {
  return ActiveKernels().l2sqr(a, b, dim);
}

}  // namespace quiver::index
