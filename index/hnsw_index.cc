#include "index/hnsw_index.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "index/distance.h"
#include "index/hnsw_walk.h"
#include "index/hnswlib_wrapped.h"
#include "storage/file_mapping.h"

namespace quiver::index {
namespace {

using Hnsw = hnswlib::HierarchicalNSW<float>;
using hnswlib::linklistsizeint;
using hnswlib::tableint;

// hnswlib's file header: 6 size_t, int maxlevel, uint32 entry point,
// 3 size_t, double mult, size_t ef_construction (see saveIndex).
constexpr size_t kHeaderBytes = 96;

template <class Metric>
float DistOf(const void* a, const void* b, const void* dim) {
  return Metric::Distance(static_cast<const float*>(a), static_cast<const float*>(b),
                          *static_cast<const size_t*>(dim));
}

// An hnswlib space over our kernels: distances are already in our
// convention (-ip, not hnswlib's 1 - ip), and constructing it writes no
// global (hnswlib's L2Space/InnerProductSpace constructors do, racily).
// The kernel variant is the one in use when the space is made (hnswlib's
// own kernels would be chosen by the flags this file is compiled with).
class Space final : public hnswlib::SpaceInterface<float> {
 public:
  Space(size_t dim, Similarity sim)
      : dim_(dim), fn_(WithKernels([sim](auto k) -> hnswlib::DISTFUNC<float> {
          using K = decltype(k);
          return sim == Similarity::kL2 ? &DistOf<L2MetricOf<K>> : &DistOf<IpMetricOf<K>>;
        })) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return fn_; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  size_t dim_;
  hnswlib::DISTFUNC<float> fn_;
};


}  // namespace

struct HnswIndex::Graph {
  Graph(size_t d, Similarity sim) : dim(d), space(d, sim) {}
  // hnswlib frees the level-0 block itself unless it is shared (Share).
  ~Graph() {
    if (hnsw != nullptr && block != nullptr) hnsw->data_level0_memory_ = nullptr;
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const char* Vector(uint32_t id) const {
    return hnsw->data_level0_memory_ + id * hnsw->size_data_per_element_ + hnsw->offsetData_;
  }
  const uint32_t* Links0(uint32_t id) const {
    return reinterpret_cast<const uint32_t*>(hnsw->data_level0_memory_ +
                                             id * hnsw->size_data_per_element_ +
                                             hnsw->offsetLevel0_);
  }
  const uint32_t* Links(uint32_t id, int level) const {
    return reinterpret_cast<const uint32_t*>(hnsw->linkLists_[id] +
                                             (level - 1) * hnsw->size_links_per_element_);
  }
  static size_t Count(const uint32_t* links) {
    return *reinterpret_cast<const uint16_t*>(links);
  }

  // After Build/Load: label table, and hnswlib state search never needs
  // (the label hash map, per-node insert locks, its visited-list pool).
  void Finish() {
    Label();
    std::unordered_map<hnswlib::labeltype, tableint>().swap(hnsw->label_lookup_);
    std::vector<std::mutex>().swap(hnsw->link_list_locks_);
    std::vector<std::mutex>().swap(hnsw->link_list_update_locks_);
    delete hnsw->visited_list_pool_;
    hnsw->visited_list_pool_ = new hnswlib::VisitedListPool(0, 0);
  }
  // The label table alone: the graph can be searched, and still grown
  // (hnswlib's insert state stays).
  void Label() {
    const size_t n = hnsw->cur_element_count;
    labels.resize(n);
    upper_link_bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      labels[i] = static_cast<uint32_t>(hnsw->getExternalLabel(static_cast<tableint>(i)));
      upper_link_bytes += static_cast<size_t>(hnsw->element_levels_[i]) *
                          hnsw->size_links_per_element_;
    }
  }

