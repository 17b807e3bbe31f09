#include "query/bind/request_checks.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "index/distance.h"
#include "query/recall_calibration.h"

namespace quiver::bind {

std::string PointLabel(const std::string& id, int index) {
  return absl::StrCat("point ", index, " (id \"", TruncateForMessage(id, 64), "\")");
}

absl::Status CheckVector(const google::protobuf::RepeatedField<float>& v, uint32_t dim,
                         Metric metric, absl::string_view what) {
  if (static_cast<uint32_t>(v.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected ", dim, " values, got ", v.size()));
  }
  // Fast path: one AVX2 pass; NaN and Inf propagate into the sum, and a
  // finite, non-zero float sum means every value is fine.
  const float fast = index::NormSqr(v.data(), dim);
  if (std::isfinite(fast) && (fast > 0 || metric != Metric::kCosine)) return absl::OkStatus();
  double norm = 0;
  for (int i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": value ", i, " is not finite (NaN or Inf)"));
    }
    norm += static_cast<double>(v[i]) * v[i];
  }
  // Distances are computed in float: a squared norm past its range would
  // turn them into inf or NaN.
  if (!std::isfinite(static_cast<float>(norm))) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": values are too large (squared norm overflows float32)"));
  }
  if (metric == Metric::kCosine && norm == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a COSINE vector must not be all zeros"));
  }
  return absl::OkStatus();
}

void Normalize(const float* in, float* out, size_t dim) {
  double norm = 0;
  for (size_t i = 0; i < dim; ++i) norm += static_cast<double>(in[i]) * in[i];
  // A vector this normalized before (each value off by at most half a
  // float ulp, so its squared norm by ~1.2e-7) is kept as it is: scaling
  // it again could move values by an ulp, and an exported collection would
  // not import bit for bit.
  if (std::abs(norm - 1.0) <= kUnitNormTolerance) {
    std::memcpy(out, in, dim * sizeof(float));
    return;
  }
  const double inv = 1.0 / std::sqrt(norm);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(in[i] * inv);
}

absl::StatusOr<TokenSet> PrepareTokens(const VectorFieldSpec& spec, const v1::MultiVector& mv,
                                       const std::string& what,
                                       std::vector<std::unique_ptr<float[]>>* owned) {
  const int n = mv.vectors_size();
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(what, ": the set of vectors is empty"));
  if (static_cast<uint32_t>(n) > spec.max_vectors) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", n, " vectors, at most ",
                                                   spec.max_vectors, " allowed"));
  }
  float* dst = new float[static_cast<size_t>(n) * spec.dim];
  owned->emplace_back(dst);
  for (int j = 0; j < n; ++j) {
    const auto& v = mv.vectors(j).values();
    QUIVER_RETURN_IF_ERROR(
        CheckVector(v, spec.dim, spec.metric, absl::StrCat(what, " vector ", j)));
    float* row = dst + static_cast<size_t>(j) * spec.dim;
    if (spec.metric == Metric::kCosine) Normalize(v.data(), row, spec.dim);
    else std::memcpy(row, v.data(), spec.dim * sizeof(float));
  }
  return TokenSet{dst, static_cast<uint32_t>(n)};
}

absl::Status CheckBatch(size_t nq, uint32_t k, absl::string_view unit, absl::string_view field) {
  if (nq == 0) return absl::InvalidArgumentError(absl::StrCat("search needs at least one ", unit, field));
  if (nq > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxQueriesPerRequest, " ", unit, "s per request, got ", nq));
  }
  if (nq * k > kMaxHitsPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries x k must be at most ", kMaxHitsPerRequest, ", got ", nq, " x ", k));
  }
  return absl::OkStatus();
}

absl::Status CheckSearchParams(const v1::SearchParams& p, absl::string_view what) {
  const float rf = p.refine_factor();
  if (!std::isfinite(rf) || rf < 0 || (rf > 0 && rf < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "refine_factor must be 0 (the index's default) or a number >= 1, got ", rf));
  }
  const float tr = p.target_recall();
  if (tr == 0) return absl::OkStatus();
  if (!std::isfinite(tr) || tr < kMinTargetRecall || tr > kMaxTargetRecall) {
    return absl::InvalidArgumentError(absl::StrCat(what, "target_recall must be 0 (off) or in ",
                                                   kMinTargetRecall, "..", kMaxTargetRecall,
                                                   ", got ", tr));
  }
  if (p.exact()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "exact scans every row (recall 1): set exact or target_recall, not both"));
  }
  if (p.ef() != 0 || p.nprobe() != 0 || rf != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "target_recall picks ef, nprobe and refine_factor per segment: set "
              "target_recall or those, not both"));
  }
  if (p.filter_strategy() == v1::POST_FILTER || p.filter_strategy() == v1::WINDOW_FILTER) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "target_recall plans each segment as an exact scan of the filtered rows or a "
              "filtered index search; it cannot be combined with filter_strategy ",
        v1::FilterStrategy_Name(p.filter_strategy()), " (whose recall is not predicted)"));
  }
  return absl::OkStatus();
}

}  // namespace quiver::bind
