// ScrollPoints and UpdatePoints at the engine: keyset pages in id order
// from one view each (complete and without repeats while writes go on),
// their options and refusals, and partial updates (each change, the
// all-or-nothing batch, NOT_FOUND, upsert, reopen, DISK fields whose
// vectors the merge reads from a rerank table).
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "query/bind/point_binder.h"
#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 8;

std::vector<float> Vec(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(kDim);
  for (float& x : v) x = g(rng);
  return v;
}

std::vector<float> Values(const v1::Vector& v) { return {v.values().begin(), v.values().end()}; }

class PointsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.collection.segment_max_rows = 64;
    options_.seal_idle = absl::Milliseconds(20);
    Reopen();
  }

  void Reopen() {
    engine_.reset();
    EngineOptions o = options_;
    o.data_dir = dir_.path();
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
  }

  absl::Status Create(const std::string& name, bool disk = false) {
    v1::CreateCollectionRequest req;
    req.set_name(name);
    v1::VectorField* v = req.mutable_schema()->add_vectors();
    *v = VectorField("v", kDim);
    if (disk) {
      v->set_storage(v1::DISK);
      v->mutable_index()->set_type("IVF_SQ8");
    }
    *req.mutable_schema()->add_vectors() = VectorField("c", kDim, v1::COSINE);
    *req.mutable_schema()->add_attributes() = Attribute("n", v1::INT64);
    *req.mutable_schema()->add_attributes() = Attribute("tag", v1::STRING);
    v1::CreateCollectionResponse resp;
    return engine_->CreateCollection(req, &resp);
  }

  static v1::Point Point(const std::string& id, uint32_t seed, int64_t n) {
    v1::Point p;
    p.set_id(id);
    const std::vector<float> v = Vec(seed), c = Vec(seed + 7919);
    (*p.mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
    (*p.mutable_vectors())["c"].mutable_values()->Add(c.begin(), c.end());
    (*p.mutable_attributes())["n"].set_int_value(n);
    (*p.mutable_attributes())["tag"].set_string_value(absl::StrCat("t", n % 3));
    return p;
  }

  absl::Status Upsert(const std::string& coll, const std::vector<v1::Point>& pts) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    for (const auto& p : pts) *req.add_points() = p;
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  // "p0000".."p<n-1>", point i with seed i and n = i.
  absl::Status Fill(const std::string& coll, int n, const std::string& prefix = "p") {
    std::vector<v1::Point> pts;
    for (int i = 0; i < n; ++i) pts.push_back(Point(absl::StrFormat("%s%04d", prefix, i), i, i));
    return Upsert(coll, pts);
  }

  absl::StatusOr<v1::ScrollPointsResponse> Page(v1::ScrollPointsRequest req) {
    v1::ScrollPointsResponse resp;
    absl::Status s = engine_->ScrollPoints(req, &resp);
    if (!s.ok()) return s;
    return resp;
  }

  // Every page of a scroll; fails the test on an error.
  std::vector<v1::Point> ScrollAll(v1::ScrollPointsRequest req, int* pages = nullptr) {
    std::vector<v1::Point> all;
    for (int n = 0;; ++n) {
      absl::StatusOr<v1::ScrollPointsResponse> page = Page(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return all;
      all.insert(all.end(), page->points().begin(), page->points().end());
      if (page->next_cursor().empty()) {
        if (pages != nullptr) *pages = n + 1;
        return all;
      }
      req.set_cursor(page->next_cursor());
    }
  }

  absl::StatusOr<v1::UpdatePointsResponse> Update(const v1::UpdatePointsRequest& req) {
    v1::UpdatePointsResponse resp;
    absl::Status s = engine_->Update(req, &resp);
    if (!s.ok()) return s;
    return resp;
  }

  std::map<std::string, v1::Point> Get(const std::string& coll, std::vector<std::string> ids) {
    v1::GetPointsRequest req;
    req.set_collection(coll);
    req.set_with_vectors(true);
    for (auto& id : ids) req.add_ids(id);
    v1::GetPointsResponse resp;
    EXPECT_TRUE(engine_->GetPoints(req, &resp).ok());
    std::map<std::string, v1::Point> out;
    for (const auto& p : resp.points()) out[p.id()] = p;
    return out;
  }

  TempDir dir_;
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(PointsApiTest, ScrollPagesEveryPointInIdOrder) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 500));
  engine_->SealAndWaitForIndexes();
  v1::ScrollPointsRequest req;
  req.set_collection("c");
  req.set_page_size(37);
  req.set_with_vectors(true);
  int pages = 0;
  const std::vector<v1::Point> all = ScrollAll(req, &pages);
  ASSERT_EQ(all.size(), 500u);
  EXPECT_EQ(pages, 14);  // 13 full pages and one of 19
  for (int i = 0; i < 500; ++i) {
    const v1::Point want = Point(absl::StrFormat("p%04d", i), i, i);
    EXPECT_EQ(all[i].id(), want.id());
    EXPECT_EQ(all[i].attributes().at("n").int_value(), i);
    EXPECT_EQ(all[i].attributes().at("tag").string_value(), absl::StrCat("t", i % 3));
    EXPECT_EQ(Values(all[i].vectors().at("v")), Values(want.vectors().at("v")));
  }
  // The default page and an empty collection.
  req.set_page_size(0);
  absl::StatusOr<v1::ScrollPointsResponse> first = Page(req);
  QUIVER_ASSERT_OK(first);
  EXPECT_EQ(first->points_size(), static_cast<int>(kDefaultScrollPageSize));
  QUIVER_ASSERT_OK(Create("empty"));
  req.set_collection("empty");
  absl::StatusOr<v1::ScrollPointsResponse> none = Page(req);
  QUIVER_ASSERT_OK(none);
  EXPECT_EQ(none->points_size(), 0);
  EXPECT_TRUE(none->next_cursor().empty());
}

