// Binder tests: requests checked against a schema without an engine — bad
// requests give the exact status the API promises, good ones come out bound
// with names resolved and defaults applied.
#include "query/bind/binder.h"

#include <cmath>

#include "tests/common/test_util.h"

namespace quiver::bind {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::VectorField;
using ::testing::ElementsAre;

class BinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CollectionSchema proto;
    *proto.add_vectors() = VectorField("a", 4, v1::COSINE);
    *proto.add_vectors() = VectorField("b", 2, v1::L2);
    *proto.add_attributes() = Attribute("label", v1::INT64);
    *proto.add_attributes() = Attribute("color", v1::STRING);
    absl::StatusOr<Schema> s = bind::BindSchema(proto);
    ASSERT_TRUE(s.ok()) << s.status();
    schema_ = std::make_unique<Schema>(*std::move(s));
  }

  BindTarget Target() const { return BindTarget{*schema_, name_, &encoders_, &stored_dims_}; }

  static v1::SearchRequest Search(const std::string& field, std::vector<float> v, uint32_t k) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_field(field);
    req.set_k(k);
    req.add_vectors()->mutable_values()->Add(v.begin(), v.end());
    return req;
  }

  std::string name_ = "c";
  std::unique_ptr<Schema> schema_;
  std::vector<std::shared_ptr<const index::MuveraEncoder>> encoders_{nullptr, nullptr};
  std::vector<uint32_t> stored_dims_{4, 2};
};

TEST_F(BinderTest, SearchResolvesFieldNormalizesAndAppliesDefaults) {
  v1::SearchRequest req = Search("a", {3, 0, 4, 0}, 5);
  req.set_filter("label > 1");
  req.add_output_attributes("*");
  absl::StatusOr<BoundSearchRequest> b = BindSearch(Target(), req);
  ASSERT_TRUE(b.ok()) << b.status();
  const BoundSearch& s = std::get<BoundSearch>(*b);
  EXPECT_EQ(s.field, 0);
  EXPECT_FALSE(s.multi);
  EXPECT_EQ(s.k, 5u);
  EXPECT_EQ(s.num_queries(), 1u);
  // COSINE: normalized, with its squared norm.
  EXPECT_THAT(s.queries, ElementsAre(0.6f, 0.0f, 0.8f, 0.0f));
  EXPECT_NEAR(s.qnorms[0], 1.0f, 1e-6);
  ASSERT_NE(s.filter, nullptr);
  EXPECT_EQ(s.filter_bytes, req.filter().size());
  EXPECT_THAT(s.output.attributes, ElementsAre(0, 1));
  EXPECT_EQ(s.params.strategy, FilterStrategy::kAuto);
  EXPECT_EQ(s.params.refine_factor, 0.0f);
}

TEST_F(BinderTest, HybridAppliesFieldDefaults) {
  v1::SearchRequest req;
  req.set_k(7);
  v1::FieldQuery* fq = req.add_field_queries();
  fq->set_field("b");
  fq->mutable_vector()->add_values(1);
  fq->mutable_vector()->add_values(2);
  fq->mutable_params()->set_filter_strategy(v1::POST_FILTER);
  absl::StatusOr<BoundSearchRequest> b = BindSearch(Target(), req);
  ASSERT_TRUE(b.ok()) << b.status();
  const BoundHybridSearch& h = std::get<BoundHybridSearch>(*b);
  ASSERT_EQ(h.fields.size(), 1u);
  EXPECT_EQ(h.fields[0].field, 1);
  EXPECT_EQ(h.fields[0].k, 7u);         // the request's k
  EXPECT_EQ(h.fields[0].weight, 1.0);   // weight 0: 1
  EXPECT_EQ(h.fields[0].params.strategy, FilterStrategy::kPostFilter);
  EXPECT_EQ(h.fusion, FusionKind::kRrf);
  EXPECT_EQ(h.rrf_k, kDefaultRrfK);
  EXPECT_TRUE(h.output.attributes.empty());
}

