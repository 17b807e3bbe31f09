// jsonl import: one JSON object per line, {"id": ..., "vector": [...] or
// "vectors": {"field": [...]}, "attributes": {...}}, converted to a Point by
// the collection's schema.
//
// A JsonlConverter borrows the schema it was made with (which must outlive
// it) and is immutable after construction, so const calls are thread-safe.
// Errors are INVALID_ARGUMENT with a plain description; the caller adds the
// file and line.
#ifndef QUIVER_CLIENT_IMPORT_JSONL_H_
#define QUIVER_CLIENT_IMPORT_JSONL_H_

#include <cstdint>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"

namespace quiver::ctl {

// One JSON object of a jsonl file -> a Point, by the collection's schema.
class JsonlConverter {
 public:
  JsonlConverter(const v1::CollectionSchema& schema, std::string default_field);

  // Errors are plain descriptions; the caller adds file and line.
  absl::Status Convert(const nlohmann::json& j, v1::Point* p) const;

 private:
  absl::Status Vector(const std::string& name, const nlohmann::json& v, v1::Point* p) const;

  // One vector's values from a JSON array of `dim` finite numbers.
  static absl::Status Values(const std::string& name, uint32_t dim, const nlohmann::json& v,
                             google::protobuf::RepeatedField<float>* values);

  absl::Status Attribute(const std::string& name, const nlohmann::json& v, v1::Point* p) const;
  // {"indices": [...], "values": [...]} or {"INDEX": VALUE, ...}.
  absl::Status Sparse(const std::string& name, const nlohmann::json& v, v1::Point* p) const;

  std::string default_field_;
  std::map<std::string, const v1::VectorField*> vectors_;
  std::map<std::string, v1::AttributeType> attributes_;
  std::set<std::string> sparse_;
};


// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// rest ("parse error at line 1, column 7: ...") is what a person needs.
std::string ParseErrorText(const char* what);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_JSONL_H_
