// SparseIndex: Block-Max WAND search against the exhaustive term-at-a-time
// search and against a brute force over per-row maps, on Zipfian data with
// positive, negative and tied weights and with BM25, with and without a
// filter; the postings BMW skips; edge cases.
#include "query/sparse_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace quiver {
namespace {

using Hit = SparseIndex::Hit;

enum class Mode { kDotPositive, kDotNegative, kDotTies, kBm25 };

std::string ModeName(Mode m) {
  switch (m) {
    case Mode::kDotPositive:
      return "DotPositive";
    case Mode::kDotNegative:
      return "DotNegative";
    case Mode::kDotTies:
      return "DotTies";
    case Mode::kBm25:
      return "Bm25";
  }
  return "";
}

// Spreads term ids over 64 bits, so term order is not frequency order.
uint64_t TermId(uint32_t rank) {
  uint64_t x = rank + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Corpus {
  uint32_t rows = 0;
  uint32_t vocab = 0;
  std::vector<bool> null;
  std::vector<std::vector<SparseTerm>> terms;   // by row
  std::vector<std::map<uint64_t, float>> maps;  // by row: the brute force's view
  std::vector<uint32_t> doc_len;
  float avg_doc_len = 1;
  mutable std::discrete_distribution<uint32_t> zipf;  // over term ranks; drawing changes its state

  std::shared_ptr<const SparseIndex> Build(bool with_lengths) const {
    return SparseIndex::Build(
        rows,
        [this](uint32_t r, std::vector<SparseTerm>* out) {
          if (null[r]) return false;
          out->insert(out->end(), terms[r].begin(), terms[r].end());
          return true;
        },
        with_lengths ? std::function<uint32_t(uint32_t)>([this](uint32_t r) { return doc_len[r]; })
                     : std::function<uint32_t(uint32_t)>());
  }
};

std::discrete_distribution<uint32_t> ZipfDistribution(uint32_t vocab, double s) {
  std::vector<double> p(vocab);
  for (uint32_t i = 0; i < vocab; ++i) p[i] = 1.0 / std::pow(i + 1.0, s);
  return std::discrete_distribution<uint32_t>(p.begin(), p.end());
}

// Rows of 5-80 distinct Zipfian terms, about 3% null and a few empty.
Corpus MakeCorpus(uint32_t rows, uint32_t vocab, uint32_t min_len, uint32_t max_len, Mode mode,
                  uint32_t seed) {
  std::mt19937 rng(seed);
  Corpus c;
  c.rows = rows;
  c.vocab = vocab;
  c.zipf = ZipfDistribution(vocab, 1.0);
  c.null.resize(rows);
  c.terms.resize(rows);
  c.maps.resize(rows);
  c.doc_len.resize(rows);
  std::uniform_int_distribution<uint32_t> len(min_len, max_len);
  std::uniform_real_distribution<float> pos(0.01f, 1.f);
  std::uniform_real_distribution<float> any(-1.f, 1.f);
  std::uniform_int_distribution<int> tf(1, 10);
  std::uniform_int_distribution<int> tie(1, 3);
  std::uniform_int_distribution<uint32_t> extra(0, 40);
  double total_len = 0;
  for (uint32_t r = 0; r < rows; ++r) {
    if (rng() % 100 < 3) {
      c.null[r] = true;
      c.doc_len[r] = 0;
      continue;
    }
    const uint32_t n = rng() % 200 == 0 ? 0 : len(rng);
    std::set<uint32_t> chosen;
    while (chosen.size() < n) chosen.insert(c.zipf(rng));
    uint32_t dl = extra(rng);
    for (uint32_t rank : chosen) {
      float w = 0;
      switch (mode) {
        case Mode::kDotPositive:
          w = pos(rng);
          break;
        case Mode::kDotNegative:
          w = any(rng);
          break;
        case Mode::kDotTies:
          w = static_cast<float>(tie(rng));
          break;
        case Mode::kBm25:
          w = static_cast<float>(tf(rng));
          break;
      }
      dl += static_cast<uint32_t>(w > 0 ? w : 1);
      c.terms[r].push_back({TermId(rank), w});
      c.maps[r][TermId(rank)] = w;
    }
    std::shuffle(c.terms[r].begin(), c.terms[r].end(), rng);
    c.doc_len[r] = dl;
    total_len += dl;
  }
  c.avg_doc_len = static_cast<float>(total_len / rows);
  return c;
}

// The brute force: every row's score from its map, in float and in the
// documented order (query terms ascending, repeated ones summed in the order
// given), and in double with the sum of |contributions| for a tolerance.
struct BruteScore {
  uint32_t row;
  float score;
  double exact;
  double abs_sum;
};

std::vector<BruteScore> BruteForce(const Corpus& c, const std::vector<SparseTerm>& query,
                                   const SparseScoring& s) {
  std::vector<SparseTerm> sorted = query;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const SparseTerm& a, const SparseTerm& b) { return a.term < b.term; });
  std::vector<std::pair<uint64_t, float>> q;
  for (size_t i = 0; i < sorted.size();) {
    float w = 0;
    const uint64_t t = sorted[i].term;
    for (; i < sorted.size() && sorted[i].term == t; ++i) w += sorted[i].weight;
    if (w != 0) q.push_back({t, w});
  }
  std::vector<BruteScore> out;
  for (uint32_t r = 0; r < c.rows; ++r) {
    if (c.null[r]) continue;
    float score = 0;
    double exact = 0;
    double abs_sum = 0;
    bool matched = false;
    for (const auto& [t, qw] : q) {
      auto it = c.maps[r].find(t);
      if (it == c.maps[r].end()) continue;
      matched = true;
      const float w = it->second;
      float v;
      double e;
      if (s.kind == SparseScoring::kDot) {
        v = qw * w;
        e = double{qw} * w;
      } else {
        const float k1 = s.k1, b = s.b, avg = s.avg_doc_len;
        const float dl = static_cast<float>(c.doc_len[r]);
        // The formula as the index evaluates it in float (b / avg once).
        v = qw * w * (k1 + 1) / (w + k1 * (1 - b + dl * (b / avg)));
        e = double{qw} * w * (double{k1} + 1) /
            (w + double{k1} * (1 - double{b} + double{b} * dl / avg));
      }
      score += v;
      exact += e;
      abs_sum += std::fabs(e);
    }
    if (matched) out.push_back({r, score, exact, abs_sum});
  }
  return out;
}

