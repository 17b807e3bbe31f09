#include "index/flat_search.h"

#include <random>

#include "index/distance.h"
#include "tests/common/test_util.h"

namespace quiver::index {
namespace {

struct Data {
  size_t n, dim;
  std::vector<float> rows, norms;
};

Data Random(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  Data d{n, dim, std::vector<float>(n * dim), std::vector<float>(n)};
  for (float& x : d.rows) x = g(rng);
  for (size_t i = 0; i < n; ++i) d.norms[i] = NormSqr(d.rows.data() + i * dim, dim);
  return d;
}

// Reference: plain double-precision loop and a full sort.
std::vector<uint64_t> Reference(const Data& d, const float* q, size_t k, Similarity sim,
                                const std::vector<uint8_t>& mask) {
  std::vector<std::pair<double, uint64_t>> all;
  for (size_t i = 0; i < d.n; ++i) {
    if (!mask.empty() && !mask[i]) continue;
    double s = 0;
    for (size_t j = 0; j < d.dim; ++j) {
      const double a = q[j], b = d.rows[i * d.dim + j];
      s += sim == Similarity::kL2 ? (a - b) * (a - b) : -a * b;
    }
    all.emplace_back(s, i);
  }
  std::sort(all.begin(), all.end());
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < std::min(k, all.size()); ++i) ids.push_back(all[i].second);
  return ids;
}

class FlatSearchTest : public ::testing::TestWithParam<std::tuple<Similarity, size_t, bool>> {};

TEST_P(FlatSearchTest, MatchesBruteForce) {
  const auto [sim, nq, sparse] = GetParam();
  const size_t n = 3000, dim = 37, k = 10;
  Data d = Random(n, dim, 1);
  Data q = Random(nq, dim, 2);
  std::vector<uint8_t> mask(n, 1);
  std::mt19937 rng(3);
  size_t passing = n;
  if (sparse) {
    passing = 0;
    for (auto& m : mask) passing += (m = (rng() % 20 == 0));
  } else {
    for (size_t i = 0; i < n; i += 3) mask[i] = 0, --passing;
  }
  std::vector<TopK> topk(nq, TopK(k));
  std::vector<float> scratch;
  QueryBatch qb{q.rows.data(), q.norms.data(), nq, dim, sim};
  // Two blocks, to check ids carry over between them.
  for (size_t start : {size_t{0}, size_t{1000}}) {
    const size_t len = start == 0 ? 1000 : n - 1000;
    size_t pass = 0;
    for (size_t i = 0; i < len; ++i) pass += mask[start + i];
    Block b{d.rows.data() + start * dim, d.norms.data() + start, len, start,
            mask.data() + start, pass};
    ScanBlock(qb, b, topk.data(), &scratch);
  }
  for (size_t j = 0; j < nq; ++j) {
    std::vector<uint64_t> got;
    for (const Neighbor& nb : topk[j].Take()) got.push_back(nb.id);
    EXPECT_EQ(got, Reference(d, q.rows.data() + j * dim, k, sim, mask)) << "query " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(All, FlatSearchTest,
                         ::testing::Combine(::testing::Values(Similarity::kL2,
                                                              Similarity::kInnerProduct),
                                            ::testing::Values(size_t{1}, size_t{7}, size_t{300}),
                                            ::testing::Bool()));

TEST(TopKTest, KeepsBestAndBreaksTiesById) {
  TopK t(3);
  for (uint64_t id : {5, 1, 9, 3, 7}) t.Push(1.0f, id);
  t.Push(0.5f, 42);
  auto out = t.Take();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, 42u);
  EXPECT_EQ(out[1].id, 1u);
  EXPECT_EQ(out[2].id, 3u);
}

TEST(DistanceTest, KernelsMatchScalarForOddDims) {
  for (size_t dim : {1, 7, 8, 15, 16, 17, 784}) {
    Data d = Random(2, dim, static_cast<uint32_t>(dim));
    const float* a = d.rows.data();
    const float* b = a + dim;
    double dot = 0, l2 = 0;
    for (size_t i = 0; i < dim; ++i) {
      dot += static_cast<double>(a[i]) * b[i];
      l2 += static_cast<double>(a[i] - b[i]) * (a[i] - b[i]);
    }
    EXPECT_NEAR(Dot(a, b, dim), dot, 1e-3 * (1 + std::abs(dot)));
    EXPECT_NEAR(L2Sqr(a, b, dim), l2, 1e-3 * (1 + l2));
  }
}

}  // namespace
}  // namespace quiver::index
