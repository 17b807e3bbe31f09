// Index self-check: does a built vector index find what exact search over
// its segment finds? Run by the index builder after every build (a build
// that fails it is not served: the segment stays on exact search) and by
// VerifyCollection.
//
// The check takes a sample of the segment's rows that hold data, searches
// the index for each row's own vector with the kind's default parameters
// (compressed kinds: k x their default refine factor candidates, reranked by
// exact distance, as a search would), and compares with an exact scan over
// the same rows. The headline figure is how often the index returns the
// exact nearest neighbour (for L2 and COSINE the row itself, or a row at the
// same distance). recall@10 against the exact top 10 is reported beside it.
//
// A sample the defaults miss is searched again with 16x the default ef or
// nprobe, and the check passes on how many are found at either. That is
// what tells a broken index from hard data: a graph cut into pieces, or an
// index of other vectors, misses a large share at any effort, while a sound
// index over vectors whose neighbours are hard to tell apart finds them
// with more effort. Random Gaussian vectors are such data, and they are
// what many people first try a database with: at 60k x 128 HNSW's default
// ef found the row itself for only 19-29 of 32 samples (recall@10
// 0.62-0.74), and 31 or 32 of them at ef 1024. Refusing that index left the
// segment on exact search for good. Its recall at the defaults is the
// searcher's to choose (ef, or target_recall with the index's calibration);
// passed_at_defaults says whether it needs to, and the builder logs a
// warning when not.
//
// By inner product (IP fields, multi-vector encodings) the exact nearest is
// not the row itself and is often a long vector walks reach late, so there
// a recall@10 of kIndexCheckMinNearest at the defaults passes too.
//
// Cost: samples x rows distance computations for the exact side (32 x 65,536
// rows of 784-d: about 0.2 s on one core), plus one index search per sample
// and one more at the raised effort per sample missed.
//
// Thread-safety: reads the segment and index only; safe to run concurrently
// with searches. The caller holds a pin (Collection::Pin) while the
// segment's vectors are read.
// Errors: CheckIndex does not fail; an index search that errs counts as a
// miss, so a broken index shows as a failed check (ok == false).
#ifndef QUIVER_QUERY_INDEX_CHECK_H_
#define QUIVER_QUERY_INDEX_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/vector_index.h"
#include "query/segment.h"
#include "query/stop.h"

namespace quiver {

// Share of samples whose exact nearest neighbour an index must return (at
// the defaults or the raised effort) to pass. A healthy HNSW, IVF or
// compressed index finds it for all or nearly all of them (measured: 1.0 on
// Fashion-MNIST segments, every kind, at the defaults; random 128-d
// Gaussian vectors at 60k rows need HNSW's raised ef); the HNSW graph
// broken by placeholder rows (see VectorIndex::Build) found it for about
// 0.64 whatever ef.
inline constexpr double kIndexCheckMinNearest = 0.8;
// Samples per check in the index builder (quiverd --index-check-samples).
inline constexpr uint32_t kDefaultIndexCheckSamples = 32;

struct IndexCheckResult {
  uint32_t samples = 0;        // rows searched for (0: nothing to check)
  uint32_t nearest_found = 0;  // of those, how often the exact nearest was
                               // returned at the index's defaults
  // How often it was returned at the defaults or, for the rest, at the
  // raised effort (raised_knob = raised_effort, e.g. "ef" = 1024; null and
  // 0 for a kind without a knob, such as FLAT).
  uint32_t nearest_found_raised = 0;
  const char* raised_knob = nullptr;
  uint32_t raised_effort = 0;
  double recall_at_10 = 1.0;  // mean recall@min(10, rows) against the exact top,
                              // at the defaults; -1 when not measured
  // nearest_found_raised >= kIndexCheckMinNearest x samples (by IP: or
  // recall@10 >= kIndexCheckMinNearest).
  bool ok = true;
  // The same with nearest_found: false when a sound index needs more than
  // its default effort for most queries to find their nearest neighbour.
  bool passed_at_defaults = true;
  std::string ToString() const;
};

// The rows of `seg` below `rows` that hold data: all but the placeholders a
// restart leaves for points deleted before it (delete_seq 0; they carry no
// vector). A bitmap LabelFilter, for index builds and checks.
class RowsWithData final : public index::LabelFilter {
 public:
  // With `field` (>= 0), also without the rows that lack that optional
  // field's vector (their slots hold zeros, like a placeholder's).
  RowsWithData(const Segment& seg, uint32_t rows, int field = -1);
  bool Accept(uint32_t label) const override { return Test(label); }
  // Every row holds data (the filter can be left out).
  bool all() const { return count_ == size_; }
  uint32_t count() const { return count_; }

 private:
  std::vector<uint64_t> words_;
  uint32_t size_ = 0;
  uint32_t count_ = 0;
};

// Checks `idx`, built for vector field `f` of `seg` over its first
// idx.size() rows, on `samples` rows drawn with `seed`. TOKENS multi-vector
// indexes (whose labels are vectors, not rows) are not checked (samples 0).
// measure_recall = false skips the exact scan where the metric makes a row
// its own nearest neighbour (L2, COSINE): only index searches are left, cheap
// enough for every index file loaded at start-up; recall_at_10 is then -1.
// `stop` (null: never) ends the check early, between samples; the result
// then covers the samples done.
IndexCheckResult CheckIndex(const Segment& seg, size_t f, const index::VectorIndex& idx,
                            uint32_t samples, uint64_t seed, bool measure_recall = true,
                            const StopToken* stop = nullptr);

}  // namespace quiver

#endif  // QUIVER_QUERY_INDEX_CHECK_H_
