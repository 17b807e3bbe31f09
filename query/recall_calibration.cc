#include "query/recall_calibration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "index/distance.h"
#include "index/maxsim.h"
#include "index/muvera.h"
#include "index/topk.h"
#include "query/execute/maxsim_rerank.h"
#include "query/index_check.h"
#include "storage/rerank_table.h"
#include "spdlog/spdlog.h"

namespace quiver {
namespace {

constexpr size_t kNumK = sizeof(kCalibratedK) / sizeof(kCalibratedK[0]);
constexpr uint32_t kLargestK = kCalibratedK[kNumK - 1];
// Compressed kinds: the most candidates a measured setting reranks (k x
// refine factor). Each costs an exact distance per sample and knob value;
// larger refine factors at large k are left unmeasured (not chosen).
constexpr uint32_t kMaxCalibratedCandidates = 1024;
// Late interaction: MUVERA encodings rank sets loosely (the default takes
// 500 candidates for recall@10 0.967 on Fashion patch sets, and 2,000 reach
// only 0.61 on Fashion strips), so more candidates and larger ef are
// measured: each costs one MaxSim per sample and knob value (~0.5 us for
// sets of 8-16 vectors).
constexpr uint32_t kMaxCalibratedMaxSimCandidates = 2048;

// Knob grids: dense where recall moves fast (small ef, few lists), so
// interpolating between neighbours stays within a fraction of a percent.
const std::vector<uint32_t>& EfGrid() {
  static const std::vector<uint32_t> grid = {1,   2,   3,   5,   7,   10,  12,  14,  16,  18,
                                             20,  24,  28,  32,  40,  48,  56,  64,  80,  96,
                                             112, 128, 160, 192, 256, 320, 384, 512, 768, 1024};
  return grid;
}

std::vector<uint32_t> NprobeGrid(uint32_t nlist) {
  std::vector<uint32_t> grid;
  for (uint32_t v : {1u,  2u,  3u,  4u,  5u,  6u,   7u,   8u,   10u,  12u,  14u,  16u,
                     20u, 24u, 28u, 32u, 40u, 48u,  56u,  64u,  80u,  96u,  112u, 128u,
                     160u, 192u, 256u, 320u, 384u, 512u, 768u, 1024u, 1536u, 2048u, 4096u}) {
    if (v >= nlist) break;
    grid.push_back(v);
  }
  grid.push_back(std::max(nlist, 1u));
  return grid;
}

// Late interaction: the ef grid goes on to the most candidates measured.
const std::vector<uint32_t>& MaxSimEfGrid() {
  static const std::vector<uint32_t> grid = [] {
    // Dense enough above 512 for a knob near the candidates (an ef below
    // them runs at them, unmeasured): 640 candidates are common.
    std::vector<uint32_t> g = EfGrid();
    g.insert(std::find(g.begin(), g.end(), 768u), 640);
    g.insert(std::find(g.begin(), g.end(), 1024u), 896);
    g.insert(g.end(), {1280, 1536, 2048});
    return g;
  }();
  return grid;
}

// Refine factors of compressed kinds: the candidates reranked are k x this.
const std::vector<float>& RefineGrid() {
  static const std::vector<float> grid = {1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32};
  return grid;
}

// Late interaction: points reranked by exact MaxSim are k x this.
const std::vector<float>& MaxSimRefineGrid() {
  static const std::vector<float> grid = {1,  1.5, 2,  3,  4,  6,   8,   12,  16, 24,
                                          32, 48,  64, 80, 96, 128, 160, 192, 256};
  return grid;
}

uint32_t CandidatesFor(uint32_t k, float refine) {
  return static_cast<uint32_t>(std::ceil(static_cast<double>(k) * std::max(1.0f, refine)));
}

// A sample's filter: the subset's rows, never the sample itself. Not a
// bitmap filter (bitmap stays null) because the excluded row differs per
// sample.
class SampleFilter final : public index::LabelFilter {
 public:
  SampleFilter(const std::vector<uint64_t>& words, uint32_t self) : words_(words), self_(self) {}
  bool Accept(uint32_t label) const override {
    return label != self_ && (label >> 6) < words_.size() &&
           ((words_[label >> 6] >> (label & 63)) & 1);
  }

