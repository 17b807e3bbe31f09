// Schema evolution: the schema an UpdateCollection request makes of a
// collection's current one (quiver.v1.UpdateCollectionRequest documents the
// rules clients see).
//
// A new version only ever appends fields, marks a vector field dropped
// (it keeps its place), and never changes a field's type, so every field
// index held by a bound request, a segment or a stored record means the
// same field in every later version (Collection::ApplySchema publishes
// it). Stored point records are positional: an attribute added later reads
// as null in older rows (storage/schema.h, AttrAt), and a vector field
// added later is one older points lack (so it is optional).
//
// Stateless and reentrant. Errors: INVALID_ARGUMENT for a malformed change
// (bad or repeated name, missing type, an added multi-vector field, a rule
// Schema::Create enforces); ALREADY_EXISTS for an added vector field whose
// name is taken; FAILED_PRECONDITION, naming the field and the reason, for
// a change that would invalidate stored data (an attribute's type) or
// leave no vector field. On error nothing is returned: the caller changes
// nothing.
#ifndef QUIVER_QUERY_SCHEMA_UPDATE_H_
#define QUIVER_QUERY_SCHEMA_UPDATE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/v1/collections.pb.h"
#include "storage/schema.h"

namespace quiver {

// The schema `req`'s attributes, add_vectors and drop_vectors make of
// `current` (the collection named `collection`, for messages), or null
// when the request names none of them.
absl::StatusOr<std::shared_ptr<const Schema>> EvolveSchema(const Schema& current,
                                                           const std::string& collection,
                                                           const v1::UpdateCollectionRequest& req);

// The vector fields `after` (a later version of `before`) marks dropped
// that `before` has live.
std::vector<size_t> DroppedFields(const Schema& before, const Schema& after);

}  // namespace quiver

#endif  // QUIVER_QUERY_SCHEMA_UPDATE_H_
