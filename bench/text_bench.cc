// text_bench: full-text BM25 search in Quiver, through quiverd as a user
// runs it, against Xapian 1.4 in process, on the long descriptions of
// Debian's packages (issue 17).
//
// Measured in the same run, interleaved: indexing time (Quiver: upserts
// through gRPC until every segment is INDEXED; Xapian: TermGenerator +
// add_document + commit), and single-query QPS and latency from one thread
// with 1,000 package summaries as OR queries. Xapian (an on-disk glass
// database, or its InMemory backend with --xapian-inmemory) is measured with
// two weighting schemes over the same index: its stock BM25Weight with every
// parameter aligned that it lets us align, and a Weight subclass computing
// Quiver's formula, so the two engines rank by the same function and their
// top 10 should agree. Agreement counts ties at Xapian's 10th score; the
// analyzers' terms and document lengths are compared too, since the engines
// can only agree as far as they see the same terms.
#include <sys/types.h>
#include <xapian.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "query/text/analyzer.h"

namespace quiver::bench {
namespace {

struct Args {
  std::string corpus;
  size_t queries = 1000;
  uint64_t seed = 42;
  int rounds = 3;
  int index_rounds = 3;
  size_t batch = 1000;
  size_t k = 10;
  float k1 = 1.2f;
  float b = 0.75f;
  double xapian_k3 = 1e9;
  int examples = 3;
  std::string durability = "sync";
  int seal_idle_ms = 0;
  bool xapian_in_memory = false;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string json_out;
};

struct Doc {
  std::string name;
  std::string summary;  // the query text when this package is picked
  std::string body;     // the long description: what is indexed
};

struct Corpus {
  std::vector<Doc> docs;
  size_t stanzas = 0;
  size_t duplicates = 0;
  size_t empty_bodies = 0;
  size_t body_bytes = 0;
};

// Debian's Translation-en: RFC 822 stanzas; Description-en's first line is
// the summary, its continuation lines (one leading space, " ." for an empty
// line) the long description.
absl::StatusOr<Corpus> LoadCorpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  Corpus c;
  std::unordered_set<std::string> seen;
  Doc cur;
  bool in_desc = false, first_line = true;
  auto finish = [&] {
    if (!cur.name.empty()) {
      ++c.stanzas;
      // A package named twice (several description versions): keep the first.
      if (seen.insert(cur.name).second) {
        c.body_bytes += cur.body.size();
        if (cur.body.empty()) ++c.empty_bodies;
        c.docs.push_back(std::move(cur));
      } else {
        ++c.duplicates;
      }
    }
    cur = Doc();
    in_desc = false;
  };
  auto value = [](const std::string& line, size_t colon) {
    size_t s = colon + 1;
    while (s < line.size() && line[s] == ' ') ++s;
    size_t e = line.size();
    while (e > s && (line[e - 1] == ' ' || line[e - 1] == '\r')) --e;
    return line.substr(s, e - s);
  };
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      finish();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (!in_desc) continue;  // a continuation of some other field
      std::string_view l = std::string_view(line).substr(1);
      if (l == ".") l = "";
      if (!first_line) cur.body += '\n';
      cur.body += l;
      first_line = false;
      continue;
    }
    in_desc = false;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string_view field = std::string_view(line).substr(0, colon);
    if (field == "Package") {
      cur.name = value(line, colon);
    } else if (field == "Description-en") {
      cur.summary = value(line, colon);
      in_desc = true;
      first_line = true;
    }
  }
  finish();
  if (c.docs.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no packages"));
  return c;
}

// `count` distinct documents by a partial Fisher-Yates shuffle over
// mt19937_64(seed), whose output the C++ standard fixes (std::shuffle's
// algorithm is the library's choice): the same queries everywhere.
std::vector<size_t> PickQueries(size_t n, size_t count, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  count = std::min(count, n);
  for (size_t i = 0; i < count; ++i) std::swap(idx[i], idx[i + rng() % (n - i)]);
  idx.resize(count);
  return idx;
}

// Quiver's BM25 as a Xapian weighting scheme, so both engines rank by one
// function: per term idf * wqf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len
// / avg_len)) with Lucene's idf ln(1 + (N - df + 0.5) / (df + 0.5)), no
// rewriting of common terms' idf and no floor on the normalized length
// (query/text/bm25_stats.h, query/execute/sparse_search.h).
class QuiverBm25Weight : public Xapian::Weight {
 public:
  QuiverBm25Weight(double k1, double b) : k1_(k1), b_(b) {
    need_stat(COLLECTION_SIZE);
    need_stat(TERMFREQ);
    need_stat(AVERAGE_LENGTH);
    need_stat(WQF);
    need_stat(WDF);
    need_stat(WDF_MAX);
    need_stat(DOC_LENGTH);
    need_stat(DOC_LENGTH_MIN);
  }
  std::string name() const override { return "quiver::bench::QuiverBm25Weight"; }
  QuiverBm25Weight* clone() const override { return new QuiverBm25Weight(k1_, b_); }
  void init(double factor) override {
    // init(0) prepares the term-independent part, which BM25 has none of.
    if (factor == 0) {
      term_weight_ = 0;
      return;
    }
    const double n = static_cast<double>(get_collection_size());
    const double df = static_cast<double>(get_termfreq());
    term_weight_ = factor * std::log(1.0 + (n - df + 0.5) / (df + 0.5)) *
                   static_cast<double>(get_wqf()) * (k1_ + 1);
    const double avg = get_average_length();
    b_per_len_ = avg > 0 ? b_ / avg : 0;
  }
  double get_sumpart(Xapian::termcount wdf, Xapian::termcount len,
                     Xapian::termcount) const override {
    if (wdf == 0) return 0;
    const double tf = wdf;
    return term_weight_ * tf / (tf + k1_ * ((1 - b_) + static_cast<double>(len) * b_per_len_));
  }
  // The matcher skips documents by this bound, so it must never be below a
  // real score: the score rises with tf and falls with the length, and a
  // document is at least as long as its largest tf and the shortest
  // document. The slack covers rounding between the two evaluations.
  double get_maxpart() const override {
    const Xapian::termcount wdf_max = get_wdf_upper_bound();
    if (wdf_max == 0) return 0;
    const Xapian::termcount len = std::max(wdf_max, get_doclength_lower_bound());
    return get_sumpart(wdf_max, len, 0) * (1 + 1e-9);
  }
  double get_sumextra(Xapian::termcount, Xapian::termcount) const override { return 0; }
  double get_maxextra() const override { return 0; }