  // Renumbers the graph so that every label 0..label_space-1 is its own
  // internal id: the level-0 block then holds label i's vector in record i,
  // and a segment can read its rows there instead of keeping a copy
  // (shared_rows). hnswlib numbers nodes in insertion order, which differs
  // from label order under concurrent inserts, held-out rows and rows left
  // out of the build. A label that is no node (a row the build left out)
  // gets a record with no links that nothing links to (never reached by a
  // walk), holding its row read from `fill` (the build's input) or zeros
  // (null).
  // REQUIRES: labels is current (Label()), the block has room for
  // label_space records (hnswlib's max_elements), insert state is gone.
  // Nothing may search the graph meanwhile.
  void Renumber(const VectorIndex::RowReader* fill) {
    Hnsw& h = *hnsw;
    const size_t count = h.cur_element_count, n = label_space;
    bool identity = count == n;
    for (size_t i = 0; identity && i < count; ++i) identity = labels[i] == i;
    if (identity) return;
    // perm[internal id] = its label; the records past the nodes go to the
    // labels no node holds.
    std::vector<uint32_t> perm(n);
    std::vector<bool> placed(n, false);
    for (size_t i = 0; i < count; ++i) {
      perm[i] = labels[i];
      placed[labels[i]] = true;
    }
    const size_t per = h.size_data_per_element_;
    char* const base = h.data_level0_memory_;
    for (size_t next = count, label = 0; label < n; ++label) {
      if (placed[label]) continue;
      char* rec = base + next * per;
      std::memset(rec + h.offsetLevel0_, 0, h.size_links_level0_);
      if (fill != nullptr) {
        std::memcpy(rec + h.offsetData_, (*fill)(label), dim * sizeof(float));
      } else {
        std::memset(rec + h.offsetData_, 0, dim * sizeof(float));
      }
      const hnswlib::labeltype l = label;
      std::memcpy(rec + h.label_offset_, &l, sizeof(l));
      h.element_levels_[next] = 0;
      h.linkLists_[next] = nullptr;
      perm[next++] = static_cast<uint32_t>(label);
    }
    for (size_t i = 0; i < count; ++i) {
      for (int level = 0; level <= h.element_levels_[i]; ++level) {
        uint32_t* links = const_cast<uint32_t*>(level == 0 ? Links0(i) : Links(i, level));
        const size_t c = Count(links);
        for (size_t j = 1; j <= c; ++j) links[j] = perm[links[j]];
      }
    }
    // Apply perm in place, cycle by cycle: one record in hand at a time.
    std::vector<char> held(per), swap(per);
    std::vector<bool> done(n, false);
    for (size_t start = 0; start < n; ++start) {
      if (done[start] || perm[start] == start) continue;
      std::memcpy(held.data(), base + start * per, per);
      int held_level = h.element_levels_[start];
      char* held_links = h.linkLists_[start];
      size_t cur = start;
      do {
        const size_t dst = perm[cur];
        char* rec = base + dst * per;
        std::memcpy(swap.data(), rec, per);
        std::memcpy(rec, held.data(), per);
        held.swap(swap);
        std::swap(held_level, h.element_levels_[dst]);
        std::swap(held_links, h.linkLists_[dst]);
        done[dst] = true;
        cur = dst;
      } while (cur != start);
    }
    h.enterpoint_node_ = perm[h.enterpoint_node_];
    h.cur_element_count = n;
    Label();
  }

  // Hands the level-0 block to a shared owner (shared_rows), once it is
  // final.
  void Share() {
    if (block == nullptr) block = std::shared_ptr<char>(hnsw->data_level0_memory_, &std::free);
  }

