// The one HNSW search walk, shared by HNSW (hnswlib's graph, float vectors)
// and HNSW_SQ8 (FAISS's graph, 8-bit codes): greedy descent through the
// upper layers, then best-first search on layer 0 with a per-query ef, the
// LabelFilter, the visited marks and the stats (hnsw_index.h states the
// rules). The two kinds differ in how a graph stores its links and in how a
// distance is computed; the walk is a template over both, so neither costs
// a virtual call.
//
// A Graph type provides:
//   uint32_t EntryPoint() const;  int MaxLevel() const;
//   size_t NodeCount() const;     // node ids are 0..NodeCount()-1
//   Links Neighbors(uint32_t id, int level) const;
//   uint64_t Label(uint32_t id) const;  // what the filter tests and out gets
//   static constexpr bool kPrefetchNext;  // see Walk
// A Distance type provides:
//   float operator()(uint32_t id) const;  // query to node, lower is nearer
//   const void* Data(uint32_t id) const;  // the bytes it reads, to prefetch
//
// Internal to index/. Thread-safety: the walk's scratch (visited marks,
// heaps) is thread-local and reused across searches and indexes; a search
// never nests in another on one thread. Nothing here fails.
#ifndef QUIVER_INDEX_HNSW_WALK_H_
#define QUIVER_INDEX_HNSW_WALK_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/simd.h"
#include "index/hnsw_index.h"
#include "index/topk.h"
#include "index/vector_index.h"

namespace quiver::index::hnsw {

// The neighbours of one node on one level: ids[0..count).
struct Links {
  const uint32_t* ids;
  size_t count;
};

struct Cand {
  float distance;
  uint32_t id;  // node id
};
struct NearerFirst {  // for a min-heap with std::*_heap
  bool operator()(const Cand& a, const Cand& b) const { return a.distance > b.distance; }
};
struct FartherFirst {  // for a max-heap
  bool operator()(const Cand& a, const Cand& b) const { return a.distance < b.distance; }
};

// Per-thread search state. A node is visited in this search iff
// visited[id] == tag; the tag changes every search, so nothing is cleared
// between searches (only on wrap).
struct Scratch {
  std::vector<uint16_t> visited;
  uint16_t tag = 0;
  std::vector<Cand> candidates;  // min-heap on distance
  std::vector<Cand> results;     // max-heap on distance, accepted only