 private:
  const std::vector<uint64_t>& words_;
  uint32_t self_;
};

bool Bit(const std::vector<uint64_t>& w, uint32_t i) { return (w[i >> 6] >> (i & 63)) & 1; }

// Linear interpolation of y at x between (x0, y0) and (x1, y1).
double Lerp(double x, double x0, double x1, double y0, double y1) {
  if (x1 == x0) return y0;
  return y0 + (x - x0) / (x1 - x0) * (y1 - y0);
}

}  // namespace

std::string RecallCalibration::Choice::ToString() const {
  if (exact && extrapolated) {
    return "exact scan (recall 1): the filter passes fewer rows than any subset calibrated";
  }
  if (exact) {
    return absl::StrFormat("exact scan (recall 1)%s", reached ? "" : ": no setting reaches the target");
  }
  std::string knob = params.ef != 0 ? absl::StrCat("ef=", params.ef)
                                    : absl::StrCat("nprobe=", params.nprobe);
  if (refine_factor > 0) absl::StrAppend(&knob, ", refine_factor=", refine_factor);
  return absl::StrFormat("%s, predicted recall %.3f%s", knob, predicted,
                         extrapolated ? " (extrapolated past the calibrated k or selectivity)" : "");
}

std::string RecallCalibration::Describe() const {
  uint32_t lo = 0, hi = 0;
  for (const Cell& c : cells_) {
    lo = lo == 0 ? c.knob : std::min(lo, c.knob);
    hi = std::max(hi, c.knob);
  }
  return absl::StrCat("calibrated on ", samples_, " rows",
                      filtered_samples_ > 0 ? absl::StrCat(" (", filtered_samples_,
                                                           " per filtered subset)")
                                            : "",
                      ": ", knob_ == Knob::kEf ? "ef " : "nprobe ", lo, "..", hi,
                      compressed_ && !refines_.empty()
                          ? absl::StrCat(", refine_factor ", refines_.front(), "..",
                                         refines_.back())
                          : "");
}

void RecallCalibration::Finish() {
  auto key = [](const Cell& c) { return std::make_tuple(c.selectivity, c.refine, c.knob); };
  std::sort(cells_.begin(), cells_.end(),
            [&](const Cell& a, const Cell& b) { return key(a) < key(b); });
  groups_.clear();
  refines_.clear();
  knobs_.clear();
  for (const Cell& c : cells_) {
    groups_.push_back(c.selectivity);
    refines_.push_back(c.refine);
    knobs_.push_back(c.knob);
  }
  for (auto* v : {&groups_, &refines_}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  std::sort(knobs_.begin(), knobs_.end());
  knobs_.erase(std::unique(knobs_.begin(), knobs_.end()), knobs_.end());
  std::reverse(groups_.begin(), groups_.end());
}

const RecallCalibration::Cell* RecallCalibration::Find(float selectivity, float refine,
                                                       uint32_t knob) const {
  const auto want = std::make_tuple(selectivity, refine, knob);
  auto it = std::lower_bound(cells_.begin(), cells_.end(), want, [](const Cell& c, const auto& w) {
    return std::make_tuple(c.selectivity, c.refine, c.knob) < w;
  });
  if (it == cells_.end() || std::make_tuple(it->selectivity, it->refine, it->knob) != want) {
    return nullptr;
  }
  return &*it;
}

double RecallCalibration::Predict(uint32_t k, double selectivity, uint32_t knob,
                                  float refine) const {
  // Selectivity groups bracketing the request's.
  const std::vector<float>& groups = groups_;
  if (groups.empty()) return -1;
  const double s = std::clamp(selectivity, 1e-6, 1.0);
  float hi = groups.front(), lo = groups.front();
  for (size_t i = 0; i + 1 < groups.size(); ++i) {
    if (s <= groups[i] && s >= groups[i + 1]) {
      hi = groups[i];
      lo = groups[i + 1];
      break;
    }
    if (s < groups[i + 1]) hi = lo = groups[i + 1];
  }
  size_t ki = 0;
  while (ki + 1 < kNumK && kCalibratedK[ki + 1] <= k) ++ki;
  const size_t kj = std::min(ki + 1, kNumK - 1);
  auto at = [&](float group) -> double {
    const Cell* c = Find(group, refine, knob);
    if (c == nullptr) return -1;
    const double a = c->recall[ki], b = c->recall[kj];
    if (k <= kCalibratedK[ki] || kj == ki) return a < 0 ? -1 : a;
    if (a < 0 || b < 0) return -1;
    return Lerp(std::log(k), std::log(kCalibratedK[ki]), std::log(kCalibratedK[kj]), a, b);
  };
  // At a measured subset (1: unfiltered) its own cells answer; filtered
  // subsets measure every other knob value, which must not take the
  // unfiltered ones away.
  if (hi == lo || s >= hi * 0.9999) return at(hi);
  if (s <= lo * 1.0001) return at(lo);
  const double rh = at(hi), rl = at(lo);
  if (rh < 0 || rl < 0) return -1;
  return Lerp(std::log(s), std::log(hi), std::log(lo), rh, rl);
}

RecallCalibration::Choice RecallCalibration::Choose(uint32_t k, double selectivity,
                                                    double target, double exact_ns) const {
  const ChoiceCache::Key key{k, selectivity, target, exact_ns};
  {
    MutexLock lock(&cache_->mu);
    auto it = cache_->choices.find(key);
    if (it != cache_->choices.end()) return it->second;
  }
  Choice c = ChooseUncached(k, selectivity, target, exact_ns);
  MutexLock lock(&cache_->mu);
  if (cache_->choices.size() >= ChoiceCache::kMaxEntries) cache_->choices.clear();
  cache_->choices.emplace(key, c);
  return c;
}

RecallCalibration::Choice RecallCalibration::ChooseUncached(uint32_t k, double selectivity,
                                                            double target,
                                                            double exact_ns) const {
  const std::vector<float>& refines = refines_;
  const std::vector<uint32_t>& knobs = knobs_;
  const float smallest_group = groups_.empty() ? 1 : groups_.back();
  if (selectivity < smallest_group * 0.999) {
    // Fewer rows pass than in any subset measured: an exact scan of them.
    Choice c;
    c.exact = true;
    c.reached = false;
    c.extrapolated = true;
    c.predicted = 1;
    c.cost_ns = exact_ns;
    return c;
  }
  // The index search time per query of one knob value at the request's
  // selectivity (the nearest measured group's). Measured per cell: a
  // filtered list scan steps over every rejected row, which a count of
  // distances does not see.
  auto search_ns = [&](uint32_t knob, float refine) {
    double best = 0, best_gap = 1e300;
    for (float g : groups_) {
      const Cell* c = Find(g, refine, knob);
      if (c == nullptr) continue;
      const double gap = std::fabs(std::log(g) - std::log(std::max(selectivity, 1e-6)));
      if (gap < best_gap) {
        best_gap = gap;
        best = c->ns > 0 ? c->ns : c->distances * ns_per_distance_;
      }
    }
    return best;
  };
  Choice best;
  best.exact = true;
  best.reached = false;
  best.predicted = -1;
  best.cost_ns = 1e300;
  for (float refine : refines) {
    const double rerank_ns =
        compressed_ ? CandidatesFor(k, refine) * ns_per_rerank_ : 0;
    double prev_p = -1;
    uint32_t prev_knob = 0;
    // A larger knob never costs less: the measured times are made
    // non-decreasing along the knobs, so that timing noise (a loaded
    // machine while a cell was timed) cannot make a larger knob look
    // cheaper and be chosen for a lower target than for a higher one.
    double prev_ns = 0;
    for (uint32_t knob : knobs) {
      const double p = Predict(k, selectivity, knob, refine);
      if (p < 0) continue;
      const double knob_ns = std::max(prev_ns, search_ns(knob, refine));
      if (p < target) {
        prev_p = p;
        prev_knob = knob;
        prev_ns = knob_ns;
        continue;
      }
      // The first value that reaches the target: the knob between it and
      // the last that did not, where the line between them crosses it.
      uint32_t chosen = knob;
      double predicted = p;
      double ns = knob_ns;
      if (prev_p >= 0 && p > prev_p && knob > prev_knob + 1) {
        const double x = Lerp(target, prev_p, p, prev_knob, knob);
        chosen = std::clamp<uint32_t>(static_cast<uint32_t>(std::ceil(x - 1e-9)), prev_knob + 1,
                                      knob);
        predicted = Lerp(chosen, prev_knob, knob, prev_p, p);
        ns = Lerp(chosen, prev_knob, knob, prev_ns, ns);
      }
      const double cost = ns + rerank_ns;
      if (cost < best.cost_ns) {
        best = Choice();
        (knob_ == Knob::kEf ? best.params.ef : best.params.nprobe) = chosen;
        best.refine_factor = refine;
        best.predicted = predicted;
        best.cost_ns = cost;
        best.reached = true;
      }
      break;
    }
  }
  if (!best.reached) {
    // Nothing reaches it: an exact scan does.
    Choice c;
    c.exact = true;
    c.reached = false;
    c.predicted = 1;
    c.cost_ns = exact_ns;
    return c;
  }
  best.extrapolated = k > kLargestK;
  if (exact_ns > 0 && exact_ns <= best.cost_ns) {
    Choice c;
    c.exact = true;
    c.predicted = 1;
    c.cost_ns = exact_ns;
    return c;
  }
  return best;
}

storage::RecallCalibration RecallCalibration::ToProto() const {
  storage::RecallCalibration p;
  p.set_knob(knob_ == Knob::kEf ? storage::RecallCalibration::EF
                                : storage::RecallCalibration::NPROBE);
  p.set_compressed(compressed_);
  p.set_samples(samples_);
  p.set_filtered_samples(filtered_samples_);
  for (uint32_t k : kCalibratedK) p.add_ks(k);
  for (const Cell& c : cells_) {
    storage::RecallCalibration::Cell* pc = p.add_cells();
    pc->set_knob(c.knob);
    pc->set_refine(c.refine);
    pc->set_selectivity(c.selectivity);
    pc->set_distances(c.distances);
    pc->set_ns(c.ns);
    for (float r : c.recall) pc->add_recall(r);
  }
  p.set_ns_per_distance(ns_per_distance_);
  p.set_ns_per_rerank(ns_per_rerank_);
  return p;
}

absl::StatusOr<RecallCalibration> RecallCalibration::FromProto(
    const storage::RecallCalibration& p) {
  if (p.ks_size() != static_cast<int>(kNumK) ||
      !std::equal(p.ks().begin(), p.ks().end(), std::begin(kCalibratedK))) {
    return absl::DataLossError("recall calibration measured at other k than this version's");
  }
  if (p.cells().empty()) return absl::DataLossError("recall calibration has no cells");
  RecallCalibration c;
  c.knob_ = p.knob() == storage::RecallCalibration::EF ? Knob::kEf : Knob::kNprobe;
  c.compressed_ = p.compressed();
  c.samples_ = p.samples();
  c.filtered_samples_ = p.filtered_samples();
  c.ns_per_distance_ = p.ns_per_distance();
  c.ns_per_rerank_ = p.ns_per_rerank();
  for (const auto& pc : p.cells()) {
    if (pc.recall_size() != static_cast<int>(kNumK) || !(pc.selectivity() > 0) ||
        pc.selectivity() > 1 || pc.knob() == 0) {
      return absl::DataLossError("recall calibration cell does not fit together");
    }
    Cell cell;
    cell.knob = pc.knob();
    cell.refine = pc.refine();
    cell.selectivity = pc.selectivity();
    cell.distances = pc.distances();
    cell.ns = pc.ns();
    cell.recall.assign(pc.recall().begin(), pc.recall().end());
    c.cells_.push_back(std::move(cell));
  }
  c.Finish();
  return c;
}

bool Calibratable(const VectorFieldSpec& field, const index::VectorIndex& idx) {
  if (idx.spec().type == "FLAT") return false;
  // Late interaction: MUVERA encodings' indexes that rank by exact
  // encoding distances (a compressed one would rerank twice, encodings
  // then sets, which the calibration does not model).
  return !field.multi || (!field.token_candidates && !idx.approximate());
}

std::vector<uint32_t> CalibrationSamples(const Segment& seg, size_t f, uint32_t rows,
                                         const CalibrationOptions& options) {
  const RowsWithData data(seg, rows, static_cast<int>(f));
  if (options.samples == 0 || data.count() < std::max<uint32_t>(options.min_rows, kLargestK + 1)) {
    return {};
  }
  std::vector<uint32_t> picked;
  picked.reserve(data.count());
  for (uint32_t off = 0; off < rows; ++off) {
    if (data.Test(off)) picked.push_back(off);
  }
  const uint32_t samples = std::min<uint32_t>(
      {options.samples, std::max<uint32_t>(100, data.count() / 16),
       static_cast<uint32_t>(picked.size())});
  std::mt19937_64 rng(options.seed);
  for (uint32_t i = 0; i < samples; ++i) {
    std::uniform_int_distribution<size_t> pick(i, picked.size() - 1);
    std::swap(picked[i], picked[pick(rng)]);
  }
  picked.resize(samples);
  return picked;
}

absl::StatusOr<RecallCalibration> Calibrate(const Segment& seg, size_t f,
                                            const index::VectorIndex& idx,
                                            const CalibrationOptions& options,
                                            const std::atomic<bool>* stop, bool held_out,
                                            const index::MuveraEncoder* encoder) {
  using Clock = std::chrono::steady_clock;
  const VectorFieldSpec& field = seg.schema().vectors()[f];
  if (!Calibratable(field, idx)) {
    return absl::InvalidArgumentError(
        "recall calibration is for ANN indexes of single-vector fields and of MUVERA "
        "encodings");
  }
  const bool multi = field.multi;
  if (multi && (encoder == nullptr || encoder->output_dim() != idx.spec().dim)) {
    return absl::InvalidArgumentError("a multi-vector field is calibrated with its encoder");
  }
  const uint32_t rows = static_cast<uint32_t>(std::min<size_t>(idx.size(), seg.published()));
  const RowsWithData data(seg, rows, static_cast<int>(f));
  if (data.count() < std::max<uint32_t>(options.min_rows, kLargestK + 1)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "too few rows to calibrate on (", data.count(), ")"));
  }
  std::vector<uint32_t> with_data;
  with_data.reserve(data.count());
  for (uint32_t off = 0; off < rows; ++off) {
    if (data.Test(off)) with_data.push_back(off);
  }
  const std::vector<uint32_t> picked = CalibrationSamples(seg, f, rows, options);
  const uint32_t samples = static_cast<uint32_t>(picked.size());
  if (samples == 0) return absl::FailedPreconditionError("calibration is off");
  // The subsets' draws follow the samples' (the same seed, a later stream).
  std::mt19937_64 rng(options.seed ^ 0x9E3779B97F4A7C15ull);

