#include "query/segment.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"

#include "index/distance.h"
#include "query/attr_index.h"
#include "query/sparse_index.h"
#include "query/window_index.h"
#include "storage/rerank_table.h"
#include "index/muvera.h"

namespace quiver {

bool SameIndexSpec(const index::IndexSpec& a, const index::IndexSpec& b) {
  return a.type == b.type && a.params == b.params;
}

uint32_t StoredDim(const VectorFieldSpec& field) {
  if (!field.multi) return field.dim;
  // TOKENS fields index the vectors themselves; the per-row slot is unused.
  if (field.token_candidates) return 1;
  // The params were resolved and validated when the collection was created.
  // (Arithmetic, not an encoder: building one draws its random matrices.)
  absl::StatusOr<index::MuveraParams> p = index::ParseMuveraParams(field.encoding_params, field.dim);
  if (!p.ok()) return field.dim;
  if (p->final_dim > 0) return p->final_dim;
  return static_cast<uint32_t>((static_cast<uint64_t>(p->r_reps) << p->k_sim) * p->d_proj);
}

index::IndexSpec IndexSpecOf(const VectorFieldSpec& field) {
  index::IndexSpec spec;
  spec.type = field.index_type;
  spec.params = field.index_params;
  // Encodings are compared by inner product, whatever the field's metric;
  // a TOKENS field's index is over the vectors, by the field's metric.
  const bool encodings = field.multi && !field.token_candidates;
  spec.dim = encodings ? StoredDim(field) : field.dim;
  spec.similarity = field.metric == Metric::kL2 && !encodings ? index::Similarity::kL2
                                                              : index::Similarity::kInnerProduct;
  return spec;
}

uint64_t Segment::TokenCount(size_t f, uint32_t rows) const {
  uint64_t n = 0;
  for (uint32_t off = 0; off < rows; ++off) n += tokens(f, off).count;
  return n;
}

std::shared_ptr<const std::vector<uint32_t>> Segment::TokenRows(size_t f) const {
  MutexLock lock(&index_mu_);
  if (token_rows_[f] == nullptr) {
    auto rows = std::make_shared<std::vector<uint32_t>>();
    for (uint32_t off = 0; off < published(); ++off) rows->insert(rows->end(), tokens(f, off).count, off);
    token_rows_[f] = std::move(rows);
  }
  return token_rows_[f];
}

std::vector<float> Segment::GatherTokens(size_t f, uint32_t rows) const {
  std::vector<float> out;
  for (uint32_t off = 0; off < rows; ++off) {
    const TokenSet t = tokens(f, off);
    out.insert(out.end(), t.data, t.data + static_cast<size_t>(t.count) * token_dims_[f]);
  }
  return out;
}

Segment::Chunk::Chunk(const std::vector<uint32_t>& dims, const std::vector<bool>& multi,
                      const std::vector<bool>& lent, uint32_t rows)
    : iids(rows), ids(rows), delete_seq(new std::atomic<uint64_t>[rows]) {
  // Not zero-filled: every row is written by Append, or zeroed by
  // AppendHole, before anything reads it (zeroing was ~10% of ingest CPU).
  for (size_t f = 0; f < dims.size(); ++f) {
    owned.emplace_back(lent[f] ? nullptr : new float[static_cast<size_t>(rows) * dims[f]]);
    norms.emplace_back(new float[rows]);
    if (multi[f]) {
      tok_ptr.emplace_back(new std::atomic<const float*>[rows]);
      tok_count.emplace_back(new uint32_t[rows]());
      for (uint32_t r = 0; r < rows; ++r) tok_ptr[f][r].store(nullptr, std::memory_order_relaxed);
    } else {
      tok_ptr.emplace_back();
      tok_count.emplace_back();
    }
  }
  for (uint32_t i = 0; i < rows; ++i) delete_seq[i].store(0, std::memory_order_relaxed);
}

Segment::Segment(uint64_t id, std::shared_ptr<const Schema> schema, uint32_t capacity)
    : id_(id), schema_(std::move(schema)), capacity_(capacity) {
  size_t row_bytes = 0;
  for (const VectorFieldSpec& f : schema_->vectors()) {
    // A dropped field takes no memory: every row lacks it.
    dims_.push_back(f.dropped ? 0 : StoredDim(f));
    multi_.push_back(f.multi && !f.dropped);
    has_field_.push_back(!f.dropped);
    token_dims_.push_back(f.dim);
    row_bytes += (dims_.back() + 1) * sizeof(float);
  }
  arena_.resize(dims_.size());
  arena_used_.assign(dims_.size(), 0);
  token_bytes_.reset(new std::atomic<uint64_t>[dims_.size()]);
  for (size_t f = 0; f < dims_.size(); ++f) token_bytes_[f].store(0, std::memory_order_relaxed);
  while (chunk_rows_ > kMinChunkRows &&
         (chunk_rows_ * row_bytes > kChunkBytes || chunk_rows_ / 2 >= capacity)) {
    chunk_rows_ /= 2;
  }
  disk_bytes_.reset(new std::atomic<uint64_t>[dims_.size()]);
  for (size_t f = 0; f < dims_.size(); ++f) disk_bytes_[f].store(0, std::memory_order_relaxed);
  absent_bits_.resize(dims_.size());
  absent_count_.reset(new std::atomic<uint32_t>[dims_.size()]);
  for (size_t f = 0; f < dims_.size(); ++f) {
    absent_count_[f].store(0, std::memory_order_relaxed);
    if (!schema_->vectors()[f].optional && has_field_[f]) continue;
    const size_t words = (static_cast<size_t>(capacity) + 63) / 64;
    absent_bits_[f].reset(new std::atomic<uint64_t>[words]);
    for (size_t w = 0; w < words; ++w) absent_bits_[f][w].store(0, std::memory_order_relaxed);
  }
  chunks_.resize((static_cast<size_t>(capacity) + chunk_rows_ - 1) / chunk_rows_);
  rows_.reset(new std::atomic<FieldRows*>[dims_.size()]);
  std::vector<std::shared_ptr<FieldRows>> field_rows;
  for (size_t f = 0; f < dims_.size(); ++f) {
    auto r = std::make_shared<FieldRows>();
    r->stride = dims_[f];
    r->chunk_base.reset(new const float*[chunks_.size()]());
    rows_[f].store(r.get(), std::memory_order_relaxed);
    field_rows.push_back(std::move(r));
  }
  num_sparse_ = schema_->sparse().size();
  sparse_bytes_.reset(new std::atomic<uint64_t>[num_sparse_]);
  for (size_t i = 0; i < num_sparse_; ++i) sparse_bytes_[i].store(0, std::memory_order_relaxed);
  MutexLock lock(&index_mu_);
  sparse_indexes_.resize(num_sparse_);
  indexes_.resize(dims_.size());
  calibrations_.resize(dims_.size());
  tables_.resize(dims_.size());
  token_rows_.resize(dims_.size());
  field_rows_ = std::move(field_rows);
}

Segment::Chunk& Segment::ChunkForAppend(uint32_t off) {
  std::unique_ptr<Chunk>& c = chunks_[off / chunk_rows_];
  if (c == nullptr) {
    std::vector<bool> lent(dims_.size());
    for (size_t f = 0; f < dims_.size(); ++f) lent[f] = lends_rows(f);
    c = std::make_unique<Chunk>(dims_, multi_, lent, chunk_rows_);
    // The descriptor of a segment still appended to is its first one; its
    // slot is read only for rows published after this.
    for (size_t f = 0; f < dims_.size(); ++f) {
      rows_[f].load(std::memory_order_relaxed)->chunk_base[off / chunk_rows_] = c->owned[f].get();
    }
  }
  return *c;
}

uint32_t Segment::AppendHole(uint64_t iid) {
  const uint32_t off = appended_++;
  Chunk& c = ChunkForAppend(off);
  const uint32_t r = off % chunk_rows_;
  c.iids[r] = iid;
  // A hole is still indexed (labels are offsets): give it finite data.
  for (size_t f = 0; f < dims_.size(); ++f) {
    if (lends_rows(f)) {
      FieldRows* rows = rows_[f].load(std::memory_order_relaxed);
      rows->row_ptr[off] = rows->zeros.get();
    } else {
      std::memset(c.owned[f].get() + static_cast<size_t>(r) * dims_[f], 0,
                  dims_[f] * sizeof(float));
    }
    c.norms[f][r] = 0;
    if (multi_[f]) {
      c.tok_count[f][r] = 0;
      c.tok_ptr[f][r].store(nullptr, std::memory_order_relaxed);
    }
  }
  // Nor does a hole hold an optional field's vector (FillRow keeps it so
  // until SetVector finds one): LacksField counts on it.
  for (size_t f = 0; f < dims_.size(); ++f) SetAbsent(f, off, true);
  dead_.fetch_add(1, std::memory_order_relaxed);
  return off;
}

float* Segment::ArenaAlloc(size_t f, size_t floats) {
  // 1 MiB blocks; a set larger than a block gets one of its own.
  constexpr size_t kBlockFloats = size_t{1} << 18;
  auto& blocks = arena_[f];
  if (blocks.empty() || arena_used_[f] + floats > std::max(kBlockFloats, floats)) {
    blocks.emplace_back(new float[std::max(kBlockFloats, floats)]);
    arena_used_[f] = 0;
  }
  float* p = blocks.back().get() + arena_used_[f];
  arena_used_[f] += floats;
  return p;
}

void Segment::SetTokens(uint32_t offset, size_t f, TokenSet tokens) {
  Chunk& c = *chunks_[offset / chunk_rows_];
  const uint32_t r = offset % chunk_rows_;
  if (table(f) != nullptr) return;  // served from a rerank table
  const size_t floats = static_cast<size_t>(tokens.count) * token_dims_[f];
  float* dst = ArenaAlloc(f, floats);
  std::memcpy(dst, tokens.data, floats * sizeof(float));
  c.tok_count[f][r] = tokens.count;
  c.tok_ptr[f][r].store(dst, std::memory_order_release);
  token_bytes_[f].fetch_add(floats * sizeof(float), std::memory_order_relaxed);
}

void Segment::CountSparse(const SparseRow& row) {
  for (size_t i = 0; i < row.size() && i < num_sparse_; ++i) {
    if (row[i] != nullptr) {
      sparse_bytes_[i].fetch_add(row[i]->MemoryBytes(), std::memory_order_relaxed);
    }
  }
}

uint32_t Segment::Append(uint64_t iid, const std::string& external_id, AttrRow attrs,
                         const std::vector<const float*>& vectors, const TokenSet* tokens,
                         SparseRow sparse, TextRow text) {
  const uint32_t off = appended_++;
  Chunk& c = ChunkForAppend(off);
  const uint32_t r = off % chunk_rows_;
  c.iids[r] = iid;
  c.ids[r] = external_id;
  c.attrs.Set(r, chunk_rows_, std::move(attrs));
  // A row never holds more sparse fields than the segment's schema has.
  if (sparse.size() > num_sparse_) sparse.resize(num_sparse_);
  CountSparse(sparse);
  c.sparse.Set(r, chunk_rows_, std::move(sparse));
  c.text.Set(r, chunk_rows_, std::move(text));
  for (size_t f = 0; f < dims_.size(); ++f) {
    const bool absent = f >= vectors.size() || vectors[f] == nullptr || !has_field_[f];
    if (lends_rows(f)) {
      FieldRows* rows = rows_[f].load(std::memory_order_relaxed);
      rows->row_ptr[off] = absent ? rows->zeros.get() : vectors[f];
      c.norms[f][r] = absent ? 0 : index::NormSqr(vectors[f], dims_[f]);
      if (absent) SetAbsent(f, off, true);
      continue;
    }
    float* dst = c.owned[f].get() + static_cast<size_t>(r) * dims_[f];
    if (absent) {
      // An optional field the point lacks: finite data for the slot, which
      // searches and index builds leave out.
      std::memset(dst, 0, dims_[f] * sizeof(float));
      c.norms[f][r] = 0;
      SetAbsent(f, off, true);
      continue;
    }
    std::memcpy(dst, vectors[f], dims_[f] * sizeof(float));
    c.norms[f][r] = index::NormSqr(dst, dims_[f]);
    if (multi_[f] && tokens != nullptr) {
      const size_t floats = static_cast<size_t>(tokens[f].count) * token_dims_[f];
      float* t = ArenaAlloc(f, floats);
      std::memcpy(t, tokens[f].data, floats * sizeof(float));
      c.tok_count[f][r] = tokens[f].count;
      c.tok_ptr[f][r].store(t, std::memory_order_relaxed);
      token_bytes_[f].fetch_add(floats * sizeof(float), std::memory_order_relaxed);
    }
  }
  c.delete_seq[r].store(kAlive, std::memory_order_relaxed);
  return off;
}

void Segment::Unappend(uint32_t rows) {
  for (uint32_t off = rows; off < appended_; ++off) {
    Chunk& c = *chunks_[off / chunk_rows_];
    const uint32_t r = off % chunk_rows_;
    c.ids[r].clear();
    c.attrs.Set(r, chunk_rows_, AttrRow());
    const SparseRow& sparse = c.sparse.get(r);
    for (size_t i = 0; i < sparse.size() && i < num_sparse_; ++i) {
      if (sparse[i] != nullptr) {
        sparse_bytes_[i].fetch_sub(sparse[i]->MemoryBytes(), std::memory_order_relaxed);
      }
    }
    c.sparse.Set(r, chunk_rows_, SparseRow());
    c.text.Set(r, chunk_rows_, TextRow());
    for (size_t f = 0; f < dims_.size(); ++f) {
      SetAbsent(f, off, false);
      if (multi_[f] && c.tok_count[f] != nullptr) {
        token_bytes_[f].fetch_sub(static_cast<uint64_t>(c.tok_count[f][r]) * token_dims_[f] *
                                      sizeof(float),
                                  std::memory_order_relaxed);
        c.tok_count[f][r] = 0;
        c.tok_ptr[f][r].store(nullptr, std::memory_order_relaxed);
      }
    }
  }
  appended_ = rows;
}

void Segment::SetAbsent(size_t f, uint32_t off, bool absent) {
  if (absent_bits_[f] == nullptr) return;
  const uint64_t bit = uint64_t{1} << (off & 63);
  std::atomic<uint64_t>& word = absent_bits_[f][off >> 6];
  const uint64_t before = absent ? word.fetch_or(bit, std::memory_order_relaxed)
                                 : word.fetch_and(~bit, std::memory_order_relaxed);
  if (((before & bit) != 0) != absent) {
    if (absent) {
      absent_count_[f].fetch_add(1, std::memory_order_relaxed);
    } else {
      absent_count_[f].fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

void Segment::SetVector(uint32_t offset, size_t f, const float* v) {
  Chunk& c = *chunks_[offset / chunk_rows_];
  const uint32_t r = offset % chunk_rows_;
  SetAbsent(f, offset, false);
  if (c.owned[f] == nullptr) return;  // served from a rerank table
  float* dst = c.owned[f].get() + static_cast<size_t>(r) * dims_[f];
  std::memcpy(dst, v, dims_[f] * sizeof(float));
  c.norms[f][r] = index::NormSqr(dst, dims_[f]);
}

void Segment::NoteVector(uint32_t offset, size_t f, const float* v) {
  Chunk& c = *chunks_[offset / chunk_rows_];
  SetAbsent(f, offset, false);
  c.norms[f][offset % chunk_rows_] = index::NormSqr(v, dims_[f]);
}

void Segment::FillRow(uint32_t offset, const std::string& external_id, AttrRow attrs,
                      SparseRow sparse, TextRow text) {
  Chunk& c = *chunks_[offset / chunk_rows_];
  const uint32_t r = offset % chunk_rows_;
  c.ids[r] = external_id;
  c.attrs.Set(r, chunk_rows_, std::move(attrs));
  if (sparse.size() > num_sparse_) sparse.resize(num_sparse_);
  CountSparse(sparse);
  c.sparse.Set(r, chunk_rows_, std::move(sparse));
  c.text.Set(r, chunk_rows_, std::move(text));
  // Until SetVector finds its vector, an optional field's is absent.
  for (size_t f = 0; f < dims_.size(); ++f) SetAbsent(f, offset, true);
  if (c.delete_seq[r].exchange(kAlive, std::memory_order_relaxed) != kAlive) {
    dead_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Segment::MarkDeleted(uint32_t off, uint64_t seq) {
  Chunk& c = *chunks_[off / chunk_rows_];
  if (c.delete_seq[off % chunk_rows_].exchange(seq, std::memory_order_relaxed) == kAlive) {
    dead_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::shared_ptr<const index::VectorIndex> Segment::index(size_t f) const {
  MutexLock lock(&index_mu_);
  return f < indexes_.size() ? indexes_[f] : nullptr;
}

void Segment::SetIndex(size_t f, std::shared_ptr<const index::VectorIndex> idx,
                       std::shared_ptr<const RecallCalibration> calibration) {
  MutexLock lock(&index_mu_);
  if (f >= indexes_.size()) return;
  indexes_[f] = std::move(idx);
  if (calibrations_.size() < indexes_.size()) calibrations_.resize(indexes_.size());
  calibrations_[f] = indexes_[f] != nullptr ? std::move(calibration) : nullptr;
}

Segment::CalibratedIndex Segment::calibrated_index(size_t f) const {
  MutexLock lock(&index_mu_);
  CalibratedIndex out;
  if (f < indexes_.size()) out.index = indexes_[f];
  if (f < calibrations_.size()) out.calibration = calibrations_[f];
  return out;
}

void Segment::SetCalibration(size_t f, const index::VectorIndex* for_index,
                             std::shared_ptr<const RecallCalibration> calibration) {
  MutexLock lock(&index_mu_);
  if (f >= indexes_.size() || indexes_[f].get() != for_index || for_index == nullptr) return;
  if (calibrations_.size() < indexes_.size()) calibrations_.resize(indexes_.size());
  calibrations_[f] = std::move(calibration);
}

void Segment::DropIndexes(size_t f) {
  MutexLock lock(&index_mu_);
  if (f < indexes_.size()) indexes_[f] = nullptr;
  if (f < calibrations_.size()) calibrations_[f] = nullptr;
  std::erase_if(windows_, [f](const auto& w) { return w->field() == f; });
}

std::shared_ptr<const SparseIndex> Segment::sparse_index(size_t s) const {
  ReaderMutexLock lock(&index_mu_);
  return s < sparse_indexes_.size() ? sparse_indexes_[s] : nullptr;
}

void Segment::SetSparseIndex(size_t s, std::shared_ptr<const SparseIndex> idx) {
  MutexLock lock(&index_mu_);
  if (s < sparse_indexes_.size()) sparse_indexes_[s] = std::move(idx);
}

std::shared_ptr<const SparseIndex> Segment::text_index(size_t a) const {
  ReaderMutexLock lock(&index_mu_);
  return a < text_indexes_.size() ? text_indexes_[a] : nullptr;
}

void Segment::SetTextIndex(size_t a, std::shared_ptr<const SparseIndex> idx) {
  MutexLock lock(&index_mu_);
  if (a >= text_indexes_.size()) text_indexes_.resize(a + 1);
  text_indexes_[a] = std::move(idx);
}

size_t Segment::SparseBytes(size_t s) const {
  return s < num_sparse_ ? sparse_bytes_[s].load(std::memory_order_relaxed) : 0;
}

size_t Segment::SparseIndexBytes(size_t s) const {
  auto idx = sparse_index(s);
  return idx == nullptr ? 0 : idx->MemoryBytes();
}

std::shared_ptr<const SegmentAttrIndex> Segment::attr_index() const {
  ReaderMutexLock lock(&index_mu_);
  return attr_index_;
}

void Segment::SetAttrIndex(std::shared_ptr<const SegmentAttrIndex> idx) {
  MutexLock lock(&index_mu_);
  attr_index_ = std::move(idx);
}

std::shared_ptr<const WindowIndex> Segment::window_index(int attr, size_t f) const {
  ReaderMutexLock lock(&index_mu_);
  for (const auto& w : windows_) {
    if (w->attr() == attr && w->field() == f) return w;
  }
  return nullptr;
}

void Segment::SetWindowIndex(std::shared_ptr<const WindowIndex> w) {
  MutexLock lock(&index_mu_);
  for (auto& old : windows_) {
    if (old->attr() == w->attr() && old->field() == w->field()) {
      old = std::move(w);
      return;
    }
  }
  windows_.push_back(std::move(w));
}

void Segment::DropWindowIndexes(int attr) {
  MutexLock lock(&index_mu_);
  std::erase_if(windows_, [attr](const auto& w) { return w->attr() == attr; });
}

std::shared_ptr<Segment::FieldRows> Segment::ReplaceFieldRows(size_t f,
                                                              std::shared_ptr<FieldRows> rows) {
  MutexLock lock(&index_mu_);
  std::shared_ptr<FieldRows> old = std::move(field_rows_[f]);
  rows_[f].store(rows.get(), std::memory_order_release);
  field_rows_[f] = std::move(rows);
  return old;
}

void Segment::SwapFieldRows(size_t f, std::shared_ptr<FieldRows> rows,
                            std::vector<std::shared_ptr<const void>>* retired) {
  std::shared_ptr<FieldRows> old = ReplaceFieldRows(f, std::move(rows));
  for (auto& c : chunks_) {
    if (c != nullptr && c->owned[f] != nullptr) retired->emplace_back(std::move(c->owned[f]));
  }
  retired->push_back(std::move(old));
}

void Segment::LendRows(size_t f, std::shared_ptr<const void> owner) {
  auto rows = std::make_shared<FieldRows>();
  rows->source = FieldRows::Source::kLent;
  rows->stride = dims_[f];
  rows->chunk_base.reset(new const float*[chunks_.size()]());
  rows->row_ptr.reset(new const float*[capacity_]());
  rows->row_at = rows->row_ptr.get();
  rows->zeros.reset(new float[dims_[f]]());
  rows->owner = std::move(owner);
  ReplaceFieldRows(f, std::move(rows));
}

std::optional<index::SharedRows> Segment::adopted_rows(size_t f) const {
  ReaderMutexLock lock(&index_mu_);
  if (f >= field_rows_.size() || field_rows_[f]->source != FieldRows::Source::kIndex ||
      chunks_.empty()) {
    return std::nullopt;
  }
  const FieldRows& r = *field_rows_[f];
  index::SharedRows held;
  held.stride = r.stride;
  held.rows = r.rows;
  held.owner = field_rows_[f];
  if (r.row_at != nullptr) {
    held.row_ptr = r.row_at;
  } else if (r.chunk_base[0] != nullptr) {
    held.base = r.chunk_base[0];  // AdoptRows lays the chunks out back to back in the block
  } else {
    return std::nullopt;
  }
  return held;
}

bool Segment::lends_rows(size_t f) const {
  return f < dims_.size() &&
         rows_[f].load(std::memory_order_acquire)->source == FieldRows::Source::kLent;
}

std::shared_ptr<Segment::FieldRows> Segment::RowsCopiedHome(size_t f) {
  auto rows = std::make_shared<FieldRows>();
  rows->stride = dims_[f];
  rows->chunk_base.reset(new const float*[chunks_.size()]());
  for (size_t ci = 0; ci < chunks_.size(); ++ci) {
    Chunk* c = chunks_[ci].get();
    if (c == nullptr) continue;
    c->owned[f].reset(new float[static_cast<size_t>(chunk_rows_) * dims_[f]]);
    const uint32_t first = static_cast<uint32_t>(ci * chunk_rows_);
    const uint32_t n = std::min<uint32_t>(chunk_rows_, appended_ - std::min(appended_, first));
    for (uint32_t r = 0; r < n; ++r) {
      float* dst = c->owned[f].get() + static_cast<size_t>(r) * dims_[f];
      // A hole's or an absent vector's slot holds zeros (AppendHole), not
      // whatever an index's record held there.
      if (delete_seq(first + r) == 0 || !HasVector(f, first + r)) {
        std::memset(dst, 0, dims_[f] * sizeof(float));
      } else {
        std::memcpy(dst, vector(f, first + r), dims_[f] * sizeof(float));
      }
    }
    rows->chunk_base[ci] = c->owned[f].get();
  }
  return rows;
}

void Segment::OwnRows() {
  for (size_t f = 0; f < dims_.size(); ++f) {
    // Nothing reads the segment yet: the lent rows can go at once.
    if (lends_rows(f)) ReplaceFieldRows(f, RowsCopiedHome(f));
  }
}

absl::Status Segment::AdoptRows(size_t f, const index::VectorIndex& idx,
                                std::vector<std::shared_ptr<const void>>* retired, bool compare) {
  if (f >= dims_.size() || !has_field_[f] || schema_->vectors()[f].token_candidates) {
    return absl::FailedPreconditionError("the field keeps no row vectors an index could share");
  }
  if (!sealed()) return absl::FailedPreconditionError("the segment is not sealed");
  // (A multi-vector field's table serves its token vectors; the encodings
  // an index is built over stay in the chunks.)
  if (table(f) != nullptr && !multi_[f]) {
    return absl::FailedPreconditionError("a rerank table serves the rows");
  }
  const std::optional<index::SharedRows> shared = idx.shared_rows();
  if (!shared.has_value()) {
    return absl::FailedPreconditionError(idx.Describe() + " keeps no rows to share");
  }
  const size_t dim = dims_[f];
  if (idx.spec().dim != dim || shared->stride < dim || shared->rows != appended_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the index holds ", shared->rows, " rows of dim ", idx.spec().dim,
                     "; the segment ", appended_, " of dim ", dim));
  }
  {
    ReaderMutexLock lock(&index_mu_);
    if (field_rows_[f]->owner == shared->owner) return absl::OkStatus();
  }
  for (uint32_t off = 0; compare && off < appended_; ++off) {
    if (delete_seq(off) == 0 || !HasVector(f, off)) continue;  // a hole, or no vector
    if (std::memcmp(vector(f, off), shared->row(off), dim * sizeof(float)) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("row ", off, "'s vector differs from the index's"));
    }
  }
  auto rows = std::make_shared<FieldRows>();
  rows->source = FieldRows::Source::kIndex;
  rows->stride = shared->stride;
  rows->rows = shared->rows;
  rows->owner = shared->owner;
  rows->chunk_base.reset(new const float*[chunks_.size()]());
  if (shared->row_ptr != nullptr) {
    rows->row_at = shared->row_ptr;
  } else {
    for (size_t ci = 0; ci < chunks_.size(); ++ci) {
      if (chunks_[ci] != nullptr) {
        rows->chunk_base[ci] = shared->base + ci * chunk_rows_ * shared->stride;
      }
    }
  }
  SwapFieldRows(f, std::move(rows), retired);
  return absl::OkStatus();
}

void Segment::ReclaimRows(size_t f, std::vector<std::shared_ptr<const void>>* retired) {
  if (rows_adopted(f)) retired->push_back(ReplaceFieldRows(f, RowsCopiedHome(f)));
}

bool Segment::rows_adopted(size_t f) const {
  ReaderMutexLock lock(&index_mu_);
  return f < field_rows_.size() && field_rows_[f]->source == FieldRows::Source::kIndex;
}

size_t Segment::VectorBytes(size_t f, uint32_t rows) const {
  if (f >= dims_.size()) return 0;
  std::shared_ptr<const FieldRows> r;
  std::shared_ptr<const index::VectorIndex> idx;
  {
    ReaderMutexLock lock(&index_mu_);
    r = field_rows_[f];
    idx = indexes_[f];
  }
  const size_t chunks = (static_cast<size_t>(rows) + chunk_rows_ - 1) / chunk_rows_;
  // Norms stay in the segment's memory whatever serves the vectors.
  size_t per_row = dims_[f] + 1;
  size_t borrowed = 0;
  if (r->source == FieldRows::Source::kTable && !multi_[f]) per_row = 1;
  if (r->source == FieldRows::Source::kLent) per_row = 1;  // the lenders count the rows
  if (r->source == FieldRows::Source::kIndex) {
    per_row = 1;
    std::optional<index::SharedRows> current;
    if (idx != nullptr) current = idx->shared_rows();
    // Counted by the index while it is the field's index; the segment's
    // alone once the index was replaced or dropped.
    if (!current.has_value() || current->owner != r->owner) {
      borrowed = r->rows * r->stride * sizeof(float);
    }
  }
  return chunks * chunk_rows_ * per_row * sizeof(float) + borrowed +
         token_bytes_[f].load(std::memory_order_relaxed);
}

void Segment::AttachTokenTable(size_t f, std::shared_ptr<const storage::RerankTable> table,
                               std::vector<std::shared_ptr<const void>>* retired) {
  const float* base = table->mapped_vectors();
  const size_t dim = token_dims_[f];
  for (uint32_t off = 0; off < appended_; ++off) {
    Chunk& c = *chunks_[off / chunk_rows_];
    const uint32_t r = off % chunk_rows_;
    // Readers may be reading the count: it only changes for holes of a
    // restored segment, which nobody reads yet.
    if (c.tok_count[f][r] != table->count(off)) c.tok_count[f][r] = table->count(off);
    c.tok_ptr[f][r].store(base + table->offset(off) * dim, std::memory_order_release);
  }
  for (auto& block : arena_[f]) retired->emplace_back(std::move(block));
  arena_[f].clear();
  arena_used_[f] = 0;
  token_bytes_[f].store(0, std::memory_order_relaxed);
  MutexLock lock(&index_mu_);
  tables_[f] = std::move(table);
}

void Segment::AttachTable(size_t f, std::shared_ptr<const storage::RerankTable> table,
                          bool compute_norms, std::vector<std::shared_ptr<const void>>* retired) {
  const float* base = table->mapped_vectors();
  const size_t dim = dims_[f];
  const size_t stride = table->stride();
  auto rows = std::make_shared<FieldRows>();
  rows->source = FieldRows::Source::kTable;
  rows->stride = stride;
  rows->owner = table;
  rows->chunk_base.reset(new const float*[chunks_.size()]());
  for (size_t ci = 0; ci < chunks_.size(); ++ci) {
    Chunk* c = chunks_[ci].get();
    if (c == nullptr) continue;
    const float* mapped = base + ci * chunk_rows_ * stride;
    rows->chunk_base[ci] = mapped;
    if (compute_norms) {
      const uint32_t first = static_cast<uint32_t>(ci * chunk_rows_);
      const uint32_t n = std::min<uint32_t>(chunk_rows_, appended_ - std::min(appended_, first));
      for (uint32_t r = 0; r < n; ++r) {
        c->norms[f][r] = index::NormSqr(mapped + r * stride, dim);
      }
    }
  }
  SwapFieldRows(f, std::move(rows), retired);
  MutexLock lock(&index_mu_);
  tables_[f] = std::move(table);
}

std::shared_ptr<const storage::RerankTable> Segment::table(size_t f) const {
  ReaderMutexLock lock(&index_mu_);
  return f < tables_.size() ? tables_[f] : nullptr;
}

size_t Segment::IndexBytes(size_t f) const {
  auto idx = index(f);
  return idx == nullptr ? 0 : idx->MemoryBytes();
}

}  // namespace quiver
