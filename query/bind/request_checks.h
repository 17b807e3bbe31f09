// Request checks shared by the binder's search and write paths: vectors
// (dimension, finiteness, COSINE non-zero), query batches, search
// parameters, and the copies (normalized for COSINE) that bound requests
// hold.
//
// Ownership: PrepareTokens appends the blocks it fills to the caller's
// `owned` list; the returned TokenSet points into them.
// Thread-safety: free functions without shared state; reentrant.
// Errors: every violation is INVALID_ARGUMENT with a message naming what was
// wrong (`what` is the caller's name for the value); clients and tests match
// these messages, so they do not change.
#ifndef QUIVER_QUERY_BIND_REQUEST_CHECKS_H_
#define QUIVER_QUERY_BIND_REQUEST_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "query/segment.h"
#include "quiver/v1/search.pb.h"
#include "quiver/v1/types.pb.h"
#include "storage/schema.h"

namespace quiver {

// Request limits a client can hit; each violation is INVALID_ARGUMENT.
inline constexpr uint32_t kMaxK = 16384;
inline constexpr size_t kMaxQueriesPerRequest = 1024;
inline constexpr size_t kMaxIdBytes = 512;
// Most hits one search request may ask for (queries x k), which bounds the
// memory a response takes before gRPC's own size limit applies.
inline constexpr size_t kMaxHitsPerRequest = 1 << 18;

namespace bind {

// "point <index> (id "<id>")", the id truncated for messages.
std::string PointLabel(const std::string& id, int index);

// dim finite floats whose squared norm fits in float32; COSINE: not all
// zeros. Messages start with `what`.
absl::Status CheckVector(const google::protobuf::RepeatedField<float>& v, uint32_t dim,
                         Metric metric, absl::string_view what);

// out = in / |in|, computed in double so that tiny vectors normalize
// without overflowing 1/norm. A vector whose squared norm is within
// kUnitNormTolerance of 1 (one normalized already) is copied unchanged, so
// normalizing is idempotent.
inline constexpr double kUnitNormTolerance = 1e-6;
void Normalize(const float* in, float* out, size_t dim);

// Checks a multi-vector field's set (1..max vectors of dim finite floats;
// COSINE: none all zeros) and returns it contiguous, normalized for COSINE,
// in a block appended to *owned.
absl::StatusOr<TokenSet> PrepareTokens(const VectorFieldSpec& spec, const v1::MultiVector& mv,
                                       const std::string& what,
                                       std::vector<std::unique_ptr<float[]>>* owned);

// The limits on a batch of nq queries of k results each; `unit` names
// a query ("query vector", "query set").
absl::Status CheckBatch(size_t nq, uint32_t k, absl::string_view unit, absl::string_view field);

// refine_factor is 0 or >= 1; messages start with `what`.
absl::Status CheckSearchParams(const v1::SearchParams& p, absl::string_view what);

}  // namespace bind
}  // namespace quiver

#endif  // QUIVER_QUERY_BIND_REQUEST_CHECKS_H_