  // Checks a loaded graph so that search cannot read out of bounds: every
  // link names a node that exists on that layer, labels are below the label
  // space and used once each.
  absl::Status Check() const {
    const size_t n = hnsw->cur_element_count;
    if (hnsw->enterpoint_node_ >= n ||
        hnsw->element_levels_[hnsw->enterpoint_node_] != hnsw->maxlevel_) {
      return absl::DataLossError("HNSW: bad entry point");
    }
    std::vector<bool> seen(label_space);
    for (uint32_t i = 0; i < n; ++i) {
      const hnswlib::labeltype label = hnsw->getExternalLabel(i);
      if (label >= label_space || seen[label]) return absl::DataLossError("HNSW: bad labels");
      seen[label] = true;
      const int top = hnsw->element_levels_[i];
      if (top < 0 || top > hnsw->maxlevel_) return absl::DataLossError("HNSW: bad node level");
      for (int level = 0; level <= top; ++level) {
        const uint32_t* links = level == 0 ? Links0(i) : Links(i, level);
        const size_t count = Count(links);
        if (count > (level == 0 ? hnsw->maxM0_ : hnsw->maxM_)) {
          return absl::DataLossError("HNSW: bad link count");
        }
        for (size_t j = 1; j <= count; ++j) {
          if (links[j] >= n || hnsw->element_levels_[links[j]] < level) {
            return absl::DataLossError("HNSW: link out of range");
          }
        }
      }
    }
    return absl::OkStatus();
  }

  // The graph as hnsw::Walk reads it (hnsw_walk.h); node ids are hnswlib's
  // internal ids.
  static constexpr bool kPrefetchNext = true;  // long float rows
  uint32_t EntryPoint() const { return hnsw->enterpoint_node_; }
  int MaxLevel() const { return hnsw->maxlevel_; }
  size_t NodeCount() const { return labels.size(); }
  hnsw::Links Neighbors(uint32_t id, int level) const {
    const uint32_t* links = level == 0 ? Links0(id) : Links(id, level);
    return {links + 1, Count(links)};
  }
  uint64_t Label(uint32_t id) const { return labels[id]; }

  // Query-to-node distances for hnsw::Walk, with index/distance.h's kernels.
  template <class Metric>
  struct Distance {
    const Graph* graph;
    const float* query;
    const void* Data(uint32_t id) const { return graph->Vector(id); }
    float operator()(uint32_t id) const {
      return Metric::Distance(query, reinterpret_cast<const float*>(graph->Vector(id)),
                              graph->dim);
    }
  };

  const size_t dim;
  // Declared before `hnsw`: hnswlib keeps a pointer to it.
  Space space;
  std::unique_ptr<Hnsw> hnsw;
  std::vector<uint32_t> labels;  // internal id -> label
  // Labels are below this (size()): the rows the index was built for, of
  // which only those holding data are nodes (labels.size()).
  size_t label_space = 0;
  size_t upper_link_bytes = 0;
  // hnswlib's level-0 block once Share() has run (its owner from then on:
  // shared_rows hands out copies). For a graph used in place, a pointer
  // into the file's mapping that shares its ownership.
  std::shared_ptr<char> block;
  bool in_place = false;  // the block is the index file's mapping (LoadMapped)
};

HnswIndex::HnswIndex(IndexSpec spec, HnswOptions options)
    : spec_(std::move(spec)), options_(options) {}

HnswIndex::~HnswIndex() = default;

size_t HnswIndex::size() const { return graph_ ? graph_->label_space : 0; }

std::string HnswIndex::Describe() const {
  return absl::StrCat("HNSW(M=", options_.m, ", ef_construction=", options_.ef_construction, ")");
}

size_t HnswIndex::MemoryBytes() const {
  if (!graph_) return 0;
  const Hnsw& h = *graph_->hnsw;
  const size_t n = graph_->labels.size();
  return n * h.size_data_per_element_ + graph_->upper_link_bytes +
         n * (sizeof(char*) + sizeof(int) + sizeof(uint32_t));
}

std::optional<SharedRows> HnswIndex::shared_rows() const {
  if (!graph_ || graph_->block == nullptr) return std::nullopt;
  const Hnsw& h = *graph_->hnsw;
  SharedRows rows;
  rows.base = reinterpret_cast<const float*>(graph_->block.get() + h.offsetData_);
  rows.stride = h.size_data_per_element_ / sizeof(float);
  rows.rows = graph_->label_space;
  rows.owner = graph_->block;
  return rows;
}

absl::Status HnswIndex::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  return BuildHoldingOut(vectors, n, threads, rows, {}, nullptr);
}

