// The run-time choice of kernel variants (index/kernels.h): every kernel of
// both variants against a double-precision reference and against each
// other, the selection rules (QUIVER_CPU_FEATURES), and every index kind
// searched with the baseline variant forced and with the AVX2 one: same
// results, and the distances the search returns are bit for bit the forced
// variant's, so the choice really reaches the hot loops. The AVX2 halves
// are skipped on a CPU without AVX2/FMA.
#include "index/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "index/distance.h"
#include "index/vector_index.h"
#include "tests/common/test_util.h"

namespace quiver::index {
namespace {

using ::quiver::testing::StatusIs;

std::vector<float> Gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

// Restores the variant in use when a test ends.
class KernelDispatchTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(UseKernels(saved_).ok()); }
  const Isa saved_ = ActiveIsa();
};

// |a - b| within float rounding of a sum whose terms' magnitudes add to `mag`.
void ExpectClose(double a, double b, double mag, const std::string& what) {
  EXPECT_NEAR(a, b, 1e-5 * (1 + mag)) << what;
}

template <class K>
void CheckFloatKernels(const char* name) {
  for (size_t dim : {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 784}) {
    const std::vector<float> a = Gaussian(dim, 1 + dim), b = Gaussian(dim, 2 + dim);
    double dot = 0, l2 = 0, dot_mag = 0;
    for (size_t i = 0; i < dim; ++i) {
      dot += double{a[i]} * b[i];
      dot_mag += std::abs(double{a[i]} * b[i]);
      l2 += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    }
    const std::string at = std::string(name) + " dim " + std::to_string(dim);
    ExpectClose(K::Dot(a.data(), b.data(), dim), dot, dot_mag, "Dot " + at);
    ExpectClose(K::L2Sqr(a.data(), b.data(), dim), l2, l2, "L2Sqr " + at);
  }
  // The SQ8 dot product is exact: the same integer as a plain sum, at the
  // extremes too, and past 2048 dimensions (where the AVX2 lanes are
  // widened block by block).
  for (size_t dim : {1, 15, 16, 17, 31, 32, 33, 784, 2047, 2048, 2049, 4100}) {
    std::mt19937 rng(static_cast<uint32_t>(dim));
    for (int pattern = 0; pattern < 3; ++pattern) {
      std::vector<uint8_t> code(dim);
      std::vector<int16_t> w(dim);
      for (size_t i = 0; i < dim; ++i) {
        code[i] = pattern == 0 ? static_cast<uint8_t>(rng()) : 255;
        w[i] = pattern == 0   ? static_cast<int16_t>(static_cast<int>(rng() % 65535) - 32767)
               : pattern == 1 ? int16_t{32767}
                              : int16_t{-32767};
      }
      int64_t want = 0;
      for (size_t i = 0; i < dim; ++i) want += int64_t{w[i]} * code[i];
      EXPECT_EQ(K::U8I16Dot(w.data(), code.data(), dim), want)
          << name << " U8I16Dot dim " << dim << " pattern " << pattern;
    }
  }
}

template <class K>
void CheckPqKernels(const char* name) {
  constexpr size_t kKsub = 256;
  for (size_t dsub : {1, 4, 8, 12}) {
    const size_t m = 3;
    const std::vector<float> x = Gaussian(m * dsub, 10 + dsub);
    const std::vector<float> codebook_t = Gaussian(m * dsub * kKsub, 20 + dsub);
    std::vector<float> l2(m * kKsub), ip(m * kKsub);
    K::PqTablesL2(x.data(), codebook_t.data(), m, dsub, l2.data());
    K::PqTablesIp(x.data(), codebook_t.data(), m, dsub, ip.data());
    for (size_t j = 0; j < m; ++j) {
      for (size_t k = 0; k < kKsub; ++k) {
        double want_l2 = 0, want_ip = 0, mag = 0;
        for (size_t s = 0; s < dsub; ++s) {
          const double c = codebook_t[(j * dsub + s) * kKsub + k], v = x[j * dsub + s];
          want_l2 += (v - c) * (v - c);
          want_ip += v * c;
          mag += std::abs(v * c);
        }
        const std::string at = std::string(name) + " dsub " + std::to_string(dsub);
        ExpectClose(l2[j * kKsub + k], want_l2, want_l2, "PqTablesL2 " + at);
        ExpectClose(ip[j * kKsub + k], want_ip, mag, "PqTablesIp " + at);
      }
      const float* t = l2.data() + j * kKsub;
      EXPECT_EQ(K::ArgMin256(t), std::min_element(t, t + kKsub) - t) << name;
    }
  }
  // Ties go to the first.
  std::vector<float> t(kKsub, 5.0f);
  t[70] = t[200] = 1.0f;
  EXPECT_EQ(K::ArgMin256(t.data()), 70) << name;
}

TEST_F(KernelDispatchTest, BaselineKernelsMatchReference) {
  CheckFloatKernels<BaselineKernels>("baseline");
  CheckPqKernels<BaselineKernels>("baseline");
}

