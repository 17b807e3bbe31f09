// Bound requests: the internal, validated form of each v1 request that
// reads or writes points, as the binder (query/bind/binder.h) makes them.
// Field and attribute names are resolved to indexes into the collection's
// schema, filters are compiled, query vectors are checked and copied
// (normalized for COSINE fields), and every default the API leaves to the
// server is applied. Nothing below the binder sees a request proto; a
// front end other than gRPC builds these (through the binder or directly).
//
// Ownership: a bound request owns its copies (query vectors, sets,
// normalized vectors, compiled filter). BoundUpsert is the exception that
// saves a copy per point: its non-COSINE vectors point into the request it
// was bound from, which must outlive it (records are copied). Indexes are
// valid only for the schema the request was bound against.
// Thread-safety: immutable once built; share freely between threads.
// Errors: none here; binding reports them (binder.h).
#ifndef QUIVER_QUERY_BIND_BOUND_H_
#define QUIVER_QUERY_BIND_BOUND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "query/filter/filter.h"
#include "query/fusion.h"
#include "query/segment.h"
#include "query/plan/strategy.h"
#include "storage/records.pb.h"
#include "storage/schema.h"

namespace quiver {

// Per-field index parameters of a search. Zero: the index's default
// (which depends on the index kind, so the planner applies it).
struct BoundSearchParams {
  uint32_t ef = 0;
  uint32_t nprobe = 0;
  bool exact = false;          // no ANN index: exact scan
  float refine_factor = 0;     // 0 or >= 1 (checked)
  FilterStrategy strategy = FilterStrategy::kAuto;
  // 0, or the recall@k each segment is planned for (checked: 0.5..0.999,
  // and none of the knobs above with it).
  float target_recall = 0;
};

// What a read returns of each point.
struct BoundOutput {
  std::vector<int> attributes;  // indexes into Schema::attributes(), in order
  bool with_vectors = false;
};

// A search of one vector field: single vectors, or query sets of a
// multi-vector field (late interaction).
struct BoundSearch {
  int field = 0;   // index into Schema::vectors()
  bool multi = false;
  uint32_t k = 0;  // 1..kMaxK
  BoundSearchParams params;
  std::shared_ptr<const filter::Filter> filter;  // null: no filter
  size_t filter_bytes = 0;  // the expression as given (response estimates)
  // Single vectors: nq queries of the field's dim (normalized for COSINE),
  // and their squared norms.
  std::vector<float> queries;
  std::vector<float> qnorms;
  // Multi-vector: one set per query, held in `owned`.
  std::vector<TokenSet> sets;
  std::vector<std::unique_ptr<float[]>> owned;
  BoundOutput output;
  bool explain = false;
  // Single-vector searches only (the binder refuses them elsewhere):
  // fall back until a list has min(min_results, k) hits (0: never; k with
  // exhaustive), keep only hits within score_threshold, group by an
  // attribute (query/execute/result_info.h, grouped_search.cc).
  uint32_t min_results = 0;
  bool has_threshold = false;
  float score_threshold = 0;
  int group_by = -1;        // index into Schema::attributes(); -1: not grouped
  uint32_t group_size = 1;  // hits per group
  // Diversity (query/execute/mmr.h): fetch_k > 0 re-ranks the best fetch_k
  // by maximal marginal relevance with this lambda.
  uint32_t mmr_fetch_k = 0;
  double mmr_lambda = 0.5;

  size_t num_queries() const { return multi ? sets.size() : qnorms.size(); }
};

// A search of a sparse vector field: exact top-k by dot product among the
// points sharing an index with the query (query/execute/sparse_search.h).
struct BoundSparseSearch {
  int field = 0;   // index into Schema::sparse()
  uint32_t k = 0;  // 1..kMaxK
  bool exact = false;  // scan every row instead of the inverted index
  std::shared_ptr<const filter::Filter> filter;  // null: no filter
  size_t filter_bytes = 0;
  std::vector<SparseValue> queries;  // sorted, checked
  BoundOutput output;
  bool explain = false;
};

// A full-text search of a text attribute: exact top-k by BM25 among the
// points whose text shares a term with the query.
struct BoundTextSearch {
  int attr = 0;    // index into Schema::attributes() (a text attribute)
  uint32_t k = 0;  // 1..kMaxK
  bool exact = false;  // scan every row instead of the inverted index
  std::shared_ptr<const filter::Filter> filter;  // null: no filter
  size_t filter_bytes = 0;
  std::vector<TextTerms> queries;  // analyzed; a query may have no term
  BoundOutput output;
  bool explain = false;
};

// One field of a hybrid search; k and weight have their defaults applied.
// A sparse field's query has sparse_field >= 0 (and `field` unused).
struct BoundFieldQuery {
  int field = 0;
  int sparse_field = -1;  // index into Schema::sparse(), or -1
  SparseValue sparse;     // its query
  int text_attr = -1;     // a text attribute's index, or -1
  TextTerms text;         // its analyzed query
  uint32_t k = 0;
  double weight = 1;
  BoundSearchParams params;
  std::vector<float> queries, qnorms;  // one vector (single-vector field)
  std::vector<TokenSet> sets;          // one set (multi-vector field)

