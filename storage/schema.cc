#include "storage/schema.h"

#include <cmath>

#include <algorithm>

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

absl::StatusOr<Schema> Schema::Create(std::vector<VectorFieldSpec> vectors,
                                      std::vector<AttributeSpec> attributes,
                                      std::vector<SparseFieldSpec> sparse) {
  if (sparse.empty() && std::none_of(vectors.begin(), vectors.end(),
                                     [](const VectorFieldSpec& f) { return !f.dropped; })) {
    return absl::InvalidArgumentError(
        "schema must declare at least one vector field (dense or sparse)");
  }
  if (sparse.size() > static_cast<size_t>(kMaxSparseFields)) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxSparseFields,
                                                   " sparse vector fields, got ", sparse.size()));
  }
  if (vectors.size() > static_cast<size_t>(kMaxVectorFields)) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxVectorFields, " vector fields (dropped ones count), got ",
                     vectors.size()));
  }
  if (attributes.size() > static_cast<size_t>(kMaxAttributes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxAttributes, " attributes, got ", attributes.size()));
  }
  Schema s;
  absl::flat_hash_map<std::string, int> all_names;
  for (VectorFieldSpec& f : vectors) {
    if (!IsValidName(f.name)) return BadName("vector field", f.name);
    if (f.dropped) {
      // Kept for its place only: its name may be in use again.
      s.vectors_.push_back(std::move(f));
      continue;
    }
    if (!all_names.emplace(f.name, 0).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate field name \"", f.name, "\""));
    }
    if (f.dim == 0 || f.dim > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", f.name, "\": dim must be in 1..", kMaxDim, ", got ", f.dim));
    }
    f.index_type = absl::AsciiStrToUpper(f.index_type);
    if (f.index_type.empty()) f.index_type = "FLAT";
    if (f.multi && f.optional) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", f.name, "\": a multi-vector field cannot be optional"));
    }
    if (f.multi) {
      if (f.max_vectors == 0) f.max_vectors = kDefaultMaxVectorsPerPoint;
      if (f.max_vectors > kMaxVectorsPerPoint) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vector field \"", f.name, "\": max_vectors_per_point must be at most ",
            kMaxVectorsPerPoint, ", got ", f.max_vectors));
      }
    }
    s.vector_index_.emplace(f.name, static_cast<int>(s.vectors_.size()));
    s.vectors_.push_back(std::move(f));
    ++s.live_vectors_;
  }
  for (AttributeSpec& a : attributes) {
    if (!IsValidName(a.name)) return BadName("attribute", a.name);
    if (!all_names.emplace(a.name, 0).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate field name \"", a.name, "\""));
    }
    if (a.text) {
      if (a.type != AttrType::kString) {
        return absl::InvalidArgumentError(
            absl::StrCat("attribute \"", a.name, "\": text needs a STRING attribute"));
      }
      const TextSpec& t = a.text_spec;
      if (!std::isfinite(t.k1) || t.k1 < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "attribute \"", a.name, "\": text k1 must be a finite number >= 0, got ", t.k1));
      }
      if (!std::isfinite(t.b) || t.b < 0 || t.b > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("attribute \"", a.name, "\": text b must be in [0, 1], got ", t.b));
      }
      if (a.text_spec.language.empty()) a.text_spec.language = "english";
    }
    if (a.window) {
      if (a.type != AttrType::kInt64 && a.type != AttrType::kDouble) {
        return absl::InvalidArgumentError(absl::StrCat(
            "attribute \"", a.name, "\": window needs an INT64 or DOUBLE attribute"));
      }
      // A window index is partitioned by the attribute's sorted column.
      a.indexed = true;
    }
    s.attribute_index_.emplace(a.name, static_cast<int>(s.attributes_.size()));
    s.attributes_.push_back(std::move(a));
  }
  for (SparseFieldSpec& f : sparse) {
    if (!IsValidName(f.name)) return BadName("sparse vector field", f.name);
    if (!all_names.emplace(f.name, 0).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate field name \"", f.name, "\""));
    }
    s.sparse_index_.emplace(f.name, static_cast<int>(s.sparse_.size()));
    s.sparse_.push_back(std::move(f));
  }
  return s;
}

int Schema::SparseFieldIndex(std::string_view name) const {
  auto it = sparse_index_.find(AV(name));
  return it == sparse_index_.end() ? -1 : it->second;
}

int Schema::VectorFieldIndex(std::string_view name) const {
  auto it = vector_index_.find(AV(name));
  return it == vector_index_.end() ? -1 : it->second;
}

int Schema::AttributeIndex(std::string_view name) const {
  auto it = attribute_index_.find(AV(name));
  return it == attribute_index_.end() ? -1 : it->second;
}

}  // namespace quiver