  // Held out of the index, the samples are no neighbours it can return:
  // the truth leaves them out too.
  std::vector<uint64_t> sampled((rows + 63) / 64, 0);
  if (held_out) {
    for (uint32_t off : picked) sampled[off >> 6] |= uint64_t{1} << (off & 63);
  }
  // Subsets: 1 (every row with data), then each selectivity.
  struct Group {
    float selectivity;
    std::vector<uint64_t> words;
    uint32_t samples;
  };
  std::vector<Group> groups;
  {
    Group all{1.0f, std::vector<uint64_t>((rows + 63) / 64, 0), samples};
    for (uint32_t off : with_data) {
      if (!Bit(sampled, off)) all.words[off >> 6] |= uint64_t{1} << (off & 63);
    }
    groups.push_back(std::move(all));
  }
  for (double s : options.selectivities) {
    if (!(s > 0 && s < 1)) continue;
    // See CalibrationOptions::min_filtered_rows.
    const bool walk = idx.shape().kind == index::IndexShape::Kind::kGraph;
    if (s * with_data.size() < (walk ? options.min_filtered_rows : kMinListSubsetRows)) continue;
    Group g{static_cast<float>(s), std::vector<uint64_t>((rows + 63) / 64, 0),
            // List kinds' filtered scans are as cheap as unfiltered ones:
            // all the samples, for a prediction as steady as the
            // unfiltered one where a few hundred rows pass.
            walk ? std::min(options.filtered_samples, std::max<uint32_t>(samples / 3, 1))
                 : samples};
    std::bernoulli_distribution in(s);
    uint32_t passing = 0;
    for (uint32_t off : with_data) {
      if (in(rng) && !Bit(sampled, off)) {
        g.words[off >> 6] |= uint64_t{1} << (off & 63);
        ++passing;
      }
    }
    // Too few passing rows to measure recall@100 on: an exact scan serves
    // such filters anyway.
    if (passing <= kLargestK * 2 || g.samples == 0) continue;
    groups.push_back(std::move(g));
  }