std::vector<BruteScore> BruteTopK(std::vector<BruteScore> all, uint32_t k,
                                  const std::function<bool(uint32_t)>& accept) {
  std::erase_if(all, [&](const BruteScore& b) { return accept && !accept(b.row); });
  std::sort(all.begin(), all.end(), [](const BruteScore& a, const BruteScore& b) {
    return a.score > b.score || (a.score == b.score && a.row < b.row);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

void ExpectSameHits(const std::vector<Hit>& got, const std::vector<Hit>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].row, want[i].row) << what << " rank " << i;
    // Bit for bit: both sum the same contributions in the same order.
    ASSERT_EQ(got[i].score, want[i].score) << what << " rank " << i;
  }
}

void ExpectMatchesBrute(const std::vector<Hit>& got, const std::vector<BruteScore>& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].row, want[i].row) << what << " rank " << i;
    // Relative to the sum of |contributions|: with negative weights a score
    // may cancel to near 0, where the float error is relative to the terms.
    const double scale = std::max({std::fabs(want[i].exact), want[i].abs_sum, 1e-30});
    ASSERT_LE(std::fabs(got[i].score - want[i].score), 1e-5 * scale) << what << " rank " << i;
    ASSERT_LE(std::fabs(got[i].score - want[i].exact), 1e-5 * scale) << what << " rank " << i;
  }
}

std::string Describe(const std::vector<SparseTerm>& q) {
  std::string s = "query{";
  for (const SparseTerm& t : q)
    s += std::to_string(t.term % 100000) + ":" + std::to_string(t.weight) + " ";
  return s + "}";
}

