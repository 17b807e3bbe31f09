// Fashion-MNIST past 60,000 points, for the benchmarks that measure scale
// (disk_bench --scale, scale_bench): the 70,000 images minus the queries,
// then shifted, noisy copies of them, deterministic; and a fixed random
// projection of such a set to fewer dimensions (the low-dimensional
// regime, for which Debian ships no data set).
//
// Pure functions returning data the caller owns; thread-safe. They use up
// to 2 OpenMP / BLAS threads.
#ifndef QUIVER_BENCH_COMMON_SCALED_FMNIST_H_
#define QUIVER_BENCH_COMMON_SCALED_FMNIST_H_

#include <cstddef>
#include <cstdint>

#include "bench/common/testkit.h"

namespace quiver::bench {

// The images an augmented set is made from: the training images, then the
// test images after the first `nq` (those are the queries, so no copy of a
// query is in the base).
Matrix AugmentSources(const FashionMnist& ds, size_t nq);

// `n` points from `sources` (28x28 images): the sources first as they are,
// then copies of source i % sources.n shifted by (dx, dy), each in -2..2 and
// not both 0, with Gaussian noise (sigma `noise` grey levels), clamped to
// [0, 255]. Each point draws from its own mt19937_64 seeded by SplitMix(seed
// ^ i) with Box-Muller over 53-bit uniforms: the same on any platform and
// any thread count, and the first m points of a set of n are the set of m.
Matrix Augment(const Matrix& sources, size_t n, uint64_t seed, double noise);

// `m`'s rows projected to `dim_out` dimensions by FAISS's
// RandomRotationMatrix(m.dim, dim_out) initialised with `seed`: dim_out
// orthonormal rows of a seeded Gaussian matrix (QR), so distances shrink by
// about sqrt(dim_out / m.dim) and their order is roughly kept. The same
// seed gives the same projection, so base and queries projected with it
// match.
Matrix RandomProjection(const Matrix& m, size_t dim_out, uint64_t seed);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_SCALED_FMNIST_H_
