// Schema and attribute values in message form: the collection record's
// StoredSchema and the point record's StoredValue (storage/records.proto).
//
// The conversions are templates over the message type because one other
// message has the same layout by design: the API's schema and value, which
// earlier versions stored verbatim (records.proto says which numbers are
// fixed). The query layer instantiates them with the API types
// (query/bind/wire_schema.h); storage names no API type. A message used
// here must have StoredSchema's field names and enum numbers.
//
// Stateless and reentrant. Errors: INVALID_ARGUMENT for an enum number
// outside the schema's (naming the field), a value of the wrong type, and
// whatever Schema::Create finds; callers reading records turn it into
// DATA_LOSS.
#ifndef QUIVER_STORAGE_SCHEMA_MESSAGE_H_
#define QUIVER_STORAGE_SCHEMA_MESSAGE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/truncate.h"
#include "storage/records.pb.h"
#include "storage/schema.h"

namespace quiver {

namespace schema_message_internal {

// Enum numbers of the message form (records.proto).
inline constexpr int kL2 = 1, kIP = 2, kCosine = 3;
inline constexpr int kMemory = 1, kDisk = 2;
inline constexpr int kMuvera = 0, kTokens = 1;
// AttrType in enum order, from number 1.
inline constexpr AttrType kAttrTypes[] = {AttrType::kInt64, AttrType::kDouble, AttrType::kBool,
                                          AttrType::kString, AttrType::kStringList};

// Sets an enum field from its number: `set` is the message's setter.
template <typename Msg, typename E>
void SetNumber(Msg* m, void (Msg::*set)(E), int n) {
  (m->*set)(static_cast<E>(n));
}

inline absl::Status FieldError(absl::string_view kind, const std::string& name,
                               absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(kind, " \"", TruncateForMessage(name), "\": ", rule));
}

// Only the stored form keeps dropped fields (the API never shows one).
template <typename FieldMsg>
inline constexpr bool kKeepsDropped = std::is_same_v<FieldMsg, storage::StoredVectorField>;

template <typename FieldMsg>
absl::StatusOr<VectorFieldSpec> VectorSpecFrom(const FieldMsg& f) {
  VectorFieldSpec spec;
  if constexpr (kKeepsDropped<FieldMsg>) spec.dropped = f.dropped();
  spec.name = f.name();
  spec.dim = f.dim();
  const int storage = static_cast<int>(f.storage());
  if (storage != 0 && storage != kMemory && storage != kDisk) {
    return FieldError("vector field", f.name(), "storage must be MEMORY or DISK");
  }
  spec.disk = storage == kDisk;
  switch (static_cast<int>(f.metric())) {
    case kL2: spec.metric = Metric::kL2; break;
    case kIP: spec.metric = Metric::kIP; break;
    case kCosine: spec.metric = Metric::kCosine; break;
    default: return FieldError("vector field", f.name(), "metric must be L2, IP or COSINE");
  }
  spec.optional = f.optional();
  spec.index_type = f.index().type();
  spec.index_params.insert(f.index().params().begin(), f.index().params().end());
  if (f.has_multi_vector()) {
    const auto& mv = f.multi_vector();
    spec.multi = true;
    spec.max_vectors = mv.max_vectors_per_point();
    const int candidates = static_cast<int>(mv.candidates());
    if (candidates != kMuvera && candidates != kTokens) {
      return FieldError("vector field", f.name(), "candidates must be MUVERA or TOKENS");
    }
    spec.token_candidates = candidates == kTokens;
    spec.encoding_params.insert(mv.encoding_params().begin(), mv.encoding_params().end());
  }
  return spec;
}

template <typename FieldMsg>
void VectorSpecTo(const VectorFieldSpec& spec, FieldMsg* f) {
  f->set_name(spec.name);
  f->set_dim(spec.dim);
  const int metric = spec.metric == Metric::kL2 ? kL2 : spec.metric == Metric::kIP ? kIP : kCosine;
  SetNumber(f, &FieldMsg::set_metric, metric);
  f->mutable_index()->set_type(spec.index_type);
  f->mutable_index()->mutable_params()->insert(spec.index_params.begin(),
                                               spec.index_params.end());
  SetNumber(f, &FieldMsg::set_storage, spec.disk ? kDisk : kMemory);
  f->set_optional(spec.optional);
  if constexpr (kKeepsDropped<FieldMsg>) f->set_dropped(spec.dropped);
  if (spec.multi) {
    auto* mv = f->mutable_multi_vector();
    mv->set_max_vectors_per_point(spec.max_vectors);
    mv->mutable_encoding_params()->insert(spec.encoding_params.begin(),
                                          spec.encoding_params.end());
    SetNumber(mv, &std::remove_pointer_t<decltype(mv)>::set_candidates,
              spec.token_candidates ? kTokens : kMuvera);
  }
}

// A sparse field's modifier: 1 is IDF in both forms (SparseModifier,
// StoredSparseField.Modifier).
template <typename SparseMsg>
bool SparseIdf(const SparseMsg& f) {
  return static_cast<int>(f.modifier()) == 1;
}
template <typename SparseMsg>
void SetSparseIdf(bool idf, SparseMsg* f) {
  SetNumber(f, &SparseMsg::set_modifier, idf ? 1 : 0);
}

}  // namespace schema_message_internal