// A query of 1-20 terms: mostly Zipfian (common terms, long lists), some
// uniform over the vocabulary (rare ones), sometimes an unknown term or a
// repeated one.
std::vector<SparseTerm> RandomQuery(const Corpus& c, const SparseIndex& index, Mode mode,
                                    bool robertson_idf, std::mt19937* rng) {
  std::uniform_int_distribution<uint32_t> len(1, 20);
  std::uniform_int_distribution<uint32_t> uniform(0, c.vocab - 1);
  std::uniform_real_distribution<float> pos(0.1f, 2.f);
  std::uniform_real_distribution<float> any(-1.f, 1.f);
  const uint32_t n = len(*rng);
  std::vector<SparseTerm> q;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t term;
    const uint32_t pick = (*rng)() % 20;
    if (pick == 0) {
      term = TermId(c.vocab + (*rng)() % 1000);  // in no row
    } else if (pick == 1 && !q.empty()) {
      term = q[(*rng)() % q.size()].term;  // repeated
    } else if (pick < 8) {
      term = TermId(uniform(*rng));
    } else {
      term = TermId(c.zipf(*rng));
    }
    float w = 0;
    switch (mode) {
      case Mode::kDotPositive:
        w = pos(*rng);
        break;
      case Mode::kDotNegative:
        w = any(*rng);
        break;
      case Mode::kDotTies:
        w = static_cast<float>(1 + (*rng)() % 2);
        break;
      case Mode::kBm25: {
        // IDF folded into the weight; Robertson's goes negative for a term in
        // more than half the rows.
        const double n_rows = c.rows;
        const double df = index.DocFreq(term);
        const double ratio = (n_rows - df + 0.5) / (df + 0.5);
        w = static_cast<float>(robertson_idf ? std::log(ratio) : std::log(1 + ratio));
        break;
      }
    }
    q.push_back({term, w});
  }
  return q;
}

struct RandomCase {
  Mode mode;
  uint32_t seed;
};

class SparseIndexRandomTest : public ::testing::TestWithParam<RandomCase> {};

TEST_P(SparseIndexRandomTest, SearchEqualsExhaustiveAndBruteForce) {
  const RandomCase& rc = GetParam();
  const Corpus c = MakeCorpus(3000, 2000, 5, 80, rc.mode, rc.seed);
  const bool bm25 = rc.mode == Mode::kBm25;
  const auto index = c.Build(bm25);
  std::mt19937 rng(rc.seed * 7919 + 1);
  std::vector<bool> pass10(c.rows), pass90(c.rows);
  for (uint32_t r = 0; r < c.rows; ++r) {
    pass10[r] = rng() % 100 < 10;
    pass90[r] = rng() % 100 < 90;
  }
  uint64_t calls = 0;
  const std::function<bool(uint32_t)> filters[] = {
      {},
      [&](uint32_t r) {
        ++calls;
        return static_cast<bool>(pass10[r]);
      },
      [&](uint32_t r) {
        ++calls;
        return static_cast<bool>(pass90[r]);
      },
  };
  const char* filter_names[] = {"all", "10%", "90%"};

  SparseIndex::Stats bmw_total, exh_total;
  for (int qi = 0; qi < 40; ++qi) {
    SparseScoring scoring;
    if (bm25) {
      scoring.kind = SparseScoring::kBm25;
      scoring.avg_doc_len = c.avg_doc_len;
      // Mostly the usual parameters; the ends of b's range now and then.
      if (qi % 5 == 3) scoring.b = 0;
      if (qi % 5 == 4) scoring.b = 1, scoring.k1 = 2.f;
    }
    const std::vector<SparseTerm> query =
        RandomQuery(c, *index, rc.mode, bm25 && qi % 2 == 1, &rng);
    const std::vector<BruteScore> brute = BruteForce(c, query, scoring);
    for (uint32_t k : {1u, 10u, 100u, 5000u}) {
      for (int f = 0; f < 3; ++f) {
        const std::string what = ModeName(rc.mode) + " seed " + std::to_string(rc.seed) + " q" +
                                 std::to_string(qi) + " k " + std::to_string(k) + " filter " +
                                 filter_names[f] + " " + Describe(query);
        SparseIndex::Stats bs, es;
        calls = 0;
        const std::vector<Hit> got = index->Search(query, k, scoring, filters[f], &bs);
        const uint64_t bmw_calls = calls;
        calls = 0;
        const std::vector<Hit> exh = index->SearchExhaustive(query, k, scoring, filters[f], &es);
        const uint64_t exh_calls = calls;
        ExpectSameHits(got, exh, what);
        ExpectMatchesBrute(got, BruteTopK(brute, k, filters[f]), what);
        // Each posting is scored at most once, and `accept` is asked only
        // about rows that would enter the top k as it stands, which for a
        // row is the same in both searches: BMW skips only rows that could
        // not enter.
        EXPECT_LE(bs.postings_scored, es.postings_scored) << what;
        EXPECT_LE(bmw_calls, exh_calls) << what;
        EXPECT_LE(bmw_calls, bs.candidates) << what;
        bmw_total.postings_scored += bs.postings_scored;
        exh_total.postings_scored += es.postings_scored;
        bmw_total.blocks_skipped += bs.blocks_skipped;
      }
    }
  }
  std::printf(
      "[ sparse   ] %s seed %u: BMW scored %llu postings, exhaustive %llu (%.3f), "
      "%llu blocks skipped\n",
      ModeName(rc.mode).c_str(), rc.seed,
      static_cast<unsigned long long>(bmw_total.postings_scored),
      static_cast<unsigned long long>(exh_total.postings_scored),
      static_cast<double>(bmw_total.postings_scored) / exh_total.postings_scored,
      static_cast<unsigned long long>(bmw_total.blocks_skipped));
}

