// Aliases at the engine (query/engine_alias.cc): create, switch, delete and
// list; the shared namespace with collections; drops refused while aliases
// point at a collection; reads and writes through an alias, bound to the
// collection the alias named at bind time; recovery after a reopen; the
// operation log; and snapshots. Every refused change must leave everything
// as it was, sequence included.
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 4;

class AliasTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.data_dir = dir_.path();
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(e).value();
  }

  absl::Status Create(const std::string& name) {
    v1::CreateCollectionRequest req;
    req.set_name(name);
    *req.mutable_schema()->add_vectors() = VectorField("v", kDim, v1::L2);
    *req.mutable_schema()->add_attributes() = Attribute("label", v1::INT64);
    v1::CreateCollectionResponse resp;
    return engine_->CreateCollection(req, &resp);
  }

  // Upserts points id0..id<n-1> with vector (base + i, 0, 0, 0).
  absl::Status Put(const std::string& coll, int n, float base) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    for (int i = 0; i < n; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("id", i));
      auto* v = (*p->mutable_vectors())["v"].mutable_values();
      v->Add(base + static_cast<float>(i));
      for (uint32_t d = 1; d < kDim; ++d) v->Add(0);
      (*p->mutable_attributes())["label"].set_int_value(i);
    }
    v1::UpsertPointsResponse resp;
    return engine_->Upsert(req, &resp);
  }

  absl::StatusOr<uint64_t> Count(const std::string& coll) {
    v1::CountPointsRequest req;
    req.set_collection(coll);
    v1::CountPointsResponse resp;
    absl::Status s = engine_->CountPoints(req, &resp);
    if (!s.ok()) return s;
    return resp.count();
  }

  absl::StatusOr<uint64_t> CreateAlias(const std::string& alias, const std::string& coll) {
    v1::CreateAliasRequest req;
    req.set_alias(alias);
    req.set_collection(coll);
    v1::CreateAliasResponse resp;
    absl::Status s = engine_->CreateAlias(req, &resp);
    if (!s.ok()) return s;
    return resp.sequence();
  }
  absl::StatusOr<uint64_t> SwitchAlias(const std::string& alias, const std::string& coll) {
    v1::SwitchAliasRequest req;
    req.set_alias(alias);
    req.set_collection(coll);
    v1::SwitchAliasResponse resp;
    absl::Status s = engine_->SwitchAlias(req, &resp);
    if (!s.ok()) return s;
    return resp.sequence();
  }
  absl::StatusOr<uint64_t> DeleteAlias(const std::string& alias) {
    v1::DeleteAliasRequest req;
    req.set_alias(alias);
    v1::DeleteAliasResponse resp;
    absl::Status s = engine_->DeleteAlias(req, &resp);
    if (!s.ok()) return s;
    return resp.sequence();
  }
  // "alias->collection" pairs, in the order listed.
  std::vector<std::string> List(const std::string& coll = "") {
    v1::ListAliasesRequest req;
    req.set_collection(coll);
    v1::ListAliasesResponse resp;
    absl::Status s = engine_->ListAliases(req, &resp);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<std::string> out;
    for (const auto& a : resp.aliases()) out.push_back(a.alias() + "->" + a.collection());
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(AliasTest, CreateSwitchDeleteListWithSequences) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(Put("a", 3, 0));
  QUIVER_ASSERT_OK(Put("b", 5, 100));
  const uint64_t before = engine_->last_sequence();
  absl::StatusOr<uint64_t> seq = CreateAlias("prod", "a");
  QUIVER_ASSERT_OK(seq);
  EXPECT_EQ(*seq, before + 1);
  EXPECT_EQ(engine_->last_sequence(), *seq);
  QUIVER_ASSERT_OK(CreateAlias("alt", "a"));
  EXPECT_EQ(List(), (std::vector<std::string>{"alt->a", "prod->a"}));
  EXPECT_EQ(*Count("prod"), 3u);

  seq = SwitchAlias("prod", "b");
  QUIVER_ASSERT_OK(seq);
  EXPECT_EQ(*seq, engine_->last_sequence());
  EXPECT_EQ(*Count("prod"), 5u);
  EXPECT_EQ(List(), (std::vector<std::string>{"alt->a", "prod->b"}));
  EXPECT_EQ(List("b"), (std::vector<std::string>{"prod->b"}));
  // The filter may itself be an alias: its collection's aliases.
  EXPECT_EQ(List("alt"), (std::vector<std::string>{"alt->a"}));
  v1::ListAliasesRequest missing;
  missing.set_collection("nope");
  v1::ListAliasesResponse ignored;
  EXPECT_THAT(engine_->ListAliases(missing, &ignored), StatusIs(absl::StatusCode::kNotFound));

  seq = DeleteAlias("prod");
  QUIVER_ASSERT_OK(seq);
  EXPECT_EQ(*seq, engine_->last_sequence());
  EXPECT_EQ(List(), (std::vector<std::string>{"alt->a"}));
  EXPECT_THAT(Count("prod"), StatusIs(absl::StatusCode::kNotFound));
  // The collections themselves are untouched.
  EXPECT_EQ(*Count("a"), 3u);
  EXPECT_EQ(*Count("b"), 5u);
}

