// Collection's persistence and recovery: Persist writes a sealed segment's
// files (indexes, rerank tables, MANIFEST), LoadIndexes reads them back, and
// Recover rebuilds the collection's memory from RocksDB and those files at
// start-up.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/attr_index.h"
#include "query/execute/sparse_search.h"
#include "query/collection.h"
#include "query/index_check.h"
#include "query/recall_calibration.h"
#include "storage/schema_message.h"
#include "spdlog/spdlog.h"

namespace quiver {

absl::Status Collection::Persist(Segment& seg, const storage::SegmentFiles& files) const {
  // Several builder workers may finish one segment (an index change
  // re-queues it): one persist at a time, so a table is written and
  // attached once.
  MutexLock persist_lock(&persist_mu_);
  // Checked under the lock: a drop or an abandoned restore marks the
  // collection dropped, then waits on this lock before removing its files,
  // so no persist may write them back after that.
  if (dropped() || seg.retired()) return absl::OkStatus();
  QUIVER_ASSIGN_OR_RETURN(const std::string tmp, files.BeginWrite(id_, seg.id()));
  // A failed persist (a full disk, say) leaves nothing behind: the space
  // goes back, and the next attempt starts over.
  std::vector<std::string> tables;  // written by this attempt
  bool committed = false;
  struct Cleanup {
    const std::string& tmp;
    const std::vector<std::string>& tables;
    const bool& committed;
    storage::FileSystem& fs;
    ~Cleanup() {
      if (committed) return;
      // Commit failed after renaming the directory into place (its last
      // fsync): the MANIFEST on disk names these tables, keep them.
      absl::StatusOr<bool> exists = fs.Exists(tmp);
      if (exists.ok() && !*exists) return;
      (void)fs.DeleteTree(tmp);
      for (const std::string& t : tables) (void)fs.DeleteFile(t);
    }
  } cleanup{tmp, tables, committed, files.fs()};
  storage::SegmentManifest m;
  m.set_collection_id(id_);
  m.set_segment_id(seg.id());
  const uint32_t rows = seg.published();
  for (uint32_t off = 0; off < rows; ++off) m.add_iids(seg.iid(off));
  {
    ReaderMutexLock lock(&mu_);
    m.set_sequence(seq_);
  }
  QUIVER_RETURN_IF_ERROR(WriteIndexFiles(seg, files, tmp, &m));
  // DISK fields: the full vectors go to a rerank table, written once.
  std::vector<size_t> written;
  QUIVER_RETURN_IF_ERROR(WriteRerankTables(seg, files, rows, &m, &tables, &written));
  QUIVER_RETURN_IF_ERROR(files.Commit(tmp, m));
  committed = true;
  // A compaction may have replaced the segment while it was being written;
  // it removes the files of segments it retires, and either it sees these
  // files or this sees the retirement.
  if (seg.retired()) return files.RemoveSegment(id_, seg.id());
  seg.SetPersisted();
  for (const auto& e : m.indexes()) seg.SetDiskBytes(e.field(), e.size());
  // Only now, with the manifest naming them, do the tables serve.
  for (size_t f : written) {
    storage::RerankTableExpect expect;
    expect.dim = schema().vectors()[f].dim;
    expect.rows = rows;
    expect.sequence = m.sequence();
    expect.multi = schema().vectors()[f].multi;
    QUIVER_RETURN_IF_ERROR(AttachTable(seg, f, files.RerankTablePath(id_, seg.id(),
                                                                     static_cast<uint32_t>(f)),
                                       expect, /*compute_norms=*/false));
  }
  return absl::OkStatus();
}

absl::Status Collection::WriteIndexFiles(const Segment& seg, const storage::SegmentFiles& files,
                                         const std::string& tmp,
                                         storage::SegmentManifest* m) const {
  // The MANIFEST the segment's mapped indexes were loaded with, read once.
  std::optional<absl::StatusOr<storage::SegmentManifest>> loaded;
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    const VectorFieldSpec& field = schema().vectors()[f];
    if (field.dropped) continue;
    if (seg.LacksField(f)) {
      m->add_fields_without_rows(static_cast<uint32_t>(f));
      continue;
    }
    std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
    if (idx == nullptr) continue;
    const index::IndexSpec& spec = idx->spec();
    storage::SegmentManifest::IndexFile* e = m->add_indexes();
    e->set_field(static_cast<uint32_t>(f));
    e->set_field_name(field.name);
    e->set_index_type(spec.type);
    e->mutable_index_params()->insert(spec.params.begin(), spec.params.end());
    e->set_file(absl::StrCat("f", f, ".index"));
    if (const Segment::CalibratedIndex ci = seg.calibrated_index(f);
        ci.calibration != nullptr && ci.index == idx) {
      *e->mutable_calibration() = ci.calibration->ToProto();
    }
    QUIVER_RETURN_IF_ERROR(idx->Save(files.fs(), absl::StrCat(tmp, "/", e->file())));
    QUIVER_RETURN_IF_ERROR(files.Checksum(tmp, e));
    // A mapped index reads its file as it is on disk now: saved again, it
    // must be the bytes whose checksum it was loaded with, or a file damaged
    // in place would be written back under a checksum that holds.
    if (idx->mapped()) {
      if (!loaded.has_value()) loaded = files.ReadManifest(id_, seg.id());
      bool same = false;
      if (loaded->ok()) {
        for (const auto& le : (*loaded)->indexes()) {
          same = same || (le.file() == e->file() && le.size() == e->size() &&
                          le.crc32() == e->crc32());
        }
      }
      if (!same) {
        return absl::DataLossError(absl::StrCat(
            "segment ", seg.id(), " field \"", field.name, "\": its index file ", e->file(),
            " changed on disk while in use; not written again (restart quiverd to rebuild it)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::WriteRerankTables(const Segment& seg, const storage::SegmentFiles& files,
                                           uint32_t rows, storage::SegmentManifest* m,
                                           std::vector<std::string>* tables,
                                           std::vector<size_t>* written) const {
  // DISK fields: the full vectors go to a rerank table, written once; an
  // attached one is named again with the sequence it was written at.
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    // Multi-vector fields always keep their sets in a table: one contiguous
    // array that exact MaxSim scans block by block.
    const VectorFieldSpec& field = schema().vectors()[f];
    if ((!field.disk && !field.multi) || field.dropped) continue;
    storage::SegmentManifest::RerankFile* rf = m->add_rerank_tables();
    rf->set_field(static_cast<uint32_t>(f));
    if (std::shared_ptr<const storage::RerankTable> t = seg.table(f); t != nullptr) {
      rf->set_sequence(t->sequence());
      rf->set_size(t->file_bytes());
      continue;
    }
    const std::string path = files.RerankTablePath(id_, seg.id(), static_cast<uint32_t>(f));
    QUIVER_RETURN_IF_ERROR(files.fs().CreateDirs(storage::DirName(path)));
    storage::RerankTableWriter w(files.fs(), path, field.dim, m->sequence(), field.multi);
    for (uint32_t off = 0; off < rows; ++off) {
      if (field.multi) {
        const TokenSet t = seg.tokens(f, off);
        QUIVER_RETURN_IF_ERROR(w.Add(t.data, t.count));
      } else {
        QUIVER_RETURN_IF_ERROR(w.Add(seg.vector(f, off), 1));
      }
    }
    QUIVER_RETURN_IF_ERROR(w.Finish());
    tables->push_back(path);
    rf->set_sequence(m->sequence());
    QUIVER_ASSIGN_OR_RETURN(const uint64_t table_bytes, files.fs().FileSize(path));
    rf->set_size(table_bytes);
    written->push_back(f);
  }
  return absl::OkStatus();
}

bool Collection::LoadIndexes(Segment* seg, const storage::SegmentManifest& manifest,
                             const storage::SegmentFiles& files) const {
  const storage::SegmentManifest* m = &manifest;
  bool complete = true;
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    const VectorFieldSpec& field = schema().vectors()[f];
    const index::IndexSpec spec = IndexSpecFor(f);
    if (spec.type == "FLAT" || field.dropped) continue;
    // Written when no row held the field: rows never change, so none does.
    if (std::find(m->fields_without_rows().begin(), m->fields_without_rows().end(), f) !=
        m->fields_without_rows().end()) {
      continue;
    }
    const storage::SegmentManifest::IndexFile* entry = nullptr;
    for (const auto& e : m->indexes()) {
      if (e.field() == f && e.index_type() == spec.type &&
          std::map<std::string, std::string>(e.index_params().begin(), e.index_params().end()) ==
              spec.params) {
        entry = &e;
      }
    }
    absl::Status s = entry == nullptr ? absl::NotFoundError("no index file for the current spec")
                                      : files.VerifyFile(id_, seg->id(), *entry);
    if (s.ok()) {
      auto idx = index::CreateIndex(spec);
      const std::string path = absl::StrCat(files.SegmentDir(id_, seg->id()), "/", entry->file());
      // Checked against its checksum just now; the mapping reads the same
      // pages the check read.
      s = !idx.ok()                 ? idx.status()
          : options_.map_index_files ? (*idx)->LoadMapped(path)
                                     : (*idx)->Load(path);
      // A TOKENS index is checked against the vector sets' table; without
      // one the sets are still being loaded (and the table is rebuilt).
      if (s.ok() && field.token_candidates && seg->table(f) == nullptr) {
        s = absl::DataLossError("no verified vector-set table to check the index against");
      }
      const uint64_t want = !s.ok() ? 0
                            : field.token_candidates ? seg->TokenCount(f, seg->appended())
                                                     : seg->appended();
      if (s.ok() && (*idx)->size() != want) {
        s = absl::DataLossError("index size does not match the segment");
      }
      if (s.ok()) {
        // The index's recall calibration, written with it. One that does
        // not parse is measured again (the index itself is fine).
        std::shared_ptr<const RecallCalibration> cal;
        if (entry->has_calibration()) {
          absl::StatusOr<RecallCalibration> c = RecallCalibration::FromProto(entry->calibration());
          if (c.ok()) {
            cal = std::make_shared<const RecallCalibration>(std::move(*c));
          } else {
            spdlog::warn("collection \"{}\" segment {} field \"{}\": recalibrating: {}", name_,
                         seg->id(), field.name, c.status().ToString());
          }
        }
        seg->SetIndex(f, std::shared_ptr<const index::VectorIndex>(std::move(*idx)), cal);
        seg->SetDiskBytes(f, entry->size());
      }
    }
    if (!s.ok() && entry == nullptr && field.optional) {
      // Likely a field added since the segment was written: whether an
      // index is needed is known once the vectors are loaded.
      spdlog::info("collection \"{}\" segment {} field \"{}\": no index file; built if a row "
                   "holds the field", name_, seg->id(), field.name);
      complete = false;
    } else if (!s.ok()) {
      spdlog::warn("collection \"{}\" segment {} field \"{}\": rebuilding index: {}", name_,
                   seg->id(), field.name, s.ToString());
      complete = false;
    }
  }
  return complete;
}

// What Recover builds up across its steps.
struct Collection::RecoveryState {
  uint64_t last_seq = 0;
  // Every row found so far, by internal id.
  absl::flat_hash_map<uint64_t, RowRef> by_iid;
  // Read once; `restored` points into it.
  std::vector<storage::SegmentManifest> manifests;
  // Persisted segments restored, with their manifests.
  std::vector<std::pair<std::shared_ptr<Segment>, const storage::SegmentManifest*>> restored;
  // The restored segments in the order their index files are loaded.
  std::vector<std::shared_ptr<Segment>> load_order;
};

absl::Status Collection::Recover(storage::Store& store, const storage::SegmentFiles& files,
                                 uint64_t last_seq) {
  // Before the collection is shared, recovery is the only writer: it plays
  // the commit thread.
  kCommitThread.Assume();
  RecoveryState st;
  st.last_seq = last_seq;
  // 1. Persisted segments, their rerank tables checked against RocksDB.
  RestorePersistedSegments(files, &st);
  QUIVER_RETURN_IF_ERROR(CheckRestoredTables(store, files, &st));
  {
    std::vector<uint64_t> keep;
    for (const auto& [seg, m] : st.restored) keep.push_back(seg->id());
    files.RemoveOrphanTables(id_, keep);
  }
  std::sort(st.restored.begin(), st.restored.end(),
            [](const auto& a, const auto& b) { return a.first->id() < b.first->id(); });
  for (auto& [seg, m] : st.restored) writer_segments_.push_back(seg);
  // Index files load on another thread while this one reads the points from
  // RocksDB: the two are the bulk of a restart and need nothing from each
  // other (a restored segment's size is known from its manifest).
  for (auto& [seg, m] : st.restored) st.load_order.push_back(seg);
  std::future<std::vector<bool>> loaded =
      std::async(std::launch::async, [this, jobs = st.restored, &files] {
        std::vector<bool> complete;
        for (const auto& [seg, m] : jobs) complete.push_back(LoadIndexes(seg.get(), *m, files));
        return complete;
      });
  // 2. Points.
  absl::Status s = LoadPoints(store, files, &st);
  // 3. Indexes of restored segments (loaded meanwhile). A segment reads its
  // rows in an index that keeps them (one copy); the others get their own.
  std::vector<bool> complete = loaded.get();
  QUIVER_RETURN_IF_ERROR(s);
  for (const auto& seg : st.load_order) {
    if (std::find(writer_segments_.begin(), writer_segments_.end(), seg) == writer_segments_.end()) {
      continue;  // dropped by LoadPoints: no live rows
    }
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      if (seg->lends_rows(f)) AdoptIndexRows(*seg, f, /*compare=*/false);
    }
    seg->OwnRows();
  }
  // 4. Vectors: copied where the segment keeps its own, compared where an
  // index holds them. A segment whose index holds other vectors than
  // RocksDB's is rebuilt.
  absl::flat_hash_set<const Segment*> mismatched;
  QUIVER_RETURN_IF_ERROR(LoadVectors(store, &st, &mismatched));
  for (size_t i = 0; i < st.load_order.size(); ++i) {
    if (mismatched.contains(st.load_order[i].get())) complete[i] = false;
  }
  FinishRestoredSegments(complete, st);
  // The norms (AttachTable), the comparison with RocksDB and the indexes'
  // self-checks (exact nearest neighbours of sampled rows) read every table
  // row through its mapping: without this a restarted DISK server's
  // resident memory would count every table whole, as if the vectors were
  // in memory.
  for (const auto& seg : st.load_order) {
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      if (std::shared_ptr<const storage::RerankTable> t = seg->table(f); t != nullptr) {
        t->ReleaseMappedPages();
      }
    }
  }
  {
    MutexLock lock(&mu_);
    for (const auto& [iid, ref] : st.by_iid) {
      if (ref.segment->Visible(ref.offset, last_seq)) {
        id_map_.insert(ref);
      }
    }
    live_ = id_map_.size();
    PublishLocked(last_seq);
  }
  RecountTermStats();
  NotifySealed();
  return absl::OkStatus();
}

void Collection::RecountTermStats() {
  for (const auto& stats : text_stats_) {
    if (stats != nullptr) stats->Clear();
  }
  for (const auto& stats : sparse_stats_) {
    if (stats != nullptr) stats->Clear();
  }
  ReaderMutexLock lock(&mu_);
  for (const RowRef& ref : id_map_) AddTermStats(ref.segment->text(ref.offset), ref.segment->sparse(ref.offset));
}

void Collection::RebuildSegment(const storage::SegmentFiles& files, uint64_t segment_id,
                                const std::string& why) {
  spdlog::warn("collection \"{}\" segment {}: {}; rebuilding the segment from RocksDB", name_,
               segment_id, why);
  next_segment_id_ = std::max(next_segment_id_, segment_id + 1);
  (void)files.RemoveSegment(id_, segment_id);
}

std::string Collection::ManifestProblem(const storage::SegmentManifest& m) const {
  // What a checksummed manifest can still get wrong (a bug that wrote it,
  // a file from another data directory) and costs nothing to see: an
  // internal id this collection never assigned, or one row claimed twice.
  absl::flat_hash_set<uint64_t> seen;
  seen.reserve(static_cast<size_t>(m.iids_size()));
  for (int r = 0; r < m.iids_size(); ++r) {
    const uint64_t iid = m.iids(r);
    if (iid >= next_iid_) {
      return absl::StrCat("MANIFEST row ", r, " names internal id ", iid,
                          ", never assigned (next is ", next_iid_, ")");
    }
    if (!seen.insert(iid).second) return absl::StrCat("MANIFEST names internal id ", iid, " twice");
  }
  return "";
}

void Collection::RestorePersistedSegments(const storage::SegmentFiles& files,
                                          RecoveryState* st) {
  // A compaction writes its output under a new, higher id before it removes
  // its inputs, so when two claim the same row the newer one wins and the
  // older is discarded.
  // A damaged MANIFEST (or one that fails the cross-checks) is not trusted
  // in any part: the segment is derived data, so its files go and its rows
  // are loaded from RocksDB into new segments like rows no segment covers,
  // and indexed again.
  std::vector<std::pair<uint64_t, std::string>> damaged;
  st->manifests =
      files.List(id_, [&](uint64_t segment_id, const std::string&, const std::string& why) {
        damaged.emplace_back(segment_id, why);
      });
  for (const auto& [segment_id, why] : damaged) RebuildSegment(files, segment_id, why);
  absl::flat_hash_set<uint64_t> claimed;
  for (auto it = st->manifests.rbegin(); it != st->manifests.rend(); ++it) {
    const storage::SegmentManifest& m = *it;
    next_segment_id_ = std::max(next_segment_id_, m.segment_id() + 1);
    if (std::string why = ManifestProblem(m); !why.empty()) {
      RebuildSegment(files, m.segment_id(), why);
      continue;
    }
    bool overlaps = m.sequence() > st->last_seq || m.iids().empty();
    for (uint64_t iid : m.iids()) overlaps = overlaps || claimed.contains(iid);
    if (overlaps) {
      spdlog::info("collection \"{}\": discarding superseded segment {}", name_, m.segment_id());
      (void)files.RemoveSegment(id_, m.segment_id());
      continue;
    }
    claimed.insert(m.iids().begin(), m.iids().end());
    auto seg = std::make_shared<Segment>(m.segment_id(), shared_schema(),
                                         static_cast<uint32_t>(m.iids_size()));
    // Fields whose index may keep the rows itself get no rows of their own
    // yet: if the index file loads, the segment reads its rows there and
    // RocksDB's vectors are only compared with them (LoadVectors), so a
    // restart never holds two copies; if not, OwnRows gives them rows
    // before the vectors are loaded.
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      if (RowsMayBeShared(f)) seg->LendRows(f, nullptr);
    }
    for (uint64_t iid : m.iids()) st->by_iid[iid] = RowRef{seg.get(), seg->AppendHole(iid)};
    seg->Seal();
    AttachRestoredTables(*seg, m, files);
    st->restored.emplace_back(std::move(seg), &m);
  }
}