// Builds a Schema from a StoredSchema-shaped message.
template <typename SchemaMsg>
absl::StatusOr<Schema> SchemaFromMessage(const SchemaMsg& m) {
  namespace in = schema_message_internal;
  std::vector<VectorFieldSpec> vectors;
  vectors.reserve(m.vectors_size());
  for (const auto& f : m.vectors()) {
    absl::StatusOr<VectorFieldSpec> spec = in::VectorSpecFrom(f);
    if (!spec.ok()) return spec.status();
    vectors.push_back(*std::move(spec));
  }
  std::vector<AttributeSpec> attributes;
  attributes.reserve(m.attributes_size());
  for (const auto& a : m.attributes()) {
    const int type = static_cast<int>(a.type());
    if (type < 1 || type > static_cast<int>(std::size(in::kAttrTypes))) {
      return in::FieldError("attribute", a.name(),
                            "type must be INT64, DOUBLE, BOOL, STRING or STRING_LIST");
    }
    AttributeSpec spec;
    spec.name = a.name();
    spec.type = in::kAttrTypes[type - 1];
    spec.indexed = a.indexed();
    spec.window = a.window();
    if (a.has_text()) {
      spec.text = true;
      spec.text_spec.language = a.text().language();
      spec.text_spec.stop_words = a.text().stop_words();
      if (a.text().has_k1()) spec.text_spec.k1 = a.text().k1();
      if (a.text().has_b()) spec.text_spec.b = a.text().b();
    }
    attributes.push_back(std::move(spec));
  }
  std::vector<SparseFieldSpec> sparse;
  sparse.reserve(m.sparse_vectors_size());
  for (const auto& f : m.sparse_vectors()) {
    if (static_cast<int>(f.modifier()) < 0 || static_cast<int>(f.modifier()) > 1) {
      return in::FieldError("sparse vector field", f.name(),
                            "has an unknown modifier (NONE or IDF)");
    }
    sparse.push_back(SparseFieldSpec{f.name(), in::SparseIdf(f)});
  }
  return Schema::Create(std::move(vectors), std::move(attributes), std::move(sparse));
}

// Whether SchemaMsg's form lists dropped vector fields (the stored form
// does, in place; the API's leaves them out).
template <typename SchemaMsg>
inline constexpr bool kSchemaKeepsDropped =
    std::is_same_v<SchemaMsg, storage::StoredSchema>;

// The message form of `s` (normalized, as Schema holds it).
template <typename SchemaMsg>
SchemaMsg SchemaToMessage(const Schema& s) {
  namespace in = schema_message_internal;
  SchemaMsg m;
  for (const VectorFieldSpec& spec : s.vectors()) {
    if (spec.dropped && !kSchemaKeepsDropped<SchemaMsg>) continue;
    in::VectorSpecTo(spec, m.add_vectors());
  }
  for (const AttributeSpec& spec : s.attributes()) {
    auto* a = m.add_attributes();
    a->set_name(spec.name);
    in::SetNumber(a, &std::remove_pointer_t<decltype(a)>::set_type,
                  static_cast<int>(spec.type) + 1);
    a->set_indexed(spec.indexed);
    a->set_window(spec.window);
    if (spec.text) {
      auto* t = a->mutable_text();
      t->set_language(spec.text_spec.language);
      t->set_stop_words(spec.text_spec.stop_words);
      t->set_k1(spec.text_spec.k1);
      t->set_b(spec.text_spec.b);
    }
  }
  for (const SparseFieldSpec& spec : s.sparse()) {
    auto* f = m.add_sparse_vectors();
    f->set_name(spec.name);
    in::SetSparseIdf(spec.idf, f);
  }
  return m;
}