TEST_F(KernelDispatchTest, Avx2KernelsMatchReference) {
  if (!CpuHasAvx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  CheckFloatKernels<Avx2Kernels>("avx2");
  CheckPqKernels<Avx2Kernels>("avx2");
}

TEST_F(KernelDispatchTest, SelectionRules) {
  const Isa best = CpuHasAvx2() ? Isa::kAvx2 : Isa::kBaseline;
  EXPECT_EQ(*ChooseIsa(nullptr), best);
  EXPECT_EQ(*ChooseIsa(""), best);
  EXPECT_EQ(*ChooseIsa("auto"), best);
  EXPECT_EQ(*ChooseIsa("baseline"), Isa::kBaseline);
  EXPECT_EQ(*ChooseIsa("Baseline"), Isa::kBaseline);
  EXPECT_THAT(ChooseIsa("sse9"), StatusIs(absl::StatusCode::kInvalidArgument,
                                          "QUIVER_CPU_FEATURES=sse9"));
  if (CpuHasAvx2()) {
    EXPECT_EQ(*ChooseIsa("avx2"), Isa::kAvx2);
  } else {
    EXPECT_THAT(ChooseIsa("avx2"), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(UseKernels(Isa::kAvx2), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(ActiveIsa(), Isa::kBaseline);
  }

  QUIVER_ASSERT_OK(UseKernels(Isa::kBaseline));
  EXPECT_EQ(ActiveIsa(), Isa::kBaseline);
  EXPECT_EQ(ActiveKernels().dot, &baseline::Dot);
  EXPECT_EQ(ActiveKernels().u8i16_dot, &baseline::U8I16Dot);
  EXPECT_STREQ(IsaName(Isa::kBaseline), "baseline");
  if (CpuHasAvx2()) {
    QUIVER_ASSERT_OK(UseKernels(Isa::kAvx2));
    EXPECT_EQ(ActiveKernels().l2sqr, &avx2::L2Sqr);
    EXPECT_EQ(ActiveKernels().pq_tables_ip, &avx2::PqTablesIp);
    EXPECT_STREQ(IsaName(Isa::kAvx2), "avx2+fma");
  }
}

TEST_F(KernelDispatchTest, EnvironmentChoosesAtStart) {
  ASSERT_EQ(setenv("QUIVER_CPU_FEATURES", "baseline", 1), 0);
  auto line = SelectKernelsFromEnvironment();
  QUIVER_ASSERT_OK(line);
  EXPECT_EQ(*line, "baseline (QUIVER_CPU_FEATURES=baseline)");
  EXPECT_EQ(ActiveIsa(), Isa::kBaseline);

  // A bad value changes nothing.
  ASSERT_EQ(setenv("QUIVER_CPU_FEATURES", "fast", 1), 0);
  EXPECT_THAT(SelectKernelsFromEnvironment(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ActiveIsa(), Isa::kBaseline);

  ASSERT_EQ(unsetenv("QUIVER_CPU_FEATURES"), 0);
  line = SelectKernelsFromEnvironment();
  QUIVER_ASSERT_OK(line);
  EXPECT_EQ(*line, CpuHasAvx2() ? "avx2+fma (CPU has AVX2 and FMA)"
                                : "baseline (CPU has no AVX2/FMA)");
}

// ------------------------------------------------------------ index kinds

constexpr size_t kN = 3000, kDim = 100, kQueries = 60, kK = 10;

struct KindCase {
  const char* type;
  std::map<std::string, std::string> params;
  Similarity sim;
  // Distances are exact float distances (not code estimates): the search's
  // must equal the active variant's kernel bit for bit.
  bool exact_distances;
};

std::string Name(const ::testing::TestParamInfo<KindCase>& info) {
  return std::string(info.param.type) +
         (info.param.sim == Similarity::kL2 ? "_L2" : "_IP");
}

// Keeps the rows with label % 16 == 0: few enough that FLAT scans them row
// by row with the kernels (its dense path is BLAS).
class EverySixteenth final : public LabelFilter {
 public:
  bool Accept(uint32_t label) const override { return label % 16 == 0; }
};

class KindDispatchTest : public ::testing::TestWithParam<KindCase> {
 protected:
  void TearDown() override { EXPECT_TRUE(UseKernels(saved_).ok()); }

  // The k nearest of every query with variant `isa` forced.
  std::vector<std::vector<Neighbor>> SearchAll(const VectorIndex& index, Isa isa,
                                               const LabelFilter* filter) {
    EXPECT_TRUE(UseKernels(isa).ok());
    std::vector<std::vector<Neighbor>> all;
    for (size_t q = 0; q < kQueries; ++q) {
      TopK top(kK);
      EXPECT_TRUE(index.Search(queries_.data() + q * kDim, {}, filter, &top).ok());
      all.push_back(top.Take());
    }
    return all;
  }

  // Each returned distance is K's kernel on (query, row), bit for bit.
  template <class K>
  void ExpectDistancesOf(const std::vector<std::vector<Neighbor>>& all, const char* name) {
    size_t checked = 0;
    for (size_t q = 0; q < all.size(); ++q) {
      const float* query = queries_.data() + q * kDim;
      for (const Neighbor& n : all[q]) {
        const float* row = rows_.data() + n.id * kDim;
        const float want = GetParam().sim == Similarity::kL2 ? K::L2Sqr(query, row, kDim)
                                                             : -K::Dot(query, row, kDim);
        EXPECT_EQ(n.distance, want) << name << " query " << q << " id " << n.id;
        ++checked;
      }
    }
    EXPECT_GT(checked, 0u);
  }

  const Isa saved_ = ActiveIsa();
  const std::vector<float> rows_ = Gaussian(kN * kDim, 7);
  const std::vector<float> queries_ = Gaussian(kQueries * kDim, 8);
};

TEST_P(KindDispatchTest, BaselineAndAvx2GiveTheSameResults) {
  const KindCase& c = GetParam();
  IndexSpec spec{c.type, c.params, kDim, c.sim};
  auto index = CreateIndex(spec);
  QUIVER_ASSERT_OK(index);
  QUIVER_ASSERT_OK((*index)->Build(rows_.data(), kN, 2));
  const EverySixteenth sparse;
  for (const LabelFilter* filter : {static_cast<const LabelFilter*>(nullptr),
                                    static_cast<const LabelFilter*>(&sparse)}) {
    SCOPED_TRACE(filter == nullptr ? "no filter" : "sparse filter");
    const auto base = SearchAll(**index, Isa::kBaseline, filter);
    const bool flat_dense = std::string(c.type) == "FLAT" && filter == nullptr;  // BLAS
    if (c.exact_distances && !flat_dense) ExpectDistancesOf<BaselineKernels>(base, "baseline");
    if (!CpuHasAvx2()) continue;
    const auto fast = SearchAll(**index, Isa::kAvx2, filter);
    if (c.exact_distances && !flat_dense) ExpectDistancesOf<Avx2Kernels>(fast, "avx2");

    // Same neighbours, distances within float rounding. Exact search must
    // agree on every query; an approximate walk may take another turn on a
    // near tie, rarely.
    size_t same_ids = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      ASSERT_EQ(base[q].size(), fast[q].size());
      bool same = true;
      for (size_t i = 0; i < base[q].size(); ++i) {
        same = same && base[q][i].id == fast[q][i].id;
        EXPECT_NEAR(base[q][i].distance, fast[q][i].distance,
                    1e-4 * (1 + std::abs(base[q][i].distance)))
            << "query " << q << " rank " << i;
      }
      same_ids += same;
    }
    if (std::string(c.type) == "FLAT") {
      EXPECT_EQ(same_ids, kQueries);
    } else {
      EXPECT_GE(same_ids, kQueries * 95 / 100);
    }
  }
  // The two variants do differ in the last bits on this data, so the
  // bit-exact checks above tell them apart.
  if (CpuHasAvx2() && c.exact_distances) {
    size_t differ = 0;
    for (size_t i = 0; i < 200; ++i) {
      const float* q = queries_.data() + (i % kQueries) * kDim;
      const float* r = rows_.data() + i * kDim;
      differ += baseline::L2Sqr(q, r, kDim) != avx2::L2Sqr(q, r, kDim) ||
                baseline::Dot(q, r, kDim) != avx2::Dot(q, r, kDim);
    }
    EXPECT_GT(differ, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, KindDispatchTest,
    ::testing::Values(
        KindCase{"FLAT", {}, Similarity::kL2, true},
        KindCase{"FLAT", {}, Similarity::kInnerProduct, true},
        KindCase{"HNSW", {{"ef_construction", "64"}}, Similarity::kL2, true},
        KindCase{"HNSW", {{"ef_construction", "64"}}, Similarity::kInnerProduct, true},
        KindCase{"IVF_FLAT", {{"nlist", "32"}}, Similarity::kL2, true},
        KindCase{"IVF_FLAT", {{"nlist", "32"}}, Similarity::kInnerProduct, true},
        KindCase{"IVF_SQ8", {{"nlist", "32"}}, Similarity::kL2, false},
        KindCase{"IVF_SQ8", {{"nlist", "32"}}, Similarity::kInnerProduct, false},
        KindCase{"IVF_PQ", {{"nlist", "8"}}, Similarity::kL2, false},
        KindCase{"IVF_PQ", {{"nlist", "8"}}, Similarity::kInnerProduct, false},
        KindCase{"HNSW_SQ8", {{"ef_construction", "64"}}, Similarity::kL2, false},
        KindCase{"HNSW_SQ8", {{"ef_construction", "64"}}, Similarity::kInnerProduct, false}),
    Name);

}  // namespace
}  // namespace quiver::index
