#include "index/muvera.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>

#include "index/maxsim.h"
#include "tests/common/fashion_patches.h"
#include "tests/common/test_util.h"

namespace quiver::index {
namespace {

using ::quiver::testing::FashionPatches;
using ::quiver::testing::kPatchDim;
using ::quiver::testing::kPatchesPerImage;
using ::quiver::testing::kPatchSetFloats;
using ::quiver::testing::StatusIs;

std::vector<float> RandomVectors(size_t n, size_t dim, uint32_t seed, bool normalize = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n * dim);
  for (float& x : v) x = g(rng);
  if (normalize) {
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (size_t j = 0; j < dim; ++j) s += double{v[i * dim + j]} * v[i * dim + j];
      for (size_t j = 0; j < dim; ++j) v[i * dim + j] /= static_cast<float>(std::sqrt(s));
    }
  }
  return v;
}

// The definition, in double: a triple loop.
double NaiveMaxSim(const float* q, size_t nq, const float* d, size_t nd, size_t dim,
                   Similarity sim) {
  if (nd == 0) return std::numeric_limits<double>::infinity();
  double total = 0;
  for (size_t a = 0; a < nq; ++a) {
    double best = sim == Similarity::kL2 ? std::numeric_limits<double>::infinity()
                                         : -std::numeric_limits<double>::infinity();
    for (size_t b = 0; b < nd; ++b) {
      double s = 0;
      for (size_t j = 0; j < dim; ++j) {
        const double x = q[a * dim + j], y = d[b * dim + j];
        s += sim == Similarity::kL2 ? (x - y) * (x - y) : x * y;
      }
      best = sim == Similarity::kL2 ? std::min(best, s) : std::max(best, s);
    }
    total += best;
  }
  return sim == Similarity::kL2 ? total : -total;
}

// Documents of varying size (some empty) back to back, with offsets.
struct Docs {
  size_t dim;
  std::vector<float> vectors;
  std::vector<uint64_t> offsets{0};
  MultiVectorDocs view() const {
    return {vectors.data(), offsets.data(), offsets.size() - 1, dim};
  }
  const float* doc(size_t i) const { return vectors.data() + offsets[i] * dim; }
  size_t size(size_t i) const { return offsets[i + 1] - offsets[i]; }
};

Docs RandomDocs(size_t n, size_t dim, size_t max_vectors, uint32_t seed, bool normalize) {
  std::mt19937 rng(seed);
  Docs d{dim, {}, {0}};
  for (size_t i = 0; i < n; ++i) {
    d.offsets.push_back(d.offsets.back() + rng() % (max_vectors + 1));
  }
  d.vectors = RandomVectors(d.offsets.back(), dim, seed + 1, normalize);
  return d;
}

Docs PatchDocs(const std::vector<float>& patches) {
  Docs d{kPatchDim, patches, {0}};
  for (size_t i = 0; i < patches.size() / kPatchSetFloats; ++i) {
    d.offsets.push_back(d.offsets.back() + kPatchesPerImage);
  }
  return d;
}

// Float sums of ~nq products: compare relative to the magnitude.
void ExpectNear(float got, double want, const std::string& what) {
  if (std::isinf(want)) {
    EXPECT_TRUE(std::isinf(got) && got > 0) << what;
    return;
  }
  EXPECT_NEAR(got, want, 1e-4 * std::max(1.0, std::abs(want))) << what;
}

constexpr Similarity kSims[] = {Similarity::kInnerProduct, Similarity::kL2};

TEST(MaxSimTest, OneDocumentMatchesNaive) {
  const size_t dim = 24;
  // Sizes cross the sgemm block (kMaxSimBlockVectors) and include 0 and 1.
  for (size_t nq : {0, 1, 7, 32}) {
    for (size_t nd : {0, 1, 5, 1500}) {
      const auto q = RandomVectors(nq, dim, 11 + nq);
      const auto d = RandomVectors(nd, dim, 97 + nd);
      for (Similarity sim : kSims) {
        MaxSimQuery query{q.data(), nq, dim, sim};
        const float got = MaxSimDistance(query, d.data(), nd);
        if (nd == 0) {
          EXPECT_TRUE(std::isinf(got) && got > 0);
        } else {
          ExpectNear(got, NaiveMaxSim(q.data(), nq, d.data(), nd, dim, sim),
                     "nq " + std::to_string(nq) + " nd " + std::to_string(nd));
        }
      }
    }
  }
}

