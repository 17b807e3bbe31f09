#include "index/sq8.h"

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

}  // namespace quiver::index