namespace {

// The rows Build inserts first: those `rows` accepts and `held` does not.
class HeldOutRows final : public LabelFilter {
 public:
  HeldOutRows(const LabelFilter* rows, size_t n, const std::vector<uint32_t>& held)
      : rows_(rows), held_(n, false) {
    for (uint32_t h : held) {
      if (h < n) held_[h] = true;
    }
  }
  bool Accept(uint32_t label) const override {
    return !held_[label] && (rows_ == nullptr || rows_->Test(label));
  }

 private:
  const LabelFilter* rows_;
  std::vector<bool> held_;
};

}  // namespace

absl::Status HnswIndex::BuildHoldingOut(const float* vectors, size_t n, int threads,
                                        const LabelFilter* rows,
                                        const std::vector<uint32_t>& held_out,
                                        const std::function<void()>& probe) {
  const size_t dim = spec_.dim;
  return BuildFromRows([vectors, dim](size_t i) { return vectors + i * dim; }, n, threads, rows,
                       held_out, probe);
}

absl::Status HnswIndex::BuildFromRows(const RowReader& row, size_t n, int threads,
                                      const LabelFilter* rows,
                                      const std::vector<uint32_t>& held_out,
                                      const std::function<void()>& probe) {
  if (n == 0) return absl::InvalidArgumentError("HNSW: cannot build over 0 vectors");
  if (n >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("HNSW: too many vectors (", n, ")"));
  }
  const size_t dim = spec_.dim;
  const HeldOutRows first_rows(rows, n, held_out);
  std::vector<uint32_t> order;  // the rows inserted, in row order, held-out ones last
  size_t held_from = 0;
  try {
    order.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (first_rows.Test(static_cast<uint32_t>(i))) order.push_back(static_cast<uint32_t>(i));
    }
    held_from = order.size();
    for (uint32_t h : held_out) {
      if (h < n && (rows == nullptr || rows->Test(h))) order.push_back(h);
    }
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("HNSW: out of memory for ", n, " vectors"));
  }
  if (order.empty()) return absl::InvalidArgumentError("HNSW: no row holds data");
  if (held_from == 0) held_from = 1;  // the entry point must be in before a probe
  auto graph = std::make_unique<Graph>(dim, spec_.similarity);
  graph->label_space = n;
  try {
    // Capacity n (the label space, which saveIndex records as max_elements):
    // the nodes take internal ids 0..order.size()-1, so the capacity past
    // them is allocated but never touched (not resident).
    graph->hnsw = std::make_unique<Hnsw>(&graph->space, n, options_.m, options_.ef_construction);
    // The first point becomes the entry point; hnswlib needs it in place
    // before concurrent inserts.
    graph->hnsw->addPoint(row(order[0]), order[0]);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("HNSW: out of memory for ", n, " vectors"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("HNSW build: ", e.what()));
  }
  QUIVER_RETURN_IF_ERROR(Insert(row, order, 1, held_from, threads, graph.get()));
  if (probe != nullptr && held_from < order.size()) {
    // Searchable as it is: the probe sees the graph without the held-out
    // rows, then they go in as the last inserts.
    graph->Label();
    graph_ = std::move(graph);
    probe();
    graph = std::move(graph_);
  }
  QUIVER_RETURN_IF_ERROR(Insert(row, order, held_from, order.size(), threads, graph.get()));
  graph->Finish();
  graph->Renumber(&row);
  graph->Share();
  graph_ = std::move(graph);
  return absl::OkStatus();
}