// A SparseVector-shaped message (indices, values) checked and sorted by
// index: INVALID_ARGUMENT "<what>: ..." for lengths that differ, more than
// kMaxSparseNonZeros pairs, a value that is not finite, or an index given
// twice.
template <typename SparseMsg>
absl::StatusOr<SparseValue> SparseFromMessage(const SparseMsg& m, std::string_view what) {
  const absl::string_view w(what.data(), what.size());
  if (m.indices_size() != m.values_size()) {
    return absl::InvalidArgumentError(absl::StrCat(w, ": ", m.indices_size(), " indices but ",
                                                   m.values_size(), " values"));
  }
  if (static_cast<size_t>(m.indices_size()) > kMaxSparseNonZeros) {
    return absl::InvalidArgumentError(absl::StrCat(w, ": at most ", kMaxSparseNonZeros,
                                                   " indices, got ", m.indices_size()));
  }
  const size_t n = static_cast<size_t>(m.indices_size());
  bool sorted = true;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(m.values(static_cast<int>(i)))) {
      return absl::InvalidArgumentError(
          absl::StrCat(w, ": the value at index ", m.indices(static_cast<int>(i)),
                       " is not finite"));
    }
    if (i > 0 && m.indices(static_cast<int>(i)) <= m.indices(static_cast<int>(i - 1))) {
      sorted = false;
    }
  }
  auto v = std::make_shared<SparseVector>();
  v->indices.assign(m.indices().begin(), m.indices().end());
  v->values.assign(m.values().begin(), m.values().end());
  if (!sorted) {
    std::vector<uint32_t> order(n);
    for (uint32_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return v->indices[a] < v->indices[b]; });
    SparseVector s;
    s.indices.reserve(n);
    s.values.reserve(n);
    for (uint32_t i : order) {
      if (!s.indices.empty() && s.indices.back() == v->indices[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat(w, ": index ", v->indices[i], " is given twice"));
      }
      s.indices.push_back(v->indices[i]);
      s.values.push_back(v->values[i]);
    }
    *v = std::move(s);
  }
  return SparseValue(std::move(v));
}

template <typename SparseMsg>
void SparseToMessage(const SparseVector& v, SparseMsg* m) {
  m->mutable_indices()->Assign(v.indices.begin(), v.indices.end());
  m->mutable_values()->Assign(v.values.begin(), v.values.end());
}

// A StoredValue-shaped message as an attribute of `type` (an integer for a
// DOUBLE attribute is converted). A mismatch is INVALID_ARGUMENT:
// "<what>: expected <type>, got <kind>".
template <typename ValueMsg>
absl::StatusOr<AttrValue> AttrFromMessage(const ValueMsg& v, AttrType type,
                                          std::string_view what) {
  const absl::string_view w(what.data(), what.size());
  auto mismatch = [&](absl::string_view got) {
    const std::string_view t = AttrTypeName(type);
    return absl::InvalidArgumentError(
        absl::StrCat(w, ": expected ", absl::string_view(t.data(), t.size()), ", got ", got));
  };
  switch (v.kind_case()) {
    case ValueMsg::KIND_NOT_SET:
      return AttrValue{};
    case ValueMsg::kIntValue:
      if (type == AttrType::kInt64) return AttrValue{v.int_value()};
      if (type == AttrType::kDouble) return AttrValue{static_cast<double>(v.int_value())};
      return mismatch("an integer");
    case ValueMsg::kDoubleValue:
      if (type != AttrType::kDouble) return mismatch("a double");
      if (!std::isfinite(v.double_value())) {
        return absl::InvalidArgumentError(absl::StrCat(w, ": value is not finite"));
      }
      return AttrValue{v.double_value()};
    case ValueMsg::kBoolValue:
      if (type != AttrType::kBool) return mismatch("a bool");
      return AttrValue{v.bool_value()};
    case ValueMsg::kStringValue:
      if (type != AttrType::kString) return mismatch("a string");
      return AttrValue{v.string_value()};
    case ValueMsg::kStringListValue:
      if (type != AttrType::kStringList) return mismatch("a string list");
      return AttrValue{std::vector<std::string>(v.string_list_value().values().begin(),
                                                v.string_list_value().values().end())};
    default:
      break;
  }
  return mismatch("an unknown value kind");
}

// Sets `out` to `a`; false (and `out` untouched) for null.
template <typename ValueMsg>
bool AttrToMessage(const AttrValue& a, ValueMsg* out) {
  switch (a.index()) {
    case 0: return false;
    case 1: out->set_int_value(std::get<int64_t>(a)); return true;
    case 2: out->set_double_value(std::get<double>(a)); return true;
    case 3: out->set_bool_value(std::get<bool>(a)); return true;
    case 4: out->set_string_value(std::get<std::string>(a)); return true;
    case 5: {
      auto* list = out->mutable_string_list_value();
      for (const auto& s : std::get<std::vector<std::string>>(a)) list->add_values(s);
      return true;
    }
  }
  return false;
}

// The collection record's forms.
inline absl::StatusOr<Schema> SchemaFromRecord(const storage::StoredSchema& m) {
  return SchemaFromMessage(m);
}
inline storage::StoredSchema SchemaToRecord(const Schema& s) {
  return SchemaToMessage<storage::StoredSchema>(s);
}

}  // namespace quiver

#endif  // QUIVER_STORAGE_SCHEMA_MESSAGE_H_