TEST_F(AliasTest, UserErrorsChangeNothing) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(CreateAlias("prod", "a"));
  const uint64_t seq = engine_->last_sequence();
  const std::vector<std::string> aliases = List();
  struct Case {
    const char* what;
    absl::Status status;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"alias named as a collection", CreateAlias("b", "a").status(),
       absl::StatusCode::kAlreadyExists, "share one namespace"},
      {"duplicate alias", CreateAlias("prod", "b").status(), absl::StatusCode::kAlreadyExists,
       "alias \"prod\" already exists"},
      {"collection named as an alias", Create("prod"), absl::StatusCode::kAlreadyExists,
       "already an alias"},
      {"alias of an alias", CreateAlias("p2", "prod").status(),
       absl::StatusCode::kInvalidArgument, "is itself an alias"},
      {"switch to an alias", SwitchAlias("prod", "prod").status(),
       absl::StatusCode::kInvalidArgument, "is itself an alias"},
      {"missing target", CreateAlias("p2", "nope").status(), absl::StatusCode::kNotFound,
       "collection \"nope\" does not exist"},
      {"switch to missing target", SwitchAlias("prod", "nope").status(),
       absl::StatusCode::kNotFound, "does not exist"},
      {"bad alias name", CreateAlias("1bad", "a").status(), absl::StatusCode::kInvalidArgument,
       "invalid alias"},
      {"alias name too long", CreateAlias(std::string(65, 'x'), "a").status(),
       absl::StatusCode::kInvalidArgument, "invalid alias"},
      {"empty alias", CreateAlias("", "a").status(), absl::StatusCode::kInvalidArgument,
       "alias is empty"},
      {"empty collection", CreateAlias("p2", "").status(), absl::StatusCode::kInvalidArgument,
       "collection is empty"},
      {"switch a missing alias", SwitchAlias("p2", "b").status(), absl::StatusCode::kNotFound,
       "alias \"p2\" does not exist"},
      {"switch a collection's name", SwitchAlias("a", "b").status(), absl::StatusCode::kNotFound,
       "not an alias"},
      {"delete a missing alias", DeleteAlias("p2").status(), absl::StatusCode::kNotFound,
       "does not exist"},
      {"delete a collection as an alias", DeleteAlias("a").status(), absl::StatusCode::kNotFound,
       "not an alias"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(c.status, StatusIs(c.code, std::string(c.message))) << c.what;
  }
  EXPECT_EQ(engine_->last_sequence(), seq);
  EXPECT_EQ(List(), aliases);
  EXPECT_TRUE(::quiver::testing::GetStatus(Count("a")).ok());
  EXPECT_TRUE(::quiver::testing::GetStatus(Count("b")).ok());
}

TEST_F(AliasTest, DropRefusedWhileAliasesPointAndForAnAlias) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Put("a", 2, 0));
  QUIVER_ASSERT_OK(CreateAlias("prod", "a"));
  QUIVER_ASSERT_OK(CreateAlias("beta", "a"));
  const uint64_t seq = engine_->last_sequence();
  v1::DropCollectionRequest drop;
  v1::DropCollectionResponse resp;
  drop.set_name("a");
  EXPECT_THAT(engine_->DropCollection(drop, &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition, "(beta, prod)"));
  // Naming the alias never drops its collection.
  drop.set_name("prod");
  EXPECT_THAT(engine_->DropCollection(drop, &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "\"prod\" is an alias of collection \"a\""));
  EXPECT_EQ(engine_->last_sequence(), seq);
  EXPECT_EQ(*Count("a"), 2u);
  EXPECT_EQ(*Count("prod"), 2u);

  QUIVER_ASSERT_OK(DeleteAlias("prod"));
  QUIVER_ASSERT_OK(DeleteAlias("beta"));
  drop.set_name("a");
  EXPECT_TRUE(::quiver::testing::GetStatus(engine_->DropCollection(drop, &resp)).ok());
  // The name is free for an alias or a collection again.
  EXPECT_TRUE(::quiver::testing::GetStatus(Create("prod")).ok());
}

