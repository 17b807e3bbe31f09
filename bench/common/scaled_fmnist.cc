// The augmented Fashion-MNIST set and its random projection.
#include "bench/common/scaled_fmnist.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "bench/common/sysinfo.h"
#include "faiss/VectorTransform.h"

namespace quiver::bench {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Matrix AugmentSources(const FashionMnist& ds, size_t nq) {
  Matrix src;
  src.dim = ds.train.dim;
  const size_t skip = std::min(nq, ds.test.n);
  src.n = ds.train.n + ds.test.n - skip;
  src.data.reserve(src.n * src.dim);
  src.data.insert(src.data.end(), ds.train.data.begin(), ds.train.data.end());
  src.data.insert(src.data.end(), ds.test.data.begin() + skip * ds.test.dim, ds.test.data.end());
  return src;
}

Matrix Augment(const Matrix& sources, size_t n, uint64_t seed, double noise) {
  Matrix m;
  m.n = n;
  m.dim = sources.dim;
  m.data.resize(n * m.dim);
#pragma omp parallel for schedule(dynamic, 4096) num_threads(2)
  for (int64_t ii = 0; ii < static_cast<int64_t>(n); ++ii) {
    const size_t i = static_cast<size_t>(ii);
    float* dst = m.data.data() + i * m.dim;
    const float* src = sources.row(i % sources.n);
    if (i < sources.n) {
      std::memcpy(dst, src, m.dim * sizeof(float));
      continue;
    }
    std::mt19937_64 rng(SplitMix(seed ^ (i * 0x9e3779b97f4a7c15ull)));
    int dx = 0, dy = 0;
    while (dx == 0 && dy == 0) {
      dx = static_cast<int>(rng() % 5) - 2;
      dy = static_cast<int>(rng() % 5) - 2;
    }
    auto uni = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; x += 2) {
        const double u1 = uni(), u2 = uni();
        const double r = std::sqrt(-2 * std::log(u1)) * noise;
        const double z[2] = {r * std::cos(2 * M_PI * u2), r * std::sin(2 * M_PI * u2)};
        for (int e = 0; e < 2; ++e) {
          const int sx = x + e - dx, sy = y - dy;
          const double v = (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) ? src[sy * 28 + sx] : 0.0;
          dst[y * 28 + x + e] = static_cast<float>(std::clamp(v + z[e], 0.0, 255.0));
        }
      }
    }
  }
  return m;
}

Matrix RandomProjection(const Matrix& m, size_t dim_out, uint64_t seed) {
  faiss::RandomRotationMatrix rr(static_cast<int>(m.dim), static_cast<int>(dim_out));
  rr.init(static_cast<int>(seed));
  Matrix out;
  out.n = m.n;
  out.dim = dim_out;
  out.data.resize(m.n * dim_out);
  // One sgemm; two BLAS threads for it (the benchmarks pin BLAS to one
  // thread for measuring, which this leaves as it found it).
  const int saved = omp_get_max_threads();
  PinOmpThreads(2);
  rr.apply_noalloc(static_cast<faiss::Index::idx_t>(m.n), m.data.data(), out.data.data());
  PinOmpThreads(saved);
  return out;
}

}  // namespace quiver::bench
