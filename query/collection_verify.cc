// Collection::Verify: a collection's derived data (segments in memory and
// their files on disk) checked against RocksDB, the source of truth.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "query/collection.h"
#include "query/index_check.h"
#include "base/status_macros.h"

namespace quiver {
namespace {

constexpr int kMaxDefectsReported = 1000;

class Findings {
 public:
  explicit Findings(v1::VerifyCollectionResponse* resp) : resp_(resp) {}
  void Add(uint64_t segment_id, v1::VerifyDefect::Kind kind, const std::string& field,
           std::string detail) {
    resp_->set_defects_total(resp_->defects_total() + 1);
    if (resp_->defects_size() >= kMaxDefectsReported) return;
    v1::VerifyDefect* d = resp_->add_defects();
    d->set_segment_id(segment_id);
    d->set_kind(kind);
    d->set_field(field);
    d->set_detail(std::move(detail));
  }
  // Drops what was added since `mark` (findings about files that a
  // compaction removed while they were being checked).
  int Mark() const { return resp_->defects_size(); }
  uint64_t MarkTotal() const { return resp_->defects_total(); }
  void Rollback(int mark, uint64_t total) {
    while (resp_->defects_size() > mark) resp_->mutable_defects()->RemoveLast();
    resp_->set_defects_total(total);
  }

