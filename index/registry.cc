// The index registry: ValidateIndexSpec and CreateIndex (vector_index.h).
// Type and parameter names are matched case-insensitively; parameter values
// are decimal integers. Each kind's parameters, defaults and ranges are
// documented in its header (flat_index.h, hnsw_index.h, ivf_flat_index.h,
// ivf_sq8_index.h, ivf_pq_index.h, hnsw_sq8_index.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "index/flat_index.h"
#include "index/hnsw_index.h"
#include "index/hnsw_sq8_index.h"
#include "index/ivf_flat_index.h"
#include "index/ivf_pq_index.h"
#include "index/ivf_sq8_index.h"
#include "index/vector_index.h"
#include "base/status_macros.h"
#include "base/truncate.h"

namespace quiver::index {
namespace {

enum class Kind { kFlat, kHnsw, kIvfFlat, kIvfSq8, kIvfPq, kHnswSq8 };

struct ParamDef {
  const char* name;
  uint32_t min, max;
};

struct KindDef {
  Kind kind;
  const char* name;
  std::vector<ParamDef> params;
};

const std::vector<KindDef>& Kinds() {
  static const auto* kinds = new std::vector<KindDef>{
      {Kind::kFlat, "FLAT", {}},
      {Kind::kHnsw,
       "HNSW",
       {{"M", HnswOptions::kMinM, HnswOptions::kMaxM},
        {"ef_construction", HnswOptions::kMinEfConstruction, HnswOptions::kMaxEfConstruction}}},
      {Kind::kIvfFlat, "IVF_FLAT", {{"nlist", 1, IvfFlatOptions::kMaxNlist}}},
      {Kind::kIvfSq8, "IVF_SQ8", {{"nlist", 1, IvfFlatOptions::kMaxNlist}}},
      {Kind::kHnswSq8,
       "HNSW_SQ8",
       {{"M", HnswOptions::kMinM, HnswOptions::kMaxM},
        {"ef_construction", HnswOptions::kMinEfConstruction, HnswOptions::kMaxEfConstruction}}},
      {Kind::kIvfPq,
       "IVF_PQ",
       {{"nlist", 1, IvfFlatOptions::kMaxNlist}, {"m", 1, IvfPqOptions::kMaxM}}},
  };
  return *kinds;
}

// Parsed form of a spec: its kind and its parameters by canonical name.
struct Parsed {
  const KindDef* def = nullptr;
  std::vector<std::pair<std::string, uint32_t>> values;

  bool Get(const char* name, uint32_t* out) const {
    for (const auto& [n, v] : values) {
      if (n == name) {
        *out = v;
        return true;
      }
    }
    return false;
  }
};

absl::StatusOr<Parsed> Parse(const IndexSpec& spec) {
  Parsed parsed;
  for (const KindDef& def : Kinds()) {
    if (absl::EqualsIgnoreCase(spec.type, def.name)) parsed.def = &def;
  }
  if (parsed.def == nullptr) {
    std::vector<std::string> names;
    for (const KindDef& def : Kinds()) names.push_back(def.name);
    return absl::InvalidArgumentError(absl::StrCat("unknown index type \"", TruncateForMessage(spec.type),
                                                   "\"; valid types: ",
                                                   absl::StrJoin(names, ", ")));
  }
  const KindDef& def = *parsed.def;
  if (spec.dim == 0) {
    return absl::InvalidArgumentError(absl::StrCat(def.name, ": dim must be at least 1"));
  }
  for (const auto& [name, value] : spec.params) {
    const ParamDef* param = nullptr;
    for (const ParamDef& p : def.params) {
      if (absl::EqualsIgnoreCase(name, p.name)) param = &p;
    }
    if (param == nullptr) {
      std::vector<std::string> names;
      for (const ParamDef& p : def.params) names.push_back(p.name);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown ", def.name, " parameter \"", TruncateForMessage(name), "\"; valid parameters: ",
          names.empty() ? std::string("none") : absl::StrJoin(names, ", ")));
    }
    uint64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &v) || v < param->min ||
        v > param->max) {
      return absl::InvalidArgumentError(absl::StrCat(def.name, " parameter \"", param->name,
                                                     "\" must be an integer in [", param->min,
                                                     ", ", param->max, "], got \"",
                                                     TruncateForMessage(value), "\""));
    }
    parsed.values.emplace_back(param->name, static_cast<uint32_t>(v));
  }
  uint32_t m = 0;
  if (def.kind == Kind::kIvfPq && parsed.Get("m", &m) && spec.dim % m != 0) {
    return absl::InvalidArgumentError(absl::StrCat(def.name, " parameter \"m\" must divide dim (",
                                                   spec.dim, "), got ", m));
  }
  return parsed;
}

}  // namespace

absl::Status ValidateIndexSpec(const IndexSpec& spec) { return Parse(spec).status(); }

absl::StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(const IndexSpec& spec) {
  absl::StatusOr<Parsed> parsed = Parse(spec);
  if (!parsed.ok()) return parsed.status();
  IndexSpec canonical = spec;
  canonical.type = parsed->def->name;
  switch (parsed->def->kind) {
    case Kind::kFlat:
      return std::make_unique<FlatIndex>(std::move(canonical));
    case Kind::kHnsw: {
      HnswOptions o;
      parsed->Get("M", &o.m);
      parsed->Get("ef_construction", &o.ef_construction);
      return std::make_unique<HnswIndex>(std::move(canonical), o);
    }
    case Kind::kHnswSq8: {
      HnswOptions o;
      parsed->Get("M", &o.m);
      parsed->Get("ef_construction", &o.ef_construction);
      return std::make_unique<HnswSq8Index>(std::move(canonical), o);
    }
    case Kind::kIvfFlat: {
      IvfFlatOptions o;
      parsed->Get("nlist", &o.nlist);
      return std::make_unique<IvfFlatIndex>(std::move(canonical), o);
    }
    case Kind::kIvfSq8: {
      IvfSq8Options o;
      parsed->Get("nlist", &o.nlist);
      return std::make_unique<IvfSq8Index>(std::move(canonical), o);
    }
    case Kind::kIvfPq: {
      IvfPqOptions o;
      parsed->Get("nlist", &o.nlist);
      parsed->Get("m", &o.m);
      return std::make_unique<IvfPqIndex>(std::move(canonical), o);
    }
  }
  return absl::InternalError("unreachable");
}

absl::Status VectorIndex::Save(storage::FileSystem& fs, const std::string& path) const {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<storage::WritableFile> file, fs.NewWritableFile(path));
  QUIVER_RETURN_IF_ERROR(SaveTo(*file));
  QUIVER_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

absl::Status VectorIndex::Save(const std::string& path) const {
  return Save(*storage::FileSystem::Default(), path);
}

}  // namespace quiver::index