std::vector<RandomCase> AllRandomCases() {
  std::vector<RandomCase> out;
  for (Mode m : {Mode::kDotPositive, Mode::kDotNegative, Mode::kDotTies, Mode::kBm25}) {
    for (uint32_t seed : {1u, 2u, 3u}) out.push_back({m, seed});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, SparseIndexRandomTest, ::testing::ValuesIn(AllRandomCases()),
                         [](const ::testing::TestParamInfo<RandomCase>& info) {
                           return ModeName(info.param.mode) + "_" + std::to_string(info.param.seed);
                         });

// On Zipfian data a 10-term top-10 query leaves most postings unscored.
TEST(SparseIndexTest, BlockMaxWandScoresFewerPostings) {
  for (Mode mode : {Mode::kDotPositive, Mode::kBm25}) {
    const Corpus c = MakeCorpus(20000, 5000, 20, 80, mode, 11);
    const auto index = c.Build(mode == Mode::kBm25);
    SparseScoring scoring;
    if (mode == Mode::kBm25) {
      scoring.kind = SparseScoring::kBm25;
      scoring.avg_doc_len = c.avg_doc_len;
    }
    std::mt19937 rng(5);
    uint64_t bmw = 0, exh = 0, skipped = 0;
    for (int qi = 0; qi < 20; ++qi) {
      std::vector<SparseTerm> query;
      std::set<uint64_t> seen;
      while (query.size() < 10) {
        const uint64_t t = TermId(c.zipf(rng));
        if (!seen.insert(t).second) continue;
        const double df = index->DocFreq(t);
        query.push_back({t, static_cast<float>(std::log(1 + (c.rows - df + 0.5) / (df + 0.5)))});
      }
      SparseIndex::Stats bs, es;
      const auto got = index->Search(query, 10, scoring, {}, &bs);
      const auto want = index->SearchExhaustive(query, 10, scoring, {}, &es);
      ExpectSameHits(got, want, ModeName(mode) + " " + Describe(query));
      EXPECT_LE(bs.postings_scored, es.postings_scored);
      bmw += bs.postings_scored;
      exh += es.postings_scored;
      skipped += bs.blocks_skipped;
    }
    EXPECT_LT(bmw, exh);
    std::printf(
        "[ sparse   ] %s, 20000 rows, 10-term queries, k=10: BMW scored %llu postings "
        "of %llu (ratio %.3f), %llu blocks skipped\n",
        ModeName(mode).c_str(), static_cast<unsigned long long>(bmw),
        static_cast<unsigned long long>(exh), static_cast<double>(bmw) / exh,
        static_cast<unsigned long long>(skipped));
  }
}

std::shared_ptr<const SparseIndex> BuildFrom(const std::vector<std::vector<SparseTerm>>& rows) {
  return SparseIndex::Build(static_cast<uint32_t>(rows.size()),
                            [&](uint32_t r, std::vector<SparseTerm>* out) {
                              if (rows[r].empty()) return false;
                              out->insert(out->end(), rows[r].begin(), rows[r].end());
                              return true;
                            });
}

TEST(SparseIndexTest, EmptyIndex) {
  const auto index = SparseIndex::Build(0, [](uint32_t, std::vector<SparseTerm>*) { return true; });
  EXPECT_EQ(index->rows(), 0u);
  EXPECT_EQ(index->total_postings(), 0u);
  EXPECT_EQ(index->DocFreq(1), 0u);
  EXPECT_TRUE(index->Search({{1, 1.f}}, 10, {}, {}).empty());
  EXPECT_TRUE(index->SearchExhaustive({{1, 1.f}}, 10, {}, {}).empty());

  // Rows, all null.
  const auto nulls = SparseIndex::Build(100, [](uint32_t, std::vector<SparseTerm>* out) {
    out->push_back({1, 1.f});  // ignored: the row says it has no value
    return false;
  });
  EXPECT_EQ(nulls->rows(), 100u);
  EXPECT_EQ(nulls->total_postings(), 0u);
  EXPECT_EQ(nulls->DocFreq(1), 0u);
  EXPECT_TRUE(nulls->Search({{1, 1.f}}, 10, {}, {}).empty());
}

TEST(SparseIndexTest, KLargerThanMatchesAndUnknownTerms) {
  const auto index = BuildFrom({{{1, 1.f}, {2, 2.f}}, {}, {{2, 0.5f}}, {{3, 1.f}}});
  SparseIndex::Stats stats;
  const auto hits = index->Search({{2, 1.f}, {99, 5.f}}, 1000, {}, {}, &stats);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].row, 0u);
  EXPECT_FLOAT_EQ(hits[0].score, 2.f);
  EXPECT_EQ(hits[1].row, 2u);
  EXPECT_FLOAT_EQ(hits[1].score, 0.5f);
  EXPECT_EQ(stats.postings_scored, 2u);
  EXPECT_TRUE(index->Search({{99, 1.f}, {100, 2.f}}, 10, {}, {}).empty());
  EXPECT_TRUE(index->Search({}, 10, {}, {}).empty());
  EXPECT_TRUE(index->Search({{2, 0.f}}, 10, {}, {}).empty());
  EXPECT_TRUE(index->Search({{2, 1.f}}, 0, {}, {}).empty());
}

