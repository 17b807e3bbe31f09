// Segment: a bounded, append-only set of one collection's rows, and the ANN
// indexes built over it once it is sealed. The design Lucene, Milvus and
// LanceDB use: one growing segment takes new rows and is searched exactly;
// when full (or idle) it is sealed, a background thread builds each vector
// field's index over it, and from then on its rows never change — only
// their deletion marks do. Overwrites and deletes mark the old row; no row
// is ever edited in place.
//
// Rows are addressed by local offset (0..rows-1), which is also the label
// the segment's indexes use. Each row holds its internal id (the RocksDB
// key), external id, attributes, one vector (+ squared norm) per vector
// field, and delete_seq: kAlive while the row lives, the sequence number of
// the operation that deleted or replaced it, or 0 for a slot whose point was
// gone when the segment was loaded. A row is visible to a reader at
// sequence S iff its offset is below the reader's row count and
// delete_seq > S.
//
// Thread-safety: one writer (the engine's commit thread, or a compaction
// building a new segment before anyone can see it) appends rows; readers
// read only offsets below a row count published to them under the
// collection's mutex, so appended data is visible before its count.
// delete_seq is atomic. Indexes are swapped atomically (SetIndex) and are
// immutable once set. Chunks never move: a segment's capacity is fixed.
// Errors: only AdoptRows fails (and changes nothing); other misuse is ruled
// out by the REQUIRES below.
#ifndef QUIVER_QUERY_SEGMENT_H_
#define QUIVER_QUERY_SEGMENT_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "index/vector_index.h"
#include "query/text/analyzer.h"
#include "storage/schema.h"

namespace quiver {

class RecallCalibration;
class SegmentAttrIndex;
class SparseIndex;
class WindowIndex;
namespace storage {
class RerankTable;
}  // namespace storage

inline constexpr uint64_t kAlive = std::numeric_limits<uint64_t>::max();

// A row's analyzed text, per attribute index (null: not a text attribute,
// or no value). Derived from the attribute's string when the row is
// written or loaded; never stored.
using TextTerms = std::shared_ptr<const text::Analyzer::TermCounts>;
using TextRow = std::vector<TextTerms>;
inline const text::Analyzer::TermCounts* TextAt(const TextRow& row, size_t a) {
  return a < row.size() ? row[a].get() : nullptr;
}

// A point's vectors in a multi-vector field: `count` rows of the field's dim.
struct TokenSet {
  const float* data = nullptr;
  uint32_t count = 0;
};

// Dimension of what a segment stores as field f's vector: the field's dim,
// or for a multi-vector field the dimension of its MUVERA encoding (the
// vector its index is built over).
uint32_t StoredDim(const VectorFieldSpec& field);
// The index spec of a vector field, as the index registry takes it (for a
// multi-vector field: over its encodings, by inner product).
index::IndexSpec IndexSpecOf(const VectorFieldSpec& field);
// Same kind and build parameters (an index built for one serves the other).
bool SameIndexSpec(const index::IndexSpec& a, const index::IndexSpec& b);

class Segment {
 public:
  // Rows per chunk, the unit of allocation and of one BLAS block in exact
  // scans: as many as fit in kChunkBytes of vectors, a power of two in
  // [kMinChunkRows, kMaxChunkRows]. Small dimensions get 1024-row blocks;
  // a 65536-d field does not allocate 256 MiB for its first point.
  static constexpr uint32_t kMaxChunkRows = 1024;
  static constexpr uint32_t kMinChunkRows = 16;
  static constexpr size_t kChunkBytes = 8u << 20;

  Segment(uint64_t id, std::shared_ptr<const Schema> schema, uint32_t capacity);
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  uint64_t id() const { return id_; }
  uint32_t capacity() const { return capacity_; }
  // The schema the segment was made with. The collection's may have more
  // vector fields since (UpdateCollection): fields past this one's are
  // ones the segment's rows lack, and every per-field accessor below
  // answers for them as for a field no row holds (no vector, no index, no
  // table), except the raw reads (vector, chunk_vectors, chunk_norms,
  // tokens, Gather*), which callers make only for fields the segment has.
  const Schema& schema() const { return *schema_; }
  // No row here can hold field f's vector: a field added after the segment
  // was made, one dropped before, or a sealed segment none of whose rows
  // has it (an optional field, an added one after a restart). Searches of
  // f skip such a segment, and no index of f is built for it.
  bool LacksField(size_t f) const {
    return f >= dims_.size() || !has_field_[f] || (sealed() && absent(f) >= published());
  }

