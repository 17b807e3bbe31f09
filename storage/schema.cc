#include "storage/schema.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/truncate.h"

namespace quiver {

std::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kL2: return "L2";
    case Metric::kIP: return "IP";
    case Metric::kCosine: return "COSINE";
  }
  return "?";
}

std::string_view AttrTypeName(AttrType t) {
  switch (t) {
    case AttrType::kInt64: return "INT64";
    case AttrType::kDouble: return "DOUBLE";
    case AttrType::kBool: return "BOOL";
    case AttrType::kString: return "STRING";
    case AttrType::kStringList: return "STRING_LIST";
  }
  return "?";
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

namespace {

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status BadName(std::string_view what, std::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid ", AV(what), " name \"", TruncateForMessage(name),
      "\": names must match [A-Za-z][A-Za-z0-9_]{0,63}"));
}

}  // namespace

absl::StatusOr<Schema> Schema::FromProto(const v1::CollectionSchema& proto) {
  Schema s;
  s.proto_ = proto;
  if (proto.vectors_size() == 0) {
    return absl::InvalidArgumentError("schema must declare at least one vector field");
  }
  if (proto.vectors_size() > kMaxVectorFields) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxVectorFields,
                                                   " vector fields, got ", proto.vectors_size()));
  }
  if (proto.attributes_size() > kMaxAttributes) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxAttributes,
                                                   " attributes, got ", proto.attributes_size()));
  }
  absl::flat_hash_map<std::string, int> all_names;
  for (int i = 0; i < proto.vectors_size(); ++i) {
    const v1::VectorField& f = proto.vectors(i);
    if (!IsValidName(f.name())) return BadName("vector field", f.name());
    if (!all_names.emplace(f.name(), i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate field name \"", f.name(), "\""));
    }
    if (f.dim() == 0 || f.dim() > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", f.name(), "\": dim must be in 1..", kMaxDim, ", got ", f.dim()));
    }
    if (f.storage() != v1::STORAGE_MODE_UNSPECIFIED && f.storage() != v1::MEMORY &&
        f.storage() != v1::DISK) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", f.name(), "\": storage must be MEMORY or DISK"));
    }
    VectorFieldSpec spec;
    spec.name = f.name();
    spec.dim = f.dim();
    switch (f.metric()) {
      case v1::L2: spec.metric = Metric::kL2; break;
      case v1::IP: spec.metric = Metric::kIP; break;
      case v1::COSINE: spec.metric = Metric::kCosine; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "vector field \"", f.name(), "\": metric must be L2, IP or COSINE"));
    }
    std::string type = absl::AsciiStrToUpper(f.index().type());
    if (type.empty()) type = "FLAT";
    spec.index_params.insert(f.index().params().begin(), f.index().params().end());
    spec.index_type = type;
    v1::VectorField* nf = s.proto_.mutable_vectors(i);
    nf->mutable_index()->set_type(type);
    spec.disk = f.storage() == v1::DISK;
    nf->set_storage(spec.disk ? v1::DISK : v1::MEMORY);
    if (f.has_multi_vector()) {
      const v1::MultiVectorOptions& mv = f.multi_vector();
      spec.multi = true;
      spec.max_vectors =
          mv.max_vectors_per_point() == 0 ? kDefaultMaxVectorsPerPoint : mv.max_vectors_per_point();
      if (spec.max_vectors > kMaxVectorsPerPoint) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vector field \"", f.name(), "\": max_vectors_per_point must be at most ",
            kMaxVectorsPerPoint, ", got ", mv.max_vectors_per_point()));
      }
      if (mv.candidates() != v1::MultiVectorOptions::MUVERA &&
          mv.candidates() != v1::MultiVectorOptions::TOKENS) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vector field \"", f.name(), "\": candidates must be MUVERA or TOKENS"));
      }
      spec.token_candidates = mv.candidates() == v1::MultiVectorOptions::TOKENS;
      spec.encoding_params.insert(mv.encoding_params().begin(), mv.encoding_params().end());
      nf->mutable_multi_vector()->set_max_vectors_per_point(spec.max_vectors);
    }
    s.vector_index_.emplace(spec.name, static_cast<int>(s.vectors_.size()));
    s.vectors_.push_back(std::move(spec));
  }
  for (int i = 0; i < proto.attributes_size(); ++i) {
    const v1::AttributeField& a = proto.attributes(i);
    if (!IsValidName(a.name())) return BadName("attribute", a.name());
    if (!all_names.emplace(a.name(), i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate field name \"", a.name(), "\""));
    }
    AttributeSpec spec;
    spec.name = a.name();
    spec.indexed = a.indexed();
    switch (a.type()) {
      case v1::INT64: spec.type = AttrType::kInt64; break;
      case v1::DOUBLE: spec.type = AttrType::kDouble; break;
      case v1::BOOL: spec.type = AttrType::kBool; break;
      case v1::STRING: spec.type = AttrType::kString; break;
      case v1::STRING_LIST: spec.type = AttrType::kStringList; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "attribute \"", a.name(),
            "\": type must be INT64, DOUBLE, BOOL, STRING or STRING_LIST"));
    }
    if (a.window()) {
      if (spec.type != AttrType::kInt64 && spec.type != AttrType::kDouble) {
        return absl::InvalidArgumentError(absl::StrCat(
            "attribute \"", a.name(), "\": window needs an INT64 or DOUBLE attribute"));
      }
      // A window index is partitioned by the attribute's sorted column.
      spec.window = true;
      spec.indexed = true;
      s.proto_.mutable_attributes(i)->set_indexed(true);
    }
    s.attribute_index_.emplace(spec.name, static_cast<int>(s.attributes_.size()));
    s.attributes_.push_back(std::move(spec));
  }
  return s;
}