  RecallCalibration cal;
  const index::IndexShape shape = idx.shape();
  const bool graph = shape.kind == index::IndexShape::Kind::kGraph;
  cal.knob_ = graph ? RecallCalibration::Knob::kEf : RecallCalibration::Knob::kNprobe;
  // Late interaction reranks candidates by exact MaxSim, as compressed
  // kinds rerank theirs by exact distance.
  cal.compressed_ = idx.approximate() || multi;
  cal.samples_ = samples;
  cal.filtered_samples_ = groups.size() > 1 ? groups[1].samples : 0;
  std::vector<uint32_t> knobs;
  if (graph) {
    for (uint32_t e : multi ? MaxSimEfGrid() : EfGrid()) {
      // Past half the rows a walk costs more than a scan.
      if (e <= std::max<uint32_t>(data.count() / 2, kLargestK)) knobs.push_back(e);
    }
  } else {
    knobs = NprobeGrid(shape.nlist);
  }
  const std::vector<float> refines =
      multi ? MaxSimRefineGrid() : cal.compressed_ ? RefineGrid() : std::vector<float>{0.0f};
  const uint32_t max_candidates =
      cal.compressed_
          ? std::min<uint32_t>(multi ? kMaxCalibratedMaxSimCandidates : kMaxCalibratedCandidates,
                               data.count())
          : kLargestK;