  // No row here can hold sparse field s: one added after the segment was
  // made. Sparse searches of s skip the segment.
  bool LacksSparse(size_t s) const { return s >= num_sparse_; }

  // --- Writer side.
  // Rows appended so far (the writer's count; readers use their own).
  uint32_t appended() const { return appended_; }
  bool full() const { return appended_ >= capacity_; }
  // Appends a live row and returns its offset. REQUIRES: !full(), !sealed().
  // vectors[f] has schema().vectors()[f].dim floats (already normalized for
  // COSINE fields), or is null for an optional field the point lacks.
  // Fields past vectors' end (a request bound before a field was added),
  // and dropped ones, are absent whatever vectors holds.
  // Multi-vector fields: vectors[f] is the point's encoding and tokens[f]
  // its vectors (tokens may be null when the schema has no such field).
  // sparse: the point's sparse vectors (shared, not copied).
  // text: the analyzed text of its text attributes.
  uint32_t Append(uint64_t iid, const std::string& external_id, AttrRow attrs,
                  const std::vector<const float*>& vectors, const TokenSet* tokens = nullptr,
                  SparseRow sparse = {}, TextRow text = {});
  // Takes back the rows appended at offsets [rows, appended()), none of them
  // published: what they counted (absent vectors, sparse and token bytes)
  // is uncounted and appended() becomes `rows`. For rows staged ahead of a
  // storage write that failed (Collection::StageUpsert). Memory they took
  // in the multi-vector arena stays allocated until the segment goes.
  // REQUIRES: published() <= rows <= appended(); not sealed.
  void Unappend(uint32_t rows);
  // Appends an empty slot (a row whose point no longer exists).
  uint32_t AppendHole(uint64_t iid);
  // Field f's rows are lent, not copied: from here on Append keeps the
  // pointer it is given for f (valid while `owner` is held; the zero row for
  // a point lacking f) instead of copying the vector. For a compaction's
  // output, whose copy would be a third copy of every vector at the peak of
  // a merge (inputs, output, the new graph); and, with a null owner and
  // only holes appended (zero rows), for a segment restored at start-up,
  // whose rows are about to be read in its loaded index (AdoptRows) or
  // else copied from RocksDB (after OwnRows). Until AdoptRows moves the rows
  // into an index's block or OwnRows copies them, the segment must not be
  // searched: chunk_vectors has no block to give. REQUIRES: nothing
  // appended yet; f a single-vector field without a table.
  void LendRows(size_t f, std::shared_ptr<const void> owner);
  // Copies the rows of every field still lent into the segment's own chunks
  // (an index that did not adopt them: a failed build or self-check, a kind
  // changed meanwhile). REQUIRES: sealed; nothing reads the segment yet.
  void OwnRows();
  // Field f's rows, read in an index's block, copied back into the
  // segment's own chunks (the index is being dropped: its rows were found
  // to differ from RocksDB's at recovery); the block's hold moves to
  // *retired. No-op unless the rows are adopted.
  // REQUIRES: sealed; no concurrent AdoptRows / AttachTable of field f.
  void ReclaimRows(size_t f, std::vector<std::shared_ptr<const void>>* retired);
  bool lends_rows(size_t f) const;
  // Field f's rows while an index serves them (AdoptRows), as the index
  // shares them: row `off` at row(off), valid while `owner` is held,
  // whatever the segment does meanwhile. nullopt while the rows are read
  // elsewhere.
  std::optional<index::SharedRows> adopted_rows(size_t f) const;
  // Fills the vector of field `f` at `offset` (recovery loads attributes and
  // vectors in separate passes; FillRow marks an optional field absent
  // until its vector is set here).
  void SetVector(uint32_t offset, size_t f, const float* v);
  // As SetVector for a row whose vector the segment does not copy: its
  // rows are read in an index's block (AdoptRows) or a table, which holds
  // `v` already (the caller compared them). Marks it present and keeps its
  // norm (exact scans read it).
  void NoteVector(uint32_t offset, size_t f, const float* v);
  // Fills the vectors of multi-vector field f at `offset` (recovery); a
  // no-op once a table serves the field.
  void SetTokens(uint32_t offset, size_t f, TokenSet tokens);
  // Fills a hole's row data and marks it alive (recovery).
  void FillRow(uint32_t offset, const std::string& external_id, AttrRow attrs,
               SparseRow sparse = {}, TextRow text = {});

