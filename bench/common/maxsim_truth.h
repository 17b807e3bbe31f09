// The data and exact MaxSim (late-interaction) ground truth of the
// multi-vector benchmarks (muvera_tune, late_bench): Fashion-MNIST patch
// sets (LoadPatchData), and the top-k documents of each query
// set by brute-force exact MaxSim (index/maxsim.h), computed once and cached
// as a binary file under the build folder, keyed by a hash of the data.
//
// Recall (tests/common/recall.h): a returned id counts if it is one of the
// true top k, or if its exact distance is within rounding of the k-th true
// distance (a tie). Callers re-score the ids they got with the same kernel,
// so a server's own float rounding does not matter.
//
// Header-only; stateless functions (thread-safe). The loader ends the
// benchmark on missing data; the truth falls back to computing on a bad
// cache file.
#ifndef QUIVER_BENCH_COMMON_MAXSIM_TRUTH_H_
#define QUIVER_BENCH_COMMON_MAXSIM_TRUTH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/common/report.h"
#include "index/maxsim.h"
#include "tests/common/fashion_patches.h"
#include "tests/common/recall.h"

namespace quiver::bench {

// Fashion-MNIST patch sets as the multi-vector benchmarks use them: the
// first `docs` training images as documents, the first `queries` test
// images as query sets, and the offsets MaxSim needs. Ends the benchmark
// (Die) when the files cannot be read.
struct PatchData {
  std::vector<float> base, queries;  // n (nq) sets of kPatchSetFloats
  std::vector<uint64_t> offsets;     // n + 1
  size_t n = 0, nq = 0;
  index::MultiVectorDocs docs() const {
    return {base.data(), offsets.data(), n, testing::kPatchDim};
  }
};

inline PatchData LoadPatchData(size_t docs, size_t queries) {
  PatchData d;
  d.base = testing::FashionPatches("train", docs);
  d.queries = testing::FashionPatches("t10k", queries);
  if (d.base.empty() || d.queries.empty()) {
    Die("loading Fashion-MNIST", absl::NotFoundError(testing::kFashionDir));
  }
  d.n = d.base.size() / testing::kPatchSetFloats;
  d.nq = d.queries.size() / testing::kPatchSetFloats;
  d.offsets.resize(d.n + 1);
  for (size_t i = 0; i <= d.n; ++i) d.offsets[i] = i * testing::kPatchesPerImage;
  return d;
}

// Exact top-k by MaxSim, best first (distance = -Chamfer similarity for IP).
struct MaxSimTruth {
  size_t nq = 0;
  size_t k = 0;
  std::vector<uint64_t> ids;  // nq * k
  std::vector<float> dist;    // nq * k
  float kth(size_t q) const { return dist[q * k + k - 1]; }
  const uint64_t* ids_of(size_t q) const { return ids.data() + q * k; }
};

inline uint64_t FnvFloats(const float* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n * sizeof(float); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  return h;
}

// `queries`: nq sets of `query_vectors` x docs.dim floats each, back to back.
// The cache file is <cache_dir>/maxsim_gt_<key>_<docs.n>_nq<nq>_k<k>.bin.
inline MaxSimTruth LoadOrComputeMaxSimTruth(const std::string& key, const std::vector<float>& base,
                                            const index::MultiVectorDocs& docs,
                                            const std::vector<float>& queries,
                                            size_t query_vectors, size_t nq, size_t k,
                                            index::Similarity sim, const std::string& cache_dir,
                                            int threads) {
  const uint64_t hash = FnvFloats(queries.data(), queries.size(), FnvFloats(base.data(), base.size()));
  const std::string path =
      absl::StrCat(cache_dir, "/maxsim_gt_", key, "_", docs.n, "_nq", nq, "_k", k, ".bin");
  const size_t set_floats = query_vectors * docs.dim;
  MaxSimTruth t;
  t.nq = nq;
  t.k = k;
  t.ids.resize(nq * k);
  t.dist.resize(nq * k);
  {
    std::ifstream in(path, std::ios::binary);
    uint64_t h = 0;
    if (in.read(reinterpret_cast<char*>(&h), sizeof(h)) && h == hash &&
        in.read(reinterpret_cast<char*>(t.ids.data()), t.ids.size() * sizeof(uint64_t)) &&
        in.read(reinterpret_cast<char*>(t.dist.data()), t.dist.size() * sizeof(float))) {
      std::fprintf(stderr, "ground truth: loaded %s\n", path.c_str());
      return t;
    }
  }
  std::fprintf(stderr, "ground truth: computing %s (exact MaxSim, %d threads)...\n", path.c_str(),
               threads);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (size_t q = 0; q < nq; ++q) {
    index::MaxSimScratch scratch;
    index::MaxSimQuery query{queries.data() + q * set_floats, query_vectors, docs.dim, sim};
    const auto top = index::MaxSimTopK(query, docs, k, &scratch);
    for (size_t i = 0; i < k && i < top.size(); ++i) {
      t.ids[q * k + i] = top[i].id;
      t.dist[q * k + i] = top[i].distance;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  std::ofstream out(path + ".tmp", std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&hash), sizeof(hash));
  out.write(reinterpret_cast<const char*>(t.ids.data()), t.ids.size() * sizeof(uint64_t));
  out.write(reinterpret_cast<const char*>(t.dist.data()), t.dist.size() * sizeof(float));
  out.close();
  if (out) std::filesystem::rename(path + ".tmp", path, ec);
  return t;
}

// recall@k of one query's answer: `returned` ids with their exact distances
// (same kernel as the truth), best first. A true top-k id, or a tie with the
// k-th: equal within 1e-5 relative (block composition can change sgemm's
// rounding).
inline double MaxSimRecall(const MaxSimTruth& t, size_t q,
                           const std::vector<index::Neighbor>& returned) {
  std::vector<uint64_t> got;
  std::vector<float> dist;
  for (size_t i = 0; i < std::min(t.k, returned.size()); ++i) {
    got.push_back(returned[i].id);
    dist.push_back(returned[i].distance);
  }
  testing::TieRule<uint64_t> ties;
  ties.kth = t.kth(q);
  ties.tolerance = 1e-5 * std::abs(ties.kth);
  // The distances came with the ids: look each one up by position.
  ties.distance = [&](uint64_t id) {
    return static_cast<double>(dist[std::find(got.begin(), got.end(), id) - got.begin()]);
  };
  return testing::RecallAtK(got, std::vector<uint64_t>(t.ids_of(q), t.ids_of(q) + t.k), ties);
}

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_MAXSIM_TRUTH_H_