TEST(SparseIndexTest, AllRowsRejected) {
  std::vector<std::vector<SparseTerm>> rows(1000);
  for (uint32_t r = 0; r < rows.size(); ++r) rows[r] = {{7, 1.f + r % 13}, {8, 0.5f}};
  const auto index = BuildFrom(rows);
  uint64_t calls = 0;
  auto reject = [&](uint32_t) {
    ++calls;
    return false;
  };
  EXPECT_TRUE(index->Search({{7, 1.f}, {8, 1.f}}, 10, {}, reject).empty());
  // With nothing accepted the top k never fills, so every row is asked.
  EXPECT_EQ(calls, 1000u);
  calls = 0;
  EXPECT_TRUE(index->SearchExhaustive({{7, 1.f}, {8, 1.f}}, 10, {}, reject).empty());
  EXPECT_EQ(calls, 1000u);
}

// One list holds every row: ties break by row, a filter still returns k, and
// BMW skips most of the list once the top k is full.
TEST(SparseIndexTest, SingleHugePostingList) {
  const uint32_t n = 50000;
  std::vector<std::vector<SparseTerm>> rows(n);
  for (uint32_t r = 0; r < n; ++r) {
    rows[r] = {{42, 1.f}};
    if (r % 1000 == 999) rows[r][0].weight = 2.f + r / 1000;
    if (r % 3 == 0) rows[r].push_back({43, 0.25f});
  }
  const auto index = BuildFrom(rows);
  EXPECT_EQ(index->DocFreq(42), n);
  SparseIndex::Stats stats;
  auto hits = index->Search({{42, 1.f}}, 60, {}, {}, &stats);
  ASSERT_EQ(hits.size(), 60u);
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(hits[i].row, (49 - i) * 1000 + 999);
    EXPECT_EQ(hits[i].score, 2.f + (49 - i));
  }
  for (uint32_t i = 50; i < 60; ++i) {  // the ties: lowest rows first
    EXPECT_EQ(hits[i].row, i - 50);
    EXPECT_EQ(hits[i].score, 1.f);
  }
  EXPECT_LT(stats.postings_scored, n);
  EXPECT_GT(stats.blocks_skipped, 0u);
  ExpectSameHits(hits, index->SearchExhaustive({{42, 1.f}}, 60, {}, {}), "single list");

  // Two lists and a filter.
  SparseIndex::Stats tie_stats;
  hits = index->Search(
      {{42, 1.f}, {43, 1.f}}, 10, {}, [](uint32_t r) { return r % 999 != 998; }, &tie_stats);
  ExpectSameHits(hits,
                 index->SearchExhaustive({{42, 1.f}, {43, 1.f}}, 10, {},
                                         [](uint32_t r) { return r % 999 != 998; }),
                 "two lists");
  EXPECT_LT(tie_stats.postings_scored, n);

  // Negative weights: every score is <= 0 and still a hit.
  hits = index->Search({{42, -1.f}}, 5, {}, {});
  ASSERT_EQ(hits.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(hits[i].row, i);
    EXPECT_EQ(hits[i].score, -1.f);
  }
  ExpectSameHits(index->Search({{42, -1.f}, {43, 3.f}}, 100, {}, {}),
                 index->SearchExhaustive({{42, -1.f}, {43, 3.f}}, 100, {}, {}), "negative");
}

