// 8-bit scalar quantization (SQ8) kernels: asymmetric distances between a
// float query and uint8 codes, for the compressed index kinds (IVF_SQ8).
//
// The codec is FAISS's ScalarQuantizer::QT_8bit with per-dimension ranges:
// component j of code c decodes to vmin_j + (c_j + 0.5) / 255 * vdiff_j,
// i.e. offset_j + c_j * scale_j with scale_j = vdiff_j / 255 and
// offset_j = vmin_j + 0.5 * scale_j. A query is prepared once per search
// (Sq8Query) so that the per-code loop is one FMA chain with no decode step:
//   L2:  sum_j (q_j - offset_j - c_j * scale_j)^2
//   IP:  -(sum_j q_j * offset_j + sum_j (q_j * scale_j) * c_j)
// The kernels are index/kernels.h's (Sq8L2, Sq8Dot), AVX2/FMA or baseline
// as chosen at run time.
//
// Thread-safety: the functions are pure; an Sq8Query belongs to one search.
// They do not fail; codes and ranges are caller-owned and only read.
#ifndef QUIVER_INDEX_SQ8_H_
#define QUIVER_INDEX_SQ8_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/flat_search.h"
#include "index/kernels.h"

namespace quiver::index {

// The decoding parameters of an SQ8 codec of dimension dim.
struct Sq8Params {
  std::vector<float> offset;  // dim
  std::vector<float> scale;   // dim

  // From FAISS's ScalarQuantizer::trained layout for QT_8bit: vmin (dim
  // floats) then vdiff (dim floats).
  static Sq8Params FromFaiss(const float* trained, size_t dim);
  size_t MemoryBytes() const { return (offset.capacity() + scale.capacity()) * sizeof(float); }
};

// A query prepared for one codec and similarity. L2() and NegIp() are in
// the ranking convention of flat_search.h (squared L2, or -ip): with the
// kernel variant in use, or, in hot loops, with variant K (kernels.h).
class Sq8Query {
 public:
  Sq8Query() = default;
  void Prepare(const float* query, const Sq8Params& params, Similarity sim);

  template <class K>
  float L2With(const uint8_t* code) const {
    return K::Sq8L2(v_.data(), scale_, code, v_.size());
  }
  template <class K>
  float NegIpWith(const uint8_t* code) const {
    return -(bias_ + K::Sq8Dot(v_.data(), code, v_.size()));
  }
  float L2(const uint8_t* code) const {
    return ActiveKernels().sq8_l2(v_.data(), scale_, code, v_.size());
  }
  float NegIp(const uint8_t* code) const {
    return -(bias_ + ActiveKernels().sq8_dot(v_.data(), code, v_.size()));
  }

 private:
  std::vector<float> v_;  // L2: q - offset; IP: q * scale
  const float* scale_ = nullptr;
  float bias_ = 0;  // IP: <q, offset>
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_SQ8_H_
