#include "query/schema_update.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/truncate.h"
#include "query/bind/wire_schema.h"

namespace quiver {

absl::StatusOr<std::shared_ptr<const Schema>> EvolveSchema(
    const Schema& current, const std::string& collection, const v1::UpdateCollectionRequest& req) {
  if (req.attributes().empty()) return std::shared_ptr<const Schema>();
  // Edited in message form and bound again, so the new version passes
  // every check a created schema does (names, counts, window rules).
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
    have->set_indexed(a.indexed());
    have->set_window(a.window());
  }
  absl::StatusOr<Schema> bound = bind::BindSchema(next);
  if (!bound.ok()) return bound.status();
  return std::make_shared<const Schema>(*std::move(bound));
}

}  // namespace quiver
