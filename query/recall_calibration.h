// Recall calibration: what recall@k one segment's ANN index reaches at each
// setting of its search knobs, measured when the index is built, so that a
// search can ask for a recall (SearchParams.target_recall) instead of an ef,
// nprobe or refine factor, and be told the recall it should expect.
//
// How it is measured. Queries are a sample of the segment's own rows, each
// searched as if it were not in the index. The rows and any later query
// come from the same data, so each sampled row faces the rest of the
// segment the way a new query faces the whole of it. A row the index holds
// is no such query for a graph: its own links lead straight to its
// neighbours (FAISS's HNSW over Fashion-MNIST's 60k training images read
// recall@10 0.958 at ef 10 for rows it holds, 0.914 for test images). So
// HNSW holds the sampled rows out of the build, is measured, and inserts
// them last (index::VectorIndex::BuildHoldingOut); measured so, predictions
// were within 0.003 of test images' recall (bench/recall_target_bench).
// Other kinds, and an
// index calibrated after it was built, filter each row out of its own
// search, and graph kinds leave its node out of the walk
// (index::SearchParams::skip_label), which reads low (its neighbours' links
// were pruned with it in place: ~0.02 at ef 20), so such a calibration errs
// towards more work. Truth is the exact top 100 of each sample over the
// segment's other rows.
//
// What is measured, per sample:
//   - the knob over a grid: ef for graph kinds (HNSW, HNSW_SQ8), nprobe for
//     list kinds (IVF_FLAT, IVF_SQ8, IVF_PQ);
//   - for compressed kinds, the refine factor too (candidates reranked
//     exactly = k x refine factor, as the planner computes them);
//   - late interaction (a multi-vector field's index over MUVERA
//     encodings): the sample's set is encoded as a query, its candidates
//     are reranked by exact MaxSim, and the truth is exact MaxSim over the
//     segment's sets, so the table says what the whole search reaches at
//     each ef / nprobe and refine factor (points reranked = k x factor);
//   - recall@k for k in kCalibratedK, from one search per knob value (a
//     search's best k is a prefix of its best k' > k at the same knob);
//   - filtered: the same over random row subsets passing a share s of the
//     rows (CalibrationOptions::selectivities), with fewer samples and every
//     other knob value: a filter that is independent of where the
//     neighbours are. A filter correlated with the
//     vectors (a class label) can do better or worse than predicted.
//   - cost: distances computed per query, and measured nanoseconds per
//     index distance and per reranked candidate, so settings are compared
//     by time on this machine.
//
// Choose() turns (k, selectivity, target) into the cheapest setting
// predicted to reach the target, interpolating recall linearly in the knob
// between grid points, in log k between calibrated k, and in log
// selectivity between calibrated subsets. A target no setting reaches is
// reported (reached = false) and the caller scans exactly; so is a filter
// passing fewer rows than the smallest subset measured, whose recall at a
// given knob is lower than any measured (its neighbours lie further out)
// and is not guessed.
//
// Ownership: plain values. Thread-safety: a RecallCalibration is immutable
// after Calibrate or FromProto; Choose is const and reentrant. Calibrate
// reads the segment and index only (the caller pins the vectors).
// Errors: Calibrate returns CANCELLED when stopped and FAILED_PRECONDITION
// when the segment has too few rows to calibrate on; FromProto returns
// DATA_LOSS for a record that does not fit together.
#ifndef QUIVER_QUERY_RECALL_CALIBRATION_H_
#define QUIVER_QUERY_RECALL_CALIBRATION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "index/vector_index.h"
#include "query/segment.h"

namespace quiver::index {
class MuveraEncoder;
}  // namespace quiver::index
#include "storage/records.pb.h"

