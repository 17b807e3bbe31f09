// The binder: turns each v1 request that reads or writes points into its
// bound form (query/bind/bound.h), checking it against one collection's
// schema. Everything a client can get wrong in such a request is found
// here, before any work starts; what runs the bound request (Collection,
// query/execute/) assumes it valid.
//
// Ownership: a BindTarget borrows the collection's schema, name and
// encoders for the call; bound requests own what they hold, except
// BoundUpsert's pointers into its request (bound.h).
// Thread-safety: the functions are reentrant and read only their target,
// which is immutable; call them from any thread.
// Errors: INVALID_ARGUMENT for every request a client can fix (the message
// names the offending field, point or value; clients and tests match these
// texts, so they do not change), including filter syntax and type errors
// (query/filter/filter.h). Nothing else.
#ifndef QUIVER_QUERY_BIND_BINDER_H_
#define QUIVER_QUERY_BIND_BINDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/muvera.h"
#include "query/bind/bound.h"
#include "query/bind/wire_schema.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"
#include "quiver/v1/search.pb.h"
#include "storage/schema.h"

namespace quiver::bind {

// What a request is bound against: one collection.
struct BindTarget {
  const Schema& schema;
  const std::string& name;  // for messages
  // Per vector field: its MUVERA encoder (null: none; upserts encode
  // multi-vector points with it) and its stored dimension (the encoding's
  // for multi-vector fields). Only BindUpsert reads these.
  const std::vector<std::shared_ptr<const index::MuveraEncoder>>* encoders = nullptr;
  const std::vector<uint32_t>* stored_dims = nullptr;
  // Per attribute: its analyzer if it is a text attribute (null
  // otherwise). Upserts, updates and text searches analyze with it.
  const std::vector<std::shared_ptr<const text::Analyzer>>* analyzers = nullptr;
};

// The analyzed value of text attribute `a` (null for a null value).
TextTerms AnalyzeText(const BindTarget& t, int a, const AttrValue& v);

absl::StatusOr<BoundSearchRequest> BindSearch(const BindTarget& t, const v1::SearchRequest& req);
absl::StatusOr<BoundGet> BindGet(const BindTarget& t, const v1::GetPointsRequest& req);
absl::StatusOr<BoundCount> BindCount(const BindTarget& t, const v1::CountPointsRequest& req);
// REQUIRES: t.encoders and t.stored_dims set. The result points into `req`.
absl::StatusOr<BoundUpsert> BindUpsert(const BindTarget& t, const v1::UpsertPointsRequest& req);
absl::StatusOr<BoundDelete> BindDelete(const BindTarget& t, const v1::DeletePointsRequest& req);
// Needs no collection: the check's options only.
absl::StatusOr<BoundVerify> BindVerify(const v1::VerifyCollectionRequest& req);

// Pieces of BindSearch, for tests and for front ends that build part of a
// request themselves.
// The field named `field`; empty names the only one (INVALID_ARGUMENT if
// the collection has several).
absl::StatusOr<int> ResolveField(const BindTarget& t, const std::string& field);
// Attribute names to indexes; "*" means all of them.
absl::StatusOr<std::vector<int>> OutputAttributes(
    const BindTarget& t, const google::protobuf::RepeatedPtrField<std::string>& names);
// The API's search parameters, checked (refine_factor), errors prefixed by
// `what`.
absl::StatusOr<BoundSearchParams> BindParams(const v1::SearchParams& p, absl::string_view what);

}  // namespace quiver::bind

#endif  // QUIVER_QUERY_BIND_BINDER_H_
