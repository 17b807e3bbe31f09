#include "index/sq8.h"

#include <algorithm>
#include <cmath>

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

void Sq8Params::CodeNorms(const uint8_t* codes, size_t n, float* out) const {
  const size_t dim = scale.size();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * dim;
    double s = 0;
    for (size_t j = 0; j < dim; ++j) {
      const double x = static_cast<double>(c[j]) * scale[j];
      s += x * x;
    }
    out[i] = static_cast<float>(s);
  }
}

void Sq8Query::Prepare(const float* query, const Sq8Params& params, Similarity sim) {
  const size_t dim = params.offset.size();
  scratch_.resize(dim);
  w_.resize(dim);
  double base = 0;
  float largest = 0;
  for (size_t j = 0; j < dim; ++j) {
    float x;
    if (sim == Similarity::kL2) {
      const float qo = query[j] - params.offset[j];
      base += double{qo} * qo;
      x = qo * params.scale[j];
    } else {
      base += double{query[j]} * params.offset[j];
      x = query[j] * params.scale[j];
    }
    scratch_[j] = x;
    largest = std::max(largest, std::abs(x));
  }
  base_ = base;
  unit_ = largest > 0 ? double{largest} / 32767 : 1.0;
  for (size_t j = 0; j < dim; ++j) {
    w_[j] = static_cast<int16_t>(std::lrint(scratch_[j] / unit_));
  }
}

}  // namespace quiver::index