namespace quiver {

// The range SearchParams.target_recall accepts (0 turns it off).
inline constexpr float kMinTargetRecall = 0.5f;
inline constexpr float kMaxTargetRecall = 0.999f;

// k values recall is measured at; a request's k between two is
// interpolated, one above the last uses the last (and says so).
inline constexpr uint32_t kCalibratedK[] = {1, 5, 10, 20, 50, 100};
// The fewest rows a list kind's filtered subset is measured on (twice the
// largest calibrated k, so that the truth is well defined).
inline constexpr uint32_t kMinListSubsetRows = 256;

struct CalibrationOptions {
  // Unfiltered queries (at most; a segment gets one per 16 rows, at least
  // 100) and, for graph kinds, queries per filtered subset (at most a third
  // of those; list kinds use all of them).
  // samples == 0: no calibration (the index builder's switch).
  uint32_t samples = 500;
  uint32_t filtered_samples = 150;
  // Shares of rows the filtered subsets pass; empty: unfiltered only.
  std::vector<double> selectivities = {0.3, 0.1, 0.03, 0.01};
  uint64_t seed = 1;
  // Segments with fewer rows holding data are not calibrated (an exact
  // scan of them costs less than calibrating).
  uint32_t min_rows = 1000;
  // Graph kinds: filtered subsets passing fewer rows are not measured: so
  // few rows are scanned exactly for less than a filtered walk costs, and
  // such walks cost the most to measure. List kinds measure any subset of
  // at least kMinListSubsetRows: their filtered scans cost no more than
  // unfiltered ones (rejected rows are skipped before they are scored), so
  // they often beat an exact scan of a few hundred rows.
  uint32_t min_filtered_rows = 4096;
};

class RecallCalibration {
 public:
  enum class Knob { kEf, kNprobe };

  // One measured setting at one selectivity.
  struct Cell {
    uint32_t knob = 0;     // ef or nprobe
    float refine = 0;      // compressed kinds: the refine factor; 0 otherwise
    float selectivity = 1;
    double distances = 0;  // index distance computations per query
    // Measured index search time per query (filter checks included); 0 in
    // a record that lacks it, priced as distances x ns_per_distance.
    double ns = 0;
    // Mean recall@kCalibratedK[i]; negative: not measured (a graph kind
    // searched with ef below k, or k x refine above ef, runs at a larger ef,
    // which another cell measures).
    std::vector<float> recall;
  };

  // What Choose picked for one segment and query batch.
  struct Choice {
    bool exact = false;        // no setting reaches the target: scan exactly
    index::SearchParams params;  // ef or nprobe (only the knob is set)
    float refine_factor = 0;   // compressed kinds
    double predicted = 1;      // predicted recall@k of this segment's list
    double cost_ns = 0;        // predicted per query
    bool reached = true;       // predicted >= target
    // The prediction goes past what was measured: k above the largest
    // calibrated, or a filter passing fewer rows than the smallest subset.
    bool extrapolated = false;
    std::string ToString() const;
  };

  Knob knob() const { return knob_; }
  bool compressed() const { return compressed_; }
  uint32_t samples() const { return samples_; }
  uint32_t filtered_samples() const { return filtered_samples_; }
  const std::vector<Cell>& cells() const { return cells_; }
  double ns_per_distance() const { return ns_per_distance_; }
  double ns_per_rerank() const { return ns_per_rerank_; }

  // The cheapest setting predicted to reach `target` recall@k when a share
  // `selectivity` of the segment's rows pass the filter (1: no filter).
  // `exact_ns`: what scanning the segment exactly costs per query; a
  // setting that costs more is not chosen (exact wins at recall 1).
  Choice Choose(uint32_t k, double selectivity, double target, double exact_ns) const;

  // Predicted recall@k of one cell's knob values (interpolated as above),
  // or -1 where it was not measured. For tests and explain.
  double Predict(uint32_t k, double selectivity, uint32_t knob, float refine) const;

  // "calibrated on 500 rows (150 per filtered subset): ef 1..1024"
  std::string Describe() const;