TEST_F(PointsApiTest, ScrollFilterAttributesAndVectors) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 300));
  v1::ScrollPointsRequest req;
  req.set_collection("c");
  req.set_filter("n >= 100 AND tag = \"t1\"");
  req.add_attributes("n");
  req.set_page_size(10);
  const std::vector<v1::Point> all = ScrollAll(req);
  std::vector<int64_t> got;
  for (const auto& p : all) {
    EXPECT_EQ(p.attributes_size(), 1);
    EXPECT_EQ(p.vectors_size(), 0);
    got.push_back(p.attributes().at("n").int_value());
  }
  std::vector<int64_t> want;
  for (int i = 100; i < 300; ++i) {
    if (i % 3 == 1) want.push_back(i);
  }
  EXPECT_EQ(got, want);
}

TEST_F(PointsApiTest, ScrollRefusesBadRequests) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Create("d"));
  QUIVER_ASSERT_OK(Fill("c", 20));
  QUIVER_ASSERT_OK(Fill("d", 20));
  v1::ScrollPointsRequest req;
  req.set_collection("c");
  req.set_page_size(kMaxScrollPageSize + 1);
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "page_size must be at most"));
  req.set_page_size(5);
  for (const std::string bad : {"garbage!", "AAAA", "not a cursor at all", "QUJDREVGR0hJSktM"}) {
    req.set_cursor(bad);
    EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "cursor is malformed"))
        << bad;
  }
  req.set_collection("d");
  req.clear_cursor();
  absl::StatusOr<v1::ScrollPointsResponse> d = Page(req);
  QUIVER_ASSERT_OK(d);
  req.set_collection("c");
  req.set_cursor(d->next_cursor());
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "another collection"));
  // One byte changed is caught by the checksum.
  std::string tampered = d->next_cursor();
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  req.set_collection("d");
  req.set_cursor(tampered);
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "malformed"));
  req.clear_cursor();
  req.set_filter("n <");
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.clear_filter();
  req.add_attributes("nope");
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "nope"));
  req.set_collection("missing");
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kNotFound));
  // A collection dropped and created again refuses the old one's cursors.
  v1::DropCollectionRequest drop;
  drop.set_name("d");
  v1::DropCollectionResponse dropped;
  QUIVER_ASSERT_OK(engine_->DropCollection(drop, &dropped));
  QUIVER_ASSERT_OK(Create("d"));
  QUIVER_ASSERT_OK(Fill("d", 20));
  req.set_collection("d");
  req.clear_attributes();
  req.set_cursor(d->next_cursor());
  EXPECT_THAT(Page(req), StatusIs(absl::StatusCode::kInvalidArgument, "another collection"));
}