void Collection::AttachRestoredTables(Segment& seg, const storage::SegmentManifest& m,
                                      const storage::SegmentFiles& files) const {
  // DISK fields with a verified table serve from it at once: their vectors
  // are never loaded into memory (ScanVectors skips them). A missing, stale
  // or corrupt table is rebuilt by the builder.
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    if (!schema().vectors()[f].disk && !schema().vectors()[f].multi) continue;
    if (schema().vectors()[f].dropped) continue;
    absl::Status st = absl::NotFoundError("not in the manifest");
    for (const auto& rf : m.rerank_tables()) {
      if (rf.field() != f) continue;
      storage::RerankTableExpect expect;
      expect.dim = schema().vectors()[f].dim;
      expect.rows = static_cast<uint64_t>(m.iids_size());
      expect.sequence = rf.sequence();
      expect.multi = schema().vectors()[f].multi;
      st = AttachTable(seg, f, files.RerankTablePath(id_, m.segment_id(), static_cast<uint32_t>(f)),
                       expect, /*compute_norms=*/true);
    }
    if (!st.ok()) {
      spdlog::warn("collection \"{}\" segment {} field \"{}\": rebuilding rerank table: {}", name_,
                   m.segment_id(), schema().vectors()[f].name, st.ToString());
    }
  }
}