  // Makes rows [0, rows) visible to readers that take views after this.
  // Called under the collection's mutex, which orders it with view-taking.
  void Publish(uint32_t rows) { published_.store(rows, std::memory_order_release); }
  uint32_t published() const { return published_.load(std::memory_order_acquire); }

  // No appends after this; the segment becomes eligible for index builds.
  void Seal() { sealed_.store(true, std::memory_order_release); }
  bool sealed() const { return sealed_.load(std::memory_order_acquire); }

  // --- Reader side (offsets below a published row count).
  uint32_t chunk_rows() const { return chunk_rows_; }
  uint64_t iid(uint32_t off) const { return chunk(off).iids[off % chunk_rows_]; }
  const std::string& external_id(uint32_t off) const { return chunk(off).ids[off % chunk_rows_]; }
  const AttrRow& attrs(uint32_t off) const { return chunk(off).attrs.get(off % chunk_rows_); }
  // The row's sparse vectors (query through SparseAt: null where it has
  // none, including every field added after the row was written).
  const SparseRow& sparse(uint32_t off) const { return chunk(off).sparse.get(off % chunk_rows_); }
  // The row's analyzed text attributes (through TextAt).
  const TextRow& text(uint32_t off) const { return chunk(off).text.get(off % chunk_rows_); }
  // Pointers into the segment's own chunks, into a mapped rerank table once
  // the field is served from one (AttachTable), or into the index's block
  // or lists once the segment reads its rows there (AdoptRows), or into the
  // lender's rows while they are lent (LendRows): hold a pin
  // (Collection::TakeView) while using them.
  const float* vector(size_t f, uint32_t off) const {
    const FieldRows* r = rows_[f].load(std::memory_order_acquire);
    if (r->row_at != nullptr) [[unlikely]] return r->row_at[off];
    return r->chunk_base[off / chunk_rows_] + static_cast<size_t>(off % chunk_rows_) * r->stride;
  }
  // Rows [first, first + n) of field f, n <= chunk_rows(), first a multiple
  // of chunk_rows() (one chunk): row first + i at rows + i * stride; rows is
  // null where each row has its own pointer (lent rows, LendRows; rows read
  // in IVF_FLAT's lists): read them through vector().
  struct RowBlock {
    const float* rows;
    size_t stride;  // floats; dims of the field when packed
  };
  RowBlock chunk_vectors(size_t f, uint32_t first) const {
    const FieldRows* r = rows_[f].load(std::memory_order_acquire);
    return {r->chunk_base[first / chunk_rows_], r->stride};
  }
  const float* chunk_norms(size_t f, uint32_t first) const { return chunk(first).norms[f].get(); }
  // Multi-vector field f's vectors of row `off` (count 0 for a hole); the
  // pointer is valid as long as a pin is held (see vector()).
  TokenSet tokens(size_t f, uint32_t off) const {
    const Chunk& c = chunk(off);
    const uint32_t r = off % chunk_rows_;
    return {c.tok_ptr[f][r].load(std::memory_order_acquire), c.tok_count[f][r]};
  }
  uint64_t delete_seq(uint32_t off) const {
    return chunk(off).delete_seq[off % chunk_rows_].load(std::memory_order_relaxed);
  }
  bool Visible(uint32_t off, uint64_t seq) const { return delete_seq(off) > seq; }
  // Whether row `off` holds a vector of field f: false only for a row whose
  // point lacks an optional field's vector (its slot holds zeros, no index
  // build takes it and no search of f returns it).
  bool HasVector(size_t f, uint32_t off) const {
    if (f >= dims_.size()) return false;
    const std::atomic<uint64_t>* bits = absent_bits_[f].get();
    return bits == nullptr ||
           ((bits[off >> 6].load(std::memory_order_relaxed) >> (off & 63)) & 1) == 0;
  }
  // Visible at `seq` and holding a vector of field f: what a search of f
  // may return.
  bool VisibleWith(size_t f, uint32_t off, uint64_t seq) const {
    return Visible(off, seq) && HasVector(f, off);
  }
  // Rows whose point lacks field f's vector (0 for required fields).
  uint32_t absent(size_t f) const {
    return f < dims_.size() ? absent_count_[f].load(std::memory_order_relaxed) : published();
  }
  // No row deleted and none without field f's vector: a search of f needs
  // no per-row check. (dead() is published before a view that could see a
  // delete, so 0 here means none at the view's sequence.)
  bool AllSearchable(size_t f) const { return dead() == 0 && absent(f) == 0; }