  // A sample as the index searches for it (its vector, or its set's query
  // encoding), and exact distances of rows to it (L2 / negated inner
  // product, or MaxSim of the sets, as searches rank them).
  const size_t dim = idx.spec().dim;
  const bool l2 = idx.spec().similarity == index::Similarity::kL2;
  GatheredSets gathered;
  index::MultiVectorDocs docs;
  index::MaxSimScratch scratch;
  std::vector<uint64_t> ids;
  if (multi) {
    std::shared_ptr<const storage::RerankTable> table = seg.table(f);
    if (table != nullptr && table->mapped_vectors() != nullptr) {
      docs = {table->mapped_vectors(), table->offsets(), rows, field.dim};
    } else {
      for (uint32_t off = 0; off < rows; ++off) {
        const TokenSet t = seg.tokens(f, off);
        gathered.Add(t.data, t.count, field.dim);
      }
      docs = gathered.Docs(field.dim);
    }
  }
  auto sample_set = [&](uint32_t self) {
    return index::MaxSimQuery{docs.vectors + docs.offsets[self] * field.dim,
                              docs.offsets[self + 1] - docs.offsets[self], field.dim,
                              field.metric == Metric::kL2 ? index::Similarity::kL2
                                                          : index::Similarity::kInnerProduct};
  };
  auto load_query = [&](uint32_t self, float* out) {
    if (multi) {
      const index::MaxSimQuery set = sample_set(self);
      encoder->EncodeQuery(set.vectors, set.n, out);
    } else {
      std::copy(seg.vector(f, self), seg.vector(f, self) + dim, out);
    }
  };
  // exact[off] for every row with data.
  auto all_distances = [&](const float* q, uint32_t self, const std::vector<uint32_t>& offs,
                           float* exact) {
    if (multi) {
      index::MaxSimDistances(sample_set(self), docs, 0, rows, exact, &scratch);
      return;
    }
    for (uint32_t off : offs) {
      const float* v = seg.vector(f, off);
      exact[off] = l2 ? index::L2Sqr(q, v, dim) : -index::Dot(q, v, dim);
    }
  };
  // out[j] = distance of rows got[j].id.
  auto candidate_distances = [&](const float* q, uint32_t self,
                                 const std::vector<index::Neighbor>& got, float* out) {
    if (multi) {
      ids.resize(got.size());
      for (size_t j = 0; j < got.size(); ++j) ids[j] = got[j].id;
      index::MaxSimDistancesOf(sample_set(self), docs, ids.data(), ids.size(), out, &scratch);
      return;
    }
    for (size_t j = 0; j < got.size(); ++j) {
      const float* v = seg.vector(f, static_cast<uint32_t>(got[j].id));
      out[j] = l2 ? index::L2Sqr(q, v, dim) : -index::Dot(q, v, dim);
    }
  };
  auto stopped = [&] { return stop != nullptr && stop->load(std::memory_order_relaxed); };

