#include "query/bind/point_binder.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/bind/request_checks.h"
#include "query/bind/wire_schema.h"

namespace quiver::bind {
namespace {

constexpr uint8_t kCursorVersion = 1;
constexpr size_t kCursorHeader = 9;  // version, collection id, CRC-32

uint32_t CursorCrc(absl::string_view head, absl::string_view id) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(head.data()), static_cast<uInt>(head.size()));
  crc = crc32(crc, reinterpret_cast<const Bytef*>(id.data()), static_cast<uInt>(id.size()));
  return static_cast<uint32_t>(crc);
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
}

uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// A copy of `v` (normalized for COSINE) in a block of *owned.
const float* CopyVector(const VectorFieldSpec& spec, const google::protobuf::RepeatedField<float>& v,
                        std::vector<std::unique_ptr<float[]>>* owned) {
  float* dst = new float[spec.dim];
  owned->emplace_back(dst);
  if (spec.metric == Metric::kCosine) Normalize(v.data(), dst, spec.dim);
  else std::memcpy(dst, v.data(), spec.dim * sizeof(float));
  return dst;
}

// The MUVERA encoding of a multi-vector field's set (zeros when the field's
// index is over the token vectors, which need none), in a block of *owned.
const float* EncodeSet(const BindTarget& t, size_t f, const TokenSet& set,
                       std::vector<std::unique_ptr<float[]>>* owned) {
  const uint32_t dim = (*t.stored_dims)[f];
  float* fde = new float[dim];
  owned->emplace_back(fde);
  if ((*t.encoders)[f] != nullptr && !t.schema.vectors()[f].token_candidates) {
    (*t.encoders)[f]->EncodeDocument(set.data, set.count, fde);
  } else {
    std::fill(fde, fde + dim, 0.0f);
  }
  return fde;
}

absl::Status BindUpdateAttributes(const BindTarget& t, const v1::PointUpdate& u,
                                  const std::string& label, BoundPointUpdate* out) {
  const auto& attrs = t.schema.attributes();
  absl::flat_hash_set<int> touched;
  for (const auto& [name, value] : u.set_attributes()) {
    const int ai = t.schema.AttributeIndex(name);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": collection \"", t.name,
                                                     "\" has no attribute \"",
                                                     TruncateForMessage(name), "\""));
    }
    absl::StatusOr<AttrValue> av = ValueToAttr(value, attrs[ai].type, "");
    if (!av.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": attribute \"", name, "\"", av.status().message()));
    }
    touched.insert(ai);
    out->attrs.emplace_back(ai, *std::move(av));
  }
  for (const std::string& name : u.remove_attributes()) {
    const int ai = t.schema.AttributeIndex(name);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": collection \"", t.name,
                                                     "\" has no attribute \"",
                                                     TruncateForMessage(name), "\" to remove"));
    }
    if (!touched.insert(ai).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": attribute \"", name, "\" is both set and removed (or removed twice)"));
    }
    out->attrs.emplace_back(ai, AttrValue{});
  }
  // Schema order: the merge on the commit thread walks them in order.
  std::sort(out->attrs.begin(), out->attrs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Text attributes are analyzed here, off the commit thread.
  for (const auto& [ai, value] : out->attrs) {
    if (attrs[ai].text) out->text.emplace_back(ai, AnalyzeText(t, ai, value));
  }
  return absl::OkStatus();
}

