#include "index/sq8.h"

#include <cstring>

#include "base/simd.h"

namespace quiver::index {

Sq8Params Sq8Params::FromFaiss(const float* trained, size_t dim) {
  Sq8Params p;
  p.offset.resize(dim);
  p.scale.resize(dim);
  for (size_t j = 0; j < dim; ++j) {
    p.scale[j] = trained[dim + j] / 255.0f;
    p.offset[j] = trained[j] + 0.5f * p.scale[j];
  }
  return p;
}

void Sq8Query::Prepare(const float* query, const Sq8Params& params, Similarity sim) {
  const size_t dim = params.offset.size();
  v_.resize(dim);
  scale_ = params.scale.data();
  bias_ = 0;
  if (sim == Similarity::kL2) {
    for (size_t j = 0; j < dim; ++j) v_[j] = query[j] - params.offset[j];
  } else {
    double bias = 0;
    for (size_t j = 0; j < dim; ++j) {
      v_[j] = query[j] * params.scale[j];
      bias += double{query[j]} * params.offset[j];
    }
    bias_ = static_cast<float>(bias);
  }
}

#if QUIVER_SIMD_AVX2
namespace {

using simd::HorizontalSum;

// Eight codes widened to floats.
inline __m256 Load8(const uint8_t* code) {
  uint64_t bytes;
  std::memcpy(&bytes, code, sizeof(bytes));
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(bytes))));
}

}  // namespace

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
#else
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
#endif

}  // namespace quiver::index