int Schema::VectorFieldIndex(std::string_view name) const {
  auto it = vector_index_.find(AV(name));
  return it == vector_index_.end() ? -1 : it->second;
}

int Schema::AttributeIndex(std::string_view name) const {
  auto it = attribute_index_.find(AV(name));
  return it == attribute_index_.end() ? -1 : it->second;
}

absl::StatusOr<AttrValue> ValueToAttr(const v1::Value& v, AttrType type,
                                      std::string_view what) {
  auto mismatch = [&](std::string_view got) {
    return absl::InvalidArgumentError(absl::StrCat(
        AV(what), ": expected ", AV(AttrTypeName(type)), ", got ", AV(got)));
  };
  switch (v.kind_case()) {
    case v1::Value::KIND_NOT_SET:
      return AttrValue{};
    case v1::Value::kIntValue:
      if (type == AttrType::kInt64) return AttrValue{v.int_value()};
      if (type == AttrType::kDouble) return AttrValue{static_cast<double>(v.int_value())};
      return mismatch("an integer");
    case v1::Value::kDoubleValue:
      if (type != AttrType::kDouble) return mismatch("a double");
      if (!std::isfinite(v.double_value())) {
        return absl::InvalidArgumentError(absl::StrCat(AV(what), ": value is not finite"));
      }
      return AttrValue{v.double_value()};
    case v1::Value::kBoolValue:
      if (type != AttrType::kBool) return mismatch("a bool");
      return AttrValue{v.bool_value()};
    case v1::Value::kStringValue:
      if (type != AttrType::kString) return mismatch("a string");
      return AttrValue{v.string_value()};
    case v1::Value::kStringListValue:
      if (type != AttrType::kStringList) return mismatch("a string list");
      return AttrValue{std::vector<std::string>(v.string_list_value().values().begin(),
                                                v.string_list_value().values().end())};
    default:
      break;
  }
  return mismatch("an unknown value kind");
}

bool AttrToValue(const AttrValue& a, v1::Value* out) {
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

}  // namespace quiver