  storage::RecallCalibration ToProto() const;
  static absl::StatusOr<RecallCalibration> FromProto(const storage::RecallCalibration& p);

 private:
  friend absl::StatusOr<RecallCalibration> Calibrate(const Segment&, size_t,
                                                     const index::VectorIndex&,
                                                     const CalibrationOptions&,
                                                     const std::atomic<bool>*, bool,
                                                     const index::MuveraEncoder*);
  // Sorts cells by (selectivity, refine, knob) and lists the groups; called
  // once the cells are in.
  void Finish();
  const Cell* Find(float selectivity, float refine, uint32_t knob) const;

  Choice ChooseUncached(uint32_t k, double selectivity, double target, double exact_ns) const;

  // Choose's answers by (k, selectivity, target, exact_ns): a search asks
  // the same question of a segment again and again, and answering it walks
  // every cell (tens of microseconds for a compressed kind, a sizeable
  // share of one query). Bounded; cleared when full. Shared by copies,
  // which hold the same table.
  struct ChoiceCache {
    struct Key {
      uint32_t k;
      double selectivity, target, exact_ns;
      bool operator==(const Key& o) const {
        return k == o.k && selectivity == o.selectivity && target == o.target &&
               exact_ns == o.exact_ns;
      }
      template <typename H>
      friend H AbslHashValue(H h, const Key& key) {
        return H::combine(std::move(h), key.k, key.selectivity, key.target, key.exact_ns);
      }
    };
    static constexpr size_t kMaxEntries = 256;
    Mutex mu;
    absl::flat_hash_map<Key, Choice> choices ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<ChoiceCache> cache_ = std::make_shared<ChoiceCache>();

  Knob knob_ = Knob::kEf;
  bool compressed_ = false;
  uint32_t samples_ = 0;
  uint32_t filtered_samples_ = 0;
  std::vector<Cell> cells_;      // sorted by (selectivity, refine, knob)
  std::vector<float> groups_;    // the selectivities measured, largest (1) first
  std::vector<float> refines_;   // ascending
  std::vector<uint32_t> knobs_;  // ascending
  double ns_per_distance_ = 0;
  double ns_per_rerank_ = 0;
};

// Whether Calibrate applies to an index of `field`: an ANN kind (not FLAT)
// of a single-vector field, or of a multi-vector field's MUVERA encodings
// when that index ranks by exact encoding distances (HNSW, IVF_FLAT). Not
// TOKENS fields' index over every token vector.
bool Calibratable(const VectorFieldSpec& field, const index::VectorIndex& idx);

// The rows of field f of `seg` (below `rows`) Calibrate samples as queries:
// a seeded random sample of those holding data. Empty when the segment is
// too small to calibrate.
std::vector<uint32_t> CalibrationSamples(const Segment& seg, size_t f, uint32_t rows,
                                         const CalibrationOptions& options);

// Measures `idx`, built for vector field `f` of `seg` over its first
// idx.size() rows, with CalibrationSamples as queries. `held_out`: the
// index does not hold those rows yet (VectorIndex::BuildHoldingOut's
// probe); otherwise each sample is left out of its own search (see above).
// A multi-vector field's index over MUVERA encodings needs the field's
// `encoder`: each sample's set is encoded as a query, the truth is exact
// MaxSim over the segment's sets, and the refine factor is the late-
// interaction one (points reranked by MaxSim = k x refine factor). Not for
// what Calibratable refuses (INVALID_ARGUMENT). `stop` (null: never) ends
// it early with CANCELLED.
absl::StatusOr<RecallCalibration> Calibrate(const Segment& seg, size_t f,
                                            const index::VectorIndex& idx,
                                            const CalibrationOptions& options,
                                            const std::atomic<bool>* stop = nullptr,
                                            bool held_out = false,
                                            const index::MuveraEncoder* encoder = nullptr);

}  // namespace quiver

#endif  // QUIVER_QUERY_RECALL_CALIBRATION_H_