absl::Status Collection::CheckRestoredTables(storage::Store& store,
                                             const storage::SegmentFiles& files,
                                             RecoveryState* st) {
  // A table's CRC says its bytes are the ones written, not that row r holds
  // the vectors of the manifest's row r: compare every row with RocksDB's
  // copy. Opening the table read it whole for the CRC, so this reads it
  // from the page cache; the price is one more scan of the DISK fields'
  // vectors in RocksDB. A segment that disagrees is rebuilt.
  absl::flat_hash_set<const Segment*> mismatched;
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    const VectorFieldSpec& field = schema().vectors()[f];
    if (field.dropped) continue;
    bool any = false;
    for (const auto& [seg, m] : st->restored) any = any || seg->table(f) != nullptr;
    if (!any) continue;
    QUIVER_RETURN_IF_ERROR(store.ScanVectors(
        id_, static_cast<uint16_t>(f),
        [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
          auto it = st->by_iid.find(iid);
          if (it == st->by_iid.end()) return absl::OkStatus();
          const Segment* seg = it->second.segment;
          std::shared_ptr<const storage::RerankTable> t = seg->table(f);
          if (t == nullptr || mismatched.contains(seg)) return absl::OkStatus();
          const uint32_t off = it->second.offset;
          const bool same = static_cast<size_t>(t->count(off)) * field.dim == d &&
                            std::memcmp(t->mapped_row(off), data, d * sizeof(float)) == 0;
          if (!same) {
            kCommitThread.Assume();  // called inline, on this thread
            mismatched.insert(seg);
            RebuildSegment(files, seg->id(),
                           absl::StrCat("field \"", field.name, "\": rerank table row ", off,
                                        " does not hold internal id ", iid, "'s vectors"));
          }
          return absl::OkStatus();
        }));
  }
  for (auto it = st->restored.begin(); it != st->restored.end();) {
    if (!mismatched.contains(it->first.get())) {
      ++it;
      continue;
    }
    for (uint64_t iid : it->second->iids()) st->by_iid.erase(iid);
    it = st->restored.erase(it);
  }
  return absl::OkStatus();
}