TEST_F(AliasTest, ReadsAndWritesThroughAnAlias) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(CreateAlias("prod", "a"));
  QUIVER_ASSERT_OK(Put("prod", 4, 0));  // lands in "a"
  EXPECT_EQ(*Count("a"), 4u);

  v1::GetCollectionRequest get;
  get.set_name("prod");
  v1::GetCollectionResponse info;
  QUIVER_ASSERT_OK(engine_->GetCollection(get, &info));
  EXPECT_EQ(info.collection().name(), "a");  // the real collection
  EXPECT_EQ(info.collection().stats().point_count(), 4u);

  v1::SearchRequest search;
  search.set_collection("prod");
  search.set_k(2);
  auto* q = search.add_vectors()->mutable_values();
  for (float x : {3.0f, 0.0f, 0.0f, 0.0f}) q->Add(x);
  v1::SearchResponse found;
  QUIVER_ASSERT_OK(engine_->Search(search, StopToken(), &found));
  ASSERT_EQ(found.results_size(), 1);
  ASSERT_GE(found.results(0).hits_size(), 1);
  EXPECT_EQ(found.results(0).hits(0).id(), "id3");

  v1::GetPointsRequest gp;
  gp.set_collection("prod");
  gp.add_ids("id1");
  v1::GetPointsResponse got;
  QUIVER_ASSERT_OK(engine_->GetPoints(gp, &got));
  EXPECT_EQ(got.points_size(), 1);

  v1::ScrollPointsRequest scroll;
  scroll.set_collection("prod");
  scroll.set_page_size(10);
  v1::ScrollPointsResponse page;
  QUIVER_ASSERT_OK(engine_->ScrollPoints(scroll, &page));
  EXPECT_EQ(page.points_size(), 4);

  v1::UpdatePointsRequest upd;
  upd.set_collection("prod");
  v1::PointUpdate* u = upd.add_updates();
  u->set_id("id0");
  (*u->mutable_set_attributes())["label"].set_int_value(42);
  v1::UpdatePointsResponse updated;
  QUIVER_ASSERT_OK(engine_->Update(upd, &updated));
  v1::CountPointsRequest cnt;
  cnt.set_collection("a");
  cnt.set_filter("label = 42");
  v1::CountPointsResponse n;
  QUIVER_ASSERT_OK(engine_->CountPoints(cnt, &n));
  EXPECT_EQ(n.count(), 1u);

  v1::DeletePointsRequest del;
  del.set_collection("prod");
  del.add_ids("id2");
  v1::DeletePointsResponse deleted;
  QUIVER_ASSERT_OK(engine_->Delete(del, &deleted));
  EXPECT_EQ(*Count("a"), 3u);

  v1::VerifyCollectionRequest verify;
  verify.set_name("prod");
  v1::VerifyCollectionResponse report;
  QUIVER_ASSERT_OK(engine_->VerifyCollection(verify, &report));
  EXPECT_EQ(report.defects_total(), 0u);
}

TEST_F(AliasTest, BoundRequestsKeepTheCollectionOfBindTime) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(Put("a", 2, 0));
  QUIVER_ASSERT_OK(CreateAlias("prod", "a"));

  v1::UpsertPointsRequest up;
  up.set_collection("prod");
  v1::Point* p = up.add_points();
  p->set_id("late");
  for (uint32_t d = 0; d < kDim; ++d) (*p->mutable_vectors())["v"].add_values(1);
  absl::StatusOr<Bound<BoundUpsert>> bound_up = engine_->BindUpsert(up);
  QUIVER_ASSERT_OK(bound_up);
  v1::SearchRequest search;
  search.set_collection("prod");
  search.set_k(10);
  auto* q = search.add_vectors()->mutable_values();
  for (uint32_t d = 0; d < kDim; ++d) q->Add(0);
  absl::StatusOr<Bound<BoundSearchRequest>> bound_search = engine_->BindSearch(search);
  QUIVER_ASSERT_OK(bound_search);

  QUIVER_ASSERT_OK(SwitchAlias("prod", "b"));

  // Bound before the switch: both still run on "a".
  v1::SearchResponse found;
  QUIVER_ASSERT_OK(engine_->Search(*bound_search, StopToken(), &found));
  ASSERT_EQ(found.results_size(), 1);
  EXPECT_EQ(found.results(0).hits_size(), 2);  // "a"'s two points; "b" has none
  std::promise<absl::Status> done;
  v1::UpsertPointsResponse up_resp;
  engine_->Upsert(*std::move(bound_up), &up_resp, absl::InfiniteFuture(),
                  [&done](absl::Status s) { done.set_value(std::move(s)); });
  QUIVER_ASSERT_OK(done.get_future().get());
  EXPECT_EQ(*Count("a"), 3u);
  EXPECT_EQ(*Count("b"), 0u);
  // A new request through the alias goes to "b".
  EXPECT_EQ(*Count("prod"), 0u);
}