TEST_F(PointsApiTest, ScrollPageStopsAtTheResponseLimit) {
  options_.collection.max_response_bytes = 2000;  // a few points with vectors
  Reopen();
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 100));
  v1::ScrollPointsRequest req;
  req.set_collection("c");
  req.set_page_size(100);
  req.set_with_vectors(true);
  int pages = 0;
  const std::vector<v1::Point> all = ScrollAll(req, &pages);
  ASSERT_EQ(all.size(), 100u);
  EXPECT_GT(pages, 5);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id(), all[i].id());
}

// Keyset pagination's promise, with writers going on between and during
// pages (and segments sealed and compacted under it): every point that
// exists throughout comes exactly once, nothing comes twice, ids ascend.
TEST_F(PointsApiTest, ScrollUnderConcurrentWritesIsCompleteWithoutRepeats) {
  options_.collection.segment_max_rows = 50;
  options_.seal_idle = absl::Milliseconds(5);
  Reopen();
  QUIVER_ASSERT_OK(Create("c"));
  // Stable points "s0000".."s1999" interleave in id order with churned ones.
  QUIVER_ASSERT_OK(Fill("c", 2000, "s"));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937 rng(11);
    for (uint32_t round = 0; !stop.load(); ++round) {
      std::vector<v1::Point> pts;
      std::set<uint32_t> picked;  // ids once per request
      while (picked.size() < 20) picked.insert(rng() % 2000);
      for (uint32_t j : picked) pts.push_back(Point(absl::StrFormat("s%04d-x", j), round, j));
      // Overwrites of stable points keep them existing (a new version).
      const int s = static_cast<int>(rng() % 2000);
      pts.push_back(Point(absl::StrFormat("s%04d", s), s, s));
      ASSERT_TRUE(Upsert("c", pts).ok());
      v1::DeletePointsRequest del;
      del.set_collection("c");
      for (int j = 0; j < 15; ++j) del.add_ids(absl::StrFormat("s%04d-x", rng() % 2000));
      v1::DeletePointsResponse resp;
      ASSERT_TRUE(engine_->Delete(del, &resp).ok());
    }
  });
  for (int run = 0; run < 3; ++run) {
    v1::ScrollPointsRequest req;
    req.set_collection("c");
    req.set_page_size(29);
    const std::vector<v1::Point> all = ScrollAll(req);
    std::set<std::string> stable;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i > 0) ASSERT_LT(all[i - 1].id(), all[i].id()) << "run " << run;
      if (all[i].id().size() == 5) stable.insert(all[i].id());
    }
    EXPECT_EQ(stable.size(), 2000u) << "run " << run;
  }
  stop = true;
  writer.join();
}

