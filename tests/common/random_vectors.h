// Reproducible Gaussian test vectors: a test that writes point i can later
// rebuild the vector it wrote from i alone (to check what a search or a
// restart returns) without keeping a copy. Header-only; thread-safe (no
// shared state).
#ifndef QUIVER_TESTS_COMMON_RANDOM_VECTORS_H_
#define QUIVER_TESTS_COMMON_RANDOM_VECTORS_H_

#include <cstdint>
#include <random>
#include <vector>

namespace quiver::testing {

// The i-th vector of the set named by `salt` (different salts give
// unrelated sets of the same dimension).
inline std::vector<float> GaussianVector(int i, uint32_t dim, uint32_t salt) {
  std::mt19937 rng(static_cast<uint32_t>(i) * 7919u + salt);
  std::normal_distribution<float> g;
  std::vector<float> v(dim);
  for (float& x : v) x = g(rng);
  return v;
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_RANDOM_VECTORS_H_
