#include "client/import/jsonl.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

std::string JsonTypeName(const nlohmann::json& j) { return j.type_name(); }

}  // namespace

JsonlConverter::JsonlConverter(const v1::CollectionSchema& schema, std::string default_field)
    : default_field_(std::move(default_field)) {
  for (const auto& f : schema.vectors()) vectors_[f.name()] = &f;
  for (const auto& a : schema.attributes()) attributes_[a.name()] = a.type();
  for (const auto& s : schema.sparse_vectors()) sparse_.insert(s.name());
}

absl::Status JsonlConverter::Convert(const nlohmann::json& j, v1::Point* p) const {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, got ", JsonTypeName(j)));
  }
  bool have_id = false;
  for (const auto& [key, value] : j.items()) {
    if (key == "id") {
      if (value.is_string()) {
        p->set_id(value.get<std::string>());
      } else if (value.is_number_integer()) {
        p->set_id(value.dump());
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("\"id\" must be a string, got ", JsonTypeName(value)));
      }
      have_id = true;
    } else if (key == "vector") {
      if (j.contains("vectors")) {
        return absl::InvalidArgumentError("give either \"vector\" or \"vectors\", not both");
      }
      if (default_field_.empty()) {
        return absl::InvalidArgumentError(
            "\"vector\" needs a collection with one vector field (or --field); use "
            "\"vectors\": {\"field\": [...]}");
      }
      QUIVER_RETURN_IF_ERROR(Vector(default_field_, value, p));
    } else if (key == "vectors") {
      if (!value.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"vectors\" must be an object of field -> array, got ", JsonTypeName(value)));
      }
      for (const auto& [name, v] : value.items()) QUIVER_RETURN_IF_ERROR(Vector(name, v, p));
    } else if (key == "attributes") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"attributes\" must be an object, got ", JsonTypeName(value)));
      }
      for (const auto& [name, v] : value.items()) QUIVER_RETURN_IF_ERROR(Attribute(name, v, p));
    } else if (key == "sparse_vectors") {
      if (!value.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"sparse_vectors\" must be an object of field -> sparse vector, got ",
            JsonTypeName(value)));
      }
      for (const auto& [name, v] : value.items()) QUIVER_RETURN_IF_ERROR(Sparse(name, v, p));
    } else {
      // Strict about keys: a misspelt "attribute" would otherwise drop
      // data silently.
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key \"", key,
                       "\" (expected id, vector, vectors, sparse_vectors, attributes)"));
    }
  }
  if (!have_id) return absl::InvalidArgumentError("missing \"id\"");
  return absl::OkStatus();
}

absl::Status JsonlConverter::Vector(const std::string& name, const nlohmann::json& v,
                                    v1::Point* p) const {
  auto it = vectors_.find(name);
  if (it == vectors_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no vector field \"", name, "\" in the schema"));
  }
  if (it->second->has_multi_vector()) {
    // A list of vectors: [[...], [...], ...].
    if (!v.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "multi-vector field \"", name, "\" takes an array of vectors, got ", JsonTypeName(v)));
    }
    v1::Point tmp;
    v1::MultiVector& mv = (*p->mutable_multi_vectors())[name];
    for (size_t j = 0; j < v.size(); ++j) {
      absl::Status st = Values(absl::StrCat(name, "[", j, "]"), it->second->dim(), v[j],
                               mv.add_vectors()->mutable_values());
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  return Values(name, it->second->dim(), v, (*p->mutable_vectors())[name].mutable_values());
}