 private:
  v1::VerifyCollectionResponse* resp_;
};

// A visible row of the view, and what the scans of RocksDB found for it.
struct RowState {
  uint32_t part;
  uint32_t offset;
  bool has_point = false;
  bool has_mapping = false;
};

}  // namespace

absl::Status Collection::Verify(const BoundVerify& verify, const View& view,
                                storage::Store& store, const storage::StoreSnapshot& snapshot,
                                const storage::SegmentFiles& files,
                                v1::VerifyCollectionResponse* resp,
                                const StopToken& stop) const {
  namespace fs = std::filesystem;
  Findings found(resp);
  resp->set_sequence(view.seq);
  resp->set_segments_checked(static_cast<uint32_t>(view.parts.size()));
  const auto& fields = schema().vectors();

  // 1. Rows. Every row visible at view.seq, by internal id; holes (delete
  // sequence 0) and rows deleted by then are not visible.
  absl::flat_hash_map<uint64_t, RowState> rows;
  for (uint32_t p = 0; p < view.parts.size(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    for (uint32_t off = 0; off < view.parts[p].rows; ++off) {
      if (!seg.Visible(off, view.seq)) continue;
      auto [it, inserted] = rows.try_emplace(seg.iid(off), RowState{p, off});
      if (!inserted) {
        const Segment& other = *view.parts[it->second.part].segment;
        found.Add(seg.id(), v1::VerifyDefect::POINT_IN_TWO_SEGMENTS, "",
                  absl::StrCat("point \"", seg.external_id(off), "\" (internal id ", seg.iid(off),
                               ") is row ", off, " here and row ", it->second.offset,
                               " of segment ", other.id()));
      }
    }
  }
  resp->set_rows_checked(rows.size());
  uint64_t scanned = 0;
  // Every few hundred rows of the long scans below: has the request stopped?
  auto poll = [&]() -> absl::Status {
    return ++scanned % kStopCheckRows == 0 ? stop.Check() : absl::OkStatus();
  };
  QUIVER_RETURN_IF_ERROR(stop.Check());
  absl::flat_hash_set<uint64_t> unplaced;  // points in no row, reported once
  QUIVER_RETURN_IF_ERROR(store.ScanPoints(
      id_,
      [&](uint64_t iid, storage::PointRecord& rec) -> absl::Status {
        QUIVER_RETURN_IF_ERROR(poll());
        auto it = rows.find(iid);
        if (it == rows.end()) {
          unplaced.insert(iid);
          found.Add(0, v1::VerifyDefect::POINT_NOT_IN_SEGMENT, "",
                    absl::StrCat("point \"", rec.id(), "\" (internal id ", iid,
                                 ") is in RocksDB but in no segment"));
          return absl::OkStatus();
        }
        it->second.has_point = true;
        const Segment& seg = *view.parts[it->second.part].segment;
        if (seg.external_id(it->second.offset) != rec.id()) {
          found.Add(seg.id(), v1::VerifyDefect::ID_MISMATCH, "",
                    absl::StrCat("row ", it->second.offset, " (internal id ", iid, ") says \"",
                                 seg.external_id(it->second.offset), "\", RocksDB says \"",
                                 rec.id(), "\""));
        }
        // Sparse vectors: the row's in memory against the record's.
        const Schema& schema = this->schema();
        for (size_t s = 0; s < schema.sparse().size(); ++s) {
          const SparseVector* mine = SparseAt(seg.sparse(it->second.offset), s);
          auto stored = rec.sparse_vectors().find(static_cast<uint32_t>(s));
          const bool same =
              stored == rec.sparse_vectors().end()
                  ? mine == nullptr
                  : mine != nullptr &&
                        std::equal(mine->indices.begin(), mine->indices.end(),
                                   stored->second.indices().begin(),
                                   stored->second.indices().end()) &&
                        std::equal(mine->values.begin(), mine->values.end(),
                                   stored->second.values().begin(), stored->second.values().end());
          if (!same) {
            found.Add(seg.id(), v1::VerifyDefect::VECTOR_MISMATCH, schema.sparse()[s].name,
                      absl::StrCat("row ", it->second.offset, " (internal id ", iid,
                                   "): the sparse vector in memory differs from RocksDB's"));
          }
        }
        return absl::OkStatus();
      },
      &snapshot));
  QUIVER_RETURN_IF_ERROR(store.ScanIdMap(
      id_,
      [&](absl::string_view external_id, uint64_t iid) -> absl::Status {
        QUIVER_RETURN_IF_ERROR(poll());
        if (unplaced.contains(iid)) return absl::OkStatus();
        auto it = rows.find(iid);
        if (it == rows.end() ||
            view.parts[it->second.part].segment->external_id(it->second.offset) != external_id) {
          found.Add(it == rows.end() ? 0 : view.parts[it->second.part].segment->id(),
                    v1::VerifyDefect::ID_MISMATCH, "",
                    absl::StrCat("id map: \"", external_id, "\" -> internal id ", iid,
                                 ", which no visible row of that id holds"));
          return absl::OkStatus();
        }
        it->second.has_mapping = true;
        return absl::OkStatus();
      },
      &snapshot));
  for (const auto& [iid, row] : rows) {
    const Segment& seg = *view.parts[row.part].segment;
    if (!row.has_point) {
      found.Add(seg.id(), v1::VerifyDefect::ROW_WITHOUT_POINT, "",
                absl::StrCat("row ", row.offset, " (\"", seg.external_id(row.offset),
                             "\", internal id ", iid, ") has no point in RocksDB"));
    } else if (!row.has_mapping) {
      found.Add(seg.id(), v1::VerifyDefect::ID_MISMATCH, "",
                absl::StrCat("point \"", seg.external_id(row.offset), "\" (internal id ", iid,
                             ") has no id-map entry"));
    }
  }

  // 2. Vectors: each sampled visible row's, wherever the segment serves
  // them from (memory, a rerank table's mapping, a multi-vector table),
  // byte for byte against RocksDB's copy. The view's pin keeps memory a
  // table replaced meanwhile alive.
  std::vector<std::vector<bool>> sampled(view.parts.size());
  for (uint32_t p = 0; p < view.parts.size(); ++p) {
    const uint32_t n = view.parts[p].rows;
    const uint32_t want = verify.vector_sample_rows;
    sampled[p].assign(n, want == 0 || want >= n);
    if (want == 0 || want >= n) continue;
    std::mt19937_64 rng(verify.seed ^ (view.parts[p].segment->id() * 0x9E3779B97F4A7C15ull));
    std::vector<uint32_t> offs(n);
    for (uint32_t i = 0; i < n; ++i) offs[i] = i;
    for (uint32_t i = 0; i < want; ++i) {
      std::swap(offs[i], offs[i + rng() % (n - i)]);
      sampled[p][offs[i]] = true;
    }
  }
  uint64_t vectors_checked = 0;
  for (size_t f = 0; f < fields.size(); ++f) {
    const VectorFieldSpec& field = fields[f];
    // Its vectors left RocksDB with the drop; segments written before
    // still hold them in memory until rewritten.
    if (field.dropped) continue;
    absl::flat_hash_map<uint64_t, bool> seen;  // sampled rows with a vector
    QUIVER_RETURN_IF_ERROR(store.ScanVectors(
        id_, static_cast<uint16_t>(f),
        [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
          QUIVER_RETURN_IF_ERROR(poll());
          auto it = rows.find(iid);
          if (it == rows.end() || !sampled[it->second.part][it->second.offset]) {
            return absl::OkStatus();
          }
          seen[iid] = true;
          ++vectors_checked;
          const Segment& seg = *view.parts[it->second.part].segment;
          const uint32_t off = it->second.offset;
          if (!seg.HasVector(f, off)) {
            found.Add(seg.id(), v1::VerifyDefect::VECTOR_MISMATCH, field.name,
                      absl::StrCat("row ", off, " (\"", seg.external_id(off),
                                   "\"): RocksDB holds a vector the segment says is absent"));
            return absl::OkStatus();
          }
          const float* have;
          size_t n;
          if (field.multi) {
            const TokenSet t = seg.tokens(f, off);
            have = t.data;
            n = static_cast<size_t>(t.count) * field.dim;
          } else {
            have = seg.vector(f, off);
            n = field.dim;
          }
          if (n != d || (n > 0 && std::memcmp(have, data, n * sizeof(float)) != 0)) {
            found.Add(seg.id(), v1::VerifyDefect::VECTOR_MISMATCH, field.name,
                      absl::StrCat("row ", off, " (\"", seg.external_id(off), "\"): ",
                                   seg.table(f) != nullptr ? "rerank table" : "memory",
                                   " holds ", n, " floats that differ from RocksDB's ", d));
          }
          return absl::OkStatus();
        },
        &snapshot));
    for (const auto& [iid, row] : rows) {
      if (!sampled[row.part][row.offset] || !row.has_point || seen.contains(iid)) continue;
      const Segment& seg = *view.parts[row.part].segment;
      if (!seg.HasVector(f, row.offset)) continue;  // an optional field the point lacks
      found.Add(seg.id(), v1::VerifyDefect::VECTOR_MISMATCH, field.name,
                absl::StrCat("row ", row.offset, " (\"", seg.external_id(row.offset),
                             "\"): no vector in RocksDB"));
    }
  }
  resp->set_vectors_checked(vectors_checked);

  // 3. Files of sealed segments that were written. persist_mu_ keeps a
  // concurrent Persist from replacing the directory halfway through; a
  // compaction may still remove a replaced segment's files, and what that
  // makes look missing is not reported (the segment is retired by then).
  uint32_t files_checked = 0;
  for (const View::Part& part : view.parts) {
    QUIVER_RETURN_IF_ERROR(stop.Check());
    const Segment& seg = *part.segment;
    if (!seg.sealed() || !seg.persisted() || seg.retired()) continue;
    MutexLock persist_lock(&persist_mu_);
    const int mark = found.Mark();
    const uint64_t total = found.MarkTotal();
    uint32_t checked = 0;
    auto file_status = [&](const absl::Status& s, const std::string& field,
                           const std::string& what) {
      if (s.ok()) return;
      found.Add(seg.id(),
                absl::IsNotFound(s) ? v1::VerifyDefect::FILE_MISSING
                                    : v1::VerifyDefect::FILE_CORRUPT,
                field, absl::StrCat(what, ": ", s.message()));
    };
    absl::StatusOr<storage::SegmentManifest> m = files.ReadManifest(id_, seg.id());
    ++checked;
    file_status(m.status(), "", "MANIFEST");
    if (m.ok()) {
      // All the segment's rows now, not the view's: a segment still growing
      // at the view's point may have been sealed and persisted since, with
      // rows the view does not see (found by the crash loop: "MANIFEST
      // lists 100 rows, the segment has 78" on a healthy collection).
      const uint32_t n = seg.published();
      if (static_cast<uint64_t>(m->iids_size()) != n) {
        found.Add(seg.id(), v1::VerifyDefect::MANIFEST_MISMATCH, "",
                  absl::StrCat("MANIFEST lists ", m->iids_size(), " rows, the segment has ", n));
      } else {
        for (uint32_t off = 0; off < n; ++off) {
          if (m->iids(static_cast<int>(off)) != seg.iid(off)) {
            found.Add(seg.id(), v1::VerifyDefect::MANIFEST_MISMATCH, "",
                      absl::StrCat("MANIFEST row ", off, " is internal id ",
                                   m->iids(static_cast<int>(off)), ", the segment's is ",
                                   seg.iid(off)));
            break;
          }
        }
      }
      for (const auto& e : m->indexes()) {
        ++checked;
        const std::string name = e.field() < fields.size() ? fields[e.field()].name : "";
        file_status(files.VerifyFile(id_, seg.id(), e), name, e.file());
      }
      for (const auto& rf : m->rerank_tables()) {
        ++checked;
        if (rf.field() >= fields.size()) {
          found.Add(seg.id(), v1::VerifyDefect::FILE_CORRUPT, "",
                    absl::StrCat("MANIFEST names a rerank table of field ", rf.field(),
                                 ", which does not exist"));
          continue;
        }
        const VectorFieldSpec& field = fields[rf.field()];
        storage::RerankTableExpect expect;
        expect.dim = field.dim;
        expect.rows = static_cast<uint64_t>(m->iids_size());
        expect.sequence = rf.sequence();
        expect.multi = field.multi;
        const std::string path = files.RerankTablePath(id_, seg.id(), rf.field());
        auto table = storage::RerankTable::Open(path, expect);
        file_status(table.status(), field.name,
                    absl::StrCat("rerank table ", fs::path(path).filename().string()));
      }
    }
    if (seg.retired()) {
      found.Rollback(mark, total);
      continue;
    }
    files_checked += checked;
  }
  resp->set_files_checked(files_checked);

  // 4. Each sealed segment's vector indexes answer a sample of its own rows
  // as an exact search over the segment does (the check the index builder
  // runs before serving a build; here for indexes loaded or served since).
  if (verify.index_samples > 0) {
    const uint32_t samples = verify.index_samples;
    uint32_t indexes_checked = 0;
    for (const View::Part& part : view.parts) {
      const Segment& seg = *part.segment;
      if (!seg.sealed()) continue;
      for (size_t f = 0; f < fields.size(); ++f) {
        QUIVER_RETURN_IF_ERROR(stop.Check());
        std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
        if (idx == nullptr) continue;
        const IndexCheckResult check =
            CheckIndex(seg, f, *idx, samples, verify.seed ^ (seg.id() * 131 + f),
                       /*measure_recall=*/true, &stop);
        if (check.samples == 0) continue;  // nothing it can check (TOKENS indexes)
        ++indexes_checked;
        if (!check.ok) {
          found.Add(seg.id(), v1::VerifyDefect::INDEX_RECALL, fields[f].name,
                    absl::StrCat(idx->Describe(), ": ", check.ToString()));
        }
      }
    }
    resp->set_indexes_checked(indexes_checked);
  }
  // An index check cut short by a stop covers fewer samples than asked.
  return stop.Check();
}

}  // namespace quiver
