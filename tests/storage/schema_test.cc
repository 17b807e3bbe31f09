#include "storage/schema.h"

#include "base/truncate.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::Attribute;
using ::quiver::testing::StatusIs;
using ::quiver::testing::VectorField;

v1::CollectionSchema Basic() {
  v1::CollectionSchema s;
  *s.add_vectors() = VectorField("v", 8);
  *s.add_attributes() = Attribute("label", v1::INT64);
  return s;
}

TEST(SchemaTest, ValidSchemaIsNormalized) {
  absl::StatusOr<Schema> s = Schema::FromProto(Basic());
  QUIVER_ASSERT_OK(s);
  EXPECT_EQ(s->vectors().size(), 1u);
  EXPECT_EQ(s->vectors()[0].index_type, "FLAT");
  EXPECT_EQ(s->proto().vectors(0).index().type(), "FLAT");
  EXPECT_EQ(s->proto().vectors(0).storage(), v1::MEMORY);
  EXPECT_EQ(s->VectorFieldIndex("v"), 0);
  EXPECT_EQ(s->AttributeIndex("label"), 0);
  EXPECT_EQ(s->AttributeIndex("nope"), -1);
}

struct BadSchemaCase {
  const char* name;
  std::function<void(v1::CollectionSchema*)> mutate;
  absl::StatusCode code;
  const char* message;
};

class BadSchemaTest : public ::testing::TestWithParam<BadSchemaCase> {};

TEST_P(BadSchemaTest, Rejected) {
  v1::CollectionSchema s = Basic();
  GetParam().mutate(&s);
  EXPECT_THAT(Schema::FromProto(s), StatusIs(GetParam().code, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadSchemaTest,
    ::testing::Values(
        BadSchemaCase{"no_vectors", [](auto* s) { s->clear_vectors(); },
                      absl::StatusCode::kInvalidArgument, "at least one vector field"},
        BadSchemaCase{"zero_dim", [](auto* s) { s->mutable_vectors(0)->set_dim(0); },
                      absl::StatusCode::kInvalidArgument, "dim must be in 1..65536"},
        BadSchemaCase{"huge_dim", [](auto* s) { s->mutable_vectors(0)->set_dim(70000); },
                      absl::StatusCode::kInvalidArgument, "dim must be"},
        BadSchemaCase{"no_metric",
                      [](auto* s) { s->mutable_vectors(0)->set_metric(v1::METRIC_UNSPECIFIED); },
                      absl::StatusCode::kInvalidArgument, "metric"},
        BadSchemaCase{"bad_field_name", [](auto* s) { s->mutable_vectors(0)->set_name("1v"); },
                      absl::StatusCode::kInvalidArgument, "invalid vector field name"},
        BadSchemaCase{"dup_name", [](auto* s) { s->mutable_attributes(0)->set_name("v"); },
                      absl::StatusCode::kInvalidArgument, "duplicate field name \"v\""},
        BadSchemaCase{"no_attr_type",
                      [](auto* s) {
                        s->mutable_attributes(0)->set_type(v1::ATTRIBUTE_TYPE_UNSPECIFIED);
                      },
                      absl::StatusCode::kInvalidArgument, "type must be"},
        BadSchemaCase{"unknown_storage",
                      [](auto* s) {
                        s->mutable_vectors(0)->set_storage(static_cast<v1::StorageMode>(9));
                      },
                      absl::StatusCode::kInvalidArgument, "storage must be MEMORY or DISK"},
        BadSchemaCase{"too_many_vectors_per_point",
                      [](auto* s) {
                        s->mutable_vectors(0)->mutable_multi_vector()->set_max_vectors_per_point(
                            kMaxVectorsPerPoint + 1);
                      },
                      absl::StatusCode::kInvalidArgument, "max_vectors_per_point"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SchemaTest, IndexSpecIsKeptForTheRegistryToCheck) {
  v1::CollectionSchema p = Basic();
  p.mutable_vectors(0)->mutable_index()->set_type("hnsw");
  (*p.mutable_vectors(0)->mutable_index()->mutable_params())["M"] = "32";
  absl::StatusOr<Schema> s = Schema::FromProto(p);
  QUIVER_ASSERT_OK(s);
  EXPECT_EQ(s->vectors()[0].index_type, "HNSW");
  EXPECT_EQ(s->vectors()[0].index_params.at("M"), "32");
}

TEST(SchemaTest, NameRules) {
  EXPECT_TRUE(IsValidName("a"));
  EXPECT_TRUE(IsValidName("Fashion_MNIST_2"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("_a"));
  EXPECT_FALSE(IsValidName("a-b"));
  EXPECT_FALSE(IsValidName("a b"));
  EXPECT_FALSE(IsValidName(std::string(65, 'a')));
  EXPECT_TRUE(IsValidName(std::string(64, 'a')));
}

TEST(SchemaTest, ValueConversionChecksTypes) {
  v1::Value v;
  v.set_int_value(3);
  EXPECT_EQ(std::get<int64_t>(*ValueToAttr(v, AttrType::kInt64, "x")), 3);
  EXPECT_EQ(std::get<double>(*ValueToAttr(v, AttrType::kDouble, "x")), 3.0);
  EXPECT_THAT(ValueToAttr(v, AttrType::kString, "attr"),
              StatusIs(absl::StatusCode::kInvalidArgument, "attr: expected STRING, got an integer"));
  v.set_double_value(std::nan(""));
  EXPECT_THAT(ValueToAttr(v, AttrType::kDouble, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not finite"));
  v.set_double_value(1.5);
  EXPECT_THAT(ValueToAttr(v, AttrType::kInt64, "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  v.mutable_string_list_value()->add_values("a");
  AttrValue a = *ValueToAttr(v, AttrType::kStringList, "x");
  v1::Value back;
  ASSERT_TRUE(AttrToValue(a, &back));
  EXPECT_EQ(back.string_list_value().values(0), "a");
  EXPECT_FALSE(AttrToValue(AttrValue{}, &back));
}

// Echoed inputs: whole when short; cut at a character boundary, with the
// original length, when long.
TEST(TruncateTest, CutsLongInputsAtACharacterBoundary) {
  EXPECT_EQ(TruncateForMessage("abc"), "abc");
  EXPECT_EQ(TruncateForMessage(std::string(200, 'a')), std::string(200, 'a'));
  EXPECT_EQ(TruncateForMessage(std::string(201, 'a')), std::string(200, 'a') + "...(201 bytes, cut)");
  // "é" is two bytes; a cut through it drops it whole.
  std::string s = std::string(9, 'a') + "\xc3\xa9" + std::string(10, 'b');
  EXPECT_EQ(TruncateForMessage(s, 10), std::string(9, 'a') + "...(21 bytes, cut)");
  EXPECT_EQ(TruncateForMessage(s, 11), std::string(9, 'a') + "\xc3\xa9...(21 bytes, cut)");
  // Invalid UTF-8 (a run of continuation bytes) is cut without backing off far.
  EXPECT_EQ(TruncateForMessage(std::string(20, '\x80'), 10).substr(0, 7), std::string(7, '\x80'));
}

}  // namespace
}  // namespace quiver