TEST_F(BinderTest, BadSearchesAreInvalidArgument) {
  EXPECT_THAT(BindSearch(Target(), Search("a", {1, 0, 0, 0}, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("k must be in 1..")));
  // Two fields: the field must be named.
  EXPECT_THAT(BindSearch(Target(), Search("", {1, 0, 0, 0}, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("name the one to search")));
  EXPECT_THAT(BindSearch(Target(), Search("nope", {1, 0, 0, 0}, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("no vector field \"nope\"")));
  EXPECT_THAT(BindSearch(Target(), Search("a", {1, 0, 0}, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       std::string("query vector 0: expected 4 values, got 3")));
  EXPECT_THAT(BindSearch(Target(), Search("a", {0, 0, 0, 0}, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("must not be all zeros")));
  v1::SearchRequest req = Search("b", {1, NAN}, 1);
  EXPECT_THAT(BindSearch(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("not finite")));
  req = Search("b", {1, 2}, 1);
  req.mutable_params()->set_refine_factor(0.5f);
  EXPECT_THAT(BindSearch(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("refine_factor")));
  req = Search("b", {1, 2}, 1);
  req.set_filter("label = ");
  EXPECT_THAT(BindSearch(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("filter")));
  req = Search("b", {1, 2}, 1);
  req.add_output_attributes("size");
  EXPECT_THAT(BindSearch(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       std::string("output_attributes: collection \"c\" has no attribute \"size\"")));
  req = Search("b", {1, 2}, 1);
  req.set_fusion(v1::WEIGHTED);
  EXPECT_THAT(BindSearch(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("only to hybrid search")));
}

TEST_F(BinderTest, UpsertChecksPointsAndNormalizes) {
  v1::UpsertPointsRequest req;
  req.set_collection("c");
  EXPECT_THAT(BindUpsert(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("at least one point")));
  v1::Point* p = req.add_points();
  p->set_id("x");
  for (float x : {0.0f, 2.0f, 0.0f, 0.0f}) (*p->mutable_vectors())["a"].add_values(x);
  EXPECT_THAT(BindUpsert(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       std::string("vector field \"b\" is missing")));
  for (float x : {1.0f, 1.0f}) (*p->mutable_vectors())["b"].add_values(x);
  (*p->mutable_attributes())["label"].set_string_value("seven");
  EXPECT_THAT(BindUpsert(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("attribute \"label\"")));
  (*p->mutable_attributes())["label"].set_int_value(7);
  absl::StatusOr<BoundUpsert> up = BindUpsert(Target(), req);
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_EQ(up->points.size(), 1u);
  EXPECT_EQ(up->points[0].record.id(), "x");
  EXPECT_EQ(up->points[0].vectors[0][1], 1.0f);  // COSINE: normalized copy
  EXPECT_EQ(up->request_bytes, req.ByteSizeLong());
  *req.add_points() = *p;
  EXPECT_THAT(BindUpsert(Target(), req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("more than once")));
}

TEST_F(BinderTest, DeleteAndGet) {
  v1::DeletePointsRequest del;
  EXPECT_THAT(BindDelete(Target(), del).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("needs ids or a filter")));
  del.add_ids("x");
  del.set_filter("label = 1");
  EXPECT_THAT(BindDelete(Target(), del).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("not both")));
  v1::GetPointsRequest get;
  get.add_ids("x");
  absl::StatusOr<BoundGet> g = BindGet(Target(), get);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->output.attributes, ElementsAre(0, 1));  // none named: all
  get.add_attributes("nope");
  EXPECT_THAT(BindGet(Target(), get).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, std::string("no attribute \"nope\"")));
}

// VerifyCollection's options, bound at the engine boundary: defaults
// applied, the limit checked, skip_index_check as no index samples.
TEST(BindVerifyTest, AppliesDefaultsAndTheLimit) {
  v1::VerifyCollectionRequest req;
  req.set_name("c");
  absl::StatusOr<BoundVerify> v = BindVerify(req);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->index_samples, 100u);
  EXPECT_EQ(v->vector_sample_rows, 0u);
  req.set_index_samples(7);
  req.set_vector_sample_rows(3);
  req.set_seed(9);
  v = BindVerify(req);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->index_samples, 7u);
  EXPECT_EQ(v->vector_sample_rows, 3u);
  EXPECT_EQ(v->seed, 9u);
  req.set_skip_index_check(true);
  EXPECT_EQ(BindVerify(req)->index_samples, 0u);
  req.set_index_samples(kMaxVerifyIndexSamples + 1);
  EXPECT_THAT(BindVerify(req), StatusIs(absl::StatusCode::kInvalidArgument,
                                        "index_samples is 10001; at most 10000"));
}

}  // namespace
}  // namespace quiver::bind