TEST_F(PointsApiTest, UpdateSetsRemovesAndReplaces) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 200));
  engine_->SealAndWaitForIndexes();
  const std::map<std::string, v1::Point> before = Get("c", {"p0003", "p0150"});
  const std::vector<float> nv = Vec(424242);
  v1::UpdatePointsRequest req;
  req.set_collection("c");
  v1::PointUpdate* a = req.add_updates();
  a->set_id("p0003");
  (*a->mutable_set_attributes())["tag"].set_string_value("new");
  a->add_remove_attributes("n");
  v1::PointUpdate* b = req.add_updates();
  b->set_id("p0150");
  (*b->mutable_vectors())["v"].mutable_values()->Add(nv.begin(), nv.end());
  absl::StatusOr<v1::UpdatePointsResponse> resp = Update(req);
  QUIVER_ASSERT_OK(resp);
  EXPECT_EQ(resp->updated_count(), 2u);
  EXPECT_EQ(resp->created_count(), 0u);

  std::map<std::string, v1::Point> got = Get("c", {"p0003", "p0150"});
  EXPECT_EQ(got["p0003"].attributes().at("tag").string_value(), "new");
  EXPECT_FALSE(got["p0003"].attributes().contains("n"));
  EXPECT_EQ(Values(got["p0003"].vectors().at("v")), Values(before.at("p0003").vectors().at("v")));
  EXPECT_EQ(Values(got["p0150"].vectors().at("v")), nv);
  EXPECT_EQ(Values(got["p0150"].vectors().at("c")), Values(before.at("p0150").vectors().at("c")));
  EXPECT_EQ(got["p0150"].attributes().at("n").int_value(), 150);

  v1::SearchRequest s;
  s.set_collection("c");
  s.set_field("v");
  s.set_k(1);
  s.add_vectors()->mutable_values()->Add(nv.begin(), nv.end());
  v1::SearchResponse sr;
  QUIVER_ASSERT_OK(engine_->Search(s, StopToken(), &sr));
  ASSERT_EQ(sr.results(0).hits_size(), 1);
  EXPECT_EQ(sr.results(0).hits(0).id(), "p0150");
  EXPECT_EQ(sr.results(0).hits(0).score(), 0.0f);
  v1::CountPointsRequest cr;
  cr.set_collection("c");
  cr.set_filter("tag = \"new\"");
  v1::CountPointsResponse cnt;
  QUIVER_ASSERT_OK(engine_->CountPoints(cr, &cnt));
  EXPECT_EQ(cnt.count(), 1u);
  cr.clear_filter();
  QUIVER_ASSERT_OK(engine_->CountPoints(cr, &cnt));
  EXPECT_EQ(cnt.count(), 200u);

  // Survives a reopen (recovery from RocksDB).
  Reopen();
  got = Get("c", {"p0003", "p0150"});
  EXPECT_EQ(got["p0003"].attributes().at("tag").string_value(), "new");
  EXPECT_FALSE(got["p0003"].attributes().contains("n"));
  EXPECT_EQ(Values(got["p0150"].vectors().at("v")), nv);
}

TEST_F(PointsApiTest, UpdateIsAllOrNothing) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 50));
  const std::map<std::string, v1::Point> before = Get("c", {"p0001", "p0002"});
  auto batch = [](const std::string& second_id) {
    v1::UpdatePointsRequest req;
    req.set_collection("c");
    v1::PointUpdate* a = req.add_updates();
    a->set_id("p0001");
    (*a->mutable_set_attributes())["n"].set_int_value(-1);
    v1::PointUpdate* b = req.add_updates();
    b->set_id(second_id);
    (*b->mutable_set_attributes())["n"].set_int_value(-2);
    return req;
  };
  EXPECT_THAT(Update(batch("zzz")), StatusIs(absl::StatusCode::kNotFound, "\"zzz\""));
  v1::UpdatePointsRequest bad = batch("p0002");
  (*bad.mutable_updates(1)->mutable_vectors())["v"].add_values(1.0f);  // wrong dimension
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "update 1"));
  bad = batch("p0002");
  (*bad.mutable_updates(1)->mutable_set_attributes())["tag"].set_int_value(3);
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "expected STRING"));
  bad = batch("p0001");
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "more than once"));
  bad = batch("p0002");
  bad.mutable_updates(1)->add_remove_attributes("n");
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "both set and removed"));
  bad = batch("p0002");
  bad.mutable_updates(1)->mutable_set_attributes()->clear();
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "changes nothing"));
  bad = batch("p0002");
  (*bad.mutable_updates(1)->mutable_vectors())["nope"].add_values(1.0f);
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kInvalidArgument, "no vector field"));
  bad.set_collection("missing");
  EXPECT_THAT(Update(bad), StatusIs(absl::StatusCode::kNotFound));
  const std::map<std::string, v1::Point> after = Get("c", {"p0001", "p0002"});
  for (const auto& [id, p] : before) EXPECT_EQ(after.at(id).DebugString(), p.DebugString());
  // And the good batch applies whole.
  QUIVER_ASSERT_OK(Update(batch("p0002")));
  std::map<std::string, v1::Point> now = Get("c", {"p0001", "p0002"});
  EXPECT_EQ(now["p0001"].attributes().at("n").int_value(), -1);
  EXPECT_EQ(now["p0002"].attributes().at("n").int_value(), -2);
}

