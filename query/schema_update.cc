#include "query/schema_update.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/truncate.h"
#include "query/bind/wire_schema.h"

namespace quiver {

absl::StatusOr<std::shared_ptr<const Schema>> EvolveSchema(
    const Schema& current, const std::string& collection, const v1::UpdateCollectionRequest& req) {
  if (req.attributes().empty() && req.add_vectors().empty() && req.drop_vectors().empty() &&
      req.add_sparse_vectors().empty()) {
    return std::shared_ptr<const Schema>();
  }
  // Sparse fields are only added (each point may lack one: the points
  // already there simply do).
  std::vector<SparseFieldSpec> sparse = current.sparse();
  for (const v1::SparseVectorField& add : req.add_sparse_vectors()) {
    if (current.VectorFieldIndex(add.name()) >= 0 || current.SparseFieldIndex(add.name()) >= 0 ||
        current.AttributeIndex(add.name()) >= 0) {
      return absl::AlreadyExistsError(absl::StrCat(
          "collection \"", collection, "\" already has a field or attribute \"",
          TruncateForMessage(add.name()), "\"; fields and attributes share one namespace"));
    }
    if (add.modifier() != v1::SPARSE_MODIFIER_NONE && add.modifier() != v1::IDF) {
      return absl::InvalidArgumentError(
          absl::StrCat("add_sparse_vectors: sparse vector field \"", TruncateForMessage(add.name()),
                       "\" has an unknown modifier (NONE or IDF)"));
    }
    sparse.push_back(SparseFieldSpec{add.name(), add.modifier() == v1::IDF});
  }
  // Vector fields are edited in place (a dropped one keeps its slot).
  std::vector<VectorFieldSpec> vectors = current.vectors();
  absl::flat_hash_set<std::string> dropping;
  for (const std::string& name : req.drop_vectors()) {
    if (!dropping.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", TruncateForMessage(name), "\" is dropped more than once"));
    }
    const int f = current.VectorFieldIndex(name);
    if (f < 0) {
      return absl::InvalidArgumentError(absl::StrCat("collection \"", collection,
                                                     "\" has no vector field \"",
                                                     TruncateForMessage(name), "\" to drop"));
    }
    vectors[f].dropped = true;
  }
  for (const v1::VectorField& add : req.add_vectors()) {
    absl::StatusOr<VectorFieldSpec> spec = schema_message_internal::VectorSpecFrom(add);
    if (!spec.ok()) return spec.status();
    // Taken by a field that stays (a dropped name is free again, even in
    // the request that drops it).
    if (current.VectorFieldIndex(add.name()) >= 0 && !dropping.contains(add.name())) {
      return absl::AlreadyExistsError(absl::StrCat("collection \"", collection,
                                                   "\" already has a vector field \"",
                                                   TruncateForMessage(add.name()), "\""));
    }
    if (current.SparseFieldIndex(add.name()) >= 0) {
      return absl::AlreadyExistsError(absl::StrCat(
          "collection \"", collection, "\" already has a sparse vector field \"",
          TruncateForMessage(add.name()), "\""));
    }
    if (current.AttributeIndex(add.name()) >= 0) {
      return absl::AlreadyExistsError(absl::StrCat(
          "collection \"", collection, "\" has an attribute \"", TruncateForMessage(add.name()),
          "\"; fields and attributes share one namespace"));
    }
    if (spec->multi) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", TruncateForMessage(add.name()),
          "\": a multi-vector field cannot be added to an existing collection (the points "
          "there would lack it, and multi-vector fields cannot be optional)"));
    }
    if (spec->disk) {
      // Every segment of a DISK field has its rerank table, one record per
      // row; segments written before the field existed have none.
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", TruncateForMessage(add.name()),
          "\": an added vector field keeps its vectors in memory (storage MEMORY); DISK is "
          "available for fields declared at create"));
    }
    // The points already there have no vector of it.
    spec->optional = true;
    vectors.push_back(*std::move(spec));
  }
  // (Each name dropped was live and distinct; each added one is new.)
  if (current.live_vector_count() + req.add_vectors_size() == dropping.size() &&
      sparse.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection \"", collection, "\" would have no vector field left: a collection keeps at "
        "least one, dense or sparse (add its replacement in the same request, or drop the "
        "collection)"));
  }
  if (req.attributes().empty()) {
    absl::StatusOr<Schema> s =
        Schema::Create(std::move(vectors), current.attributes(), std::move(sparse));
    if (!s.ok()) return s.status();
    return std::make_shared<const Schema>(*std::move(s));
  }
  // Attributes are edited in message form and bound again, so they pass
  // every check a created schema's do (names, types, window rules); the
  // vector fields are then put back with their dropped slots.
  v1::CollectionSchema next = bind::SchemaToProto(current);
  absl::flat_hash_set<std::string> seen;
  for (const v1::AttributeField& a : req.attributes()) {
    if (!seen.insert(a.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attribute \"", TruncateForMessage(a.name()), "\" is given more than once"));
    }
    const int i = current.AttributeIndex(a.name());
    if (i < 0) {
      *next.add_attributes() = a;  // Schema::Create checks name, type, window
      continue;
    }
    v1::AttributeField* have = next.mutable_attributes(i);
    if (a.type() != v1::ATTRIBUTE_TYPE_UNSPECIFIED && a.type() != have->type()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "attribute \"", a.name(), "\" of collection \"", collection, "\" is ",
          v1::AttributeType_Name(have->type()), ": changing its type to ",
          v1::AttributeType_Name(a.type()),
          " would invalidate the values stored under it; nothing was changed (add an "
          "attribute under another name instead)"));
    }
    // Full text is decided when an attribute is made: its values are
    // analyzed as they are written, and older ones were not.
    if (a.has_text() && !have->has_text()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "attribute \"", a.name(), "\" of collection \"", collection,
          "\" is not a text attribute, and cannot become one: the values written before were "
          "not analyzed; add a new attribute with text instead"));
    }
    if (a.has_text() && (a.text().language() != have->text().language() ||
                         a.text().stop_words() != have->text().stop_words() ||
                         (a.text().has_k1() && a.text().k1() != have->text().k1()) ||
                         (a.text().has_b() && a.text().b() != have->text().b()))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "attribute \"", a.name(), "\": its text options cannot change (the stored terms "
          "were made with them)"));
    }
    have->set_indexed(a.indexed());
    have->set_window(a.window());
  }
  absl::StatusOr<Schema> bound = bind::BindSchema(next);
  if (!bound.ok()) return bound.status();
  // Names again, now against the added vector fields too.
  absl::StatusOr<Schema> s =
      Schema::Create(std::move(vectors), bound->attributes(), std::move(sparse));
  if (!s.ok()) return s.status();
  return std::make_shared<const Schema>(*std::move(s));
}

std::vector<size_t> DroppedFields(const Schema& before, const Schema& after) {
  std::vector<size_t> out;
  for (size_t f = 0; f < before.vectors().size(); ++f) {
    if (!before.vectors()[f].dropped && after.vectors()[f].dropped) out.push_back(f);
  }
  return out;
}

}  // namespace quiver
