// Rows: the in-memory columns of one collection's points, addressed by
// internal id (iid), with snapshot visibility.
//
// Storage is a directory of fixed-size chunks (kChunkRows rows each). A chunk
// never moves once allocated, and the directory is replaced, not edited,
// when it grows, so readers hold a Snapshot (directory + row count +
// sequence number) and read without locks while the single writer appends.
//
// Visibility: a row is visible in a snapshot taken at sequence S iff its
// iid < snapshot.rows and delete_seq > S. delete_seq is kAlive while the row
// lives, the deleting operation's sequence once deleted or overwritten, and
// 0 for iids never filled (holes left by failed writes or by rows removed
// before a restart).
//
// Thread-safety: a Chunk's rows below the published row count are
// immutable except delete_seq, which is atomic. Only the collection's writer
// (the engine's commit thread) creates chunks and writes rows.
#ifndef QUIVER_QUERY_ROWS_H_
#define QUIVER_QUERY_ROWS_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "storage/schema.h"

namespace quiver {

inline constexpr size_t kChunkRows = 1024;
inline constexpr uint64_t kAlive = std::numeric_limits<uint64_t>::max();

struct Chunk {
  explicit Chunk(const Schema& schema);

  // vectors[f] holds kChunkRows * dim(f) floats, norms[f] their squared norms.
  std::vector<std::unique_ptr<float[]>> vectors;
  std::vector<std::unique_ptr<float[]>> norms;
  std::vector<std::string> ids;  // external ids
  std::vector<AttrRow> attrs;
  std::unique_ptr<std::atomic<uint64_t>[]> delete_seq;

  size_t MemoryBytes(const Schema& schema) const;
};

using ChunkDir = std::vector<std::shared_ptr<Chunk>>;

// A consistent, immutable view for readers.
struct Snapshot {
  std::shared_ptr<const ChunkDir> chunks;
  uint64_t rows = 0;
  uint64_t seq = 0;

  const Chunk* ChunkOf(uint64_t iid) const {
    if (iid >= rows) return nullptr;
    return (*chunks)[iid / kChunkRows].get();
  }
  bool Visible(uint64_t iid) const {
    const Chunk* c = ChunkOf(iid);
    return c != nullptr &&
           c->delete_seq[iid % kChunkRows].load(std::memory_order_relaxed) > seq;
  }
};

}  // namespace quiver

#endif  // QUIVER_QUERY_ROWS_H_
