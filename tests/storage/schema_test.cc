#include "storage/schema.h"

#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "base/truncate.h"
#include "query/bind/wire_schema.h"
#include "storage/records.pb.h"
#include "storage/schema_message.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::bind::AttrToValue;
using ::quiver::bind::BindSchema;
using ::quiver::bind::SchemaToProto;
using ::quiver::bind::ValueToAttr;
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
  absl::StatusOr<Schema> s = BindSchema(Basic());
  QUIVER_ASSERT_OK(s);
  EXPECT_EQ(s->vectors().size(), 1u);
  EXPECT_EQ(s->vectors()[0].index_type, "FLAT");
  EXPECT_EQ(SchemaToProto(*s).vectors(0).index().type(), "FLAT");
  EXPECT_EQ(SchemaToProto(*s).vectors(0).storage(), v1::MEMORY);
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
  EXPECT_THAT(BindSchema(s), StatusIs(GetParam().code, GetParam().message));
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
  absl::StatusOr<Schema> s = BindSchema(p);
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

// A schema using every field of the layout, as earlier versions stored it:
// the API message, normalized the way their Schema::FromProto did (index
// type upper-cased, storage and max_vectors_per_point filled in, window
// attributes indexed).
v1::CollectionSchema EveryFieldNormalized() {
  v1::CollectionSchema s;
  v1::VectorField* v = s.add_vectors();
  *v = VectorField("dense", 16, v1::COSINE);
  v->mutable_index()->set_type("HNSW_SQ8");
  (*v->mutable_index()->mutable_params())["M"] = "24";
  (*v->mutable_index()->mutable_params())["ef_construction"] = "100";
  v->set_storage(v1::DISK);
  v = s.add_vectors();
  *v = VectorField("tokens", 8, v1::IP);
  v->mutable_index()->set_type("FLAT");
  v->set_storage(v1::MEMORY);
  v->mutable_multi_vector()->set_max_vectors_per_point(1024);
  (*v->mutable_multi_vector()->mutable_encoding_params())["k_sim"] = "3";
  (*v->mutable_multi_vector()->mutable_encoding_params())["seed"] = "7";
  v->mutable_multi_vector()->set_candidates(v1::MultiVectorOptions::TOKENS);
  v = s.add_vectors();
  *v = VectorField("l2", 4, v1::L2);
  v->mutable_index()->set_type("IVF_FLAT");
  v->set_storage(v1::MEMORY);
  *s.add_attributes() = Attribute("i", v1::INT64);
  v1::AttributeField* a = s.add_attributes();
  *a = Attribute("t", v1::DOUBLE);
  a->set_window(true);
  a->set_indexed(true);
  a = s.add_attributes();
  *a = Attribute("b", v1::BOOL);
  a->set_indexed(true);
  *s.add_attributes() = Attribute("s", v1::STRING);
  *s.add_attributes() = Attribute("tags", v1::STRING_LIST);
  return s;
}

// Collection records of earlier versions held the API's CollectionSchema
// in field 3: their bytes still open as a StoredSchema, and a record
// written now describes the same schema in the same layout.
TEST(SchemaRecordTest, RecordsOfTheApiLayoutStillOpen) {
  const v1::CollectionSchema old = EveryFieldNormalized();
  storage::CollectionRecord head;
  head.set_id(3);
  head.set_name("c");
  head.set_created_at_unix_ms(1700000000000);
  std::string bytes = head.SerializeAsString();
  {
    // Field 3, length-delimited: what the old record's schema field wrote.
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    const std::string schema = old.SerializeAsString();
    coded.WriteTag((3 << 3) | 2);
    coded.WriteVarint32(static_cast<uint32_t>(schema.size()));
    coded.WriteString(schema);
  }
  storage::CollectionRecord rec;
  ASSERT_TRUE(rec.ParseFromString(bytes));
  EXPECT_EQ(rec.id(), 3u);
  EXPECT_EQ(rec.name(), "c");
  absl::StatusOr<Schema> s = SchemaFromRecord(rec.schema());
  QUIVER_ASSERT_OK(s);
  ASSERT_EQ(s->vectors().size(), 3u);
  EXPECT_TRUE(s->vectors()[0].disk);
  EXPECT_EQ(s->vectors()[0].metric, Metric::kCosine);
  EXPECT_EQ(s->vectors()[0].index_params.at("M"), "24");
  EXPECT_TRUE(s->vectors()[1].multi);
  EXPECT_TRUE(s->vectors()[1].token_candidates);
  // Records from before optional vector fields hold none: every field required.
  for (const VectorFieldSpec& v : s->vectors()) EXPECT_FALSE(v.optional) << v.name;
  EXPECT_EQ(s->vectors()[1].encoding_params.at("seed"), "7");
  ASSERT_EQ(s->attributes().size(), 5u);
  EXPECT_EQ(s->attributes()[4].type, AttrType::kStringList);
  EXPECT_TRUE(s->attributes()[1].window);

  // Written back, it is the old message again (field for field: map
  // entries may serialize in another order).
  v1::CollectionSchema again;
  ASSERT_TRUE(again.ParseFromString(SchemaToRecord(*s).SerializeAsString()));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(again, old))
      << again.DebugString() << "\nvs\n" << old.DebugString();
  // And the API form of a bound request is what was stored before.
  absl::StatusOr<Schema> bound = BindSchema(old);
  QUIVER_ASSERT_OK(bound);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(SchemaToProto(*bound), old));
}