absl::Status Collection::LoadPoints(storage::Store& store, const storage::SegmentFiles& files,
                                    RecoveryState* st) {
  // Points go into their persisted segment, or are appended to new segments
  // of segment_max_rows in iid order, all sealed but the last.
  const auto& attrs = schema().attributes();
  const uint32_t num_sparse = static_cast<uint32_t>(schema().sparse().size());
  QUIVER_RETURN_IF_ERROR(store.ScanPoints(
      id_, [&](uint64_t iid, storage::PointRecord& rec) -> absl::Status {
        kCommitThread.Assume();  // called inline, on this thread
        if (iid >= next_iid_) next_iid_ = iid + 1;
        AttrRow row_attrs(attrs.size());
        for (int a = 0; a < rec.attributes_size() && a < static_cast<int>(attrs.size()); ++a) {
          QUIVER_ASSIGN_OR_RETURN(row_attrs[a],
                                  AttrFromMessage(rec.attributes(a), attrs[a].type, "stored point"));
        }
        SparseRow row_sparse;
        for (const auto& [s, v] : rec.sparse_vectors()) {
          // Written with the schema's sparse fields, which are never removed.
          if (s >= num_sparse) {
            return absl::DataLossError(absl::StrCat("point ", iid, " of collection \"", name_,
                                                    "\" has a vector of sparse field ", s,
                                                    ", which the schema lacks"));
          }
          if (row_sparse.size() <= s) row_sparse.resize(s + 1);
          QUIVER_ASSIGN_OR_RETURN(row_sparse[s], SparseFromMessage(v, "stored point"));
        }
        // Text is analyzed again: the terms are derived, never stored.
        TextRow row_text;
        for (size_t a = 0; a < attrs.size(); ++a) {
          if (!attrs[a].text || analyzers_[a] == nullptr) continue;
          if (const auto* s = std::get_if<std::string>(&row_attrs[a])) {
            if (row_text.size() <= a) row_text.resize(a + 1);
            row_text[a] = std::make_shared<const text::Analyzer::TermCounts>(
                analyzers_[a]->TermFrequencies(*s));
          }
        }
        auto found = st->by_iid.find(iid);
        if (found == st->by_iid.end()) {
          Segment& seg = GrowingForAppend();
          found = st->by_iid.emplace(iid, RowRef{&seg, seg.AppendHole(iid)}).first;
        }
        found->second.segment->FillRow(found->second.offset, rec.id(), std::move(row_attrs),
                                       std::move(row_sparse), std::move(row_text));
        return absl::OkStatus();
      }));
  // Persisted segments none of whose rows still exist are gone for good.
  for (auto it = st->restored.begin(); it != st->restored.end();) {
    Segment& seg = *it->first;
    if (seg.dead() < seg.appended()) {
      ++it;
      continue;
    }
    for (uint32_t off = 0; off < seg.appended(); ++off) st->by_iid.erase(seg.iid(off));
    writer_segments_.erase(std::find(writer_segments_.begin(), writer_segments_.end(), it->first));
    (void)files.RemoveSegment(id_, seg.id());
    it = st->restored.erase(it);
  }
  return absl::OkStatus();
}

