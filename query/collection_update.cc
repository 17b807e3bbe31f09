// Collection::MergeUpdate: a partial update (UpdatePoints) turned into the
// upsert it amounts to. Each point's current row is read and merged with
// its changes (attributes set or removed, vectors replaced); the result is
// committed like any upsert (PrepareUpsert / ApplyUpsert): one RocksDB
// batch with its operation-log entry, the new row appended and the old one
// marked deleted at the same sequence. So a point changes atomically for
// readers, an acknowledged update survives a crash as an upsert does, and
// nothing needs a path of its own in recovery.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/collection.h"
#include "storage/schema_message.h"

namespace quiver {

absl::Status Collection::MergeUpdate(const BoundUpdate& u, View* keep, BoundUpsert* merged,
                                     uint32_t* created) const {
  // The view keeps the current rows' segments alive, and pins the memory
  // their vectors are read from, until the merged upsert is applied.
  *keep = TakeView();
  const size_t nf = schema().vectors().size();
  const size_t na = schema().attributes().size();
  const size_t ns = schema().sparse().size();
  merged->points.clear();
  merged->points.resize(u.updates.size());
  merged->request_bytes = u.request_bytes;
  *created = 0;
  ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < u.updates.size(); ++i) {
    const BoundPointUpdate& pu = u.updates[i];
    BoundUpsert::Point& p = merged->points[i];
    auto label = [&] {
      return absl::StrCat("update ", i, " (id \"", TruncateForMessage(pu.id, 64), "\")");
    };
    // Sized for the schema now (the update may have been bound against one
    // with fewer fields).
    p.vectors = pu.vectors;
    p.tokens = pu.tokens;
    p.vectors.resize(nf, nullptr);
    p.tokens.resize(nf);
    auto it = id_map_.find(pu.id);
    if (it == id_map_.end()) {
      if (!u.upsert) {
        return absl::NotFoundError(absl::StrCat(
            label(), ": point does not exist in collection \"", name_,
            "\"; nothing was updated (set upsert to create missing points)"));
      }
      for (size_t f = 0; f < nf; ++f) {
        const VectorFieldSpec& field = schema().vectors()[f];
        if (p.vectors[f] == nullptr && !field.optional && !field.dropped) {
          return absl::InvalidArgumentError(absl::StrCat(
              label(), ": point does not exist, and creating it needs vector field \"",
              schema().vectors()[f].name, "\"; nothing was updated"));
        }
      }
      p.attrs.assign(na, AttrValue{});
      p.sparse.assign(ns, nullptr);
      p.text.clear();
      ++*created;
    } else {
      const Segment& seg = *it->segment;
      const uint32_t off = it->offset;
      p.attrs = seg.attrs(off);
      p.attrs.resize(na);  // attributes added since the row was written: null
      p.sparse = seg.sparse(off);
      p.sparse.resize(ns);
      p.text = seg.text(off);
      for (size_t f = 0; f < nf; ++f) {
        // Kept unless replaced or removed; an optional one the point lacks
        // stays absent (null).
        if (p.vectors[f] != nullptr || (f < pu.drop.size() && pu.drop[f]) ||
            schema().vectors()[f].dropped || !seg.HasVector(f, off)) {
          continue;
        }
        p.vectors[f] = seg.vector(f, off);  // for a multi-vector field: its encoding
        if (schema().vectors()[f].multi) p.tokens[f] = seg.tokens(f, off);
      }
    }
    for (const auto& [ai, value] : pu.attrs) p.attrs[ai] = value;
    for (const auto& [si, value] : pu.sparse) p.sparse[si] = value;  // null removes
    for (const auto& [ai, terms] : pu.text) {
      if (p.text.size() <= static_cast<size_t>(ai)) p.text.resize(ai + 1);
      p.text[ai] = terms;
    }
    p.record.set_id(pu.id);
    for (size_t a = 0; a < na; ++a) AttrToMessage(p.attrs[a], p.record.add_attributes());
    for (size_t s = 0; s < ns; ++s) {
      if (p.sparse[s] != nullptr) {
        SparseToMessage(*p.sparse[s], &(*p.record.mutable_sparse_vectors())[static_cast<uint32_t>(s)]);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver
