#include "query/segment.h"

#include <cstring>

#include "index/distance.h"

namespace quiver {

index::IndexSpec IndexSpecOf(const VectorFieldSpec& field) {
  index::IndexSpec spec;
  spec.type = field.index_type;
  spec.params = field.index_params;
  spec.dim = field.dim;
  spec.similarity =
      field.metric == Metric::kL2 ? index::Similarity::kL2 : index::Similarity::kInnerProduct;
  return spec;
}

Segment::Chunk::Chunk(const std::vector<uint32_t>& dims)
    : iids(kChunkRows), ids(kChunkRows), attrs(kChunkRows),
      delete_seq(new std::atomic<uint64_t>[kChunkRows]) {
  for (uint32_t dim : dims) {
    vectors.emplace_back(new float[static_cast<size_t>(kChunkRows) * dim]());
    norms.emplace_back(new float[kChunkRows]());
  }
  for (uint32_t i = 0; i < kChunkRows; ++i) delete_seq[i].store(0, std::memory_order_relaxed);
}

Segment::Segment(uint64_t id, std::shared_ptr<const Schema> schema, uint32_t capacity)
    : id_(id), schema_(std::move(schema)), capacity_(capacity) {
  for (const VectorFieldSpec& f : schema_->vectors()) dims_.push_back(f.dim);
  disk_bytes_.reset(new std::atomic<uint64_t>[dims_.size()]);
  for (size_t f = 0; f < dims_.size(); ++f) disk_bytes_[f].store(0, std::memory_order_relaxed);
  chunks_.resize((static_cast<size_t>(capacity) + kChunkRows - 1) / kChunkRows);
  absl::MutexLock lock(&index_mu_);
  indexes_.resize(dims_.size());
}

Segment::Chunk& Segment::ChunkForAppend(uint32_t off) {
  std::unique_ptr<Chunk>& c = chunks_[off / kChunkRows];
  if (c == nullptr) c = std::make_unique<Chunk>(dims_);
  return *c;
}

uint32_t Segment::AppendHole(uint64_t iid) {
  const uint32_t off = appended_++;
  Chunk& c = ChunkForAppend(off);
  c.iids[off % kChunkRows] = iid;
  dead_.fetch_add(1, std::memory_order_relaxed);
  return off;
}

uint32_t Segment::Append(uint64_t iid, const std::string& external_id, AttrRow attrs,
                         const std::vector<const float*>& vectors) {
  const uint32_t off = appended_++;
  Chunk& c = ChunkForAppend(off);
  const uint32_t r = off % kChunkRows;
  c.iids[r] = iid;
  c.ids[r] = external_id;
  c.attrs[r] = std::move(attrs);
  for (size_t f = 0; f < vectors.size(); ++f) {
    float* dst = c.vectors[f].get() + static_cast<size_t>(r) * dims_[f];
    std::memcpy(dst, vectors[f], dims_[f] * sizeof(float));
    c.norms[f][r] = index::NormSqr(dst, dims_[f]);
  }
  c.delete_seq[r].store(kAlive, std::memory_order_relaxed);
  return off;
}

void Segment::SetVector(uint32_t offset, size_t f, const float* v) {
  Chunk& c = *chunks_[offset / kChunkRows];
  const uint32_t r = offset % kChunkRows;
  float* dst = c.vectors[f].get() + static_cast<size_t>(r) * dims_[f];
  std::memcpy(dst, v, dims_[f] * sizeof(float));
  c.norms[f][r] = index::NormSqr(dst, dims_[f]);
}

void Segment::FillRow(uint32_t offset, const std::string& external_id, AttrRow attrs) {
  Chunk& c = *chunks_[offset / kChunkRows];
  const uint32_t r = offset % kChunkRows;
  c.ids[r] = external_id;
  c.attrs[r] = std::move(attrs);
  if (c.delete_seq[r].exchange(kAlive, std::memory_order_relaxed) != kAlive) {
    dead_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Segment::MarkDeleted(uint32_t off, uint64_t seq) {
  Chunk& c = *chunks_[off / kChunkRows];
  if (c.delete_seq[off % kChunkRows].exchange(seq, std::memory_order_relaxed) == kAlive) {
    dead_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::shared_ptr<const index::VectorIndex> Segment::index(size_t f) const {
  absl::MutexLock lock(&index_mu_);
  return indexes_[f];
}

void Segment::SetIndex(size_t f, std::shared_ptr<const index::VectorIndex> idx) {
  absl::MutexLock lock(&index_mu_);
  indexes_[f] = std::move(idx);
}

std::vector<float> Segment::GatherVectors(size_t f, uint32_t rows) const {
  const size_t dim = dims_[f];
  std::vector<float> out(static_cast<size_t>(rows) * dim);
  for (uint32_t first = 0; first < rows; first += kChunkRows) {
    const uint32_t n = std::min(kChunkRows, rows - first);
    std::memcpy(out.data() + first * dim, chunk_vectors(f, first), n * dim * sizeof(float));
  }
  return out;
}

size_t Segment::VectorBytes(size_t f, uint32_t rows) const {
  const size_t chunks = (static_cast<size_t>(rows) + kChunkRows - 1) / kChunkRows;
  return chunks * kChunkRows * (dims_[f] + 1) * sizeof(float);
}

size_t Segment::IndexBytes(size_t f) const {
  auto idx = index(f);
  return idx == nullptr ? 0 : idx->MemoryBytes();
}

}  // namespace quiver