  void Begin(size_t n) {
    if (visited.size() < n) visited.resize(n, 0);
    if (++tag == 0) {
      std::fill(visited.begin(), visited.end(), 0);
      tag = 1;
    }
    candidates.clear();
    results.clear();
  }
};

inline Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// A Distance that counts its calls, for SearchStats::distances.
template <class Distance>
struct Counted {
  const Distance& distance;
  uint64_t* count;
  float operator()(uint32_t id) const {
    ++*count;
    return distance(id);
  }
  const void* Data(uint32_t id) const { return distance.Data(id); }
};

// 1. Greedy descent from the entry point through the upper layers; returns
// the node reached on layer 1 and its distance in *dist.
template <class Graph, class Distance>
uint32_t Descend(const Graph& graph, const Distance& distance, float* dist) {
  uint32_t cur = graph.EntryPoint();
  float cur_dist = distance(cur);
  for (int level = graph.MaxLevel(); level > 0; --level) {
    bool changed = true;
    while (changed) {
      changed = false;
      const Links links = graph.Neighbors(cur, level);
      for (size_t j = 0; j < links.count; ++j) {
        const uint32_t cand = links.ids[j];
        if constexpr (Graph::kPrefetchNext) {
          if (j + 1 < links.count) simd::Prefetch(distance.Data(links.ids[j + 1]));
        }
        const float d = distance(cand);
        if (d < cur_dist) {
          cur_dist = d;
          cur = cand;
          changed = true;
        }
      }
    }
  }
  *dist = cur_dist;
  return cur;
}

// 2. The search: greedy descent, then best-first search on layer 0 from
// where it ended, keeping up to `ef` accepted nodes (ef >= k is the
// caller's). Nodes the filter rejects are walked through but never enter
// the result set; the candidate queue is bounded by the worst accepted
// distance once ef are held. Prefetching: with Graph::kPrefetchNext each
// neighbour's visited mark and data are prefetched one step ahead (and the
// nearest candidate's data after a push), as hnswlib does; otherwise all of
// a node's neighbours are prefetched before the first is scored.
template <bool kFiltered, class Graph, class Distance>
void Walk(const Graph& graph, const Distance& distance, size_t ef, const LabelFilter* filter,
          TopK* out, SearchStats* stats) {
  uint64_t distances = 0;
  uint64_t checks = 0;
  const Counted<Distance> dist{distance, &distances};
  float cur_dist = 0;
  const uint32_t cur = Descend(graph, dist, &cur_dist);

  Scratch& s = ThreadScratch();
  s.Begin(graph.NodeCount());
  uint16_t* const visited = s.visited.data();
  const uint16_t tag = s.tag;
  std::vector<Cand>& candidates = s.candidates;
  std::vector<Cand>& results = s.results;
  auto accept = [&](uint32_t id) {
    if constexpr (!kFiltered) return true;
    ++checks;
    return filter->Test(static_cast<uint32_t>(graph.Label(id)));
  };

  float bound = std::numeric_limits<float>::infinity();  // worst accepted, once ef held
  visited[cur] = tag;
  candidates.push_back({cur_dist, cur});
  if (accept(cur)) {
    results.push_back({cur_dist, cur});
    if (results.size() >= ef) bound = results.front().distance;
  }
  while (!candidates.empty()) {
    const Cand c = candidates.front();
    if (c.distance > bound) break;
    std::pop_heap(candidates.begin(), candidates.end(), NearerFirst());
    candidates.pop_back();

    const Links links = graph.Neighbors(c.id, 0);
    if constexpr (Graph::kPrefetchNext) {
      if (links.count > 0) {
        simd::Prefetch(visited + links.ids[0]);
        simd::Prefetch(dist.Data(links.ids[0]));
      }
    } else {
      for (size_t j = 0; j < links.count; ++j) {
        simd::Prefetch(visited + links.ids[j]);
        simd::Prefetch(dist.Data(links.ids[j]));
      }
    }
    for (size_t j = 0; j < links.count; ++j) {
      const uint32_t id = links.ids[j];
      if constexpr (Graph::kPrefetchNext) {
        if (j + 1 < links.count) {
          simd::Prefetch(visited + links.ids[j + 1]);
          simd::Prefetch(dist.Data(links.ids[j + 1]));
        }
      }
      if (visited[id] == tag) continue;
      visited[id] = tag;
      const float d = dist(id);
      if (d >= bound) continue;
      candidates.push_back({d, id});
      std::push_heap(candidates.begin(), candidates.end(), NearerFirst());
      if constexpr (Graph::kPrefetchNext) simd::Prefetch(dist.Data(candidates.front().id));
      if (!accept(id)) continue;
      results.push_back({d, id});
      std::push_heap(results.begin(), results.end(), FartherFirst());
      if (results.size() > ef) {
        std::pop_heap(results.begin(), results.end(), FartherFirst());
        results.pop_back();
      }
      if (results.size() >= ef) bound = results.front().distance;
    }
  }
  for (const Cand& r : results) out->Push(r.distance, graph.Label(r.id));
  if (stats != nullptr) {
    stats->distances += distances;
    stats->checks += checks;
  }
}

// A Distance under which one label is not in the graph (SearchParams::
// skip_label): its node is infinitely far, so the descent never moves to it
// and the layer-0 walk never queues it or follows its links (unless it is
// the entry point of a one-level graph, which the walk must start from).
template <class Graph, class Distance>
struct Skipping {
  const Graph& graph;
  const Distance& distance;
  uint64_t skip;
  float operator()(uint32_t id) const {
    return graph.Label(id) == skip ? std::numeric_limits<float>::infinity() : distance(id);
  }
  const void* Data(uint32_t id) const { return distance.Data(id); }
};

template <bool kL2, class Graph, class MakeDistance>
void WalkWith(const Graph& graph, size_t ef, const LabelFilter* filter, int64_t skip_label,
              TopK* out, SearchStats* stats, MakeDistance& make_distance) {
  const auto distance = make_distance(std::bool_constant<kL2>{});
  if (skip_label >= 0) {
    // Calibration only (query/recall_calibration.h), which always filters.
    static const struct AcceptAll final : LabelFilter {
      bool Accept(uint32_t) const override { return true; }
    } all;
    const Skipping<Graph, decltype(distance)> skipping{graph, distance,
                                                       static_cast<uint64_t>(skip_label)};
    Walk<true>(graph, skipping, ef, filter != nullptr ? filter : &all, out, stats);
    return;
  }
  filter == nullptr ? Walk<false>(graph, distance, ef, nullptr, out, stats)
                    : Walk<true>(graph, distance, ef, filter, out, stats);
}

// One query, as VectorIndex::Search: nothing when k == 0, otherwise
// ef = max(k, params.ef or kHnswDefaultEf) and the walk.
// `make_distance(std::bool_constant<kL2>{})` returns the Distance for this
// query (kL2: squared L2, otherwise -<q, x>), with whatever per-query
// preparation its kind needs; it is called once, before the walk.
template <class Graph, class MakeDistance>
void Search(const Graph& graph, Similarity similarity, const SearchParams& params,
            const LabelFilter* filter, TopK* out, MakeDistance make_distance) {
  const size_t k = out->k();
  if (k == 0) return;
  const size_t ef = std::max<size_t>(k, params.ef != 0 ? params.ef : kHnswDefaultEf);
  similarity == Similarity::kL2
      ? WalkWith<true>(graph, ef, filter, params.skip_label, out, params.stats, make_distance)
      : WalkWith<false>(graph, ef, filter, params.skip_label, out, params.stats, make_distance);
}

}  // namespace quiver::index::hnsw

#endif  // QUIVER_INDEX_HNSW_WALK_H_
