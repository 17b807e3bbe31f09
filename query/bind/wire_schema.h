// The API's schema and attribute values (quiver/v1/types.proto) bound to
// storage's own types and back: the only place they meet. Storage keeps
// its Schema and stores it in its own records (storage/schema_message.h,
// whose conversions these instantiate: the API messages share the stored
// layout, which storage fixes).
//
// Stateless and reentrant. Errors: INVALID_ARGUMENT naming the field or
// value a client got wrong (clients and tests match these texts).
#ifndef QUIVER_QUERY_BIND_WIRE_SCHEMA_H_
#define QUIVER_QUERY_BIND_WIRE_SCHEMA_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "quiver/v1/types.pb.h"
#include "storage/schema.h"
#include "storage/schema_message.h"

namespace quiver::bind {

// A create request's schema, checked and normalized (Schema::Create).
inline absl::StatusOr<Schema> BindSchema(const v1::CollectionSchema& proto) {
  return SchemaFromMessage(proto);
}

// The schema as the API describes it (normalized: defaults filled in).
inline v1::CollectionSchema SchemaToProto(const Schema& s) {
  return SchemaToMessage<v1::CollectionSchema>(s);
}

// A request's value as an attribute of `type`; a mismatch is
// INVALID_ARGUMENT mentioning `what`.
inline absl::StatusOr<AttrValue> ValueToAttr(const v1::Value& v, AttrType type,
                                             std::string_view what) {
  return AttrFromMessage(v, type, what);
}

// A request's sparse vector, checked and sorted (SparseFromMessage).
inline absl::StatusOr<SparseValue> SparseFromProto(const v1::SparseVector& v,
                                                   std::string_view what) {
  return SparseFromMessage(v, what);
}
inline void SparseToProto(const SparseVector& v, v1::SparseVector* out) {
  SparseToMessage(v, out);
}

// Sets `out` to `a`; false (nothing set) for null.
inline bool AttrToValue(const AttrValue& a, v1::Value* out) { return AttrToMessage(a, out); }

}  // namespace quiver::bind

#endif  // QUIVER_QUERY_BIND_WIRE_SCHEMA_H_