TEST(SchemaRecordTest, PointValuesOfTheApiLayoutStillOpen) {
  const AttrType types[] = {AttrType::kInt64, AttrType::kDouble, AttrType::kBool,
                            AttrType::kString, AttrType::kStringList, AttrType::kInt64};
  std::vector<v1::Value> old(6);
  old[0].set_int_value(-5);
  old[1].set_double_value(2.5);
  old[2].set_bool_value(true);
  old[3].set_string_value("x");
  old[4].mutable_string_list_value()->add_values("a");
  old[4].mutable_string_list_value()->add_values("b");
  // old[5] null
  for (size_t i = 0; i < old.size(); ++i) {
    storage::StoredValue stored;
    ASSERT_TRUE(stored.ParseFromString(old[i].SerializeAsString()));
    absl::StatusOr<AttrValue> a = AttrFromMessage(stored, types[i], "stored");
    QUIVER_ASSERT_OK(a);
    EXPECT_EQ(*a, *ValueToAttr(old[i], types[i], "api"));
    storage::StoredValue written;
    EXPECT_EQ(AttrToMessage(*a, &written), i != 5);
    EXPECT_EQ(written.SerializeAsString(), old[i].SerializeAsString()) << i;
  }
}

// The stored layout and the API's agree field for field and enum value for
// enum value (the templates in storage/schema_message.h rely on it). An API
// change to the schema or value messages fails here: decide how storage
// keeps the new field (records.proto) before taking it. The stored form may
// have fields of its own (a dropped vector field's mark), each a number the
// API reserves, so no API field can ever take it.
void ExpectSameLayout(const google::protobuf::Descriptor* api,
                      const google::protobuf::Descriptor* stored) {
  using google::protobuf::FieldDescriptor;
  SCOPED_TRACE(api->full_name());
  int stored_only = 0;
  for (int i = 0; i < stored->field_count(); ++i) {
    const FieldDescriptor* s = stored->field(i);
    if (api->FindFieldByNumber(s->number()) != nullptr) continue;
    ++stored_only;
    EXPECT_TRUE(api->IsReservedNumber(s->number()))
        << s->name() << " (" << s->number() << ") is stored only: the API must reserve its number";
  }
  ASSERT_EQ(api->field_count() + stored_only, stored->field_count());
  for (int i = 0; i < api->field_count(); ++i) {
    const FieldDescriptor* a = api->field(i);
    const FieldDescriptor* s = stored->FindFieldByNumber(a->number());
    ASSERT_NE(s, nullptr) << a->name();
    EXPECT_EQ(a->name(), s->name());
    EXPECT_EQ(a->type(), s->type()) << a->name();
    EXPECT_EQ(a->is_repeated(), s->is_repeated()) << a->name();
    EXPECT_EQ(a->is_map(), s->is_map()) << a->name();
    EXPECT_EQ(a->real_containing_oneof() == nullptr, s->real_containing_oneof() == nullptr);
    if (a->type() == FieldDescriptor::TYPE_ENUM) {
      const auto* ae = a->enum_type();
      const auto* se = s->enum_type();
      ASSERT_EQ(ae->value_count(), se->value_count()) << a->name();
      for (int v = 0; v < ae->value_count(); ++v) {
        EXPECT_NE(se->FindValueByNumber(ae->value(v)->number()), nullptr) << ae->value(v)->name();
      }
    }
    if (a->type() == FieldDescriptor::TYPE_MESSAGE && !a->is_map()) {
      ExpectSameLayout(a->message_type(), s->message_type());
    }
  }
}

TEST(SchemaRecordTest, StoredLayoutMatchesTheApi) {
  ExpectSameLayout(v1::CollectionSchema::descriptor(), storage::StoredSchema::descriptor());
  ExpectSameLayout(v1::Value::descriptor(), storage::StoredValue::descriptor());
}

TEST(SchemaRecordTest, StoredSchemaIsCheckedOnRead) {
  storage::StoredSchema bad;
  auto* v = bad.add_vectors();
  v->set_name("v");
  v->set_dim(4);
  v->set_metric(static_cast<storage::StoredVectorField::Metric>(7));
  EXPECT_THAT(SchemaFromRecord(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                              "vector field \"v\": metric must be"));
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