TEST(SparseIndexTest, DuplicatedTerms) {
  const auto index = BuildFrom({{{1, 1.f}, {2, 3.f}}, {{1, 2.f}}, {{2, 1.f}, {3, 1.f}}});
  const auto merged = index->Search({{1, 1.f}, {2, 1.f}}, 10, {}, {});
  ExpectSameHits(index->Search({{1, 0.25f}, {2, 1.f}, {1, 0.75f}}, 10, {}, {}), merged, "dup");
  ExpectSameHits(index->SearchExhaustive({{1, 0.25f}, {2, 1.f}, {1, 0.75f}}, 10, {}, {}), merged,
                 "dup exhaustive");
  // Weights summing to 0 drop the term.
  const auto only2 = index->Search({{1, 1.f}, {2, 1.f}, {1, -1.f}}, 10, {}, {});
  ASSERT_EQ(only2.size(), 2u);
  EXPECT_EQ(only2[0].row, 0u);
  EXPECT_EQ(only2[1].row, 2u);

  // A term repeated within a row is one posting with the weights summed.
  const auto dup_row = BuildFrom({{{5, 1.f}, {5, 2.f}, {6, 1.f}}, {{5, 1.f}}});
  EXPECT_EQ(dup_row->DocFreq(5), 2u);
  EXPECT_EQ(dup_row->total_postings(), 3u);
  const auto hits = dup_row->Search({{5, 1.f}}, 10, {}, {});
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].row, 0u);
  EXPECT_EQ(hits[0].score, 3.f);
}

// BM25 parameters the block bounds do not hold for, and negative term
// frequencies, are answered exhaustively: still exact.
TEST(SparseIndexTest, Bm25OutsideTheBoundsIsStillExact) {
  Corpus c = MakeCorpus(2000, 500, 5, 40, Mode::kBm25, 9);
  const auto index = c.Build(true);
  std::mt19937 rng(3);
  for (float b : {1.5f, -0.5f}) {
    SparseScoring s;
    s.kind = SparseScoring::kBm25;
    s.b = b;
    s.avg_doc_len = c.avg_doc_len;
    for (int qi = 0; qi < 10; ++qi) {
      const auto q = RandomQuery(c, *index, Mode::kBm25, false, &rng);
      ExpectSameHits(index->Search(q, 10, s, {}), index->SearchExhaustive(q, 10, s, {}),
                     "b " + std::to_string(b));
    }
  }
  const auto neg = BuildFrom({{{1, -1.f}, {2, 1.f}}, {{1, 2.f}}, {{2, 3.f}}});
  SparseScoring s;
  s.kind = SparseScoring::kBm25;
  ExpectSameHits(neg->Search({{1, 1.f}, {2, 1.f}}, 10, s, {}),
                 neg->SearchExhaustive({{1, 1.f}, {2, 1.f}}, 10, s, {}), "negative tf");
}