TEST(MaxSimTest, ManyDocumentsMatchNaive) {
  const size_t dim = 33;
  for (bool normalize : {false, true}) {  // normalized: COSINE
    // Up to 300 vectors a document: blocks hold several documents or one.
    const Docs docs = RandomDocs(400, dim, 300, 5, normalize);
    const auto q = RandomVectors(9, dim, 6, normalize);
    for (Similarity sim : kSims) {
      MaxSimQuery query{q.data(), 9, dim, sim};
      MaxSimScratch scratch;
      // A range not starting at 0.
      std::vector<float> out(350);
      MaxSimDistances(query, docs.view(), 50, 350, out.data(), &scratch);
      for (size_t i = 0; i < 350; ++i) {
        ExpectNear(out[i], NaiveMaxSim(q.data(), 9, docs.doc(50 + i), docs.size(50 + i), dim, sim),
                   "doc " + std::to_string(50 + i));
      }
      // A candidate list: shuffled, with repeats.
      std::vector<uint64_t> ids(600);
      std::mt19937 rng(3);
      for (uint64_t& id : ids) id = rng() % docs.view().n;
      std::vector<float> of(ids.size());
      MaxSimDistancesOf(query, docs.view(), ids.data(), ids.size(), of.data(), &scratch);
      for (size_t i = 0; i < ids.size(); ++i) {
        ExpectNear(of[i], NaiveMaxSim(q.data(), 9, docs.doc(ids[i]), docs.size(ids[i]), dim, sim),
                   "candidate " + std::to_string(ids[i]));
      }
    }
  }
}

TEST(MaxSimTest, FashionPatchesMatchNaive) {
  const auto base = FashionPatches("train", 300);
  const auto queries = FashionPatches("t10k", 4);
  ASSERT_FALSE(base.empty()) << "Fashion-MNIST missing under " << testing::kFashionDir;
  const Docs docs = PatchDocs(base);
  for (size_t qi = 0; qi < 4; ++qi) {
    const float* q = queries.data() + qi * kPatchSetFloats;
    for (Similarity sim : kSims) {
      MaxSimQuery query{q, kPatchesPerImage, kPatchDim, sim};
      std::vector<float> out(docs.view().n);
      MaxSimDistances(query, docs.view(), 0, out.size(), out.data());
      for (size_t i = 0; i < out.size(); ++i) {
        ExpectNear(out[i],
                   NaiveMaxSim(q, kPatchesPerImage, docs.doc(i), kPatchesPerImage, kPatchDim, sim),
                   "doc " + std::to_string(i));
      }
    }
  }
}

TEST(MaxSimTest, TopKIsTheNaiveOrder) {
  const size_t dim = 16;
  const Docs docs = RandomDocs(3000, dim, 12, 8, false);
  const auto q = RandomVectors(5, dim, 9);
  for (Similarity sim : kSims) {
    MaxSimQuery query{q.data(), 5, dim, sim};
    std::vector<std::pair<double, uint64_t>> all;
    for (size_t i = 0; i < docs.view().n; ++i) {
      all.emplace_back(NaiveMaxSim(q.data(), 5, docs.doc(i), docs.size(i), dim, sim), i);
    }
    std::sort(all.begin(), all.end());
    const std::vector<Neighbor> top = MaxSimTopK(query, docs.view(), 20);
    ASSERT_EQ(top.size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      EXPECT_EQ(top[i].id, all[i].second) << "rank " << i;
      ExpectNear(top[i].distance, all[i].first, "rank " + std::to_string(i));
    }
    // Ids offset for a second segment sharing the TopK.
    TopK topk(3);
    MaxSimScan(query, docs.view(), 1000000, &topk);
    const auto shifted = topk.Take();
    ASSERT_EQ(shifted.size(), 3u);
    EXPECT_EQ(shifted[0].id, 1000000 + all[0].second);
  }
}