  // Marks a live row deleted by operation `seq`.
  void MarkDeleted(uint32_t off, uint64_t seq);
  // Rows marked deleted (including holes).
  uint32_t dead() const { return dead_.load(std::memory_order_relaxed); }

  // --- Indexes, one slot per vector field; null until built.
  std::shared_ptr<const index::VectorIndex> index(size_t f) const;
  // Sets field f's index and the recall calibration measured on it
  // (query/recall_calibration.h; null: none yet), together.
  void SetIndex(size_t f, std::shared_ptr<const index::VectorIndex> idx,
                std::shared_ptr<const RecallCalibration> calibration = nullptr);
  // An index and its calibration, read together (a calibration always
  // belongs to the index beside it; either may be null).
  struct CalibratedIndex {
    std::shared_ptr<const index::VectorIndex> index;
    std::shared_ptr<const RecallCalibration> calibration;
  };
  CalibratedIndex calibrated_index(size_t f) const;
  std::shared_ptr<const RecallCalibration> calibration(size_t f) const {
    return calibrated_index(f).calibration;
  }
  // Attaches a calibration measured on `for_index` if that is still field
  // f's index (a rebuild may have replaced it meanwhile).
  void SetCalibration(size_t f, const index::VectorIndex* for_index,
                      std::shared_ptr<const RecallCalibration> calibration);
  // Attribute indexes over all rows (query/attr_index.h); null until the
  // index builder (or recovery) builds them, and when the schema indexes no
  // attribute.
  std::shared_ptr<const SegmentAttrIndex> attr_index() const;
  void SetAttrIndex(std::shared_ptr<const SegmentAttrIndex> idx);
  // Sparse field s's inverted index over all rows (query/sparse_index.h);
  // null until the index builder (or recovery) builds it. Not persisted:
  // built from the rows, which recovery loads from RocksDB anyway.
  std::shared_ptr<const SparseIndex> sparse_index(size_t s) const;
  void SetSparseIndex(size_t s, std::shared_ptr<const SparseIndex> idx);
  // Text attribute a's BM25 index over all rows (the same inverted index,
  // over term frequencies and with document lengths); null until built.
  std::shared_ptr<const SparseIndex> text_index(size_t a) const;
  void SetTextIndex(size_t a, std::shared_ptr<const SparseIndex> idx);
  // Bytes of sparse field s's vectors held by the rows, and of its index.
  size_t SparseBytes(size_t s) const;
  size_t SparseIndexBytes(size_t s) const;
  // Window indexes (query/window_index.h), at most one per window attribute
  // and vector field; null if none is built.
  std::shared_ptr<const WindowIndex> window_index(int attr, size_t f) const;
  // Adds `w`, replacing one for the same attribute and field.
  void SetWindowIndex(std::shared_ptr<const WindowIndex> w);
  // Drops every window index over attribute `attr` (its window was turned
  // off); readers holding one keep it until they finish.
  void DropWindowIndexes(int attr);
  // Drops field f's index and window indexes (the field was dropped);
  // readers holding one keep it until they finish.
  void DropIndexes(size_t f);