TEST(SparseIndexTest, DocFreqDocLenAndMemory) {
  const Corpus c = MakeCorpus(3000, 2000, 5, 80, Mode::kBm25, 4);
  const auto index = c.Build(true);
  const auto no_len = c.Build(false);
  std::map<uint64_t, uint32_t> df;
  uint64_t postings = 0;
  for (uint32_t r = 0; r < c.rows; ++r) {
    if (c.null[r]) continue;
    for (const auto& [t, w] : c.maps[r]) ++df[t];
    postings += c.maps[r].size();
  }
  EXPECT_EQ(index->rows(), c.rows);
  EXPECT_EQ(index->total_postings(), postings);
  EXPECT_EQ(index->num_terms(), df.size());
  for (uint32_t rank = 0; rank < c.vocab + 10; ++rank) {
    const auto it = df.find(TermId(rank));
    EXPECT_EQ(index->DocFreq(TermId(rank)), it == df.end() ? 0u : it->second);
  }
  for (uint32_t r = 0; r < c.rows; ++r) {
    EXPECT_EQ(index->doc_len(r), c.doc_len[r]);
    EXPECT_EQ(no_len->doc_len(r), 0u);
  }
  // Postings (8 bytes each) dominate: blocks, terms and lengths add a little.
  const size_t bytes = index->MemoryBytes();
  EXPECT_GE(bytes, postings * 8 + c.rows * 4);
  EXPECT_LE(bytes, postings * 8 * 13 / 10 + c.rows * 4 + df.size() * 128 + 4096);
  EXPECT_LT(no_len->MemoryBytes(), bytes);
  std::printf("[ sparse   ] %llu postings, %zu terms: %zu bytes\n",
              static_cast<unsigned long long>(postings), df.size(), bytes);
}

// Timing, BMW against exhaustive, on 64k rows of ~60 Zipfian terms (BM25).
// Run with --gtest_also_run_disabled_tests; it asserts nothing about time.
TEST(SparseIndexTest, DISABLED_Timing64k) {
  const Corpus c = MakeCorpus(65536, 30000, 40, 80, Mode::kBm25, 21);
  const auto index = c.Build(true);
  SparseScoring scoring;
  scoring.kind = SparseScoring::kBm25;
  scoring.avg_doc_len = c.avg_doc_len;
  std::mt19937 rng(8);
  std::vector<std::vector<SparseTerm>> queries;
  for (int qi = 0; qi < 200; ++qi) {
    std::vector<SparseTerm> q;
    std::set<uint64_t> seen;
    while (q.size() < 10) {
      const uint64_t t = TermId(c.zipf(rng));
      if (!seen.insert(t).second) continue;
      const double df = index->DocFreq(t);
      q.push_back({t, static_cast<float>(std::log(1 + (c.rows - df + 0.5) / (df + 0.5)))});
    }
    queries.push_back(std::move(q));
  }
  for (uint32_t k : {10u, 100u}) {
    // The best of 3 rounds: the machine is shared.
    double bmw_us = 1e30, exh_us = 1e30;
    SparseIndex::Stats bs, es;
    for (int round = 0; round < 3; ++round) {
      bs = es = {};
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& q : queries) index->Search(q, k, scoring, {}, &bs);
      auto t1 = std::chrono::steady_clock::now();
      for (const auto& q : queries) index->SearchExhaustive(q, k, scoring, {}, &es);
      auto t2 = std::chrono::steady_clock::now();
      bmw_us = std::min(bmw_us, std::chrono::duration<double, std::micro>(t1 - t0).count());
      exh_us = std::min(exh_us, std::chrono::duration<double, std::micro>(t2 - t1).count());
    }
    const double nq = queries.size();
    std::printf(
        "[ sparse   ] %u rows, %llu postings, %zu bytes, k=%u: BMW %.1f us "
        "%.0f postings/query, exhaustive %.1f us %.0f postings/query\n",
        c.rows, static_cast<unsigned long long>(index->total_postings()), index->MemoryBytes(), k,
        bmw_us / nq, bs.postings_scored / nq, exh_us / nq, es.postings_scored / nq);
  }
}

}  // namespace
}  // namespace quiver