  // 1. Truth: per group and sample, the exact k-th nearest distance of the
  // subset without the sample, for each calibrated k. A returned row at
  // most that far is a hit (rows tied with the k-th count, whichever of
  // them the index found). NaN: the subset holds too few rows.
  std::vector<std::vector<float>> kth(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    kth[g].assign(static_cast<size_t>(groups[g].samples) * kNumK, std::nanf(""));
  }
  std::vector<float> query(dim);
  std::vector<float> exact(rows, std::numeric_limits<float>::infinity());
  for (uint32_t qi = 0; qi < samples; ++qi) {
    if (stopped()) return absl::CancelledError("recall calibration stopped");
    const uint32_t self = picked[qi];
    load_query(self, query.data());
    all_distances(query.data(), self, with_data, exact.data());
    for (size_t g = 0; g < groups.size(); ++g) {
      if (qi >= groups[g].samples) continue;
      index::TopK top(kLargestK);
      for (uint32_t off : with_data) {
        if (off != self && Bit(groups[g].words, off)) top.Push(exact[off], off);
      }
      const std::vector<index::Neighbor> truth = top.Take();
      if (truth.size() < kLargestK) continue;
      for (size_t i = 0; i < kNumK; ++i) {
        const float d = truth[kCalibratedK[i] - 1].distance;
        kth[g][qi * kNumK + i] = d + 1e-6f * (1.0f + std::fabs(d));
      }
    }
  }