  // A sparse or text query (scored by similarity, exactly), not one of a
  // vector field.
  bool term_query() const { return sparse_field >= 0 || text_attr >= 0; }
};

// A stage of a multi-stage search: the candidates re-scored exactly by
// one field (`query`: its k, weight and params unused), `limit` kept.
struct BoundStage {
  BoundFieldQuery query;
  uint32_t limit = 0;  // >= the request's k
};

// Most stages a multi-stage search may have.
inline constexpr int kMaxStages = 4;

// A hybrid search: fields searched separately, their lists fused; with
// stages, the fused candidates re-scored stage by stage.
struct BoundHybridSearch {
  uint32_t k = 0;
  std::vector<BoundFieldQuery> fields;
  FusionKind fusion = FusionKind::kRrf;
  double rrf_k = kDefaultRrfK;
  bool with_field_results = false;
  std::shared_ptr<const filter::Filter> filter;
  size_t filter_bytes = 0;
  std::vector<BoundStage> stages;
  // With stages: fused candidates the first stage takes (0: all of them).
  uint32_t candidates = 0;
  std::vector<std::unique_ptr<float[]>> owned;  // the fields' and stages' query sets
  BoundOutput output;
  bool explain = false;
};

// Any search request.
using BoundSearchRequest =
    std::variant<BoundSearch, BoundHybridSearch, BoundSparseSearch, BoundTextSearch>;

// Points by id.
struct BoundGet {
  std::vector<std::string> ids;  // as asked, repeats included
  BoundOutput output;            // no attributes named: all of them
};

// Points passing a filter (null: all).
struct BoundCount {
  std::shared_ptr<const filter::Filter> filter;
};

// An upsert, ready to commit. Vector pointers point either into the
// request (which must outlive this object) or into `owned` (normalized
// copies for COSINE fields).
struct BoundUpsert {
  struct Point {
    storage::PointRecord record;  // id + attributes, as stored
    AttrRow attrs;
    // One per vector field; for a multi-vector field, its encoding.
    std::vector<const float*> vectors;
    // Multi-vector fields: the point's vectors (count 0 for other fields).
    std::vector<TokenSet> tokens;
    // Sparse vectors, indexed like Schema::sparse() (also in `record`).
    SparseRow sparse;
    // Text attributes' analyzed values (derived from attrs; not stored).
    TextRow text;
  };
  std::vector<Point> points;
  std::vector<float> owned;
  // Encodings and normalized token vectors of multi-vector fields.
  std::vector<std::unique_ptr<float[]>> owned_blocks;
  size_t request_bytes = 0;  // the request's size, for commit-group sizing
};

// A delete: by ids, or by a compiled filter.
struct BoundDelete {
  std::vector<std::string> ids;
  std::shared_ptr<const filter::Filter> filter;
  size_t request_bytes = 0;
};

// Most index samples a verify may ask for (per segment and field).
inline constexpr uint32_t kMaxVerifyIndexSamples = 10000;

// A consistency check of a collection's derived data (VerifyCollection),
// defaults applied.
struct BoundVerify {
  // Rows per sealed segment and field searched in the segment's index; 0:
  // no index check.
  uint32_t index_samples = 100;
  // Rows per segment whose vectors are compared with RocksDB's; 0: all.
  uint32_t vector_sample_rows = 0;
  uint64_t seed = 0;  // of the row samples
};

}  // namespace quiver

#endif  // QUIVER_QUERY_BIND_BOUND_H_
