// Schema: the validated, in-memory form of a collection's schema.
//
// A Schema is built by Schema::Create from field specs, which checks every
// rule a schema keeps (names, dimensions, duplicate names, counts, window
// attributes) and reports the first violation as INVALID_ARGUMENT. Storage
// knows no API message: the query layer binds the API's schema into specs
// (query/bind/wire_schema.h), and the collection record stores its own form
// (storage/schema_message.h).
//
// Schemas are immutable once built and safe to share between threads.
#ifndef QUIVER_STORAGE_SCHEMA_H_
#define QUIVER_STORAGE_SCHEMA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace quiver {

enum class Metric { kL2, kIP, kCosine };
enum class AttrType { kInt64, kDouble, kBool, kString, kStringList };

std::string_view MetricName(Metric m);
std::string_view AttrTypeName(AttrType t);

struct VectorFieldSpec {
  std::string name;
  uint32_t dim = 0;
  Metric metric = Metric::kL2;
  // Index kind and its build parameters, as given in the API (validated by
  // the index registry when the collection is created, not here: storage
  // does not know index kinds).
  std::string index_type = "FLAT";
  std::map<std::string, std::string> index_params;
  // DISK: sealed segments keep only the index (compressed codes) in memory;
  // the full vectors live in a rerank table on disk (storage/rerank_table.h).
  bool disk = false;
  // Multi-vector (late-interaction) field: each point holds 1..max_vectors
  // vectors of `dim`; the index is built over their MUVERA encodings
  // (encoding_params, resolved and stored at create) and candidates are
  // reranked by exact MaxSim.
  bool multi = false;
  uint32_t max_vectors = 0;
  std::map<std::string, std::string> encoding_params;
  // Candidates from an index over every token vector instead of the
  // encodings (the baseline MUVERA is compared with).
  bool token_candidates = false;
  // Points may lack this field's vector (single-vector fields only).
  bool optional = false;
  // Dropped by UpdateCollection. A dropped field keeps its place in
  // Schema::vectors(), so the fields after it keep their indexes (which
  // storage keys, segment slots and index files are addressed by); nothing
  // reads or writes it any more, no point holds a vector of it, and its
  // name is free for a new field.
  bool dropped = false;
};

// Multi-vector fields: vectors per point when the schema says 0, and the
// most a schema may allow.
inline constexpr uint32_t kDefaultMaxVectorsPerPoint = 1024;
inline constexpr uint32_t kMaxVectorsPerPoint = 8192;

// Full-text options of a STRING attribute (the API's TextOptions), with
// defaults applied. The language is checked by the analyzer, which storage
// does not know (query/text/analyzer.h).
struct TextSpec {
  std::string language = "english";
  bool stop_words = false;
  float k1 = 1.2f;
  float b = 0.75f;
};

struct AttributeSpec {
  std::string name;
  AttrType type = AttrType::kInt64;
  bool indexed = false;
  // Keep window indexes over this (numeric) attribute; implies indexed.
  bool window = false;
  // A full-text attribute (STRING only): searched by BM25.
  bool text = false;
  TextSpec text_spec;
};

// One attribute value; std::monostate is null (attribute absent).
using AttrValue = std::variant<std::monostate, int64_t, double, bool,
                               std::string, std::vector<std::string>>;
// A point's attributes, indexed like Schema::attributes(). A row may be
// shorter than the schema: attributes added (UpdateCollection) after the
// row was written are null in it. Read through AttrAt.
using AttrRow = std::vector<AttrValue>;

// Attribute `a` of `row`: null past the row's end.
inline const AttrValue& AttrAt(const AttrRow& row, size_t a) {
  static const AttrValue kNull;
  return a < row.size() ? row[a] : kNull;
}

// A sparse vector field (the API's SparseVectorField): every point may
// hold one sparse vector of it.
struct SparseFieldSpec {
  std::string name;
  // Queries are weighted by each index's IDF over the live points with a
  // vector of the field (the API's SparseModifier IDF).
  bool idf = false;
};

// One point's sparse vector: values[i] at dimension indices[i], indices
// ascending and unique (the binder sorts and checks them), values finite.
struct SparseVector {
  std::vector<uint32_t> indices;
  std::vector<float> values;
  size_t size() const { return indices.size(); }
  size_t MemoryBytes() const {
    return sizeof(SparseVector) + indices.capacity() * sizeof(uint32_t) +
           values.capacity() * sizeof(float);
  }
};
// Immutable once built, so rows, bound requests and compaction share one
// copy.
using SparseValue = std::shared_ptr<const SparseVector>;
// A point's sparse vectors, indexed like Schema::sparse(); null (or past
// the end, for fields added after the row was written) where it has none.
using SparseRow = std::vector<SparseValue>;

inline const SparseVector* SparseAt(const SparseRow& row, size_t s) {
  return s < row.size() ? row[s].get() : nullptr;
}

// Most (index, value) pairs one sparse vector may hold.
inline constexpr uint32_t kMaxSparseNonZeros = 65536;
// Most sparse vector fields a collection may declare.
inline constexpr int kMaxSparseFields = 16;

// Largest dimension a vector field may declare.
inline constexpr uint32_t kMaxDim = 65536;
// Most vector fields and attributes a collection may declare. (Vector keys
// in storage hold the field index in 16 bits; the limits keep every
// per-point structure small.) Dropped vector fields count: they keep their
// place.
inline constexpr int kMaxVectorFields = 16;
inline constexpr int kMaxAttributes = 256;

// True if `name` is a valid collection or field name:
// [A-Za-z][A-Za-z0-9_]{0,63}.
bool IsValidName(std::string_view name);

class Schema {
 public:
  // Validates the fields and builds the schema, normalized: index type
  // upper-cased ("FLAT" when empty), max_vectors 0 (multi-vector fields)
  // the default, window attributes indexed. INVALID_ARGUMENT names the bad
  // field. Index types and parameters are checked by the index registry,
  // not here.
  // A schema needs at least one live vector field, dense or sparse.
  static absl::StatusOr<Schema> Create(std::vector<VectorFieldSpec> vectors,
                                       std::vector<AttributeSpec> attributes,
                                       std::vector<SparseFieldSpec> sparse = {});

  // Every vector field ever declared, dropped ones included (see
  // VectorFieldSpec::dropped): loops over fields skip those.
  const std::vector<VectorFieldSpec>& vectors() const { return vectors_; }
  // Vector fields not dropped.
  size_t live_vector_count() const { return live_vectors_; }
  const std::vector<AttributeSpec>& attributes() const { return attributes_; }
  const std::vector<SparseFieldSpec>& sparse() const { return sparse_; }

  // Index of the named field (never a dropped one), or -1 if there is none.
  int VectorFieldIndex(std::string_view name) const;
  int AttributeIndex(std::string_view name) const;
  int SparseFieldIndex(std::string_view name) const;

 private:
  std::vector<VectorFieldSpec> vectors_;
  size_t live_vectors_ = 0;
  std::vector<AttributeSpec> attributes_;
  std::vector<SparseFieldSpec> sparse_;
  absl::flat_hash_map<std::string, int> vector_index_;
  absl::flat_hash_map<std::string, int> sparse_index_;
  absl::flat_hash_map<std::string, int> attribute_index_;
};

}  // namespace quiver

#endif  // QUIVER_STORAGE_SCHEMA_H_