  // 2. Per group, the knob grid in ascending order over all its samples,
  // until a value reaches recall 0.9995 at every k (no target needs more,
  // and the largest values cost the most).
  double search_ns = 0, search_distances = 0, rerank_ns = 0, reranked_rows = 0;
  std::vector<float> cand;
  std::vector<float> sorted;
  for (size_t g = 0; g < groups.size(); ++g) {
    const Group& group = groups[g];
    for (size_t kn = 0; kn < knobs.size(); ++kn) {
      const uint32_t knob = knobs[kn];
      // Filtered subsets every other value (their walks cost several times
      // an unfiltered one's), and always the last.
      if (g > 0 && kn % 2 == 1 && kn + 1 < knobs.size()) continue;
      double distances = 0;
      double cell_ns = 0;
      std::vector<double> sums(refines.size() * kNumK, 0.0);
      std::vector<bool> measured(refines.size() * kNumK, true);
      uint32_t queries = 0;
      for (uint32_t qi = 0; qi < group.samples; ++qi) {
        if (stopped()) return absl::CancelledError("recall calibration stopped");
        const float* t = &kth[g][qi * kNumK];
        if (std::isnan(t[0])) continue;
        const uint32_t self = picked[qi];
        load_query(self, query.data());
        const SampleFilter filter(group.words, self);
        index::SearchStats stats;
        index::SearchParams params;
        (graph ? params.ef : params.nprobe) = knob;
        params.stats = &stats;
        if (graph && !held_out) params.skip_label = self;
        // Graph kinds: a list no longer than ef, so the walk runs at this
        // ef; its prefixes are what smaller k would get at the same ef.
        const uint32_t fetch = graph ? std::min(knob, max_candidates) : max_candidates;
        index::TopK found(fetch);
        const auto start = Clock::now();
        const absl::Status st = idx.Search(query.data(), params, &filter, &found);
        const double took = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
        search_ns += took;
        cell_ns += took;
        if (!st.ok()) return st;
        search_distances += stats.distances;
        distances += stats.distances;
        ++queries;
        const std::vector<index::Neighbor> got = found.Take();
        // Exact distances of the candidates, in the index's order.
        const auto rerank_start = Clock::now();
        cand.resize(got.size());
        candidate_distances(query.data(), self, got, cand.data());
        rerank_ns +=
            std::chrono::duration<double, std::nano>(Clock::now() - rerank_start).count();
        reranked_rows += got.size();
        for (size_t r = 0; r < refines.size(); ++r) {
          for (size_t i = 0; i < kNumK; ++i) {
            const uint32_t k = kCalibratedK[i];
            const uint32_t want = cal.compressed_ ? CandidatesFor(k, refines[r]) : k;
            if ((graph && want > knob) || want > max_candidates) {
              // Runs at a larger ef (another cell), or too many to rerank.
              measured[r * kNumK + i] = false;
              continue;
            }
            // The first `want` candidates, reranked exactly (a no-op for
            // exact kinds): their best k.
            sorted.assign(cand.begin(), cand.begin() + std::min<size_t>(want, cand.size()));
            const size_t keep = std::min<size_t>(k, sorted.size());
            std::partial_sort(sorted.begin(), sorted.begin() + keep, sorted.end());
            uint32_t hits = 0;
            for (size_t j = 0; j < keep; ++j) hits += sorted[j] <= t[i];
            sums[r * kNumK + i] += static_cast<double>(std::min(hits, k)) / k;
          }
        }
      }
      if (queries == 0) break;
      bool saturated = true;
      for (size_t i = 0; i < kNumK; ++i) {
        bool reached = false;
        for (size_t r = 0; r < refines.size(); ++r) {
          reached = reached ||
                    (measured[r * kNumK + i] && sums[r * kNumK + i] / queries >= 0.9995);
        }
        saturated = saturated && reached;
      }
      for (size_t r = 0; r < refines.size(); ++r) {
        RecallCalibration::Cell c;
        c.knob = knob;
        c.refine = refines[r];
        c.selectivity = group.selectivity;
        c.distances = distances / queries;
        c.ns = cell_ns / queries;
        for (size_t i = 0; i < kNumK; ++i) {
          c.recall.push_back(measured[r * kNumK + i]
                                 ? static_cast<float>(sums[r * kNumK + i] / queries)
                                 : -1.0f);
        }
        cal.cells_.push_back(std::move(c));
      }
      spdlog::debug("calibration: subset {} knob {} recall@10 {:.4f} distances {:.0f}",
                    group.selectivity, knob, sums[2] / queries, distances / queries);
      if (saturated) break;
    }
  }
  cal.ns_per_distance_ = search_distances > 0 ? search_ns / search_distances : 0;
  cal.ns_per_rerank_ = reranked_rows > 0 ? rerank_ns / reranked_rows : 0;
  cal.Finish();
  return cal;
}

}  // namespace quiver