TEST_F(PointsApiTest, UpdateWithUpsertCreatesMissingPoints) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 5));
  const v1::Point full = Point("new1", 77, 77);
  v1::UpdatePointsRequest req;
  req.set_collection("c");
  req.set_upsert(true);
  v1::PointUpdate* u = req.add_updates();
  u->set_id("new1");
  *u->mutable_vectors() = full.vectors();
  (*u->mutable_set_attributes())["n"].set_int_value(5);
  v1::PointUpdate* e = req.add_updates();
  e->set_id("p0001");
  (*e->mutable_set_attributes())["n"].set_int_value(6);
  absl::StatusOr<v1::UpdatePointsResponse> resp = Update(req);
  QUIVER_ASSERT_OK(resp);
  EXPECT_EQ(resp->created_count(), 1u);
  EXPECT_EQ(resp->updated_count(), 1u);
  std::map<std::string, v1::Point> got = Get("c", {"new1"});
  EXPECT_EQ(got["new1"].attributes().at("n").int_value(), 5);
  EXPECT_FALSE(got["new1"].attributes().contains("tag"));
  EXPECT_EQ(Values(got["new1"].vectors().at("v")), Values(full.vectors().at("v")));
  // Creating needs every vector field.
  req.mutable_updates(0)->set_id("new2");
  req.mutable_updates(0)->mutable_vectors()->erase("c");
  EXPECT_THAT(Update(req), StatusIs(absl::StatusCode::kInvalidArgument, "needs vector field \"c\""));
  EXPECT_TRUE(Get("c", {"new2"}).empty());
}

// The merge reads the vectors a point keeps from where its segment holds
// them: for a DISK field, once sealed, the rerank table.
TEST_F(PointsApiTest, UpdateKeepsDiskVectorsBitForBit) {
  QUIVER_ASSERT_OK(Create("d", /*disk=*/true));
  QUIVER_ASSERT_OK(Fill("d", 300));
  engine_->SealAndWaitForIndexes();
  v1::UpdatePointsRequest req;
  req.set_collection("d");
  for (int i = 0; i < 300; i += 7) {
    v1::PointUpdate* u = req.add_updates();
    u->set_id(absl::StrFormat("p%04d", i));
    (*u->mutable_set_attributes())["tag"].set_string_value("upd");
  }
  QUIVER_ASSERT_OK(Update(req));
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 300; i += 7) {
      const std::string id = absl::StrFormat("p%04d", i);
      const v1::Point want = Point(id, i, i);
      std::map<std::string, v1::Point> got = Get("d", {id});
      ASSERT_EQ(got.count(id), 1u);
      EXPECT_EQ(got[id].attributes().at("tag").string_value(), "upd");
      EXPECT_EQ(Values(got[id].vectors().at("v")), Values(want.vectors().at("v"))) << id;
    }
    engine_->SealAndWaitForIndexes();
    Reopen();
  }
}

// COSINE vectors come back normalized; sent again they are stored as they
// are, so an exported collection imports bit for bit.
TEST_F(PointsApiTest, NormalizedCosineVectorsStoreUnchanged) {
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 100));
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(absl::StrFormat("p%04d", i));
  std::map<std::string, v1::Point> first = Get("c", ids);
  std::vector<v1::Point> again;
  for (auto& [id, p] : first) again.push_back(p);
  QUIVER_ASSERT_OK(Upsert("c", again));
  std::map<std::string, v1::Point> second = Get("c", ids);
  for (const auto& [id, p] : first) {
    const auto a = Values(p.vectors().at("c")), b = Values(second[id].vectors().at("c"));
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << id;
  }
}


// ------------------------------------------------------------ optional vectors