MuveraParams Params(uint32_t k_sim, uint32_t d_proj, uint32_t r_reps, uint32_t final_dim = 0,
                    uint64_t seed = 1, bool fill_empty = true) {
  MuveraParams p;
  p.k_sim = k_sim;
  p.d_proj = d_proj;
  p.r_reps = r_reps;
  p.final_dim = final_dim;
  p.seed = seed;
  p.fill_empty = fill_empty;
  return p;
}

MuveraEncoder MakeEncoder(size_t dim, const MuveraParams& p) {
  absl::StatusOr<MuveraEncoder> e = MuveraEncoder::Create(dim, p);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(e).value();
}

TEST(MuveraTest, OutputDimensions) {
  EXPECT_EQ(MakeEncoder(65, Params(4, 16, 20)).output_dim(), 20u * 16 * 16);
  EXPECT_EQ(MakeEncoder(65, Params(3, 65, 2)).output_dim(), 2u * 8 * 65);  // identity
  EXPECT_EQ(MakeEncoder(65, Params(0, 8, 1)).output_dim(), 8u);
  const MuveraEncoder sketched = MakeEncoder(65, Params(4, 16, 20, 1024));
  EXPECT_EQ(sketched.output_dim(), 1024u);
  EXPECT_EQ(sketched.raw_dim(), 5120u);
  // The final projection writes exactly output_dim floats.
  const auto x = RandomVectors(16, 65, 1);
  std::vector<float> out(1024 + 8, 12345.0f);
  sketched.EncodeDocument(x.data(), 16, out.data());
  for (size_t i = 1024; i < out.size(); ++i) EXPECT_EQ(out[i], 12345.0f);
  EXPECT_GT(std::count_if(out.begin(), out.begin() + 1024, [](float v) { return v != 0; }), 900);
}

TEST(MuveraTest, QuerySumsDocumentAverages) {
  // One partition, no projection: the blocks are the sum and the mean.
  const size_t dim = 10, n = 6;
  const auto x = RandomVectors(n, dim, 2);
  const MuveraEncoder e = MakeEncoder(dim, Params(0, dim, 1));
  std::vector<float> q(dim), d(dim);
  e.EncodeQuery(x.data(), n, q.data());
  e.EncodeDocument(x.data(), n, d.data());
  for (size_t j = 0; j < dim; ++j) {
    float sum = 0;
    for (size_t i = 0; i < n; ++i) sum += x[i * dim + j];
    EXPECT_NEAR(q[j], sum, 1e-5);
    EXPECT_NEAR(d[j], sum / n, 1e-5);
  }
}

// Bytes of two encodings compared exactly.
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(MuveraTest, ReproducibleForASeed) {
  const auto patches = FashionPatches("train", 3);
  ASSERT_FALSE(patches.empty());
  for (const MuveraParams& p : {Params(4, 16, 20), Params(5, 8, 10, 512), Params(3, 65, 4)}) {
    const MuveraEncoder e = MakeEncoder(kPatchDim, p);
    auto encode = [&](const MuveraEncoder& enc, bool doc) {
      std::vector<float> out(enc.output_dim());
      for (size_t i = 0; i < 3; ++i) {  // the last one is kept
        const float* x = patches.data() + i * kPatchSetFloats;
        doc ? enc.EncodeDocument(x, kPatchesPerImage, out.data())
            : enc.EncodeQuery(x, kPatchesPerImage, out.data());
      }
      return out;
    };
    for (bool doc : {true, false}) {
      const auto first = encode(e, doc);
      EXPECT_TRUE(SameBits(first, encode(e, doc)));
      // Re-created (as after a restart), and from another thread.
      EXPECT_TRUE(SameBits(first, encode(MakeEncoder(kPatchDim, p), doc)));
      std::vector<float> other;
      std::thread([&] { other = encode(e, doc); }).join();
      EXPECT_TRUE(SameBits(first, other));
      MuveraParams reseeded = p;
      reseeded.seed = 2;
      const auto different = encode(MakeEncoder(kPatchDim, reseeded), doc);
      EXPECT_FALSE(SameBits(first, different));
    }
  }
}