absl::Status BindUpdateVectors(const BindTarget& t, const v1::PointUpdate& u,
                               const std::string& label, BoundUpdate* up,
                               BoundPointUpdate* out) {
  const size_t nf = t.schema.vectors().size();
  out->vectors.assign(nf, nullptr);
  out->tokens.assign(nf, TokenSet{});
  out->drop.assign(nf, false);
  for (const auto& [name, vec] : u.vectors()) {
    const int f = t.schema.VectorFieldIndex(name);
    if (f < 0 && t.schema.SparseFieldIndex(name) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": field \"", name, "\" is a sparse vector field: give its vector in "
          "sparse_vectors"));
    }
    if (f < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": collection \"", t.name,
                                                     "\" has no vector field \"",
                                                     TruncateForMessage(name), "\""));
    }
    const VectorFieldSpec& spec = t.schema.vectors()[f];
    if (spec.multi) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": field \"", name, "\" is a multi-vector field: give its vectors in "
          "multi_vectors"));
    }
    if (absl::Status st = CheckVector(vec.values(), spec.dim, spec.metric, ""); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": field \"", name, "\"", st.message()));
    }
    out->vectors[f] = CopyVector(spec, vec.values(), &up->owned_blocks);
  }
  for (const auto& [name, mv] : u.multi_vectors()) {
    const int f = t.schema.VectorFieldIndex(name);
    if (f < 0 || !t.schema.vectors()[f].multi) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": field \"", TruncateForMessage(name),
                       "\" is not a multi-vector field of collection \"", t.name, "\""));
    }
    QUIVER_ASSIGN_OR_RETURN(
        out->tokens[f],
        PrepareTokens(t.schema.vectors()[f], mv, absl::StrCat(label, ": field \"", name, "\""),
                      &up->owned_blocks));
    out->vectors[f] = EncodeSet(t, f, out->tokens[f], &up->owned_blocks);
  }
  std::vector<bool> sparse_named(t.schema.sparse().size(), false);
  for (const auto& [name, vec] : u.sparse_vectors()) {
    const int s = t.schema.SparseFieldIndex(name);
    if (s < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": collection \"", t.name,
                                                     "\" has no sparse vector field \"",
                                                     TruncateForMessage(name), "\""));
    }
    QUIVER_ASSIGN_OR_RETURN(
        SparseValue v, SparseFromProto(vec, absl::StrCat(label, ": sparse vector \"", name, "\"")));
    out->sparse.emplace_back(s, std::move(v));
    sparse_named[s] = true;
  }
  for (const std::string& name : u.remove_vectors()) {
    const int f = t.schema.VectorFieldIndex(name);
    if (const int s = t.schema.SparseFieldIndex(name); s >= 0) {
      // Every sparse field is optional.
      if (sparse_named[s]) {
        return absl::InvalidArgumentError(absl::StrCat(
            label, ": sparse vector field \"", name,
            "\" is both given and removed (or removed twice)"));
      }
      out->sparse.emplace_back(s, nullptr);
      sparse_named[s] = true;
      continue;
    }
    if (f < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": collection \"", t.name,
                                                     "\" has no vector field \"",
                                                     TruncateForMessage(name), "\" to remove"));
    }
    if (!t.schema.vectors()[f].optional) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": vector field \"", name, "\" is required: only an optional field's "
          "vector can be removed"));
    }
    if (out->vectors[f] != nullptr || out->drop[f]) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": vector field \"", name, "\" is both given and removed (or removed twice)"));
    }
    out->drop[f] = true;
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeScrollCursor(uint32_t collection_id, const std::string& last_id) {
  std::string raw(kCursorHeader, '\0');
  raw[0] = static_cast<char>(kCursorVersion);
  PutU32(collection_id, &raw[1]);
  PutU32(CursorCrc(absl::string_view(raw.data(), 5), last_id), &raw[5]);
  raw += last_id;
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<std::string> DecodeScrollCursor(uint32_t collection_id,
                                               const std::string& cursor) {
  auto malformed = [] {
    return absl::InvalidArgumentError(
        "cursor is malformed: pass the next_cursor of a previous ScrollPoints response as is");
  };
  std::string raw;
  if (!absl::WebSafeBase64Unescape(cursor, &raw) || raw.size() <= kCursorHeader ||
      static_cast<uint8_t>(raw[0]) != kCursorVersion) {
    return malformed();
  }
  const absl::string_view id = absl::string_view(raw).substr(kCursorHeader);
  if (GetU32(&raw[5]) != CursorCrc(absl::string_view(raw.data(), 5), id)) return malformed();
  if (GetU32(&raw[1]) != collection_id) {
    return absl::InvalidArgumentError(
        "cursor belongs to another collection (or to an earlier collection of this name)");
  }
  return std::string(id);
}

absl::StatusOr<BoundScroll> BindScroll(const BindTarget& t, uint32_t collection_id,
                                       const v1::ScrollPointsRequest& req) {
  BoundScroll s;
  if (req.page_size() > kMaxScrollPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size must be at most ", kMaxScrollPageSize, ", got ", req.page_size()));
  }
  if (req.page_size() != 0) s.page_size = req.page_size();
  if (!req.cursor().empty()) {
    QUIVER_ASSIGN_OR_RETURN(s.after, DecodeScrollCursor(collection_id, req.cursor()));
  }
  s.filter_bytes = req.filter().size();
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(s.filter, filter::Filter::Compile(req.filter(), t.schema));
  }
  // Output as GetPoints: the named attributes, or all of them.
  v1::GetPointsRequest as_get;
  as_get.set_with_vectors(req.with_vectors());
  *as_get.mutable_attributes() = req.attributes();
  QUIVER_ASSIGN_OR_RETURN(BoundGet g, BindGet(t, as_get));
  s.output = std::move(g.output);
  return s;
}

absl::StatusOr<BoundUpdate> BindUpdate(const BindTarget& t, const v1::UpdatePointsRequest& req) {
  if (req.updates().empty()) {
    return absl::InvalidArgumentError("update needs at least one point update");
  }
  BoundUpdate up;
  up.upsert = req.upsert();
  up.request_bytes = req.ByteSizeLong();
  up.updates.resize(req.updates_size());
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < req.updates_size(); ++i) {
    const v1::PointUpdate& u = req.updates(i);
    const std::string label = absl::StrCat("update ", i, " (id \"", TruncateForMessage(u.id(), 64),
                                           "\")");
    if (u.id().empty()) return absl::InvalidArgumentError(absl::StrCat(label, ": id is empty"));
    if (u.id().size() > kMaxIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": id is longer than ", kMaxIdBytes, " bytes"));
    }
    if (!seen.insert(u.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": id appears more than once in this request"));
    }
    BoundPointUpdate& out = up.updates[i];
    out.id = u.id();
    QUIVER_RETURN_IF_ERROR(BindUpdateAttributes(t, u, label, &out));
    QUIVER_RETURN_IF_ERROR(BindUpdateVectors(t, u, label, &up, &out));
    if (out.attrs.empty() && u.vectors().empty() && u.multi_vectors().empty() &&
        u.remove_vectors().empty() && u.sparse_vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": changes nothing (set or remove an attribute, give or remove a vector)"));
    }
  }
  return up;
}

}  // namespace quiver::bind