// A collection with a required field "r" and an optional field "o" of index
// kind `kind` (DISK when `disk`); point i lacks "o" when i % 3 == 0.
class OptionalVectorTest : public PointsApiTest,
                           public ::testing::WithParamInterface<std::pair<std::string, bool>> {
 protected:
  static constexpr int kPoints = 600;

  void CreateOptional() {
    v1::CreateCollectionRequest req;
    req.set_name("o");
    *req.mutable_schema()->add_vectors() = VectorField("r", kDim);
    v1::VectorField* o = req.mutable_schema()->add_vectors();
    *o = VectorField("o", kDim);
    o->set_optional(true);
    o->mutable_index()->set_type(GetParam().first);
    if (GetParam().first == "IVF_PQ") (*o->mutable_index()->mutable_params())["m"] = "4";
    if (GetParam().second) o->set_storage(v1::DISK);
    v1::AttributeField n = Attribute("n", v1::INT64);
    n.set_window(true);
    *req.mutable_schema()->add_attributes() = n;
    v1::CreateCollectionResponse resp;
    QUIVER_ASSERT_OK(engine_->CreateCollection(req, &resp));
    std::vector<v1::Point> pts;
    for (int i = 0; i < kPoints; ++i) {
      v1::Point p;
      p.set_id(absl::StrFormat("o%04d", i));
      const std::vector<float> r = Vec(i), v = Vec(100000 + i);
      (*p.mutable_vectors())["r"].mutable_values()->Add(r.begin(), r.end());
      if (i % 3 != 0) (*p.mutable_vectors())["o"].mutable_values()->Add(v.begin(), v.end());
      (*p.mutable_attributes())["n"].set_int_value(i);
      pts.push_back(std::move(p));
    }
    QUIVER_ASSERT_OK(Upsert("o", pts));
  }

  // Ids a search of `field` returns for a query of point `seed`'s vector.
  std::set<std::string> SearchIds(const std::string& field, uint32_t k, bool exact,
                                  const std::string& filter = "",
                                  v1::FilterStrategy strategy = v1::FILTER_STRATEGY_AUTO) {
    v1::SearchRequest req;
    req.set_collection("o");
    req.set_field(field);
    req.set_k(k);
    req.set_filter(filter);
    req.mutable_params()->set_exact(exact);
    req.mutable_params()->set_filter_strategy(strategy);
    const std::vector<float> q = Vec(100000 + 7);
    req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
    v1::SearchResponse resp;
    absl::Status s = engine_->Search(req, StopToken(), &resp);
    EXPECT_TRUE(s.ok()) << s;
    std::set<std::string> ids;
    if (s.ok()) {
      for (const auto& h : resp.results(0).hits()) ids.insert(h.id());
    }
    return ids;
  }

  // Every search of "o" (exact, through the index, filtered by each
  // strategy) returns only points that have "o"; the exact one all of them.
  void ExpectOnlyPointsWithVectors(const std::set<std::string>& without) {
    const std::set<std::string> exact = SearchIds("o", kPoints, true);
    EXPECT_EQ(exact.size(), kPoints - without.size());
    for (const auto& id : without) EXPECT_FALSE(exact.contains(id)) << id;
    for (bool ex : {false, true}) {
      std::vector<std::set<std::string>> runs = {SearchIds("o", 50, ex)};
      for (auto st : {v1::PRE_FILTER, v1::FILTERED_INDEX, v1::POST_FILTER, v1::WINDOW_FILTER}) {
        runs.push_back(SearchIds("o", 50, ex, "n >= 0", st));
        runs.push_back(SearchIds("o", 50, ex, "n BETWEEN 100 AND 400", st));
      }
      for (const auto& ids : runs) {
        EXPECT_FALSE(ids.empty());
        for (const auto& id : ids) EXPECT_FALSE(without.contains(id)) << id << " exact=" << ex;
      }
    }
    // The required field still finds every point.
    EXPECT_EQ(SearchIds("r", kPoints, true).size(), static_cast<size_t>(kPoints));
  }
};