absl::Status HnswIndex::Insert(const RowReader& row, const std::vector<uint32_t>& order,
                               size_t from, size_t to, int threads, Graph* graph) {
  if (from >= to) return absl::OkStatus();
  std::atomic<size_t> next{from};
  std::atomic<bool> stopped{false};
  std::mutex error_mu;
  absl::Status error;
  auto insert = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < to;) {
      // One insert takes ~0.1-10 ms: checked before each, a stop ends the
      // build within one insert per thread.
      if (build_stopped()) {
        stopped.store(true, std::memory_order_relaxed);
        next.store(to);
        return;
      }
      try {
        graph->hnsw->addPoint(row(order[i]), order[i]);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mu);
        const bool oom = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                         std::strstr(e.what(), "memory") != nullptr;
        if (error.ok()) {
          error = oom ? absl::ResourceExhaustedError(absl::StrCat("HNSW build: ", e.what()))
                      : absl::InternalError(absl::StrCat("HNSW build: ", e.what()));
        }
        next.store(to);
        return;
      }
    }
  };
  const size_t workers = std::clamp<size_t>(threads < 1 ? 1 : threads, 1, to - from);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(insert);
    } catch (const std::system_error&) {
      break;  // fewer threads; this one still inserts
    }
  }
  insert();
  for (std::thread& t : pool) t.join();
  if (!error.ok()) return error;
  if (stopped.load(std::memory_order_relaxed)) return BuildStoppedError("HNSW");
  return absl::OkStatus();
}

absl::StatusOr<HnswGraph> BuildHnswGraph(const IndexSpec& spec, const HnswOptions& options,
                                         const float* vectors, size_t n, int threads,
                                         const LabelFilter* rows,
                                         const std::atomic<bool>* stop) {
  HnswIndex index(spec, options);
  index.set_build_stop(stop);
  if (absl::Status s = index.Build(vectors, n, threads, rows); !s.ok()) return s;
  const Hnsw& h = *index.graph_->hnsw;
  const std::vector<uint32_t>& labels = index.graph_->labels;
  HnswGraph g;
  g.m = options.m;
  g.entry_point = labels[h.enterpoint_node_];
  g.max_level = h.maxlevel_;
  try {
    // A row left out of the graph is a node on level 0 without links.
    g.levels.assign(n, 1);
    g.offsets.resize(n + 1);
    for (size_t id = 0; id < labels.size(); ++id) g.levels[labels[id]] = h.element_levels_[id] + 1;
    for (size_t i = 0; i < n; ++i) g.offsets[i + 1] = g.offsets[i] + g.Slot(g.levels[i]);
    g.neighbors.assign(g.offsets[n], -1);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("HNSW: out of memory for ", n, " nodes"));
  }
  for (uint32_t id = 0; id < labels.size(); ++id) {
    const uint32_t label = labels[id];
    for (int level = 0; level < g.levels[label]; ++level) {
      const uint32_t* links =
          level == 0 ? index.graph_->Links0(id) : index.graph_->Links(id, level);
      const size_t count = HnswIndex::Graph::Count(links);
      int32_t* slots = g.neighbors.data() + g.offsets[label] + g.Slot(level);
      for (size_t j = 0; j < count; ++j) slots[j] = static_cast<int32_t>(labels[links[j + 1]]);
    }
  }
  return g;
}

absl::Status HnswIndex::Search(const float* query, const SearchParams& params,
                               const LabelFilter* filter, TopK* out) const {
  if (!graph_) return absl::FailedPreconditionError("HNSW: index not built");
  const Graph* g = graph_.get();
  // The walk is instantiated per kernel variant: its distances are direct
  // calls to the variant chosen here, once per search.
  WithKernels([&](auto k) {
    using K = decltype(k);
    hnsw::Search(*g, spec_.similarity, params, filter, out, [&](auto l2) {
      if constexpr (decltype(l2)::value) {
        return Graph::Distance<L2MetricOf<K>>{g, query};
      } else {
        return Graph::Distance<IpMetricOf<K>>{g, query};
      }
    });
  });
  return absl::OkStatus();
}

