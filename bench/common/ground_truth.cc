// Ground truth: FAISS candidates re-ranked in double, cached; recall.
#include "bench/common/ground_truth.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "faiss/IndexFlat.h"
#include "tests/common/recall.h"

namespace quiver::bench {
namespace {

constexpr char kMagic[8] = {'Q', 'G', 'T', '1', 0, 0, 0, 0};

struct Header {
  char magic[8];
  uint64_t nb, nq, k, hash;
};

uint64_t DataHash(const Matrix& base, const Matrix& queries, size_t nq,
                  const std::vector<int64_t>& subset) {
  uint64_t h = HashFloats(base.data.data(), base.data.size());
  h = HashFloats(queries.data.data(), nq * queries.dim, h);
  for (int64_t id : subset) {
    h ^= static_cast<uint64_t>(id);
    h *= 0x100000001b3ull;
  }
  return h ^ base.dim;
}

bool ReadCache(const std::string& path, const Header& want, GroundTruth* gt) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  Header h;
  in.read(reinterpret_cast<char*>(&h), sizeof(h));
  if (!in || std::memcmp(h.magic, kMagic, 8) != 0 || h.nb != want.nb || h.nq != want.nq ||
      h.k != want.k || h.hash != want.hash) {
    return false;
  }
  gt->nq = h.nq;
  gt->k = h.k;
  gt->ids.resize(h.nq * h.k);
  gt->dist.resize(h.nq * h.k);
  in.read(reinterpret_cast<char*>(gt->ids.data()), gt->ids.size() * sizeof(int64_t));
  in.read(reinterpret_cast<char*>(gt->dist.data()), gt->dist.size() * sizeof(double));
  return static_cast<bool>(in);
}

absl::Status WriteCache(const std::string& path, const Header& h, const GroundTruth& gt) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&h), sizeof(h));
    out.write(reinterpret_cast<const char*>(gt.ids.data()), gt.ids.size() * sizeof(int64_t));
    out.write(reinterpret_cast<const char*>(gt.dist.data()), gt.dist.size() * sizeof(double));
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

double ExactL2(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return s;
}

absl::StatusOr<GroundTruth> LoadOrComputeGroundTruth(const std::string& key,
                                                     const Matrix& base,
                                                     const Matrix& queries, size_t nq,
                                                     size_t k,
                                                     const std::vector<int64_t>& subset,
                                                     const std::string& cache_dir) {
  if (nq > queries.n) return absl::InvalidArgumentError("more ground-truth queries than loaded");
  if (queries.dim != base.dim) return absl::InvalidArgumentError("dimension mismatch");
  Header want{};
  std::memcpy(want.magic, kMagic, 8);
  want.nb = subset.empty() ? base.n : subset.size();
  want.nq = nq;
  want.k = k;
  want.hash = DataHash(base, queries, nq, subset);
  const std::string path = absl::StrCat(cache_dir, "/gt_", key, "_k", k, "_nq", nq, ".bin");
  GroundTruth gt;
  if (ReadCache(path, want, &gt)) {
    std::fprintf(stderr, "ground truth: loaded %s\n", path.c_str());
    return gt;
  }

  std::fprintf(stderr, "ground truth: computing %s (FAISS IndexFlatL2, %zu queries)...\n",
               path.c_str(), nq);
  const size_t dim = base.dim;
  const size_t nb = want.nb;
  if (nb < k) return absl::InvalidArgumentError("fewer base rows than k");
  faiss::IndexFlatL2 index(static_cast<int>(dim));
  if (subset.empty()) {
    index.add(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
  } else {
    std::vector<float> rows(subset.size() * dim);
    for (size_t i = 0; i < subset.size(); ++i) {
      std::memcpy(rows.data() + i * dim, base.row(subset[i]), dim * sizeof(float));
    }
    index.add(static_cast<faiss::Index::idx_t>(subset.size()), rows.data());
  }
  const size_t kk = std::min(nb, k + kRerankPad);
  std::vector<float> d(nq * kk);
  std::vector<faiss::Index::idx_t> l(nq * kk);
  // Use every core for this one-off computation, then restore.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(omp_get_num_procs());
  index.search(static_cast<faiss::Index::idx_t>(nq), queries.data.data(),
               static_cast<faiss::Index::idx_t>(kk), d.data(), l.data());
  omp_set_num_threads(saved);

  gt.nq = nq;
  gt.k = k;
  gt.ids.resize(nq * k);
  gt.dist.resize(nq * k);
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> cand;
    cand.reserve(kk);
    for (size_t j = 0; j < kk; ++j) {
      const int64_t local = l[q * kk + j];
      if (local < 0) continue;
      const int64_t id = subset.empty() ? local : subset[local];
      cand.emplace_back(ExactL2(queries.row(q), base.row(id), dim), id);
    }
    std::sort(cand.begin(), cand.end());
    for (size_t j = 0; j < k; ++j) {
      gt.ids[q * k + j] = cand[j].second;
      gt.dist[q * k + j] = cand[j].first;
    }
  }
  absl::Status st = WriteCache(path, want, gt);
  if (!st.ok()) std::fprintf(stderr, "ground truth: %s (continuing)\n", st.ToString().c_str());
  return gt;
}

double Recall(const GroundTruth& gt, size_t q, const int64_t* returned, size_t n,
              const Matrix& base, const float* query, const std::vector<bool>& allowed) {
  std::vector<int64_t> got;
  got.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = returned[i];
    if (id < 0 || static_cast<size_t>(id) >= base.n) continue;
    if (!allowed.empty() && !allowed[id]) continue;
    got.push_back(id);
  }
  testing::TieRule<int64_t> ties;
  ties.kth = gt.kth(q);
  ties.distance = [&](int64_t id) { return ExactL2(query, base.row(id), base.dim); };
  return testing::RecallAtK(got, std::vector<int64_t>(gt.ids_of(q), gt.ids_of(q) + gt.k), ties);
}

}  // namespace quiver::bench
