// SIMD helpers shared by the distance kernels and index scans (index/):
// the one test for whether AVX2/FMA code is compiled in, and the few
// register-level steps (horizontal sum and minimum, a prefetch) that more
// than one kernel needs. Header-only and inline: they sit inside hot loops.
//
// QUIVER_SIMD_AVX2 is 1 when the translation unit is compiled for AVX2 and
// FMA, 0 otherwise; code that uses the __m256 helpers below must test it,
// and have a scalar path for 0. Only index/kernels.cc is compiled for AVX2
// in the default build (once more, beside its baseline copy); which of the
// two runs is chosen at run time (index/kernels.h).
//
// Stateless; safe from any thread. Nothing here fails.
#ifndef QUIVER_BASE_SIMD_H_
#define QUIVER_BASE_SIMD_H_

#if defined(__AVX2__) && defined(__FMA__)
#define QUIVER_SIMD_AVX2 1
#include <immintrin.h>
#else
#define QUIVER_SIMD_AVX2 0
#endif

namespace quiver::simd {

// Asks for the cache line holding `p` (into L1) ahead of its use; a hint
// only, never faults.
inline void Prefetch(const void* p) { __builtin_prefetch(p, /*rw=*/0, /*locality=*/3); }

#if QUIVER_SIMD_AVX2
// The sum of the eight lanes of `v`. The order of additions is fixed
// ((lo + hi) pairwise), so callers get the same rounding wherever they sum.
inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}

// The smallest of the eight lanes of `v`, broadcast to every lane.
inline __m256 HorizontalMin(__m256 v) {
  __m128 m4 = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m4 = _mm_min_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_min_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  return _mm256_broadcastss_ps(m4);
}
#endif  // QUIVER_SIMD_AVX2

}  // namespace quiver::simd

#endif  // QUIVER_BASE_SIMD_H_
