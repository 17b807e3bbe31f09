// Full-text (BM25) attributes through the engine: searches against a
// brute-force BM25 over the same documents with the same analyzer and
// collection-wide statistics (growing, sealed and indexed segments,
// filters, forced scans), statistics that stay exact through overwrites,
// deletes, partial updates, compaction and restarts (scores equal to a
// fresh collection of the surviving documents), hybrid fusion with a dense
// field, an attribute added with text, and bad inputs.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "query/engine.h"
#include "query/execute/sparse_search.h"
#include "query/fusion.h"
#include "query/text/bm25_stats.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

// Words with inflections that stem together ("connect", "connected",
// "connection" -> "connect"), and stop words.
const std::vector<std::string>& Vocabulary() {
  static const auto* v = new std::vector<std::string>([] {
    std::vector<std::string> out;
    const char* stems[] = {"connect", "run", "index", "search", "vector", "store", "segment",
                           "query", "rank", "score", "merge", "filter", "build", "write",
                           "read", "crash", "disk", "memory", "graph", "point"};
    const char* ends[] = {"", "s", "ed", "ing", "er"};
    for (const char* s : stems) {
      for (const char* e : ends) out.push_back(absl::StrCat(s, e));
    }
    for (int i = 0; i < 300; ++i) out.push_back(absl::StrCat("w", i, "x"));
    for (const char* w : {"the", "a", "of", "and", "is"}) out.push_back(w);
    return out;
  }());
  return *v;
}

struct Doc {
  std::string body;  // empty: no value
  int64_t cat = 0;
};

class TextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text::AnalyzerOptions o;
    analyzer_ = *text::Analyzer::Create(o);
    Reopen();
  }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    o.collection.segment_max_rows = 400;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }

  static v1::CreateCollectionRequest Schema(const std::string& name) {
    v1::CreateCollectionRequest req;
    req.set_name(name);
    *req.mutable_schema()->add_vectors() = VectorField("v", 2, v1::L2);
    v1::AttributeField body = Attribute("body", v1::STRING);
    body.mutable_text()->set_language("english");
    *req.mutable_schema()->add_attributes() = body;
    v1::AttributeField cat = Attribute("cat", v1::INT64);
    cat.set_indexed(true);
    *req.mutable_schema()->add_attributes() = cat;
    return req;
  }

  void Create(Engine* e, const std::string& name) {
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(e->CreateCollection(Schema(name), &resp));
  }

  std::string RandomText(size_t min_words, size_t max_words) {
    std::uniform_real_distribution<double> u(0, 1);
    const size_t n = std::uniform_int_distribution<size_t>(min_words, max_words)(rng_);
    std::vector<std::string> words;
    const auto& vocab = Vocabulary();
    for (size_t i = 0; i < n; ++i) {
      words.push_back(vocab[static_cast<size_t>(std::pow(vocab.size(), u(rng_))) - 1]);
    }
    return absl::StrJoin(words, u(rng_) < 0.5 ? " " : ", ");
  }

  Doc RandomDoc() {
    Doc d;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) > 0.08) d.body = RandomText(0, 40);
    d.cat = static_cast<int64_t>(rng_() % 4);
    return d;
  }

  absl::Status Upsert(Engine* e, const std::string& coll, const std::vector<std::string>& ids,
                      const std::map<std::string, Doc>& docs) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    for (const std::string& id : ids) {
      const Doc& d = docs.at(id);
      v1::Point* p = req.add_points();
      p->set_id(id);
      (*p->mutable_vectors())["v"].add_values(static_cast<float>(d.cat));
      (*p->mutable_vectors())["v"].add_values(static_cast<float>(id.size()));
      if (!d.body.empty() || rng_() % 2) {  // an empty string is a value too
        (*p->mutable_attributes())["body"].set_string_value(d.body);
      }
      (*p->mutable_attributes())["cat"].set_int_value(d.cat);
    }
    v1::UpsertPointsResponse resp;
    return e->Upsert(req, &resp);
  }

  void Fill(size_t n) {
    std::vector<std::string> batch;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = absl::StrCat("d", i);
      docs_[id] = RandomDoc();
      batch.push_back(id);
      if (batch.size() == 250) {
        QUIVER_ASSERT_OK(Upsert(engine_.get(), "t", batch, docs_));
        batch.clear();
      }
    }
    if (!batch.empty()) QUIVER_ASSERT_OK(Upsert(engine_.get(), "t", batch, docs_));
  }

  // BM25 over docs_ as documented: Lucene's IDF over the documents with a
  // value, q = idf x count in the query, summed in ascending term id.
  std::vector<std::pair<float, std::string>> Truth(const std::string& query,
                                                   const std::set<int64_t>& cats) {
    std::map<std::string, text::Analyzer::TermCounts> tf;
    uint64_t total = 0;
    std::map<uint64_t, uint32_t> df;
    for (const auto& [id, d] : docs_) {
      if (d.body.empty()) continue;  // no value, or an empty one: no terms either way
      tf[id] = analyzer_->TermFrequencies(d.body);
      total += tf[id].length;
      for (const auto& [t, n] : tf[id].terms) ++df[t];
    }
    // Points whose body is "" count as documents of length 0; the test's
    // Upsert gives some of them the value, so count those the server holds.
    const text::Analyzer::TermCounts q = analyzer_->TermFrequencies(query);
    SparseScoring s;
    s.kind = SparseScoring::kBm25;
    const uint64_t docs = DocsWithValue();
    s.avg_doc_len = docs == 0 ? 1.f : static_cast<float>(static_cast<double>(total) / docs);
    if (s.avg_doc_len <= 0) s.avg_doc_len = 1.f;
    const Bm25Term score(s);
    std::vector<std::pair<uint64_t, float>> qw;
    for (const auto& [t, n] : q.terms) {
      if (df[t] == 0) continue;
      qw.push_back({t, static_cast<float>(Bm25Idf(docs, df[t]) * n)});
    }
    std::vector<std::pair<float, std::string>> out;
    for (const auto& [id, counts] : tf) {
      if (!cats.empty() && !cats.contains(docs_[id].cat)) continue;
      float total_score = 0;
      bool hit = false;
      for (const auto& [t, w] : qw) {
        for (const auto& [dt, n] : counts.terms) {
          if (dt != t) continue;
          total_score += score(w, static_cast<float>(n), counts.length);
          hit = true;
        }
      }
      if (hit) out.push_back({total_score, id});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    return out;
  }

  // How many points have a body value, as the server counts them.
  uint64_t DocsWithValue() {
    v1::CountPointsRequest req;
    req.set_collection("t");
    req.set_filter("body IS NOT NULL");
    v1::CountPointsResponse resp;
    EXPECT_TRUE(engine_->CountPoints(req, &resp).ok());
    return resp.count();
  }

  v1::SearchRequest TextQuery(const std::string& coll, const std::string& q, uint32_t k,
                              const std::string& filter = "", bool exact = false) {
    v1::SearchRequest req;
    req.set_collection(coll);
    req.set_field("body");
    req.set_k(k);
    req.set_filter(filter);
    req.mutable_params()->set_exact(exact);
    req.add_texts(q);
    return req;
  }

  void CheckAgainstBruteForce(const std::string& when) {
    for (int round = 0; round < 20; ++round) {
      const std::string q = RandomText(1, 6);
      const uint32_t k = std::vector<uint32_t>{1, 10, 100, 5000}[round % 4];
      const bool filtered = round % 3 == 1;
      const std::set<int64_t> cats = filtered ? std::set<int64_t>{0, 3} : std::set<int64_t>{};
      v1::SearchResponse resp;
      QUIVER_ASSERT_OK(engine_->Search(TextQuery("t", q, k, filtered ? "cat IN (0, 3)" : "",
                                                 round % 5 == 4),
                                       absl::InfiniteFuture(), &resp));
      const auto truth = Truth(q, cats);
      const size_t want = std::min<size_t>(k, truth.size());
      const std::string ctx = absl::StrCat(when, " round ", round, " query \"", q, "\" k ", k);
      const v1::SearchResult& r = resp.results(0);
      ASSERT_EQ(static_cast<size_t>(r.hits_size()), want) << ctx;
      EXPECT_TRUE(r.exhaustive()) << ctx;
      std::map<std::string, float> own;
      for (const auto& [s, id] : truth) own[id] = s;
      for (size_t i = 0; i < want; ++i) {
        const v1::Hit& h = r.hits(static_cast<int>(i));
        EXPECT_NEAR(h.score(), truth[i].first, 1e-4f * std::max(1.0f, truth[i].first))
            << ctx << " rank " << i;
        ASSERT_TRUE(own.contains(h.id())) << ctx << " " << h.id();
        EXPECT_NEAR(h.score(), own[h.id()], 1e-4f * std::max(1.0f, own[h.id()])) << ctx;
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<text::Analyzer> analyzer_;
  std::mt19937 rng_{7};
  std::map<std::string, Doc> docs_;
};

TEST_F(TextTest, SearchesMatchBruteForceBm25InEverySegmentState) {
  Create(engine_.get(), "t");
  Fill(1500);
  CheckAgainstBruteForce("while building");
  engine_->SealAndWaitForIndexes();
  CheckAgainstBruteForce("indexed");
  // Stemming: "connections" finds "connected"; explain shows the index.
  v1::SearchRequest req = TextQuery("t", "Connections RUNNING", 5);
  req.set_explain(true);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  ASSERT_GT(resp.results(0).hits_size(), 0);
  EXPECT_NE(resp.explain().text().find("TextIndexSearch(k=5"), std::string::npos)
      << resp.explain().text();
  // A query of punctuation only has no term: no hit.
  v1::SearchResponse none;
  QUIVER_ASSERT_OK(engine_->Search(TextQuery("t", "... !!", 5), absl::InfiniteFuture(), &none));
  EXPECT_EQ(none.results(0).hits_size(), 0);
}

TEST_F(TextTest, StatisticsStayExactThroughWritesCompactionAndRestart) {
  Create(engine_.get(), "t");
  Fill(1200);
  engine_->SealAndWaitForIndexes();
  std::vector<std::string> over;
  for (size_t i = 50; i < 250; ++i) {
    const std::string id = absl::StrCat("d", i);
    docs_[id] = RandomDoc();
    over.push_back(id);
  }
  QUIVER_ASSERT_OK(Upsert(engine_.get(), "t", over, docs_));
  v1::DeletePointsRequest del;
  del.set_collection("t");
  for (size_t i = 250; i < 400; ++i) {
    if (i % 4 != 0) {
      del.add_ids(absl::StrCat("d", i));
      docs_.erase(absl::StrCat("d", i));
    }
  }
  v1::DeletePointsResponse dresp;
  QUIVER_ASSERT_OK(engine_->Delete(del, &dresp));
  v1::UpdatePointsRequest upd;
  upd.set_collection("t");
  for (size_t i = 600; i < 640; ++i) {
    const std::string id = absl::StrCat("d", i);
    v1::PointUpdate* u = upd.add_updates();
    u->set_id(id);
    if (i % 2) {
      u->add_remove_attributes("body");
      docs_[id].body.clear();
    } else {
      docs_[id].body = RandomText(3, 10);
      (*u->mutable_set_attributes())["body"].set_string_value(docs_[id].body);
    }
  }
  v1::UpdatePointsResponse uresp;
  QUIVER_ASSERT_OK(engine_->Update(upd, &uresp));
  CheckAgainstBruteForce("after writes");
  // Compaction (the first segments are mostly deleted), then restart.
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  v1::GetCollectionRequest get;
  get.set_name("t");
  v1::GetCollectionResponse info;
  for (;;) {
    engine_->SealAndWaitForIndexes();
    QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
    if (info.collection().stats().deleted_count() < 200) break;
    ASSERT_LT(absl::Now(), give_up) << info.DebugString();
    absl::SleepFor(absl::Milliseconds(50));
  }
  CheckAgainstBruteForce("after compaction");
  Reopen();
  CheckAgainstBruteForce("after restart");

  // A fresh collection of the surviving documents scores every query alike.
  TempDir fresh_dir;
  EngineOptions o;
  o.data_dir = fresh_dir.path();
  auto fresh = Engine::Open(o);
  ASSERT_TRUE(fresh.ok());
  Create(fresh->get(), "t");
  // The same values (an empty body and a missing one differ), by GetPoints.
  v1::ScrollPointsRequest scroll;
  scroll.set_collection("t");
  scroll.set_page_size(10000);
  v1::ScrollPointsResponse page;
  QUIVER_ASSERT_OK(engine_->ScrollPoints(scroll, &page));
  v1::UpsertPointsRequest copy;
  copy.set_collection("t");
  for (v1::Point p : page.points()) {
    (*p.mutable_vectors())["v"].add_values(0);
    (*p.mutable_vectors())["v"].add_values(0);
    *copy.add_points() = std::move(p);
  }
  v1::UpsertPointsResponse cresp;
  QUIVER_ASSERT_OK((*fresh)->Upsert(copy, &cresp));
  for (int round = 0; round < 10; ++round) {
    const std::string q = RandomText(1, 5);
    v1::SearchResponse a, b;
    QUIVER_ASSERT_OK(engine_->Search(TextQuery("t", q, 20), absl::InfiniteFuture(), &a));
    QUIVER_ASSERT_OK((*fresh)->Search(TextQuery("t", q, 20), absl::InfiniteFuture(), &b));
    ASSERT_EQ(a.results(0).hits_size(), b.results(0).hits_size()) << q;
    for (int i = 0; i < a.results(0).hits_size(); ++i) {
      EXPECT_NEAR(a.results(0).hits(i).score(), b.results(0).hits(i).score(), 1e-4) << q;
    }
  }
}

TEST_F(TextTest, HybridWithDenseAndAddedTextAttribute) {
  Create(engine_.get(), "t");
  Fill(500);
  v1::SearchRequest req;
  req.set_collection("t");
  req.set_k(5);
  req.set_fusion(v1::RRF);
  req.set_with_field_results(true);
  v1::FieldQuery* a = req.add_field_queries();
  a->set_field("body");
  a->set_text("search index");
  v1::FieldQuery* b = req.add_field_queries();
  b->set_field("v");
  b->mutable_vector()->add_values(1);
  b->mutable_vector()->add_values(3);
  v1::SearchResponse resp;
  QUIVER_ASSERT_OK(engine_->Search(req, absl::InfiniteFuture(), &resp));
  ASSERT_EQ(resp.field_results_size(), 2);
  EXPECT_EQ(resp.field_results(0).field(), "body");
  EXPECT_GT(resp.field_results(0).hits_size(), 0);
  EXPECT_EQ(resp.results(0).hits_size(), 5);

  // A text attribute added later: older points have no value.
  v1::UpdateCollectionRequest add;
  add.set_name("t");
  v1::AttributeField title = Attribute("title", v1::STRING);
  title.mutable_text()->set_language("french");
  *add.add_attributes() = title;
  v1::UpdateCollectionResponse aresp;
  QUIVER_ASSERT_OK(engine_->UpdateCollection(add, &aresp));
  v1::UpdatePointsRequest upd;
  upd.set_collection("t");
  v1::PointUpdate* u = upd.add_updates();
  u->set_id("d3");
  (*u->mutable_set_attributes())["title"].set_string_value("Les chevaux");
  v1::UpdatePointsResponse uresp;
  QUIVER_ASSERT_OK(engine_->Update(upd, &uresp));
  for (int restart = 0; restart < 2; ++restart) {
    v1::SearchRequest t;
    t.set_collection("t");
    t.set_field("title");
    t.set_k(3);
    t.add_texts("cheval");  // the French stemmer joins them
    v1::SearchResponse titled;
    QUIVER_ASSERT_OK(engine_->Search(t, absl::InfiniteFuture(), &titled));
    ASSERT_EQ(titled.results(0).hits_size(), 1) << titled.DebugString();
    EXPECT_EQ(titled.results(0).hits(0).id(), "d3");
    Reopen();
  }
}

TEST_F(TextTest, BadInputsAreRefused) {
  using Code = absl::StatusCode;
  v1::CreateCollectionResponse cresp;
  v1::CreateCollectionRequest bad = Schema("b");
  bad.mutable_schema()->mutable_attributes(0)->mutable_text()->set_language("klingon");
  EXPECT_THAT(engine_->CreateCollection(bad, &cresp),
              StatusIs(Code::kInvalidArgument, "attribute \"body\""));
  bad = Schema("b");
  bad.mutable_schema()->mutable_attributes(1)->mutable_text();
  EXPECT_THAT(engine_->CreateCollection(bad, &cresp),
              StatusIs(Code::kInvalidArgument, "text needs a STRING attribute"));
  bad = Schema("b");
  bad.mutable_schema()->mutable_attributes(0)->mutable_text()->set_b(1.5f);
  EXPECT_THAT(engine_->CreateCollection(bad, &cresp),
              StatusIs(Code::kInvalidArgument, "b must be in [0, 1]"));
  Create(engine_.get(), "t");
  Fill(20);
  v1::SearchResponse resp;
  v1::SearchRequest q = TextQuery("t", "run", 3);
  q.set_field("cat");
  EXPECT_THAT(engine_->Search(q, absl::InfiniteFuture(), &resp),
              StatusIs(Code::kInvalidArgument, "no text attribute \"cat\""));
  q = TextQuery("t", "run", 3);
  q.add_vectors()->add_values(1);
  EXPECT_THAT(engine_->Search(q, absl::InfiniteFuture(), &resp),
              StatusIs(Code::kInvalidArgument, "not several"));
  q = TextQuery("t", "run", 3);
  q.set_min_results(1);
  EXPECT_THAT(engine_->Search(q, absl::InfiniteFuture(), &resp),
              StatusIs(Code::kInvalidArgument, "text search"));
  // An attribute cannot become text, nor change its options.
  v1::UpdateCollectionRequest u;
  u.set_name("t");
  v1::AttributeField cat = Attribute("cat", v1::INT64);
  cat.mutable_text();
  *u.add_attributes() = cat;
  v1::UpdateCollectionResponse uresp;
  EXPECT_THAT(engine_->UpdateCollection(u, &uresp),
              StatusIs(Code::kFailedPrecondition, "cannot become one"));
  u.clear_attributes();
  v1::AttributeField body = Attribute("body", v1::STRING);
  body.mutable_text()->set_language("german");
  *u.add_attributes() = body;
  EXPECT_THAT(engine_->UpdateCollection(u, &uresp),
              StatusIs(Code::kFailedPrecondition, "cannot change"));
  CheckAgainstBruteForce("after bad inputs");
}

}  // namespace
}  // namespace quiver