// Stored encodings must not change under a new build: a field's FDE index
// is built from them. Pins, for seed 1, the SimHash partitions (robust to
// sgemm rounding) and the +-1 projection and Count-Sketch (to 1e-5) of
// fixed inputs, so a change to the random streams or their order fails here.
TEST(MuveraTest, EncodingIsFrozenForASeed) {
  const size_t dim = 8;
  std::vector<float> x(24 * dim);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>((i * 2654435761u) % 1000) / 500 - 1;
  }
  // Partitions: one repetition, no projection; a one-vector query shows its
  // vector's partition.
  const MuveraEncoder parts = MakeEncoder(dim, Params(3, dim, 1));
  std::string codes;
  for (size_t i = 0; i < 24; ++i) {
    std::vector<float> q(parts.output_dim());
    parts.EncodeQuery(x.data() + i * dim, 1, q.data());
    for (size_t p = 0; p < 8; ++p) {
      if (q[p * dim] != 0.0f) codes += static_cast<char>('0' + p);
    }
  }
  EXPECT_EQ(codes, "777446010225775440012227");
  // Projection to 4 dims (one partition), then Count-Sketch of 2 x 4 to 3.
  const MuveraEncoder proj = MakeEncoder(dim, Params(0, 4, 2, 3));
  std::vector<float> out(3);
  proj.EncodeQuery(x.data(), 24, out.data());
  const std::vector<float> want = {-1.63200116f, 1.79199851f, -1.5839988f};
  for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(out[j], want[j], 1e-5 * std::abs(want[j])) << j;
}

TEST(MuveraTest, FillEmptyLeavesNoZeroBlocks) {
  const auto patches = FashionPatches("train", 50);
  ASSERT_FALSE(patches.empty());
  // 32 or 64 partitions for 16 vectors: every set leaves partitions empty.
  for (const MuveraParams& base : {Params(5, 16, 10), Params(6, 65, 3)}) {
    for (bool fill : {true, false}) {
      MuveraParams p = base;
      p.fill_empty = fill;
      const MuveraEncoder e = MakeEncoder(kPatchDim, p);
      std::vector<float> doc(e.output_dim()), query(e.output_dim());
      size_t doc_zero = 0, query_zero = 0;
      for (size_t i = 0; i < 50; ++i) {
        const float* x = patches.data() + i * kPatchSetFloats;
        e.EncodeDocument(x, kPatchesPerImage, doc.data());
        e.EncodeQuery(x, kPatchesPerImage, query.data());
        for (size_t b = 0; b < e.output_dim(); b += p.d_proj) {
          auto zero = [&](const std::vector<float>& v) {
            return std::all_of(v.begin() + b, v.begin() + b + p.d_proj,
                               [](float f) { return f == 0.0f; });
          };
          doc_zero += zero(doc);
          query_zero += zero(query);
        }
      }
      if (fill) {
        EXPECT_EQ(doc_zero, 0u) << "k_sim " << p.k_sim;
      } else {
        EXPECT_GT(doc_zero, 0u) << "k_sim " << p.k_sim;
      }
      EXPECT_GT(query_zero, 0u) << "queries are never filled";
    }
  }
}

TEST(MuveraTest, EmptyPartitionTakesTheHammingNearestVector) {
  // Identity projection, one repetition: a query of one vector shows that
  // vector's partition (its only non-zero block).
  const size_t dim = 8, k_sim = 3, parts = 8;
  const MuveraEncoder e = MakeEncoder(dim, Params(k_sim, dim, 1));
  auto code_of = [&](const float* x) {
    std::vector<float> q(e.output_dim());
    e.EncodeQuery(x, 1, q.data());
    for (size_t p = 0; p < parts; ++p) {
      if (q[p * dim] != 0.0f) return p;
    }
    return parts;
  };
  const auto x = RandomVectors(200, dim, 4);
  size_t checked = 0;
  for (size_t i = 0; i + 1 < 200; i += 2) {
    const float* a = x.data() + i * dim;
    const size_t ca = code_of(a), cb = code_of(a + dim);
    ASSERT_LT(ca, parts);
    if (ca == cb) continue;
    std::vector<float> d(e.output_dim());
    e.EncodeDocument(a, 2, d.data());
    for (size_t p = 0; p < parts; ++p) {
      // Nearest code by Hamming distance; the first vector on ties.
      const int da = std::popcount(p ^ ca), db = std::popcount(p ^ cb);
      const float* want = db < da ? a + dim : a;
      EXPECT_EQ(std::memcmp(d.data() + p * dim, want, dim * sizeof(float)), 0)
          << "partition " << p << " codes " << ca << "," << cb;
    }
    ++checked;
  }
  EXPECT_GT(checked, 50u);
}

double Pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / y.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// The point of the encoding: <FDE(query), FDE(doc)> tracks the Chamfer
// similarity sum_q max_d <q, d>, both over all pairs and within one query's
// candidates (what ranking needs). Fixed data: the first 20 test images
// against the first 500 training images.
TEST(MuveraTest, DotProductTracksChamferSimilarity) {
  const size_t nq = 20, nd = 500;
  const auto queries = FashionPatches("t10k", nq);
  const auto base = FashionPatches("train", nd);
  ASSERT_FALSE(base.empty());
  struct Case {
    MuveraParams params;
    double pooled, per_query;  // thresholds: measured minus a margin
  };
  // Chamfer similarity of every pair, from the definition.
  std::vector<double> chamfer(nq * nd);
  for (size_t qi = 0; qi < nq; ++qi) {
    for (size_t i = 0; i < nd; ++i) {
      chamfer[qi * nd + i] = -NaiveMaxSim(queries.data() + qi * kPatchSetFloats, kPatchesPerImage,
                                          base.data() + i * kPatchSetFloats, kPatchesPerImage,
                                          kPatchDim, Similarity::kInnerProduct);
    }
  }
  // Thresholds: measured with seed 1 (in the comments), less ~0.04.
  for (const Case& c : {
           Case{MuveraParams{}, 0.85, 0.86},                      // 0.893, 0.902: defaults
           Case{Params(4, 16, 20, 0, 1, false), 0.85, 0.85},      // 0.893, 0.892
           Case{Params(4, 16, 20, 0, 1, true), 0.82, 0.83},       // 0.863, 0.870
           Case{Params(4, 16, 20, 1024, 1, true), 0.80, 0.81}}) {  // 0.847, 0.851
    const MuveraEncoder e = MakeEncoder(kPatchDim, c.params);
    const size_t dim = e.output_dim();
    std::vector<float> docs(nd * dim), q(dim);
    for (size_t i = 0; i < nd; ++i) {
      e.EncodeDocument(base.data() + i * kPatchSetFloats, kPatchesPerImage, docs.data() + i * dim);
    }
    std::vector<double> all_fde;
    double per_query = 0;
    for (size_t qi = 0; qi < nq; ++qi) {
      e.EncodeQuery(queries.data() + qi * kPatchSetFloats, kPatchesPerImage, q.data());
      std::vector<double> fde;
      for (size_t i = 0; i < nd; ++i) {
        double dot = 0;
        for (size_t j = 0; j < dim; ++j) dot += double{q[j]} * docs[i * dim + j];
        fde.push_back(dot);
      }
      per_query += Pearson(fde, std::vector<double>(chamfer.begin() + qi * nd,
                                                    chamfer.begin() + (qi + 1) * nd)) /
                   nq;
      all_fde.insert(all_fde.end(), fde.begin(), fde.end());
    }
    const double pooled = Pearson(all_fde, chamfer);
    std::printf("R %u k_sim %u d_proj %u fill_empty %d final_dim %u: Pearson pooled %.4f, "
                "per query (mean) %.4f\n",
                c.params.r_reps, c.params.k_sim, c.params.d_proj, c.params.fill_empty,
                c.params.final_dim, pooled, per_query);
    EXPECT_GT(pooled, c.pooled);
    EXPECT_GT(per_query, c.per_query);
  }
}