bool Collection::RowsMayBeShared(size_t f) const {
  const VectorFieldSpec& field = schema().vectors()[f];
  if (field.dropped || field.multi || field.disk) return false;
  absl::StatusOr<std::unique_ptr<index::VectorIndex>> kind = index::CreateIndex(IndexSpecFor(f));
  return kind.ok() && (*kind)->shares_rows();
}

absl::Status Collection::LoadVectors(storage::Store& store, RecoveryState* st,
                                       absl::flat_hash_set<const Segment*>* mismatched) {
  uint64_t live = 0;
  for (const auto& [iid, ref] : st->by_iid) live += ref.segment->Visible(ref.offset, st->last_seq);
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    const VectorFieldSpec& field = schema().vectors()[f];
    // Its vectors were deleted with the drop (one range delete, in the
    // batch that dropped it).
    if (field.dropped) continue;
    const uint32_t dim = field.dim;
    std::vector<float> fde(field.multi ? stored_dims_[f] : 0, 0.0f);
    // Restored segments whose rows are an index's block: compared, not
    // copied. One that differs keeps nothing of the index: its rows are
    // copied back and filled from RocksDB in a second pass.
    absl::flat_hash_set<Segment*> in_index, differ;
    for (const auto& seg : st->load_order) {
      if (seg->rows_adopted(f)) in_index.insert(seg.get());
    }
    uint64_t found = 0;
    QUIVER_RETURN_IF_ERROR(store.ScanVectors(
        id_, static_cast<uint16_t>(f),
        [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
          auto it = st->by_iid.find(iid);
          const bool size_ok = field.multi ? d > 0 && d % dim == 0 : d == dim;
          if (!size_ok || it == st->by_iid.end()) {
            return absl::DataLossError(absl::StrCat("collection \"", name_,
                                                    "\": vector without a point record"));
          }
          Segment* const seg = it->second.segment;
          if (!field.multi && in_index.contains(seg)) {
            if (std::memcmp(seg->vector(f, it->second.offset), data, dim * sizeof(float)) != 0) {
              differ.insert(seg);
            }
            seg->NoteVector(it->second.offset, f, data);
            ++found;
            return absl::OkStatus();
          }
          if (field.multi) {
            // The encoding is derived: recomputed with the field's seed.
            const TokenSet set{data, static_cast<uint32_t>(d / dim)};
            if (encoders_[f] != nullptr && !field.token_candidates) {
              encoders_[f]->EncodeDocument(set.data, set.count, fde.data());
            }
            it->second.segment->SetVector(it->second.offset, f, fde.data());
            it->second.segment->SetTokens(it->second.offset, f, set);
          } else {
            it->second.segment->SetVector(it->second.offset, f, data);
          }
          ++found;
          return absl::OkStatus();
        }));
    if (!differ.empty()) {
      std::vector<std::shared_ptr<const void>> retired;
      for (Segment* seg : differ) {
        spdlog::error("collection \"{}\" segment {} field \"{}\": the index file holds other "
                      "vectors than RocksDB; rebuilding it (searched exactly meanwhile)",
                      name_, seg->id(), field.name);
        seg->SetIndex(f, nullptr);
        seg->ReclaimRows(f, &retired);
        mismatched->insert(seg);
      }
      QUIVER_RETURN_IF_ERROR(store.ScanVectors(
          id_, static_cast<uint16_t>(f), [&](uint64_t iid, const float* data, size_t) {
            auto it = st->by_iid.find(iid);
            if (it != st->by_iid.end() && differ.contains(it->second.segment)) {
              it->second.segment->SetVector(it->second.offset, f, data);
            }
            return absl::OkStatus();
          }));
      Retire(std::move(retired));
    }
    // An optional field's points may lack it (FillRow marked them absent
    // until SetVector found one).
    if (found != live && !(field.optional && found < live)) {
      return absl::DataLossError(absl::StrCat("collection \"", name_, "\": field \"",
                                              schema().vectors()[f].name, "\" has ", found,
                                              " vectors for ", live, " points"));
    }
  }
  return absl::OkStatus();
}

