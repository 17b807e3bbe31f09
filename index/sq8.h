// 8-bit scalar quantization (SQ8) kernels: asymmetric distances between a
// float query and uint8 codes, for the compressed index kinds (IVF_SQ8,
// HNSW_SQ8).
//
// The codec is FAISS's ScalarQuantizer::QT_8bit with per-dimension ranges:
// component j of code c decodes to vmin_j + (c_j + 0.5) / 255 * vdiff_j,
// i.e. offset_j + c_j * scale_j with scale_j = vdiff_j / 255 and
// offset_j = vmin_j + 0.5 * scale_j. With qo = q - offset:
//   L2:  sum_j (qo_j - c_j * scale_j)^2
//        = |qo|^2 - 2 sum_j (qo_j * scale_j) c_j + sum_j (c_j * scale_j)^2
//   IP:  -(sum_j q_j * offset_j + sum_j (q_j * scale_j) * c_j)
// so per code only a dot product of the code with a weight vector of the
// query is left (the last L2 term is the code's own, which the index keeps
// per code: Sq8Params::CodeNorms). A query is prepared once per search
// (Sq8Query): its weights are rounded to 16-bit integers on a common unit
// (the largest weight is 32767 units), and the dot product is the exact
// integer kernel U8I16Dot (index/kernels.h; vpmaddwd with AVX2, about three
// times the speed of decoding each code to floats). Each weight is off by
// at most half a unit, so an L2 estimate moves by at most unit x sum_j c_j
// (an IP one by half that), typically ~1e-5 of it: far below the codec's
// own error, and the rerank computes exact distances.
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
  // sum_j (c_j * scale_j)^2 of each of the n codes (n * dim bytes) into
  // out[0..n): the per-code term of the L2 estimate.
  void CodeNorms(const uint8_t* codes, size_t n, float* out) const;
  size_t MemoryBytes() const { return (offset.capacity() + scale.capacity()) * sizeof(float); }
};

// A query prepared for one codec and similarity. L2() and NegIp() are in
// the ranking convention of flat_search.h (squared L2, or -ip): with the
// kernel variant in use, or, in hot loops, with variant K (kernels.h). L2
// takes the code's CodeNorms entry.
class Sq8Query {
 public:
  Sq8Query() = default;
  void Prepare(const float* query, const Sq8Params& params, Similarity sim);

  template <class K>
  float L2With(const uint8_t* code, float code_norm) const {
    return L2Of(K::U8I16Dot(w_.data(), code, w_.size()), code_norm);
  }
  template <class K>
  float NegIpWith(const uint8_t* code) const {
    return NegIpOf(K::U8I16Dot(w_.data(), code, w_.size()));
  }
  float L2(const uint8_t* code, float code_norm) const {
    return L2Of(ActiveKernels().u8i16_dot(w_.data(), code, w_.size()), code_norm);
  }
  float NegIp(const uint8_t* code) const {
    return NegIpOf(ActiveKernels().u8i16_dot(w_.data(), code, w_.size()));
  }

 private:
  // Rounding can take an estimate of a code at the query itself below 0.
  float L2Of(int64_t dot, float code_norm) const {
    const double d = base_ - 2.0 * unit_ * static_cast<double>(dot) + code_norm;
    return d > 0 ? static_cast<float>(d) : 0.0f;
  }
  float NegIpOf(int64_t dot) const {
    return static_cast<float>(-(base_ + unit_ * static_cast<double>(dot)));
  }

  std::vector<int16_t> w_;  // L2: (q - offset) * scale; IP: q * scale; in units
  double unit_ = 1;         // the value of one step of w_
  double base_ = 0;         // L2: |q - offset|^2; IP: <q, offset>
  std::vector<float> scratch_;
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_SQ8_H_