  // One copy of every vector: from now on field f's rows are read where
  // `idx` (field f's index, built over these rows) keeps them
  // (VectorIndex::shared_rows: an HNSW level-0 block, IVF_FLAT's lists),
  // and the segment's own copies move to *retired, which the caller frees once no
  // reader can still hold a pointer into them (Collection's epochs). The
  // block stays alive while the segment reads it, even after the index is
  // replaced or dropped. Every row holding a vector is compared first: any
  // difference, or an index that keeps no such rows, a multi-vector field
  // of token vectors, a single-vector field served from a rerank table
  // (a multi-vector field's table holds its tokens, not the encodings the
  // index shares), or a label space other than the segment's rows, is
  // FAILED_PRECONDITION and changes
  // nothing. A hole's row (a point gone at load) is not compared: no search
  // returns it, and the index may hold the vector it had when it was built.
  // compare false skips the comparison: only for rows that hold nothing
  // yet (a segment restored at start-up, whose vectors are compared with
  // the index's as they are loaded).
  // REQUIRES: sealed; no concurrent AdoptRows / AttachTable of field f.
  absl::Status AdoptRows(size_t f, const index::VectorIndex& idx,
                         std::vector<std::shared_ptr<const void>>* retired, bool compare = true);
  // Whether field f's rows are read from an index's block (AdoptRows).
  bool rows_adopted(size_t f) const;

  // --- DISK fields. Serves field f's vectors from `table` (opened with
  // RerankTableOptions::map, one record per row, rows == appended()) from
  // now on: vector() points into the mapping, and the in-memory copies move
  // to *retired, which the caller frees once no reader can still hold a
  // pointer into them (Collection's epochs). compute_norms: fill the norms
  // from the table (recovery, where the vectors were never loaded).
  // REQUIRES: sealed; no concurrent AttachTable for the same field.
  void AttachTable(size_t f, std::shared_ptr<const storage::RerankTable> table,
                   bool compute_norms, std::vector<std::shared_ptr<const void>>* retired);
  // Multi-vector fields: the same for the token vectors, from a multi
  // table; the encodings stay in memory. REQUIRES: table->multi().
  void AttachTokenTable(size_t f, std::shared_ptr<const storage::RerankTable> table,
                        std::vector<std::shared_ptr<const void>>* retired);
  // TOKENS multi-vector fields (whose index is over every vector of every
  // row, labelled in row order): the vectors held by rows [0, published),
  // the row of each such vector (computed once, for sealed segments), and
  // all of them contiguous for an index build.
  uint64_t TokenCount(size_t f, uint32_t rows) const;
  std::shared_ptr<const std::vector<uint32_t>> TokenRows(size_t f) const;
  std::vector<float> GatherTokens(size_t f, uint32_t rows) const;
  // The table serving field f, or null (MEMORY, or not attached yet).
  std::shared_ptr<const storage::RerankTable> table(size_t f) const;

  // Set once a compaction has replaced this segment: its files must not
  // outlive it.
  void SetRetired() { retired_.store(true, std::memory_order_seq_cst); }
  bool retired() const { return retired_.load(std::memory_order_seq_cst); }
  // Set while a compaction has this segment as input (commit thread).
  void SetCompacting(bool c) { compacting_.store(c, std::memory_order_relaxed); }
  bool compacting() const { return compacting_.load(std::memory_order_relaxed); }
  // Set once the segment's files (MANIFEST, index files, rerank tables) are
  // on disk and describe it: by Persist, and by recovery for a segment
  // restored whole from intact files (one with a file to rebuild waits for
  // Persist).
  void SetPersisted() { persisted_.store(true, std::memory_order_release); }
  bool persisted() const { return persisted_.load(std::memory_order_acquire); }
  // Set by the index builder while it works on this segment.
  void SetBuilding(bool b) { building_.store(b, std::memory_order_relaxed); }
  bool building() const { return building_.load(std::memory_order_relaxed); }
  // Bytes of field f's index file on disk, once persisted.
  void SetDiskBytes(size_t f, uint64_t bytes) { disk_bytes_[f].store(bytes, std::memory_order_relaxed); }
  uint64_t disk_bytes(size_t f) const {
    return f < dims_.size() ? disk_bytes_[f].load(std::memory_order_relaxed) : 0;
  }

