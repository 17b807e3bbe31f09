// The binder's point-service requests beyond upsert/get/delete/count:
// ScrollPoints (paging through a collection in id order) and UpdatePoints
// (partial updates), their bound forms, and the scroll cursor's encoding.
// Like binder.h, everything a client can get wrong in these requests is
// found here, before the request reaches the collection; what the
// collection cannot know without its current state (whether an id exists)
// is checked on the commit thread (Collection::PrepareUpdate).
//
// Ownership: bound requests own copies of everything they hold (vectors
// copied, normalized for COSINE fields; no pointer into the request).
// Thread-safety: the functions are reentrant and read only their target;
// bound requests are immutable once built.
// Errors: INVALID_ARGUMENT naming the offending field, update or value, and
// for a cursor that is malformed or was issued by another collection.
#ifndef QUIVER_QUERY_BIND_POINT_BINDER_H_
#define QUIVER_QUERY_BIND_POINT_BINDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "query/bind/binder.h"
#include "query/bind/bound.h"
#include "quiver/v1/points.pb.h"
#include "storage/schema.h"

namespace quiver {

// ScrollPoints' page size: the default for 0 and the most allowed.
inline constexpr uint32_t kDefaultScrollPageSize = 256;
inline constexpr uint32_t kMaxScrollPageSize = 10000;

// One page of a scroll: the points passing `filter` whose ids sort after
// `after` (all of them when unset), the first `page_size` in id order.
struct BoundScroll {
  std::shared_ptr<const filter::Filter> filter;  // null: every point
  size_t filter_bytes = 0;
  uint32_t page_size = kDefaultScrollPageSize;
  std::optional<std::string> after;
  BoundOutput output;  // no attributes named: all of them
};

// One point's changes. Vector fields are indexed like Schema::vectors().
struct BoundPointUpdate {
  std::string id;
  // Attribute index -> its new value; std::monostate removes it.
  std::vector<std::pair<int, AttrValue>> attrs;
  // Per vector field: the replacement (normalized for COSINE; for a
  // multi-vector field its encoding), or null to keep the point's.
  std::vector<const float*> vectors;
  // Multi-vector fields: the replacement set (count 0: keep).
  std::vector<TokenSet> tokens;
  // Optional fields whose vector is removed.
  std::vector<bool> drop;
  // Sparse field index -> its new vector; null removes it.
  std::vector<std::pair<int, SparseValue>> sparse;
  // Text attributes set (or removed: null) by `attrs`, analyzed.
  std::vector<std::pair<int, TextTerms>> text;
};

// An UpdatePoints request, bound. The vectors point into owned_blocks.
struct BoundUpdate {
  std::vector<BoundPointUpdate> updates;
  bool upsert = false;  // create missing points instead of NOT_FOUND
  std::vector<std::unique_ptr<float[]>> owned_blocks;
  size_t request_bytes = 0;  // for commit-group sizing
};

namespace bind {

// `collection_id` is the collection's internal id, which cursors carry so
// that one issued by another collection is refused.
absl::StatusOr<BoundScroll> BindScroll(const BindTarget& t, uint32_t collection_id,
                                       const v1::ScrollPointsRequest& req);
// REQUIRES: t.encoders and t.stored_dims set.
absl::StatusOr<BoundUpdate> BindUpdate(const BindTarget& t, const v1::UpdatePointsRequest& req);

// The cursor that resumes a scroll of collection `collection_id` after id
// `last_id`: URL-safe base64 of a version byte, the collection id, a
// CRC-32 of both and the id, and the id.
std::string EncodeScrollCursor(uint32_t collection_id, const std::string& last_id);
// The id a cursor resumes after; INVALID_ARGUMENT if it is malformed or
// belongs to another collection.
absl::StatusOr<std::string> DecodeScrollCursor(uint32_t collection_id, const std::string& cursor);

}  // namespace bind
}  // namespace quiver

#endif  // QUIVER_QUERY_BIND_POINT_BINDER_H_
