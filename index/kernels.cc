// The kernels of index/kernels.h, compiled once per variant: the build
// defines QUIVER_KERNEL_NS (baseline or avx2) and, for avx2, adds -mavx2
// -mfma, which turns on the intrinsics paths below (base/simd.h's
// QUIVER_SIMD_AVX2). This file must stay free of inline functions shared
// with other translation units (the linker keeps one copy of such a
// function, which could be this file's AVX2 one): it uses only intrinsics,
// its own functions, std::memcpy and base/simd.h's AVX2 helpers (which
// exist only where QUIVER_SIMD_AVX2 is 1, i.e. in AVX2-compiled code).
#include <cstring>

#include "base/simd.h"
#include "index/kernels.h"

#ifndef QUIVER_KERNEL_NS
#error "index/kernels.cc is compiled with -DQUIVER_KERNEL_NS=baseline or =avx2"
#endif
#if defined(__x86_64__) && defined(QUIVER_KERNEL_WANT_AVX2) && !QUIVER_SIMD_AVX2
#error "the avx2 kernels must be compiled with -mavx2 -mfma"
#endif

namespace quiver::index::QUIVER_KERNEL_NS {
namespace {

constexpr size_t kKsub = 256;  // PQ centroids per sub-quantizer

#if QUIVER_SIMD_AVX2
using simd::HorizontalMin;
using simd::HorizontalSum;

// Eight codes widened to floats.
inline __m256 Load8(const uint8_t* code) {
  uint64_t bytes;
  std::memcpy(&bytes, code, sizeof(bytes));
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(bytes))));
}
#endif

template <bool kL2>
void PqTables(const float* x, const float* codebook_t, size_t m, size_t dsub, float* table) {
  for (size_t j = 0; j < m; ++j) {
    const float* xj = x + j * dsub;
    const float* cj = codebook_t + j * dsub * kKsub;
    float* tj = table + j * kKsub;
#if QUIVER_SIMD_AVX2
    // 32 centroids per step, in four independent accumulators.
    for (size_t k = 0; k < kKsub; k += 32) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      for (size_t s = 0; s < dsub; ++s) {
        const __m256 v = _mm256_set1_ps(xj[s]);
        const float* c = cj + s * kKsub + k;
        if constexpr (kL2) {
          const __m256 d0 = _mm256_sub_ps(v, _mm256_loadu_ps(c));
          const __m256 d1 = _mm256_sub_ps(v, _mm256_loadu_ps(c + 8));
          const __m256 d2 = _mm256_sub_ps(v, _mm256_loadu_ps(c + 16));
          const __m256 d3 = _mm256_sub_ps(v, _mm256_loadu_ps(c + 24));
          a0 = _mm256_fmadd_ps(d0, d0, a0);
          a1 = _mm256_fmadd_ps(d1, d1, a1);
          a2 = _mm256_fmadd_ps(d2, d2, a2);
          a3 = _mm256_fmadd_ps(d3, d3, a3);
        } else {
          a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(c), a0);
          a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + 8), a1);
          a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + 16), a2);
          a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + 24), a3);
        }
      }
      _mm256_storeu_ps(tj + k, a0);
      _mm256_storeu_ps(tj + k + 8, a1);
      _mm256_storeu_ps(tj + k + 16, a2);
      _mm256_storeu_ps(tj + k + 24, a3);
    }
#else
    for (size_t k = 0; k < kKsub; ++k) tj[k] = 0.0f;
    for (size_t s = 0; s < dsub; ++s) {
      const float* c = cj + s * kKsub;
      for (size_t k = 0; k < kKsub; ++k) {
        if constexpr (kL2) {
          const float d = xj[s] - c[k];
          tj[k] += d * d;
        } else {
          tj[k] += xj[s] * c[k];
        }
      }
    }
#endif
  }
}

}  // namespace

#if QUIVER_SIMD_AVX2
float Dot(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= dim; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) s += a[i] * b[i];
  return s;
}

float L2Sqr(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  for (; i + 8 <= dim; i += 8) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

// Exact: vpmaddwd sums two products of at most 255 x 32767 into each 32-bit
// lane; a block of at most 2048 dimensions adds at most 65 such sums to a
// lane (< 2^31), and each block's lanes are added in 64 bits.
int64_t U8I16Dot(const int16_t* w, const uint8_t* code, size_t dim) {
  int64_t total = 0;
  size_t i = 0;
  while (i + 16 <= dim) {
    const size_t whole = dim - (dim - i) % 16;  // past the last full 16
    const size_t end = whole < i + 2048 ? whole : i + 2048;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (; i + 32 <= end; i += 32) {
      const __m256i c0 =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
      const __m256i c1 =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i + 16)));
      a0 = _mm256_add_epi32(
          a0, _mm256_madd_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))));
      a1 = _mm256_add_epi32(
          a1,
          _mm256_madd_epi16(c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16))));
    }
    for (; i + 16 <= end; i += 16) {
      const __m256i c0 =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
      a0 = _mm256_add_epi32(
          a0, _mm256_madd_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))));
    }
    // Lanes widened to 64 bits before they are added.
    const __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a0)),
                                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a0, 1)));
    const __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a1)),
                                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a1, 1)));
    const __m256i sum = _mm256_add_epi64(lo, hi);
    const __m128i half = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    total += _mm_cvtsi128_si64(half) + _mm_extract_epi64(half, 1);
  }
  for (; i < dim; ++i) total += int64_t{w[i]} * code[i];
  return total;
}

uint8_t ArgMin256(const float* t) {
  __m256 lo = _mm256_loadu_ps(t);
  for (size_t k = 8; k < kKsub; k += 8) lo = _mm256_min_ps(lo, _mm256_loadu_ps(t + k));
  const __m256 best = HorizontalMin(lo);
  for (size_t k = 0; k < kKsub; k += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(t + k), best, _CMP_EQ_OQ));
    if (mask != 0) return static_cast<uint8_t>(k + __builtin_ctz(mask));
  }
  return 0;  // only if the table holds NaN
}
#else
// Four independent accumulators let the compiler pipeline without
// reassociating (no -ffast-math).
float Dot(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < dim; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float L2Sqr(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
    const float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

int64_t U8I16Dot(const int16_t* w, const uint8_t* code, size_t dim) {
  int64_t s0 = 0, s1 = 0;
  size_t i = 0;
  for (; i + 2 <= dim; i += 2) {
    s0 += int32_t{w[i]} * code[i];
    s1 += int32_t{w[i + 1]} * code[i + 1];
  }
  for (; i < dim; ++i) s0 += int32_t{w[i]} * code[i];
  return s0 + s1;
}

uint8_t ArgMin256(const float* t) {
  size_t best = 0;
  for (size_t k = 1; k < kKsub; ++k) {
    if (t[k] < t[best]) best = k;
  }
  return static_cast<uint8_t>(best);
}
#endif

void PqTablesL2(const float* x, const float* codebook_t, size_t m, size_t dsub, float* table) {
  PqTables<true>(x, codebook_t, m, dsub, table);
}
void PqTablesIp(const float* x, const float* codebook_t, size_t m, size_t dsub, float* table) {
  PqTables<false>(x, codebook_t, m, dsub, table);
}

}  // namespace quiver::index::QUIVER_KERNEL_NS