void Collection::FinishRestoredSegments(const std::vector<bool>& complete,
                                        const RecoveryState& st) {
  // Where an index file was intact and built for the field's current spec
  // it serves; the rest are rebuilt.
  bool has_windows = false;
  for (const AttributeSpec& a : schema().attributes()) has_windows = has_windows || a.window;
  for (size_t i = 0; i < st.load_order.size(); ++i) {
    const auto& seg = st.load_order[i];
    if (std::find(writer_segments_.begin(), writer_segments_.end(), seg) == writer_segments_.end()) {
      continue;  // dropped: no live rows
    }
    seg->Publish(seg->appended());
    // Every loaded index is checked, even in a segment already being rebuilt
    // (the others would otherwise serve unchecked).
    const bool checked = CheckLoadedIndexes(*seg);
    const bool indexes_ok = complete[i] && checked;
    // Loaded indexes that passed hold the rows the segment loaded from
    // RocksDB: one copy is kept (the index's). Indexes built later adopt
    // theirs in the builder.
    for (size_t f = 0; f < schema().vectors().size(); ++f) AdoptIndexRows(*seg, f);
    if (indexes_ok) {
      seg->SetAttrIndex(SegmentAttrIndex::Build(*seg, seg->appended(), schema().attributes()));
    }
    // Sparse and text indexes are never persisted: built from the rows
    // just loaded.
    for (size_t s = 0; s < schema().sparse().size(); ++s) {
      seg->SetSparseIndex(s, BuildSparseIndex(*seg, s, seg->appended()));
    }
    for (size_t a = 0; a < schema().attributes().size(); ++a) {
      if (schema().attributes()[a].text) seg->SetTextIndex(a, BuildTextIndex(*seg, a, seg->appended()));
    }
    // The builder builds what is missing: vector indexes that did not load,
    // attribute indexes, window indexes (which are not persisted).
    bool tables = true;
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      const VectorFieldSpec& field = schema().vectors()[f];
      tables = tables && ((!field.disk && !field.multi) || field.dropped || seg->table(f) != nullptr);
    }
    // An index loaded without its recall calibration (written by an older
    // version) is calibrated by the builder, which persists it again.
    bool calibrated = true;
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      const Segment::CalibratedIndex ci = seg->calibrated_index(f);
      if (ci.index != nullptr && ci.calibration == nullptr &&
          Calibratable(schema().vectors()[f], *ci.index) &&
          (!schema().vectors()[f].multi || encoder(f) != nullptr) &&
          seg->appended() >= CalibrationOptions().min_rows) {
        calibrated = false;
      }
    }
    if (!indexes_ok || has_windows || !tables || !calibrated) just_sealed_.push_back(seg);
    // Files that are being replaced are not the segment's until Persist
    // rewrites them (verify would report the damage it already knows).
    if (indexes_ok && tables) seg->SetPersisted();
  }
}

bool Collection::CheckLoadedIndexes(Segment& seg) const {
  // A file that passed its checksum can still hold a bad index (one built
  // by an older version over placeholder rows): the vectors are loaded by
  // now, so a few own-vector searches tell, and a failure is rebuilt.
  // Every field's index is checked, whatever an earlier one found.
  bool ok = true;
  for (size_t f = 0; f < schema().vectors().size(); ++f) {
    std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
    if (idx == nullptr) continue;
    const IndexCheckResult check = CheckIndex(seg, f, *idx, options_.index_check_samples,
                                              seg.id() * 131 + f, /*measure_recall=*/false);
    if (check.ok) continue;
    spdlog::error("collection \"{}\" segment {} field \"{}\": index file fails its self-check, "
                  "rebuilding (searched exactly meanwhile): {}",
                  name_, seg.id(), schema().vectors()[f].name, check.ToString());
    seg.SetIndex(f, nullptr);
    ok = false;
  }
  return ok;
}

}  // namespace quiver