namespace {

template <typename T>
T Field(const char* header, size_t offset) {
  T v;
  std::memcpy(&v, header + offset, sizeof(T));
  return v;
}

}  // namespace

absl::Status HnswIndex::SaveTo(storage::WritableFile& out) const {
  if (!graph_) return absl::FailedPreconditionError("HNSW: index not built");
  // The bytes of hnswlib's saveIndex (whose loadIndex reads them back),
  // written here because saveIndex only writes to a path of its own.
  const Hnsw& h = *graph_->hnsw;
  std::string buf;
  auto pod = [&buf](const auto& v) {
    buf.append(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  pod(h.offsetLevel0_);
  pod(h.max_elements_);
  pod(h.cur_element_count);
  pod(h.size_data_per_element_);
  pod(h.label_offset_);
  pod(h.offsetData_);
  pod(h.maxlevel_);
  pod(h.enterpoint_node_);
  pod(h.maxM_);
  pod(h.maxM0_);
  pod(h.M_);
  pod(h.mult_);
  pod(h.ef_construction_);
  const size_t count = h.cur_element_count;
  QUIVER_RETURN_IF_ERROR(out.Append(buf));
  QUIVER_RETURN_IF_ERROR(
      out.Append(absl::string_view(h.data_level0_memory_, count * h.size_data_per_element_)));
  buf.clear();
  for (size_t i = 0; i < count; ++i) {
    const unsigned int links =
        h.element_levels_[i] > 0 ? h.size_links_per_element_ * h.element_levels_[i] : 0;
    pod(links);
    if (links != 0) buf.append(h.linkLists_[i], links);
    if (buf.size() >= (1u << 20)) {
      QUIVER_RETURN_IF_ERROR(out.Append(buf));
      buf.clear();
    }
  }
  return out.Append(buf);
}

absl::Status HnswIndex::Load(const std::string& path) { return LoadFile(path, false); }

absl::Status HnswIndex::LoadMapped(const std::string& path) { return LoadFile(path, true); }

bool HnswIndex::mapped() const { return graph_ != nullptr && graph_->in_place; }

absl::Status HnswIndex::LoadFile(const std::string& path, bool map) {
  // Check the file against its header before hnswlib (or the mapped graph)
  // reads it: hnswlib trusts the header (sizes, counts) and a truncated file
  // would otherwise make it allocate or read garbage.
  std::shared_ptr<const storage::FileMapping> mapping;
  uint64_t file_size = 0;
  char header[kHeaderBytes];
  std::ifstream f;
  if (map) {
    absl::StatusOr<std::shared_ptr<const storage::FileMapping>> m =
        storage::FileMapping::Map(path);
    if (!m.ok()) return m.status();
    mapping = *std::move(m);
    file_size = mapping->size();
    if (file_size >= kHeaderBytes) std::memcpy(header, mapping->data(), kHeaderBytes);
  } else {
    f.open(path, std::ios::binary | std::ios::ate);
    if (!f) return absl::NotFoundError(absl::StrCat("HNSW: cannot open ", path));
    file_size = static_cast<uint64_t>(f.tellg());
    f.seekg(0);
    if (file_size >= kHeaderBytes && !f.read(header, kHeaderBytes)) file_size = 0;
  }
  if (file_size < kHeaderBytes) {
    return absl::DataLossError(absl::StrCat("HNSW: ", path, " is truncated (", file_size,
                                            " bytes)"));
  }
  const size_t m = options_.m, dim = spec_.dim;
  const size_t links0 = 2 * m * sizeof(tableint) + sizeof(linklistsizeint);
  const size_t links_upper = m * sizeof(tableint) + sizeof(linklistsizeint);
  const size_t per_element = links0 + dim * sizeof(float) + sizeof(hnswlib::labeltype);
  const auto offset_level0 = Field<size_t>(header, 0);
  const auto label_space = Field<size_t>(header, 8);  // max_elements (see Build)
  const auto count = Field<size_t>(header, 16);
  const auto size_per_element = Field<size_t>(header, 24);
  const auto label_offset = Field<size_t>(header, 32);
  const auto data_offset = Field<size_t>(header, 40);
  const auto max_level = Field<int>(header, 48);
  const auto entry = Field<uint32_t>(header, 52);
  const auto max_m = Field<size_t>(header, 56);
  const auto max_m0 = Field<size_t>(header, 64);
  const auto file_m = Field<size_t>(header, 72);
  if (offset_level0 != 0 || size_per_element != per_element || data_offset != links0 ||
      label_offset != links0 + dim * sizeof(float) || max_m != m || max_m0 != 2 * m ||
      file_m != m) {
    return absl::DataLossError(absl::StrCat("HNSW: ", path, " is not an HNSW file for dim ", dim,
                                            ", M ", m));
  }
  if (count == 0 || label_space < count ||
      label_space >= std::numeric_limits<uint32_t>::max() || entry >= count ||
      max_level < 0 || max_level > 64 ||
      file_size < kHeaderBytes + count * (per_element + sizeof(uint32_t))) {
    return absl::DataLossError(absl::StrCat("HNSW: ", path, " is truncated or corrupt (",
                                            file_size, " bytes for ", count, " nodes)"));
  }
  // The upper-layer link lists follow layer 0: a 4-byte size, then the lists.
  const uint64_t tail_offset = kHeaderBytes + uint64_t{count} * per_element;
  std::string read_tail;
  absl::string_view tail;
  if (map) {
    tail = absl::string_view(mapping->data() + tail_offset, file_size - tail_offset);
  } else {
    try {
      read_tail.resize(file_size - tail_offset);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("HNSW: cannot read ", path));
    }
    f.seekg(static_cast<std::streamoff>(tail_offset));
    if (!f.read(read_tail.data(), static_cast<std::streamsize>(read_tail.size()))) {
      return absl::DataLossError(absl::StrCat("HNSW: short read from ", path));
    }
    f.close();
    tail = read_tail;
  }
  uint64_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    if (pos + sizeof(uint32_t) > tail.size()) {
      return absl::DataLossError(absl::StrCat("HNSW: ", path, " is truncated"));
    }
    const auto bytes = Field<uint32_t>(tail.data(), pos);
    if (bytes % links_upper != 0 || bytes / links_upper > static_cast<uint64_t>(max_level)) {
      return absl::DataLossError(absl::StrCat("HNSW: ", path, " is corrupt (node ", i, ")"));
    }
    pos += sizeof(uint32_t) + bytes;
  }
  if (pos != tail.size()) {
    return absl::DataLossError(absl::StrCat("HNSW: ", path, " is truncated or corrupt"));
  }
  read_tail = {};

  // In place only if record i is label i for every label: the block is read
  // only, and Renumber would have to rewrite it. Files written before
  // labels were renumbered are loaded (and stay so until rewritten).
  const char* const records = map ? mapping->data() + kHeaderBytes : nullptr;
  bool in_place = map && count == label_space;
  for (size_t i = 0; in_place && i < count; ++i) {
    in_place = Field<hnswlib::labeltype>(records, i * per_element + label_offset) == i;
  }
  if (!in_place) mapping.reset();

  auto graph = std::make_unique<Graph>(dim, spec_.similarity);
  graph->label_space = label_space;
  // The space-only constructor initialises nothing; make the destructor safe
  // whatever point loading fails at.
  graph->hnsw = std::make_unique<Hnsw>(&graph->space);
  Hnsw& h = *graph->hnsw;
  h.data_level0_memory_ = nullptr;
  h.linkLists_ = nullptr;
  h.visited_list_pool_ = nullptr;
  h.cur_element_count = 0;
  h.num_deleted_ = 0;
  if (in_place) {
    // What hnswlib's loadIndex sets, with the level-0 block pointing into
    // the mapping. The insert state (label map, locks, visited lists) is
    // left empty: Finish drops it anyway, and a loaded graph never grows.
    // The block is owned by the mapping from here (~Graph clears hnswlib's
    // pointer before hnswlib would free it).
    graph->in_place = true;
    graph->block = std::shared_ptr<char>(mapping, const_cast<char*>(records));
    h.data_level0_memory_ = graph->block.get();
    h.offsetLevel0_ = 0;
    h.max_elements_ = label_space;
    h.size_data_per_element_ = per_element;
    h.label_offset_ = label_offset;
    h.offsetData_ = data_offset;
    h.maxlevel_ = max_level;
    h.enterpoint_node_ = entry;
    h.maxM_ = m;
    h.maxM0_ = 2 * m;
    h.M_ = m;
    h.mult_ = Field<double>(header, 80);
    h.ef_construction_ = Field<size_t>(header, 88);
    h.data_size_ = graph->space.get_data_size();
    h.fstdistfunc_ = graph->space.get_dist_func();
    h.dist_func_param_ = graph->space.get_dist_func_param();
    h.size_links_per_element_ = links_upper;
    h.size_links_level0_ = links0;
    h.revSize_ = 1.0 / h.mult_;
    h.ef_ = 10;
    h.element_levels_.assign(label_space, 0);
    h.linkLists_ = static_cast<char**>(std::calloc(label_space, sizeof(char*)));
    if (h.linkLists_ == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("HNSW: cannot load ", path));
    }
    // Counted before the lists are copied: hnswlib's destructor frees the
    // lists of the nodes whose level is set, which happens only once the
    // node's list is allocated.
    h.cur_element_count = count;
    pos = 0;
    for (size_t i = 0; i < count; ++i) {
      const auto bytes = Field<uint32_t>(tail.data(), pos);
      pos += sizeof(uint32_t);
      if (bytes == 0) continue;
      h.linkLists_[i] = static_cast<char*>(std::malloc(bytes));
      if (h.linkLists_[i] == nullptr) {
        return absl::ResourceExhaustedError(absl::StrCat("HNSW: cannot load ", path));
      }
      std::memcpy(h.linkLists_[i], tail.data() + pos, bytes);
      h.element_levels_[i] = static_cast<int>(bytes / links_upper);
      pos += bytes;
    }
    for (size_t i = 0; i < count; ++i) h.num_deleted_ += h.isMarkedDeleted(i) ? 1 : 0;
  } else {
    try {
      // Room for a record per label: Renumber fills in the labels no node
      // holds (files written before labels were renumbered).
      h.loadIndex(path, &graph->space, label_space);
    } catch (const std::exception& e) {
      if (h.linkLists_ == nullptr || h.element_levels_.size() < h.cur_element_count) {
        h.cur_element_count = 0;  // the destructor walks element_levels_
      }
      if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
        return absl::ResourceExhaustedError(absl::StrCat("HNSW: cannot load ", path));
      }
      return absl::DataLossError(absl::StrCat("HNSW: cannot load ", path, ": ", e.what()));
    }
  }
  if (h.cur_element_count != count) {
    return absl::DataLossError(absl::StrCat("HNSW: ", path, " changed while loading"));
  }
  if (absl::Status s = graph->Check(); !s.ok()) {
    return absl::DataLossError(absl::StrCat(s.message(), " in ", path));
  }
  graph->Finish();
  graph->Renumber(nullptr);
  graph->Share();
  graph_ = std::move(graph);
  return absl::OkStatus();
}

}  // namespace quiver::index