 private:
  const double k1_, b_;
  double term_weight_ = 0;
  double b_per_len_ = 0;
};

// Terms of `text` as Xapian indexes them here: english stems of every word
// (STEM_ALL), no stop words, no positions.
Xapian::TermGenerator MakeTermGenerator() {
  Xapian::TermGenerator tg;
  tg.set_stemmer(Xapian::Stem("english"));
  tg.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
  return tg;
}

// The query: an OR of the TermGenerator's terms of the text, each with its
// count as wqf. QueryParser would turn "real-time" into a phrase, which an
// index without positions cannot answer, and Quiver ORs every term.
Xapian::Query XapianQuery(Xapian::TermGenerator& tg, const std::string& text) {
  Xapian::Document scratch;
  tg.set_document(scratch);
  tg.index_text_without_positions(text);
  std::vector<Xapian::Query> terms;
  for (auto it = scratch.termlist_begin(); it != scratch.termlist_end(); ++it) {
    terms.emplace_back(*it, it.get_wdf());
  }
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

struct ScoredDoc {
  int64_t doc = -1;  // index into Corpus::docs; -1 for an id not in it
  double score = 0;
};
using Results = std::vector<std::vector<ScoredDoc>>;  // per query, best first

// Xapian's scores of chosen documents for a query (outside the clock): the
// same query and weighting, restricted to those documents by a match
// decider, so the scores are Xapian's own.
class OnlyDocs : public Xapian::MatchDecider {
 public:
  explicit OnlyDocs(std::set<Xapian::docid> ids) : ids_(std::move(ids)) {}
  bool operator()(const Xapian::Document& d) const override { return ids_.count(d.get_docid()); }

 private:
  std::set<Xapian::docid> ids_;
};
std::map<int64_t, double> XapianScoresOf(const Xapian::Database& db, const Xapian::Query& q,
                                         const Xapian::Weight& w,
                                         const std::vector<int64_t>& docs) {
  std::set<Xapian::docid> ids;
  for (int64_t d : docs) {
    if (d >= 0) ids.insert(static_cast<Xapian::docid>(d + 1));
  }
  std::map<int64_t, double> out;
  if (ids.empty()) return out;
  Xapian::Enquire enq(db);
  enq.set_query(q);
  enq.set_weighting_scheme(w);
  OnlyDocs decider(ids);
  Xapian::MSet m = enq.get_mset(0, static_cast<Xapian::doccount>(ids.size()), 0, nullptr, &decider);
  for (auto it = m.begin(); it != m.end(); ++it) {
    out[static_cast<int64_t>(*it) - 1] = it.get_weight();
  }
  return out;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

// One indexing round of each engine.
struct IndexRun {
  double seconds = 0;
  double load_s = 0;    // Quiver: upserts; Xapian: TermGenerator + add_document
  double finish_s = 0;  // Quiver: until every segment INDEXED; Xapian: commit
  double cpu_server_s = 0;
  double cpu_self_s = 0;
  double other_cores = 0;
};

struct XapianBuild {
  IndexRun run;
  uint64_t bytes = 0;  // on disk
  Xapian::Database db;
};

// On disk (glass, in a fresh folder), as Xapian is usually run, or with
// `in_memory` in its InMemory backend, which keeps everything in the heap
// as quiverd keeps its indexes. Each document keeps what Quiver keeps: its
// text (as document data) and its id (a unique "Q" term, Xapian's
// convention for external ids; a boolean term, so it adds nothing to the
// length).
XapianBuild BuildXapian(const Corpus& c, const std::string& dir, bool in_memory, pid_t quiverd) {
  std::filesystem::remove_all(dir);
  XapianBuild out;
  const double busy0 = MachineBusySeconds(false);
  const double self0 = ProcessCpuSeconds();
  const double srv0 = ProcessCpuSeconds(quiverd);
  const double t0 = NowSeconds();
  {
    Xapian::WritableDatabase db =
        in_memory ? Xapian::WritableDatabase(std::string(), Xapian::DB_BACKEND_INMEMORY)
                  : Xapian::WritableDatabase(dir, Xapian::DB_CREATE_OR_OVERWRITE);
    Xapian::TermGenerator tg = MakeTermGenerator();
    for (const Doc& d : c.docs) {
      Xapian::Document doc;
      doc.set_data(d.body);
      doc.add_boolean_term("Q" + d.name);
      tg.set_document(doc);
      tg.index_text_without_positions(d.body);
      db.add_document(doc);
    }
    const double t1 = NowSeconds();
    db.commit();
    out.run.finish_s = NowSeconds() - t1;
    out.run.load_s = t1 - t0;
    if (in_memory) {
      out.db = db;
    } else {
      db.close();
    }
  }
  if (!in_memory) {
    out.db = Xapian::Database(dir);
    out.bytes = DirBytes(dir);
  }
  out.run.seconds = NowSeconds() - t0;
  out.run.cpu_self_s = ProcessCpuSeconds() - self0;
  const double srv = ProcessCpuSeconds(quiverd) - srv0;
  out.run.other_cores = std::max(
      0.0, (MachineBusySeconds(false) - busy0 - out.run.cpu_self_s - srv) / out.run.seconds);
  return out;
}

v1::CollectionSchema TextSchema(const Args& a) {
  v1::CollectionSchema s;
  // A collection needs a vector field; a sparse one is optional per point,
  // so the points carry none and only the text attribute is searched.
  s.add_sparse_vectors()->set_name("unused");
  v1::AttributeField* f = s.add_attributes();
  f->set_name("body");
  f->set_type(v1::STRING);
  f->mutable_text()->set_language("english");
  f->mutable_text()->set_stop_words(false);
  f->mutable_text()->set_k1(a.k1);
  f->mutable_text()->set_b(a.b);
  return s;
}

IndexRun IndexQuiver(client::Client& c, pid_t quiverd, const std::string& coll, const Args& a,
                     std::vector<v1::UpsertPointsRequest>* batches, size_t docs) {
  if (auto r = c.CreateCollection(coll, TextSchema(a)); !r.ok()) {
    Die("create collection", r.status());
  }
  for (v1::UpsertPointsRequest& req : *batches) req.set_collection(coll);
  IndexRun run;
  const double busy0 = MachineBusySeconds(false);
  const double self0 = ProcessCpuSeconds();
  const double srv0 = ProcessCpuSeconds(quiverd);
  const double t0 = NowSeconds();
  for (const v1::UpsertPointsRequest& req : *batches) {
    if (auto r = c.Upsert(req); !r.ok()) Die("upsert", r.status());
  }
  const double t1 = NowSeconds();
  WaitIndexedOrDie(c, {coll}, 3600, 20);
  run.seconds = NowSeconds() - t0;
  run.load_s = t1 - t0;
  run.finish_s = run.seconds - run.load_s;
  run.cpu_server_s = ProcessCpuSeconds(quiverd) - srv0;
  run.cpu_self_s = ProcessCpuSeconds() - self0;
  run.other_cores = std::max(
      0.0, (MachineBusySeconds(false) - busy0 - run.cpu_self_s - run.cpu_server_s) / run.seconds);
  auto n = c.Count(coll);
  if (!n.ok()) Die("count", n.status());
  if (*n != docs) {
    Die("count",
        absl::InternalError(absl::StrCat(coll, " holds ", *n, " points, upserted ", docs)));
  }
  return run;
}

// Terms per document as each engine sees them, and the statistics BM25
// takes from them.
struct TermCheck {
  size_t docs_same_terms = 0;   // identical (term, count) lists
  size_t docs_same_length = 0;  // Quiver's length == Xapian's doclen
  uint64_t quiver_words = 0;    // sum of lengths
  uint64_t xapian_words = 0;
  uint64_t shared_words = 0;  // sum over terms of min(count in each)
  size_t queries_same_terms = 0;
  std::vector<bool> same_terms;                  // per document
  std::unordered_map<std::string, uint32_t> df;  // Quiver's analyzer's view
  std::vector<std::string> doc_differences;      // every document whose terms differ
  std::vector<std::string> query_examples;       // the first few queries
};

using TermCounts = std::map<std::string, uint32_t>;

TermCounts AnalyzerTerms(const text::Analyzer& an, const std::string& s, uint32_t* len) {
  TermCounts out;
  *len =
      static_cast<uint32_t>(an.ForEachTerm(s, [&](std::string_view t) { ++out[std::string(t)]; }));
  return out;
}

TermCounts XapianDocTerms(const Xapian::Database& db, Xapian::docid id) {
  TermCounts out;
  for (auto it = db.termlist_begin(id); it != db.termlist_end(id); ++it) {
    const std::string t = *it;
    if (!t.empty() && t[0] == 'Q') continue;  // the id term; real terms are case-folded
    out[t] = it.get_wdf();
  }
  return out;
}

TermCounts XapianTextTerms(Xapian::TermGenerator& tg, const std::string& s) {
  Xapian::Document scratch;
  tg.set_document(scratch);
  tg.index_text_without_positions(s);
  TermCounts out;
  for (auto it = scratch.termlist_begin(); it != scratch.termlist_end(); ++it) {
    out[*it] = it.get_wdf();
  }
  return out;
}

std::string TermDiff(const TermCounts& q, const TermCounts& x) {
  std::string out;
  int shown = 0;
  for (const auto& [t, n] : q) {
    auto it = x.find(t);
    if (it == x.end() || it->second != n) {
      if (shown++ < 4) {
        absl::StrAppend(&out, " quiver '", t, "' x", n, " xapian x", it == x.end() ? 0 : it->second,
                        ";");
      }
    }
  }
  for (const auto& [t, n] : x) {
    if (!q.count(t) && shown++ < 8) absl::StrAppend(&out, " xapian-only '", t, "' x", n, ";");
  }
  return out;
}

TermCheck CheckTerms(const Corpus& c, const text::Analyzer& an, const Xapian::Database& db,
                     const std::vector<size_t>& picks) {
  TermCheck tc;
  tc.same_terms.resize(c.docs.size());
  for (size_t i = 0; i < c.docs.size(); ++i) {
    uint32_t len = 0;
    const TermCounts q = AnalyzerTerms(an, c.docs[i].body, &len);
    for (const auto& [t, n] : q) ++tc.df[t];
    const auto id = static_cast<Xapian::docid>(i + 1);
    const TermCounts x = XapianDocTerms(db, id);
    const uint32_t xlen = db.get_doclength(id);
    tc.quiver_words += len;
    tc.xapian_words += xlen;
    for (const auto& [t, n] : q) {
      auto it = x.find(t);
      if (it != x.end()) tc.shared_words += std::min(n, it->second);
    }
    if (len == xlen) ++tc.docs_same_length;
    tc.same_terms[i] = q == x;
    if (q == x) {
      ++tc.docs_same_terms;
    } else {
      tc.doc_differences.push_back(
          absl::StrCat(c.docs[i].name, " (length ", len, " vs ", xlen, "):", TermDiff(q, x)));
    }
  }
  Xapian::TermGenerator tg = MakeTermGenerator();
  for (size_t p : picks) {
    uint32_t len = 0;
    const TermCounts q = AnalyzerTerms(an, c.docs[p].summary, &len);
    const TermCounts x = XapianTextTerms(tg, c.docs[p].summary);
    if (q == x) {
      ++tc.queries_same_terms;
    } else if (tc.query_examples.size() < 5) {
      tc.query_examples.push_back(absl::StrCat("\"", c.docs[p].summary, "\":", TermDiff(q, x)));
    }
  }
  return tc;
}

// Quiver's formula in double over Quiver's analyzer's terms: the score the
// server should give, to tell an engine's difference from an analyzer's.
double ReferenceScore(const text::Analyzer& an, const TermCheck& tc, double avg_len, const Args& a,
                      const std::string& query, size_t doc, const Corpus& c) {
  uint32_t qlen = 0, dlen = 0;
  const TermCounts q = AnalyzerTerms(an, query, &qlen);
  const TermCounts d = AnalyzerTerms(an, c.docs[doc].body, &dlen);
  const double n = static_cast<double>(c.docs.size());
  const double k1 = a.k1, b = a.b;
  double s = 0;
  for (const auto& [t, cnt] : q) {
    auto it = d.find(t);
    if (it == d.end()) continue;
    auto df_it = tc.df.find(t);
    if (df_it == tc.df.end()) continue;
    const double df = df_it->second;
    const double tf = it->second;
    s += std::log(1.0 + (n - df + 0.5) / (df + 0.5)) * cnt * tf * (k1 + 1) /
         (tf + k1 * ((1 - b) + dlen * b / avg_len));
  }
  return s;
}

enum System { kQuiver, kXapianStock, kXapianQuiver, kSystems };
const char* const kSystemKey[] = {"quiver", "xapian_bm25weight", "xapian_quiver_bm25"};

struct SearchCell {
  std::vector<double> qps, others;
  std::vector<double> latency_ms;  // pooled over rounds
  Results first;                   // round 0's answers
  size_t queries_changed = 0;      // queries whose ids differ from round 0 in a later round
};

// Agreement of Quiver's top k with a Xapian scheme's (see Main's comment).
struct Agreement {
  size_t agree = 0, total = 0, queries_differing = 0, ties_counted = 0;
  // Quiver's score vs this scheme's (Quiver's weight only): where both
  // engines have the same input (the document's terms, and the document
  // frequencies of the query's terms), and elsewhere.
  double max_rel_diff_same_terms = 0, max_rel_diff_other = 0;
  size_t hits_other_terms = 0;
  nlohmann::json examples = nlohmann::json::array();
};

bool SameIds(const std::vector<ScoredDoc>& a, const std::vector<ScoredDoc>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].doc != b[i].doc) return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  CLI::App app{"text_bench: BM25 full-text search, Quiver through gRPC vs Xapian in process"};
  app.add_option("--corpus", args.corpus,
                 "decompressed Debian Translation-en (bench/README.md: text_bench)")
      ->required();
  app.add_option("--queries", args.queries, "package summaries used as queries");
  app.add_option("--seed", args.seed, "which packages' summaries (mt19937_64 seed)");
  app.add_option("--rounds", args.rounds, "interleaved search rounds (every query each)");
  app.add_option("--index-rounds", args.index_rounds, "interleaved indexing rounds");
  app.add_option("--batch", args.batch, "points per UpsertPoints");
  app.add_option("--k1", args.k1, "BM25 k1 (both engines)");
  app.add_option("--b", args.b, "BM25 b (both engines)");
  app.add_option("--xapian-k3", args.xapian_k3,
                 "BM25Weight k3: large makes its query factor (k3+1)wqf/(k3+wqf) the count");
  app.add_flag("--xapian-inmemory", args.xapian_in_memory,
               "Xapian's InMemory backend instead of an on-disk glass database");
  app.add_option("--examples", args.examples, "disagreements shown per scheme (stderr)");
  app.add_option("--durability", args.durability, "quiverd --durability");
  app.add_option("--seal-idle-ms", args.seal_idle_ms,
                 "quiverd --seal-idle-ms, part of Quiver's indexing time (0: quiverd's default)");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--tmp-dir", args.tmp_dir, "quiverd's data and the Xapian database go here");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  if (args.rounds < 1 || args.index_rounds < 1 || args.batch == 0) {
    Die("arguments", absl::InvalidArgumentError("--rounds, --index-rounds, --batch must be >= 1"));
  }
  const double t_start = NowSeconds();
  const std::string load_start = LoadAverage();
  nlohmann::json report = NewReport("text_bench", argc, argv);
  std::filesystem::create_directories(args.tmp_dir);

  auto loaded = LoadCorpus(args.corpus);
  if (!loaded.ok()) Die("load corpus", loaded.status());
  const Corpus& corpus = *loaded;
  const size_t n = corpus.docs.size();
  const std::vector<size_t> picks = PickQueries(n, args.queries, args.seed);
  const size_t nq = picks.size();
  const size_t k = args.k;

  std::printf(
      "text_bench: %s packages (%s stanzas, %zu repeated names dropped, %zu with an "
      "empty long description kept), %.1f MB of long descriptions; %zu queries (package "
      "summaries, seed %llu), OR of their terms, k=%zu; BM25 k1=%g b=%g; %d index "
      "rounds, %d search rounds, 1 client thread; %u cores; load average %s\n",
      Thousands(n).c_str(), Thousands(corpus.stanzas).c_str(), corpus.duplicates,
      corpus.empty_bodies, corpus.body_bytes / 1e6, nq, static_cast<unsigned long long>(args.seed),
      k, args.k1, args.b, args.index_rounds, args.rounds, std::thread::hardware_concurrency(),
      load_start.c_str());
  std::fflush(stdout);

  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = args.durability;
  qo.tmp_root = args.tmp_dir;
  if (args.seal_idle_ms > 0) qo.extra_args = {"--seal-idle-ms", std::to_string(args.seal_idle_ms)};
  auto started = QuiverdProcess::Launch(qo);
  if (!started.ok()) Die("start quiverd", started.status());
  std::unique_ptr<QuiverdProcess> srv = *std::move(started);
  const pid_t qpid = srv->pid();
  client::Client admin(srv->address());

  // Requests are built before the clock starts, as in the other benchmarks.
  std::vector<v1::UpsertPointsRequest> batches;
  for (size_t s = 0; s < n; s += args.batch) {
    v1::UpsertPointsRequest& up = batches.emplace_back();
    for (size_t i = s; i < std::min(n, s + args.batch); ++i) {
      v1::Point* p = up.add_points();
      p->set_id(corpus.docs[i].name);
      (*p->mutable_attributes())["body"].set_string_value(corpus.docs[i].body);
    }
  }

  // Indexing, interleaved: each round builds both from scratch, the order
  // alternating; the last round's collection and database are searched.
  const std::string xapian_dir = args.tmp_dir + "/text_bench_xapian";
  std::vector<IndexRun> qidx, xidx;
  uint64_t xapian_bytes = 0;
  Xapian::Database db;
  std::string coll;
  for (int r = 0; r < args.index_rounds; ++r) {
    for (int turn = 0; turn < 2; ++turn) {
      const bool xapian_turn = (turn == 0) == (r % 2 == 0);
      WaitQuiet(qpid);
      if (xapian_turn) {
        db = Xapian::Database();  // the previous round's, before its folder goes
        XapianBuild xb = BuildXapian(corpus, xapian_dir, args.xapian_in_memory, qpid);
        xidx.push_back(xb.run);
        xapian_bytes = xb.bytes;
        db = xb.db;
      } else {
        if (!coll.empty()) {
          if (auto s = admin.DropCollection(coll); !s.ok()) Die("drop", s);
          WaitQuiet(qpid);
        }
        coll = absl::StrCat("debian_", r);
        qidx.push_back(IndexQuiver(admin, qpid, coll, args, &batches, n));
      }
      std::fprintf(stderr, "index round %d: %s %.2f s\n", r, xapian_turn ? "xapian" : "quiver",
                   xapian_turn ? xidx.back().seconds : qidx.back().seconds);
    }
  }
  WaitQuiet(qpid);
  const MemoryInfo qmem = ReadMemory(qpid);

  const Xapian::BM25Weight stock(args.k1, 0, args.xapian_k3, args.b, 0);
  const QuiverBm25Weight aligned(args.k1, args.b);
  const Xapian::Weight* weights[kSystems] = {nullptr, &stock, &aligned};

  auto analyzer = text::Analyzer::Create(text::AnalyzerOptions{});
  if (!analyzer.ok()) Die("analyzer", analyzer.status());
  const TermCheck tc = CheckTerms(corpus, **analyzer, db, picks);
  const double quiver_avg_len = static_cast<double>(tc.quiver_words) / static_cast<double>(n);

  // Searches: one query per call, one thread, every query each round, the
  // three systems in rotating order. Xapian's timed work matches what the
  // server does for a request: analyze the text, build the OR query, match,
  // read the top k (ids as docids; the name lookup is an array index).
  std::vector<v1::SearchRequest> qreqs(nq);
  for (size_t i = 0; i < nq; ++i) {
    qreqs[i].set_collection(coll);
    qreqs[i].set_field("body");
    qreqs[i].add_texts(corpus.docs[picks[i]].summary);
    qreqs[i].set_k(static_cast<uint32_t>(k));
  }
  std::unordered_map<std::string, int64_t> id_of;
  for (size_t i = 0; i < n; ++i) id_of.emplace(corpus.docs[i].name, static_cast<int64_t>(i));
  client::Client searcher(srv->address());
  Xapian::TermGenerator query_tg = MakeTermGenerator();

  auto run_system = [&](int s, size_t calls, Results* out) {
    out->assign(calls, {});
    std::vector<v1::SearchResponse> resps(s == kQuiver ? calls : 0);
    absl::Status err;
    const double busy0 = MachineBusySeconds(false);
    const double self0 = ProcessCpuSeconds();
    const double srv0 = ProcessCpuSeconds(qpid);
    Run run = Drive(calls, 1, 0, 0, [&](size_t c, int, Run*) {
      if (s == kQuiver) {
        auto r = searcher.Search(qreqs[c]);
        if (!r.ok()) {
          err = r.status();
        } else {
          resps[c] = *std::move(r);
        }
        return;
      }
      Xapian::Enquire enq(db);
      enq.set_query(XapianQuery(query_tg, corpus.docs[picks[c]].summary));
      enq.set_weighting_scheme(*weights[s]);
      Xapian::MSet m = enq.get_mset(0, static_cast<Xapian::doccount>(k));
      std::vector<ScoredDoc>& hits = (*out)[c];
      for (auto it = m.begin(); it != m.end(); ++it) {
        hits.push_back({static_cast<int64_t>(*it) - 1, it.get_weight()});
      }
    });
    if (!err.ok()) Die("search", err);
    const double used = (ProcessCpuSeconds() - self0) + (ProcessCpuSeconds(qpid) - srv0);
    run.other_cores = std::max(0.0, (MachineBusySeconds(false) - busy0 - used) / run.seconds);
    for (size_t c = 0; c < resps.size(); ++c) {
      if (resps[c].results_size() == 0) continue;
      for (const v1::Hit& h : resps[c].results(0).hits()) {
        auto it = id_of.find(h.id());
        (*out)[c].push_back({it == id_of.end() ? -1 : it->second, h.score()});
      }
    }
    return run;
  };

  {
    // Warm-up, untimed: first calls pay for connections, caches, page-ins.
    Results scratch;
    for (int s = 0; s < kSystems; ++s) run_system(s, std::min<size_t>(nq, 100), &scratch);
  }
  // Outside the clock: quiverd's plan for every query, so the QPS below is
  // known to be its inverted index's (not a scan of an unindexed segment),
  // and how much of the posting lists block-max WAND scored.
  size_t plan_segments = 0, plan_indexed = 0;
  uint64_t postings_scored = 0;
  std::string first_plan;
  for (size_t q = 0; q < nq; ++q) {
    v1::SearchRequest req = qreqs[q];
    req.set_explain(true);
    auto r = searcher.Search(req);
    if (!r.ok()) Die("explain", r.status());
    for (const v1::SegmentPlan& sp : r->explain().segments()) {
      ++plan_segments;
      plan_indexed += sp.strategy() == "TEXT_INDEX";
      postings_scored += sp.distances();
    }
    if (q == 0) first_plan = r->explain().text();
  }
  std::fprintf(stderr, "quiverd's plan for the first query:\n%s\n", first_plan.c_str());
  const std::string xapian_name =
      absl::StrCat("Xapian ", Xapian::version_string(),
                   args.xapian_in_memory ? " InMemory" : " glass", " (in process)");
  const std::string kSystemName[] = {"Quiver (gRPC)", xapian_name, xapian_name};
  std::vector<SearchCell> cells(kSystems);
  std::vector<double> ratio_stock, ratio_aligned;
  for (int r = 0; r < args.rounds; ++r) {
    double qps[kSystems] = {};
    for (int turn = 0; turn < kSystems; ++turn) {
      const int s = (r + turn) % kSystems;
      Results res;
      const Run run = run_system(s, nq, &res);
      SearchCell& cell = cells[s];
      qps[s] = nq / run.seconds;
      cell.qps.push_back(qps[s]);
      cell.others.push_back(run.other_cores);
      cell.latency_ms.insert(cell.latency_ms.end(), run.latency_ms.begin(), run.latency_ms.end());
      if (r == 0) {
        cell.first = std::move(res);
      } else {
        for (size_t q = 0; q < nq; ++q) cell.queries_changed += !SameIds(res[q], cell.first[q]);
      }
      std::fprintf(stderr, "search round %d: %s %s %.0f QPS (other cores %.2f)\n", r,
                   kSystemName[s].c_str(), kSystemKey[s], qps[s], run.other_cores);
    }
    ratio_stock.push_back(qps[kQuiver] / qps[kXapianStock]);
    ratio_aligned.push_back(qps[kQuiver] / qps[kXapianQuiver]);
  }

  // Agreement, per Xapian scheme: a Quiver hit agrees when it is in that
  // scheme's top k, or when Xapian's own score of it reaches Xapian's k-th
  // score within a relative 1e-5 (ties at the cut make the top k
  // non-unique). Per query the denominator is the longer of the two lists,
  // so a list cut short counts against Quiver too.
  const Results& quiver = cells[kQuiver].first;
  Agreement agreement[kSystems];
  size_t empty_queries = 0, short_queries = 0;
  for (size_t q = 0; q < nq; ++q) {
    if (quiver[q].empty()) ++empty_queries;
    if (quiver[q].size() < k) ++short_queries;
  }
  double max_ref_diff = 0;  // Quiver's scores vs the reference in double
  std::vector<bool> same_df(nq, true);
  for (size_t q = 0; q < nq; ++q) {
    uint32_t len = 0;
    for (const auto& [t, cnt] : AnalyzerTerms(**analyzer, corpus.docs[picks[q]].summary, &len)) {
      auto it = tc.df.find(t);
      if ((it == tc.df.end() ? 0 : it->second) != db.get_termfreq(t)) same_df[q] = false;
    }
  }
  for (int s : {kXapianStock, kXapianQuiver}) {
    Agreement& ag = agreement[s];
    const Results& xap = cells[s].first;
    for (size_t q = 0; q < nq; ++q) {
      const std::vector<ScoredDoc>& qh = quiver[q];
      const std::vector<ScoredDoc>& xh = xap[q];
      std::vector<int64_t> docs;
      for (const ScoredDoc& h : qh) docs.push_back(h.doc);
      const Xapian::Query xq = XapianQuery(query_tg, corpus.docs[picks[q]].summary);
      const std::map<int64_t, double> xs = XapianScoresOf(db, xq, *weights[s], docs);
      std::set<int64_t> xtop;
      for (const ScoredDoc& h : xh) xtop.insert(h.doc);
      const double kth = xh.size() >= k ? xh[k - 1].score : HUGE_VAL;
      size_t agree = 0;
      std::vector<std::string> why;
      std::set<int64_t> seen;
      for (const ScoredDoc& h : qh) {
        if (!seen.insert(h.doc).second) {
          why.push_back(absl::StrCat(h.doc >= 0 ? corpus.docs[h.doc].name : "?", " (repeated)"));
          continue;
        }
        auto it = xs.find(h.doc);
        const bool scored = it != xs.end();
        if (s == kXapianQuiver && scored) {
          const double diff = std::abs(h.score - it->second) / std::max(1e-30, it->second);
          if (tc.same_terms[h.doc] && same_df[q]) {
            ag.max_rel_diff_same_terms = std::max(ag.max_rel_diff_same_terms, diff);
          } else {
            ++ag.hits_other_terms;
            ag.max_rel_diff_other = std::max(ag.max_rel_diff_other, diff);
          }
        }
        if (xtop.count(h.doc)) {
          ++agree;
        } else if (scored && it->second >= kth * (1 - 1e-5)) {
          ++agree;
          ++ag.ties_counted;
        } else {
          why.push_back(absl::StrFormat("%s (Quiver %.6g; Xapian %s; Xapian's %zu-th %.6g)",
                                        h.doc >= 0 ? corpus.docs[h.doc].name : "?", h.score,
                                        scored ? absl::StrFormat("%.6g", it->second) : "no match",
                                        k, xh.size() >= k ? kth : 0.0));
        }
      }
      const size_t total = std::max(qh.size(), xh.size());
      ag.agree += agree;
      ag.total += total;
      if (agree < total) {
        ++ag.queries_differing;
        if (static_cast<int>(ag.examples.size()) < args.examples) {
          // What Xapian ranked that Quiver did not return, with both
          // analyzers' view of those documents.
          std::set<int64_t> qset;
          for (const ScoredDoc& h : qh) qset.insert(h.doc);
          nlohmann::json missing = nlohmann::json::array();
          for (const ScoredDoc& h : xh) {
            if (qset.count(h.doc)) continue;
            uint32_t len = 0;
            const TermCounts qt = AnalyzerTerms(**analyzer, corpus.docs[h.doc].body, &len);
            const TermCounts xt = XapianDocTerms(db, static_cast<Xapian::docid>(h.doc + 1));
            missing.push_back(
                absl::StrFormat("%s (Xapian %.6g; Quiver's formula in double %.6g; terms %s)",
                                corpus.docs[h.doc].name, h.score,
                                ReferenceScore(**analyzer, tc, quiver_avg_len, args,
                                               corpus.docs[picks[q]].summary, h.doc, corpus),
                                qt == xt ? "identical" : "differ:" + TermDiff(qt, xt)));
          }
          uint32_t qlen = 0;
          const TermCounts qterms = AnalyzerTerms(**analyzer, corpus.docs[picks[q]].summary, &qlen);
          const TermCounts xterms = XapianTextTerms(query_tg, corpus.docs[picks[q]].summary);
          ag.examples.push_back({{"query", corpus.docs[picks[q]].summary},
                                 {"query_terms_identical", qterms == xterms},
                                 {"quiver_hits", qh.size()},
                                 {"xapian_hits", xh.size()},
                                 {"quiver_only", why},
                                 {"xapian_only", missing}});
        }
      }
    }
  }
  // Quiver's scores against its own formula evaluated in double over the
  // same analyzer's terms: an engine error would show here, not rounding.
  for (size_t q = 0; q < nq; ++q) {
    for (const ScoredDoc& h : quiver[q]) {
      if (h.doc < 0) continue;
      const double ref = ReferenceScore(**analyzer, tc, quiver_avg_len, args,
                                        corpus.docs[picks[q]].summary, h.doc, corpus);
      max_ref_diff = std::max(max_ref_diff, std::abs(h.score - ref) / std::max(1e-30, ref));
    }
  }
  for (int s : {kXapianStock, kXapianQuiver}) {
    for (const auto& ex : agreement[s].examples) {
      std::fprintf(stderr, "disagreement (%s): %s\n", kSystemKey[s], ex.dump(1).c_str());
    }
  }
  for (size_t i = 0; i < tc.doc_differences.size() && i < 5; ++i) {
    std::fprintf(stderr, "document terms differ: %s\n", tc.doc_differences[i].c_str());
  }
  for (const std::string& e : tc.query_examples) {
    std::fprintf(stderr, "query terms differ: %s\n", e.c_str());
  }

  // The table.
  auto median_of = [](const std::vector<IndexRun>& v, double IndexRun::*f) {
    std::vector<double> x;
    for (const IndexRun& r : v) x.push_back(r.*f);
    return Median(x);
  };
  const double q_index = median_of(qidx, &IndexRun::seconds);
  const double x_index = median_of(xidx, &IndexRun::seconds);
  const std::string kWeighting[] = {
      "BM25, Lucene idf (its own)",
      absl::StrFormat("BM25Weight(k1, k2=0, k3=%g, b, min_normlen=0): Robertson idf, below 2 "
                      "raised",
                      args.xapian_k3),
      "Quiver's BM25 (Weight subclass, Lucene idf)"};
  std::ostringstream out;
  Table t({"engine", "weighting", "index s (median)", "docs/s", "QPS (median)", "p50 ms", "p99 ms",
           "Quiver QPS / this", "top-10 agreement with Quiver", "queries with a difference",
           "other cores (median)"});
  nlohmann::json rows = nlohmann::json::array();
  for (int s = 0; s < kSystems; ++s) {
    const SearchCell& c = cells[s];
    const double idx = s == kQuiver ? q_index : x_index;
    const double ratio =
        s == kQuiver ? 1.0 : Median(s == kXapianStock ? ratio_stock : ratio_aligned);
    const Agreement& ag = agreement[s];
    const double frac = ag.total ? static_cast<double>(ag.agree) / ag.total : 1.0;
    t.AddRow({kSystemName[s], kWeighting[s], Fixed(idx, 2), Thousands(n / idx),
              Thousands(Median(c.qps)), Fixed(Percentile(c.latency_ms, 50), 3),
              Fixed(Percentile(c.latency_ms, 99), 3), Fixed(ratio, 2) + "x",
              s == kQuiver ? "-" : Fixed(100 * frac, 2) + "%",
              s == kQuiver ? "-" : absl::StrCat(ag.queries_differing, " of ", nq),
              Fixed(Median(c.others), 2)});
    nlohmann::json row = {{"system", kSystemKey[s]},
                          {"weighting", kWeighting[s]},
                          {"qps_rounds", c.qps},
                          {"qps_median", Median(c.qps)},
                          {"p50_ms", Percentile(c.latency_ms, 50)},
                          {"p99_ms", Percentile(c.latency_ms, 99)},
                          {"other_cores_rounds", c.others},
                          {"queries_changed_between_rounds", c.queries_changed}};
    if (s != kQuiver) {
      row["quiver_qps_over_this_rounds"] = s == kXapianStock ? ratio_stock : ratio_aligned;
      row["quiver_qps_over_this_median"] = ratio;
      row["agreement"] = {{"fraction", frac},
                          {"agree", ag.agree},
                          {"total", ag.total},
                          {"ties_at_kth_counted", ag.ties_counted},
                          {"queries_differing", ag.queries_differing},
                          {"examples", ag.examples}};
      if (s == kXapianQuiver) {
        row["max_rel_score_diff_vs_quiver"] = {{"same_input", ag.max_rel_diff_same_terms},
                                               {"other_input", ag.max_rel_diff_other},
                                               {"hits_with_other_input", ag.hits_other_terms}};
      }
    }
    rows.push_back(row);
  }
  t.Print(out);
  std::printf("\n%s\n", out.str().c_str());

  auto index_json = [](const std::vector<IndexRun>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const IndexRun& r : v) {
      a.push_back({{"seconds", r.seconds},
                   {"load_s", r.load_s},
                   {"finish_s", r.finish_s},
                   {"cpu_server_s", r.cpu_server_s},
                   {"cpu_self_s", r.cpu_self_s},
                   {"other_cores", r.other_cores}});
    }
    return a;
  };
  std::printf(
      "indexing (median of %d rounds): Quiver %.2f s = upserts %.2f s + until every "
      "segment INDEXED %.2f s (includes quiverd's idle time before it seals the last "
      "segment, --seal-idle-ms), quiverd CPU %.2f s, client CPU %.2f s; Xapian %.2f s "
      "= TermGenerator + add_document %.2f s + commit %.2f s, CPU %.2f s (one thread); "
      "Xapian/Quiver time %.2fx\n",
      args.index_rounds, q_index, median_of(qidx, &IndexRun::load_s),
      median_of(qidx, &IndexRun::finish_s), median_of(qidx, &IndexRun::cpu_server_s),
      median_of(qidx, &IndexRun::cpu_self_s), x_index, median_of(xidx, &IndexRun::load_s),
      median_of(xidx, &IndexRun::finish_s), median_of(xidx, &IndexRun::cpu_self_s),
      x_index / q_index);
  if (args.xapian_in_memory) {
    std::printf(
        "size: Xapian InMemory database in this process, RSS %.1f MB (text as document "
        "data, id terms, no positions); quiverd RSS %.1f MB after indexing\n",
        ReadMemory(0).rss_kb / 1024.0, qmem.rss_kb / 1024.0);
  } else {
    std::printf(
        "size: Xapian glass database %.1f MB on disk (text as document data, id terms, "
        "no positions); quiverd RSS %.1f MB after indexing\n",
        xapian_bytes / 1e6, qmem.rss_kb / 1024.0);
  }
  std::printf(
      "terms: %s of %s documents have identical (term, count) lists in both analyzers, "
      "%s identical lengths (Quiver's term count vs Xapian's doclength); words %s "
      "(Quiver) vs %s (Xapian), %.4f%% shared; average length %.4f vs %.4f; %zu of %zu "
      "queries have identical terms\n",
      Thousands(tc.docs_same_terms).c_str(), Thousands(n).c_str(),
      Thousands(tc.docs_same_length).c_str(), Thousands(tc.quiver_words).c_str(),
      Thousands(tc.xapian_words).c_str(),
      100.0 * tc.shared_words / std::max<uint64_t>(1, std::max(tc.quiver_words, tc.xapian_words)),
      quiver_avg_len, db.get_avlength(), tc.queries_same_terms, nq);
  const Agreement& al = agreement[kXapianQuiver];
  std::printf(
      "scores: Quiver's vs Xapian with Quiver's BM25, max relative difference %.2g where "
      "both analyzers give the document the same terms and the query's terms the same "
      "document frequencies, %.2g on the other %zu hits; Quiver's vs its formula in "
      "double over its own analyzer's terms %.2g; "
      "Quiver answered %zu queries with fewer than %zu hits (%zu with none)\n",
      al.max_rel_diff_same_terms, al.max_rel_diff_other, al.hits_other_terms, max_ref_diff,
      short_queries, k, empty_queries);
  std::printf(
      "plans: %zu of %zu segment searches through the text index (TEXT_INDEX), %.0f "
      "postings scored per query (explain, outside the clock)\n",
      plan_indexed, plan_segments, static_cast<double>(postings_scored) / std::max<size_t>(1, nq));
  std::printf(
      "agreement counts a Quiver hit outside Xapian's top %zu when Xapian scores it "
      "within 1e-5 of its %zu-th (ties at the cut): %zu such hits with BM25Weight, %zu "
      "with Quiver's BM25\n",
      k, k, agreement[kXapianStock].ties_counted, agreement[kXapianQuiver].ties_counted);
  std::printf(
      "answers changed between rounds: Quiver %zu, Xapian BM25Weight %zu, Xapian "
      "Quiver's BM25 %zu queries\n",
      cells[kQuiver].queries_changed, cells[kXapianStock].queries_changed,
      cells[kXapianQuiver].queries_changed);
  const double ratio = Median(ratio_aligned);
  std::printf(
      "QPS target (Quiver >= Xapian at equal results): Quiver/Xapian %.2fx, %s; "
      "agreement target (>= 99%%): %.2f%%, %s\n",
      ratio, ratio >= 1 ? "met" : "NOT met",
      100.0 * agreement[kXapianQuiver].agree / std::max<size_t>(1, agreement[kXapianQuiver].total),
      agreement[kXapianQuiver].agree >= 0.99 * agreement[kXapianQuiver].total ? "met" : "NOT met");
  std::printf("total %.0f s; load average %s at the start, %s at the end\n", NowSeconds() - t_start,
              load_start.c_str(), LoadAverage().c_str());

  report["corpus"] = {{"path", args.corpus},
                      {"documents", n},
                      {"stanzas", corpus.stanzas},
                      {"duplicates_dropped", corpus.duplicates},
                      {"empty_bodies", corpus.empty_bodies},
                      {"body_bytes", corpus.body_bytes}};
  report["queries"] = nq;
  report["seed"] = args.seed;
  report["k"] = k;
  report["bm25"] = {{"k1", args.k1}, {"b", args.b}, {"xapian_k3", args.xapian_k3}};
  report["xapian_version"] = Xapian::version_string();
  report["xapian_backend"] = args.xapian_in_memory ? "inmemory" : "glass";
  report["rows"] = rows;
  report["index"] = {{"quiver", index_json(qidx)},      {"xapian", index_json(xidx)},
                     {"quiver_median_s", q_index},      {"xapian_median_s", x_index},
                     {"xapian_db_bytes", xapian_bytes}, {"quiverd_rss_kb", qmem.rss_kb}};
  report["terms"] = {
      {"docs_same_terms", tc.docs_same_terms}, {"docs_same_length", tc.docs_same_length},
      {"quiver_words", tc.quiver_words},       {"xapian_words", tc.xapian_words},
      {"shared_words", tc.shared_words},       {"queries_same_terms", tc.queries_same_terms},
      {"doc_differences", tc.doc_differences}, {"query_examples", tc.query_examples}};
  report["plans"] = {
      {"segment_searches", plan_segments},
      {"through_text_index", plan_indexed},
      {"postings_scored_per_query", static_cast<double>(postings_scored) / std::max<size_t>(1, nq)},
      {"first_query", first_plan}};
  report["scores"] = {{"quiver_vs_reference_max_rel_diff", max_ref_diff},
                      {"quiver_short_queries", short_queries},
                      {"quiver_empty_queries", empty_queries}};
  report["load_average"] = {{"start", load_start}, {"end", LoadAverage()}};
  const std::string path = WriteReport(report, args.json_out);
  if (!path.empty()) std::printf("report: %s\n", path.c_str());

  db.close();
  if (std::getenv("QUIVER_BENCH_KEEP_TMP") == nullptr) std::filesystem::remove_all(xapian_dir);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
