#include "query/rows.h"

namespace quiver {

Chunk::Chunk(const Schema& schema)
    : ids(kChunkRows), attrs(kChunkRows),
      delete_seq(new std::atomic<uint64_t>[kChunkRows]) {
  for (const VectorFieldSpec& f : schema.vectors()) {
    vectors.emplace_back(new float[kChunkRows * f.dim]());
    norms.emplace_back(new float[kChunkRows]());
  }
  for (size_t i = 0; i < kChunkRows; ++i) delete_seq[i].store(0, std::memory_order_relaxed);
}

size_t Chunk::MemoryBytes(const Schema& schema) const {
  size_t bytes = kChunkRows * (sizeof(std::string) + sizeof(AttrRow) + sizeof(uint64_t));
  for (const VectorFieldSpec& f : schema.vectors()) bytes += kChunkRows * (f.dim + 1) * sizeof(float);
  return bytes;
}

}  // namespace quiver