TEST_F(AliasTest, AliasesSurviveReopenAndAreLogged) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(Put("b", 3, 0));
  const uint64_t first = *CreateAlias("prod", "a");
  QUIVER_ASSERT_OK(CreateAlias("gone", "a"));
  QUIVER_ASSERT_OK(SwitchAlias("prod", "b"));
  QUIVER_ASSERT_OK(DeleteAlias("gone"));
  const uint64_t last = engine_->last_sequence();
  Reopen();
  EXPECT_EQ(engine_->last_sequence(), last);
  EXPECT_EQ(List(), (std::vector<std::string>{"prod->b"}));
  EXPECT_EQ(*Count("prod"), 3u);
  v1::DropCollectionRequest drop;
  drop.set_name("b");
  v1::DropCollectionResponse dropped;
  EXPECT_THAT(engine_->DropCollection(drop, &dropped),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  std::vector<std::pair<storage::OpRecord::Type, std::string>> ops;
  QUIVER_ASSERT_OK(engine_->store().ScanOplog(first, [&](uint64_t, const storage::OpRecord& op) {
    ops.emplace_back(op.type(), op.alias());
    return absl::OkStatus();
  }));
  using T = storage::OpRecord;
  EXPECT_EQ(ops, (std::vector<std::pair<storage::OpRecord::Type, std::string>>{
                     {T::CREATE_ALIAS, "prod"},
                     {T::CREATE_ALIAS, "gone"},
                     {T::SWITCH_ALIAS, "prod"},
                     {T::DELETE_ALIAS, "gone"}}));
}

TEST_F(AliasTest, SnapshotsCarryAliasesOfTheirCollections) {
  QUIVER_ASSERT_OK(Create("a"));
  QUIVER_ASSERT_OK(Create("b"));
  QUIVER_ASSERT_OK(Put("a", 2, 0));
  QUIVER_ASSERT_OK(Put("b", 3, 0));
  QUIVER_ASSERT_OK(CreateAlias("pa", "a"));
  QUIVER_ASSERT_OK(CreateAlias("pb", "b"));
  QUIVER_ASSERT_OK(engine_->CreateSnapshot("all", ""));
  // A snapshot of one collection named through its alias.
  absl::StatusOr<storage::SnapshotManifest> one = engine_->CreateSnapshot("one", "pa");
  QUIVER_ASSERT_OK(one);
  ASSERT_EQ(one->collections_size(), 1);
  EXPECT_EQ(one->collections(0).name(), "a");
  // An online restore must not take a name an alias has.
  absl::StatusOr<std::string> one_path = engine_->SnapshotPath("one");
  QUIVER_ASSERT_OK(one_path);
  EXPECT_THAT(engine_->RestoreCollection(*one_path, "", "pb"),
              StatusIs(absl::StatusCode::kAlreadyExists, "already an alias"));

  for (const auto& [snap, want] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"all", {"pa->a", "pb->b"}}, {"one", {"pa->a"}}}) {
    absl::StatusOr<std::string> path = engine_->SnapshotPath(snap);
    QUIVER_ASSERT_OK(path);
    TempDir restored;
    const std::string data = restored.path() + "/data";
    QUIVER_ASSERT_OK(Engine::RestoreDataDir(*path, data, engine_->file_system()));
    EngineOptions o;
    o.data_dir = data;
    absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Open(o);
    QUIVER_ASSERT_OK(e);
    v1::ListAliasesRequest req;
    v1::ListAliasesResponse resp;
    QUIVER_ASSERT_OK((*e)->ListAliases(req, &resp));
    std::vector<std::string> got;
    for (const auto& a : resp.aliases()) got.push_back(a.alias() + "->" + a.collection());
    EXPECT_EQ(got, want) << snap;
    v1::CountPointsRequest cnt;
    cnt.set_collection("pa");
    v1::CountPointsResponse n;
    QUIVER_ASSERT_OK((*e)->CountPoints(cnt, &n));
    EXPECT_EQ(n.count(), 2u) << snap;
  }
}

}  // namespace
}  // namespace quiver