TEST_P(OptionalVectorTest, SearchesSkipPointsWithoutTheVector) {
  CreateOptional();
  std::set<std::string> without;
  for (int i = 0; i < kPoints; i += 3) without.insert(absl::StrFormat("o%04d", i));
  ExpectOnlyPointsWithVectors(without);  // growing and sealed segments, before indexes
  engine_->SealAndWaitForIndexes();
  ExpectOnlyPointsWithVectors(without);
  std::map<std::string, v1::Point> got = Get("o", {"o0000", "o0001"});
  EXPECT_FALSE(got["o0000"].vectors().contains("o"));
  EXPECT_TRUE(got["o0000"].vectors().contains("r"));
  EXPECT_EQ(Values(got["o0001"].vectors().at("o")), Vec(100001));

  // Removed through UpdatePoints, given back through it.
  v1::UpdatePointsRequest req;
  req.set_collection("o");
  v1::PointUpdate* rm = req.add_updates();
  rm->set_id("o0001");
  rm->add_remove_vectors("o");
  v1::PointUpdate* add = req.add_updates();
  add->set_id("o0003");
  const std::vector<float> v3 = Vec(100003);
  (*add->mutable_vectors())["o"].mutable_values()->Add(v3.begin(), v3.end());
  QUIVER_ASSERT_OK(Update(req));
  without.insert("o0001");
  without.erase("o0003");
  ExpectOnlyPointsWithVectors(without);
  // After a restart (recovery marks them from RocksDB) and compaction.
  engine_->SealAndWaitForIndexes();
  Reopen();
  engine_->SealAndWaitForIndexes();
  ExpectOnlyPointsWithVectors(without);
  got = Get("o", {"o0001", "o0003"});
  EXPECT_FALSE(got["o0001"].vectors().contains("o"));
  EXPECT_EQ(Values(got["o0003"].vectors().at("o")), v3);
  v1::VerifyCollectionRequest vreq;
  vreq.set_name("o");
  v1::VerifyCollectionResponse vresp;
  QUIVER_ASSERT_OK(engine_->VerifyCollection(vreq, &vresp));
  EXPECT_EQ(vresp.defects_size(), 0) << vresp.DebugString();
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, OptionalVectorTest,
    ::testing::Values(std::make_pair("FLAT", false), std::make_pair("HNSW", false),
                      std::make_pair("IVF_FLAT", false), std::make_pair("IVF_SQ8", false),
                      std::make_pair("IVF_PQ", false), std::make_pair("HNSW_SQ8", false),
                      std::make_pair("IVF_SQ8", true)),
    [](const auto& info) { return info.param.first + (info.param.second ? "_DISK" : ""); });

TEST_F(PointsApiTest, OptionalFieldRules) {
  v1::CreateCollectionRequest req;
  req.set_name("m");
  v1::VectorField* mv = req.mutable_schema()->add_vectors();
  *mv = VectorField("t", kDim, v1::IP);
  mv->mutable_multi_vector()->set_max_vectors_per_point(4);
  mv->set_optional(true);
  v1::CreateCollectionResponse resp;
  EXPECT_THAT(engine_->CreateCollection(req, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "cannot be optional"));
  QUIVER_ASSERT_OK(Create("c"));
  QUIVER_ASSERT_OK(Fill("c", 3));
  // A required field stays required, on upsert and on update.
  v1::Point p = Point("x", 1, 1);
  p.mutable_vectors()->erase("c");
  EXPECT_THAT(Upsert("c", {p}), StatusIs(absl::StatusCode::kInvalidArgument, "is missing"));
  v1::UpdatePointsRequest upd;
  upd.set_collection("c");
  upd.add_updates()->set_id("p0001");
  upd.mutable_updates(0)->add_remove_vectors("c");
  EXPECT_THAT(Update(upd), StatusIs(absl::StatusCode::kInvalidArgument, "is required"));
  // The flag is stored with the schema and read back after a restart.
  v1::CreateCollectionRequest opt;
  opt.set_name("opt");
  *opt.mutable_schema()->add_vectors() = VectorField("a", kDim);
  *opt.mutable_schema()->add_vectors() = VectorField("b", kDim);
  opt.mutable_schema()->mutable_vectors(1)->set_optional(true);
  QUIVER_ASSERT_OK(engine_->CreateCollection(opt, &resp));
  Reopen();
  v1::GetCollectionRequest get;
  get.set_name("opt");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  EXPECT_FALSE(info.collection().schema().vectors(0).optional());
  EXPECT_TRUE(info.collection().schema().vectors(1).optional());
}

}  // namespace
}  // namespace quiver