TEST(MuveraTest, ParsesDefaultsAndRoundTrips) {
  absl::StatusOr<MuveraParams> p = ParseMuveraParams({}, 65);
  QUIVER_ASSERT_OK(p);
  const MuveraParams defaults;
  EXPECT_EQ(p->k_sim, defaults.k_sim);
  EXPECT_EQ(p->d_proj, defaults.d_proj);
  EXPECT_EQ(p->r_reps, defaults.r_reps);
  EXPECT_EQ(p->final_dim, defaults.final_dim);
  EXPECT_EQ(p->fill_empty, defaults.fill_empty);
  EXPECT_EQ(p->seed, defaults.seed);
  // A small dim lowers the default d_proj to no projection.
  absl::StatusOr<MuveraParams> small = ParseMuveraParams({}, 8);
  QUIVER_ASSERT_OK(small);
  EXPECT_EQ(small->d_proj, 8u);
  // The default final projection only ever shortens.
  absl::StatusOr<MuveraParams> short_raw = ParseMuveraParams({{"r_reps", "2"}}, 65);
  QUIVER_ASSERT_OK(short_raw);
  EXPECT_EQ(short_raw->final_dim, 0u);  // raw 2 * 16 * 16 = 512
  QUIVER_ASSERT_OK(MuveraEncoder::Create(65, MuveraParams{}));

  const std::map<std::string, std::string> given = {
      {"k_sim", "5"},     {"d_proj", "65"},       {"r_reps", "3"},
      {"final_dim", "0"}, {"fill_empty", "false"}, {"seed", "18446744073709551615"}};
  absl::StatusOr<MuveraParams> parsed = ParseMuveraParams(given, 65);
  QUIVER_ASSERT_OK(parsed);
  EXPECT_EQ(parsed->k_sim, 5u);
  EXPECT_EQ(parsed->d_proj, 65u);
  EXPECT_EQ(parsed->r_reps, 3u);
  EXPECT_FALSE(parsed->fill_empty);
  EXPECT_EQ(parsed->seed, 18446744073709551615ull);
  EXPECT_EQ(MuveraParamsToMap(*parsed), given);
}

TEST(MuveraTest, RejectsBadParams) {
  struct Bad {
    std::map<std::string, std::string> params;
    size_t dim;
    std::string names;  // expected in the message
  };
  const Bad cases[] = {
      {{{"k_simm", "4"}}, 65, "k_simm"},
      {{{"k_sim", "11"}}, 65, "k_sim must be in 0..10"},
      {{{"k_sim", "four"}}, 65, "k_sim"},
      {{{"k_sim", "-1"}}, 65, "k_sim"},
      {{{"k_sim", ""}}, 65, "k_sim"},
      {{{"r_reps", "0"}}, 65, "r_reps must be in 1..256"},
      {{{"r_reps", "257"}}, 65, "r_reps"},
      {{{"d_proj", "0"}}, 65, "d_proj must be in 1..65"},
      {{{"d_proj", "66"}}, 65, "d_proj must be in 1..65"},
      {{{"d_proj", "99999999999"}}, 65, "d_proj"},
      {{{"r_reps", "20"}, {"final_dim", "5121"}}, 65, "final_dim must be in 0..5120"},
      {{{"final_dim", "x"}}, 65, "final_dim"},
      {{{"fill_empty", "yes"}}, 65, "fill_empty"},
      {{{"seed", "18446744073709551616"}}, 65, "seed"},
      {{{"seed", "1.5"}}, 65, "seed"},
      // Raw encoding over 2^20 floats, and over the largest field dim.
      {{{"r_reps", "256"}, {"k_sim", "10"}, {"d_proj", "65"}}, 65, "r_reps * 2^k_sim * d_proj"},
      {{{"r_reps", "64"}, {"k_sim", "6"}, {"d_proj", "32"}, {"final_dim", "0"}}, 65, "final_dim"},
      {{}, 0, "dim"},
  };
  for (const Bad& c : cases) {
    std::string text;
    for (const auto& [k, v] : c.params) text += k + "=" + v + " ";
    EXPECT_THAT(ParseMuveraParams(c.params, c.dim),
                StatusIs(absl::StatusCode::kInvalidArgument, c.names))
        << text << "-> " << ParseMuveraParams(c.params, c.dim).status();
  }
  // The same checks guard Create.
  EXPECT_THAT(MuveraEncoder::Create(65, Params(11, 16, 20)),
              StatusIs(absl::StatusCode::kInvalidArgument, "k_sim"));
  EXPECT_THAT(MuveraEncoder::Create(16, Params(4, 17, 20)),
              StatusIs(absl::StatusCode::kInvalidArgument, "d_proj"));
  // With a final projection a large raw encoding is fine.
  QUIVER_ASSERT_OK(ParseMuveraParams(
      {{"r_reps", "64"}, {"k_sim", "6"}, {"d_proj", "32"}, {"final_dim", "4096"}}, 65));
}

}  // namespace
}  // namespace quiver::index