absl::Status JsonlConverter::Sparse(const std::string& name, const nlohmann::json& v,
                                    v1::Point* p) const {
  if (!sparse_.contains(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("no sparse vector field \"", name, "\" in the schema"));
  }
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("sparse vector \"", name, "\": ", why));
  };
  if (!v.is_object()) {
    return bad(absl::StrCat("expected {\"indices\": [...], \"values\": [...]} or "
                            "{\"INDEX\": VALUE, ...}, got ", JsonTypeName(v)));
  }
  v1::SparseVector& out = (*p->mutable_sparse_vectors())[name];
  auto add = [&](const nlohmann::json& index, const nlohmann::json& value) -> absl::Status {
    uint64_t i = 0;
    if (index.is_number_unsigned()) {
      i = index.get<uint64_t>();
    } else if (index.is_string()) {
      if (!absl::SimpleAtoi(index.get<std::string>(), &i)) {
        return bad(absl::StrCat("index \"", index.get<std::string>(), "\" is not a number"));
      }
    } else {
      return bad(absl::StrCat("an index must be a non-negative integer, got ", index.dump()));
    }
    if (i > std::numeric_limits<uint32_t>::max()) {
      return bad(absl::StrCat("index ", i, " is past 2^32 - 1"));
    }
    if (!value.is_number()) return bad(absl::StrCat("value ", value.dump(), " is not a number"));
    out.add_indices(static_cast<uint32_t>(i));
    out.add_values(static_cast<float>(value.get<double>()));
    return absl::OkStatus();
  };
  if (v.contains("indices") || v.contains("values")) {
    const nlohmann::json& idx = v.value("indices", nlohmann::json::array());
    const nlohmann::json& val = v.value("values", nlohmann::json::array());
    if (!idx.is_array() || !val.is_array() || idx.size() != val.size() || v.size() != 2) {
      return bad("\"indices\" and \"values\" must be arrays of the same length (and nothing "
                 "else)");
    }
    for (size_t i = 0; i < idx.size(); ++i) QUIVER_RETURN_IF_ERROR(add(idx[i], val[i]));
    return absl::OkStatus();
  }
  for (const auto& [index, value] : v.items()) QUIVER_RETURN_IF_ERROR(add(nlohmann::json(index), value));
  return absl::OkStatus();
}

absl::Status JsonlConverter::Values(const std::string& name, uint32_t dim, const nlohmann::json& v,
                                    google::protobuf::RepeatedField<float>* values) {
  if (!v.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vector \"", name, "\" must be an array of numbers, got ", JsonTypeName(v)));
  }
  if (v.size() != dim) {
    return absl::InvalidArgumentError(absl::StrCat("vector \"", name, "\" has ", v.size(),
                                                   " values; the field's dimension is ", dim));
  }
  values->Reserve(static_cast<int>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector \"", name, "\"[", i, "] is not a number (", JsonTypeName(v[i]), ")"));
    }
    const float f = static_cast<float>(v[i].get<double>());
    if (!std::isfinite(f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("vector \"", name, "\"[", i, "] is not a finite float32"));
    }
    values->Add(f);
  }
  return absl::OkStatus();
}

absl::Status JsonlConverter::Attribute(const std::string& name, const nlohmann::json& v,
                                       v1::Point* p) const {
  auto it = attributes_.find(name);
  if (it == attributes_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("no attribute \"", name, "\" in the schema"));
  }
  if (v.is_null()) return absl::OkStatus();  // null = absent, as in the API
  v1::Value value;
  auto wrong = [&](const char* expected) {
    return absl::InvalidArgumentError(absl::StrCat("attribute \"", name, "\" is ",
                                                   AttributeTypeName(it->second), " and needs ",
                                                   expected, ", got ", v.dump()));
  };
  switch (it->second) {
    case v1::INT64:
      if (v.is_number_unsigned()) {
        if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return wrong("an integer in int64 range");
        }
        value.set_int_value(static_cast<int64_t>(v.get<uint64_t>()));
      } else if (v.is_number_integer()) {
        value.set_int_value(v.get<int64_t>());
      } else if (v.is_number_float()) {
        // 3.0 is accepted: some writers (Python's json) print whole
        // floats that way.
        const double d = v.get<double>();
        if (d != std::floor(d) || std::abs(d) >= 9.2e18) return wrong("an integer");
        value.set_int_value(static_cast<int64_t>(d));
      } else {
        return wrong("an integer");
      }
      break;
    case v1::DOUBLE:
      if (!v.is_number()) return wrong("a number");
      value.set_double_value(v.get<double>());
      break;
    case v1::BOOL:
      if (!v.is_boolean()) return wrong("true or false");
      value.set_bool_value(v.get<bool>());
      break;
    case v1::STRING:
      if (!v.is_string()) return wrong("a string");
      value.set_string_value(v.get<std::string>());
      break;
    case v1::STRING_LIST: {
      if (!v.is_array()) return wrong("an array of strings");
      auto* list = value.mutable_string_list_value();
      for (const auto& e : v) {
        if (!e.is_string()) return wrong("an array of strings");
        list->add_values(e.get<std::string>());
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("attribute \"", name, "\" has a type this client does not know"));
  }
  (*p->mutable_attributes())[name] = std::move(value);
  return absl::OkStatus();
}

std::string ParseErrorText(const char* what) {
  absl::string_view s(what);
  const size_t close = s.find("] ");
  if (!s.empty() && s[0] == '[' && close != absl::string_view::npos) s.remove_prefix(close + 2);
  return std::string(s);
}

}  // namespace quiver::ctl