  // Bytes of row data held in memory for field f given `rows` published
  // rows, and of its index. Rows read from the current index's block count
  // as the index's (only their norms here); from a block no longer the
  // index's (replaced, dropped), as the segment's.
  size_t VectorBytes(size_t f, uint32_t rows) const;
  size_t IndexBytes(size_t f) const;

 private:
  // A per-row value many collections never hold (attributes, sparse
  // vectors, text): its array is allocated by the first row that holds one,
  // so a chunk without them costs one pointer, not 24 bytes a row (72 MB at
  // 1M points for the three). The writer allocates before it publishes the
  // row; readers load the pointer once, with acquire.
  template <typename T>
  class LazyRows {
   public:
    LazyRows() = default;
    LazyRows(const LazyRows&) = delete;
    LazyRows& operator=(const LazyRows&) = delete;
    ~LazyRows() { delete[] rows_.load(std::memory_order_relaxed); }
    const T& get(uint32_t r) const {
      static const T* const kEmpty = new T();
      const T* rows = rows_.load(std::memory_order_acquire);
      return rows == nullptr ? *kEmpty : rows[r];
    }
    // Row r of a chunk of `n` rows takes `value`.
    void Set(uint32_t r, uint32_t n, T value) {
      T* rows = rows_.load(std::memory_order_relaxed);
      if (rows == nullptr) {
        if (value.empty()) return;
        rows = new T[n]();
        rows_.store(rows, std::memory_order_release);
      }
      rows[r] = std::move(value);
    }

   private:
    std::atomic<T*> rows_{nullptr};
  };
  struct Chunk {
    // No own copy of the fields marked in `lent`.
    Chunk(const std::vector<uint32_t>& dims, const std::vector<bool>& multi,
          const std::vector<bool>& lent, uint32_t rows);
    // Per field: the segment's own copy of the rows' vectors (null once a
    // table or an index's block serves them; FieldRows says where reads go).
    std::vector<std::unique_ptr<float[]>> owned;
    std::vector<std::unique_ptr<float[]>> norms;    // per field
    // Multi-vector fields (null arrays for the others): per row, where its
    // vectors are (an arena block, or a mapped table) and how many.
    std::vector<std::unique_ptr<std::atomic<const float*>[]>> tok_ptr;
    std::vector<std::unique_ptr<uint32_t[]>> tok_count;
    std::vector<uint64_t> iids;
    std::vector<std::string> ids;
    LazyRows<AttrRow> attrs;
    LazyRows<SparseRow> sparse;
    LazyRows<TextRow> text;
    std::unique_ptr<std::atomic<uint64_t>[]> delete_seq;
  };
  const Chunk& chunk(uint32_t off) const { return *chunks_[off / chunk_rows_]; }
  Chunk& ChunkForAppend(uint32_t off);

  // Where field f's rows are read: chunk i's first row, and the stride. A
  // descriptor is immutable once readers can see it, but for the writer
  // filling in a new chunk's slot before it publishes rows there; a sealed
  // segment's is replaced whole (AttachTable, AdoptRows) and the old one
  // retired through the collection's epochs, so one atomic load gives a
  // reader a base and a stride that belong together.
  struct FieldRows {
    enum class Source { kChunks, kTable, kIndex, kLent };
    Source source = Source::kChunks;
    size_t stride = 0;  // floats
    size_t rows = 0;    // kIndex: rows of the borrowed block
    std::unique_ptr<const float*[]> chunk_base;
    // Set when each row has its own pointer (chunk_base is then all null):
    // row_ptr for kLent, the index's table (SharedRows::row_ptr, kept by
    // owner) for a kIndex whose rows are scattered over lists.
    const float* const* row_at = nullptr;
    // kLent: each row's own pointer, and the zero row of the rows lacking
    // the field.
    std::unique_ptr<const float*[]> row_ptr;
    std::unique_ptr<float[]> zeros;
    // kTable, kIndex, kLent: keeps the borrowed memory alive.
    std::shared_ptr<const void> owner;
  };
  std::unique_ptr<std::atomic<FieldRows*>[]> rows_;  // per field
  // Installs field f's descriptor and returns the old one.
  std::shared_ptr<FieldRows> ReplaceFieldRows(size_t f, std::shared_ptr<FieldRows> rows);
  // Field f's rows copied into newly allocated chunk rows, read from where
  // they are now (lent or an index's block), as a new descriptor to swap
  // in. Holes and absent vectors get zeros.
  std::shared_ptr<FieldRows> RowsCopiedHome(size_t f);
  // Replaces field f's descriptor, handing the old one and the chunks'
  // copies to *retired.
  void SwapFieldRows(size_t f, std::shared_ptr<FieldRows> rows,
                     std::vector<std::shared_ptr<const void>>* retired);

