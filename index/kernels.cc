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

// Four accumulators: the FMA latency (4-5 cycles) would otherwise bound the
// loop, not the loads.
float Sq8L2(const float* qo, const float* scale, const uint8_t* code, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256 d0 = _mm256_fnmadd_ps(Load8(code + i), _mm256_loadu_ps(scale + i),
                                       _mm256_loadu_ps(qo + i));
    const __m256 d1 = _mm256_fnmadd_ps(Load8(code + i + 8), _mm256_loadu_ps(scale + i + 8),
                                       _mm256_loadu_ps(qo + i + 8));
    const __m256 d2 = _mm256_fnmadd_ps(Load8(code + i + 16), _mm256_loadu_ps(scale + i + 16),
                                       _mm256_loadu_ps(qo + i + 16));
    const __m256 d3 = _mm256_fnmadd_ps(Load8(code + i + 24), _mm256_loadu_ps(scale + i + 24),
                                       _mm256_loadu_ps(qo + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d0 = _mm256_fnmadd_ps(Load8(code + i), _mm256_loadu_ps(scale + i),
                                       _mm256_loadu_ps(qo + i));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
  }
  float s = HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) {
    const float d = qo[i] - static_cast<float>(code[i]) * scale[i];
    s += d * d;
  }
  return s;
}

float Sq8Dot(const float* w, const uint8_t* code, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm256_fmadd_ps(Load8(code + i), _mm256_loadu_ps(w + i), s0);
    s1 = _mm256_fmadd_ps(Load8(code + i + 8), _mm256_loadu_ps(w + i + 8), s1);
    s2 = _mm256_fmadd_ps(Load8(code + i + 16), _mm256_loadu_ps(w + i + 16), s2);
    s3 = _mm256_fmadd_ps(Load8(code + i + 24), _mm256_loadu_ps(w + i + 24), s3);
  }
  for (; i + 8 <= dim; i += 8) {
    s0 = _mm256_fmadd_ps(Load8(code + i), _mm256_loadu_ps(w + i), s0);
  }
  float s = HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) s += w[i] * static_cast<float>(code[i]);
  return s;
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

float Sq8L2(const float* qo, const float* scale, const uint8_t* code, size_t dim) {
  float s0 = 0, s1 = 0;
  size_t i = 0;
  for (; i + 2 <= dim; i += 2) {
    const float d0 = qo[i] - static_cast<float>(code[i]) * scale[i];
    const float d1 = qo[i + 1] - static_cast<float>(code[i + 1]) * scale[i + 1];
    s0 += d0 * d0;
    s1 += d1 * d1;
  }
  for (; i < dim; ++i) {
    const float d = qo[i] - static_cast<float>(code[i]) * scale[i];
    s0 += d * d;
  }
  return s0 + s1;
}

float Sq8Dot(const float* w, const uint8_t* code, size_t dim) {
  float s0 = 0, s1 = 0;
  size_t i = 0;
  for (; i + 2 <= dim; i += 2) {
    s0 += w[i] * static_cast<float>(code[i]);
    s1 += w[i + 1] * static_cast<float>(code[i + 1]);
  }
  for (; i < dim; ++i) s0 += w[i] * static_cast<float>(code[i]);
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