  const uint64_t id_;
  const std::shared_ptr<const Schema> schema_;
  const uint32_t capacity_;
  std::vector<uint32_t> dims_;        // stored per row: the vector, or the encoding
  std::vector<bool> multi_;
  std::vector<bool> has_field_;       // not dropped in schema_ (no memory if dropped)
  std::vector<uint32_t> token_dims_;  // multi-vector fields: each vector's dim
  // Writer only: blocks that hold multi-vector fields' vectors, per field,
  // and floats used in the last block. Blocks never move.
  std::vector<std::vector<std::unique_ptr<float[]>>> arena_;
  std::vector<size_t> arena_used_;
  // Bytes of token vectors held in memory per field (accounting).
  std::unique_ptr<std::atomic<uint64_t>[]> token_bytes_;
  float* ArenaAlloc(size_t f, size_t floats);
  uint32_t chunk_rows_ = kMaxChunkRows;
  // Sized at construction, never resized; chunks allocated by the writer.
  std::vector<std::unique_ptr<Chunk>> chunks_;
  uint32_t appended_ = 0;  // writer only
  std::atomic<uint32_t> published_{0};
  std::atomic<bool> sealed_{false};
  std::atomic<uint32_t> dead_{0};
  std::atomic<bool> building_{false};
  std::atomic<bool> compacting_{false};
  std::atomic<bool> retired_{false};
  std::atomic<bool> persisted_{false};
  std::unique_ptr<std::atomic<uint64_t>[]> disk_bytes_;
  // Optional and dropped fields: a bit per row set while the row lacks the
  // field's vector (null for required fields), and how many are set. Bits of
  // published rows change only in recovery, before the segment is shared.
  std::vector<std::unique_ptr<std::atomic<uint64_t>[]>> absent_bits_;
  std::unique_ptr<std::atomic<uint32_t>[]> absent_count_;
  void SetAbsent(size_t f, uint32_t off, bool absent);
  // Per sparse field of schema_: bytes its rows' vectors hold.
  std::unique_ptr<std::atomic<uint64_t>[]> sparse_bytes_;
  size_t num_sparse_ = 0;
  void CountSparse(const SparseRow& row);

  mutable Mutex index_mu_;
  std::vector<std::shared_ptr<const index::VectorIndex>> indexes_ ABSL_GUARDED_BY(index_mu_);
  // Per field, the calibration of indexes_[f] (or null); reset with it.
  std::vector<std::shared_ptr<const RecallCalibration>> calibrations_ ABSL_GUARDED_BY(index_mu_);
  std::shared_ptr<const SegmentAttrIndex> attr_index_ ABSL_GUARDED_BY(index_mu_);
  std::vector<std::shared_ptr<const WindowIndex>> windows_ ABSL_GUARDED_BY(index_mu_);
  std::vector<std::shared_ptr<const storage::RerankTable>> tables_ ABSL_GUARDED_BY(index_mu_);
  std::vector<std::shared_ptr<const SparseIndex>> sparse_indexes_ ABSL_GUARDED_BY(index_mu_);
  // By attribute index (attributes may be added after the segment was
  // made), grown on demand.
  std::vector<std::shared_ptr<const SparseIndex>> text_indexes_ ABSL_GUARDED_BY(index_mu_);
  mutable std::vector<std::shared_ptr<const std::vector<uint32_t>>> token_rows_
      ABSL_GUARDED_BY(index_mu_);
  // Owners of rows_'s descriptors.
  std::vector<std::shared_ptr<FieldRows>> field_rows_ ABSL_GUARDED_BY(index_mu_);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_SEGMENT_H_
