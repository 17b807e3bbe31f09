// Rerank tables: the full-precision vectors of one sealed segment's vector
// field in a file, for fields whose in-memory index keeps only compressed
// codes (DISK storage). A search finds candidates in memory and reads their
// exact vectors from here to rerank them.
//
// A table is derived data, written once when its segment is sealed and
// never modified: RocksDB stays the source of truth. Open() checks the
// header, the sizes, that the table covers what the caller expects (rows,
// dimension, sequence number) and a CRC-32 over everything after the
// header, so a missing, stale, truncated or corrupt table is reported
// (NOT_FOUND, FAILED_PRECONDITION, DATA_LOSS) and the caller rebuilds it;
// nothing is served from a table that did not verify.
//
// Layout (little-endian, as written by this machine):
//   [0, 4096)         header (RerankHeader), then zero padding
//   [4096, ...)       records. Single-vector tables: row r's vector at
//                     data + r * stride, each record followed by zeros up to
//                     the stride (RerankTableWriter::RecordStride). Multi-
//                     vector tables: row r's vectors at data + offset[r] *
//                     dim * 4, back to back.
//   after the records the offsets (rows + 1 uint64, in vectors), for
//                     multi-vector tables only.
// Records are addressed by row (the segment's local offset). With O_DIRECT
// a read covers the 4 KiB blocks a record spans; the stride is chosen so
// that a single vector spans as few as it can (one, when it fits in 4 KiB):
// a 784-d record packed spans two blocks three times in four, and the device
// reads two 4 KiB blocks at about 70% of the rate of one. Format version 1
// (packed single-vector records) is still read.
//
// Reads are batched and asynchronous: Submit() issues every record's read
// through io_uring (up to kMaxQueueDepth in flight) and returns at once, so
// a search can keep generating candidates while the device works (ESPN's
// prefetching); RerankRead::Wait() collects them. Read() is both in one.
//
// Thread-safety: a RerankTable is immutable after Open; Submit and Read may
// be called from any number of threads (each batch has its own ring and
// buffers). A RerankRead belongs to one thread at a time and must not
// outlive its table.
#ifndef QUIVER_STORAGE_RERANK_TABLE_H_
#define QUIVER_STORAGE_RERANK_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <liburing.h>

#include "absl/status/statusor.h"
#include "storage/file_system.h"

namespace quiver::storage {

// Writes a table to `path` through a FileSystem (a temporary file, fsynced
// and renamed into place, then the directory fsynced, so a crash leaves
// either no table or a complete one). Reads stay direct (io_uring).
class RerankTableWriter {
 public:
  // `multi`: rows hold a variable number of vectors (late interaction).
  // `fs` must outlive the writer.
  RerankTableWriter(FileSystem& fs, std::string path, uint32_t dim, uint64_t sequence,
                    bool multi);
  RerankTableWriter(std::string path, uint32_t dim, uint64_t sequence, bool multi)
      : RerankTableWriter(*FileSystem::Default(), std::move(path), dim, sequence, multi) {}
  ~RerankTableWriter();
  RerankTableWriter(const RerankTableWriter&) = delete;
  RerankTableWriter& operator=(const RerankTableWriter&) = delete;

  // Appends the next row: `count` vectors of dim floats (exactly 1 unless
  // multi; a multi row may be empty).
  absl::Status Add(const float* vectors, size_t count);
  // Writes the offsets and header, fsyncs, renames. No Add after this.
  absl::Status Finish();

  // Bytes from one record of a single-vector table of `dim` floats to the
  // next: the smallest power of two holding it when it fits in a 4 KiB
  // block (so that none straddles two), else its size rounded up to whole
  // blocks (each starts on one) -- unless that pads the record by more
  // than a third, where records stay packed (dim * 4). 784 -> 4096 bytes,
  // 768 -> 4096, 128 -> 512, 100 -> 512, 37 -> 148 (packed).
  static uint64_t RecordStride(uint32_t dim);

 private:
  absl::Status Open();
  absl::Status WriteAll(const void* data, size_t n);

  FileSystem& fs_;
  const std::string path_;
  const std::string tmp_path_;
  const uint32_t dim_;
  const uint64_t sequence_;
  const bool multi_;
  const uint64_t stride_;  // single-vector tables: RecordStride(dim_)
  std::string padding_;    // zeros written after each record
  std::unique_ptr<WritableFile> file_;
  absl::Status status_;
  uint64_t rows_ = 0;
  uint64_t vectors_ = 0;
  uint32_t crc_ = 0;
  std::vector<uint64_t> offsets_;
  bool finished_ = false;
};

struct RerankTableOptions {
  // Read with O_DIRECT, bypassing the page cache (benchmarks measure the
  // device this way). Default: off.
  bool direct_io = false;
  // Also map the file read-only (mapped_vectors()), for readers that want a
  // vector by pointer rather than by batched read: exact scans, returning
  // vectors, compaction. The mapping goes through the page cache whatever
  // direct_io says. Default: off.
  bool map = false;
};

// What the caller expects the table to cover; a mismatch is stale.
struct RerankTableExpect {
  uint32_t dim = 0;
  uint64_t rows = 0;
  uint64_t sequence = 0;
  bool multi = false;
};

struct AlignedFree {
  void operator()(void* p) const;
};

// A batch of reads in flight (see RerankTable::Submit).
class RerankRead {
 public:
  // Waits for reads still in flight (their buffers are ours).
  ~RerankRead();
  RerankRead(const RerankRead&) = delete;
  RerankRead& operator=(const RerankRead&) = delete;

  // Waits for every read of the batch. INTERNAL on an I/O error;
  // FAILED_PRECONDITION if called again.
  absl::Status Wait();
  // After a successful Wait: the i-th record asked for (count * dim floats),
  // read in place in the batch's buffer, valid while this RerankRead lives.
  // A search computes its distances here, with no copy per record.
  const float* record(size_t i) const;
  // Wait, then each record copied into *out, in the order asked for.
  absl::Status Wait(std::vector<std::vector<float>>* out);

 private:
  friend class RerankTable;
  struct Request;
  RerankRead();
  absl::Status Fill();  // submits queued requests while the ring has room

  int fd_ = -1;
  bool direct_ = false;
  io_uring ring_{};
  bool ring_ok_ = false;
  unsigned depth_ = 0;
  size_t next_ = 0;      // first request not submitted yet
  unsigned inflight_ = 0;
  bool waited_ = false;
  std::vector<Request> reqs_;
  std::vector<size_t> floats_;  // per record: count * dim
  // Every record's read, one after another (aligned and block-sized for
  // O_DIRECT).
  std::unique_ptr<char, AlignedFree> buffer_;
};

class RerankTable {
 public:
  // Reads at most this many records in one batch of the ring.
  static constexpr unsigned kMaxQueueDepth = 256;

  // NOT_FOUND: no file. FAILED_PRECONDITION: a valid table for other rows,
  // dimension or sequence number (stale). DATA_LOSS: truncated, corrupt or
  // not a table.
  static absl::StatusOr<std::unique_ptr<RerankTable>> Open(const std::string& path,
                                                           const RerankTableExpect& expect,
                                                           const RerankTableOptions& options = {});
  ~RerankTable();
  RerankTable(const RerankTable&) = delete;
  RerankTable& operator=(const RerankTable&) = delete;

  uint32_t dim() const { return dim_; }
  uint64_t rows() const { return rows_; }
  uint64_t sequence() const { return sequence_; }
  bool multi() const { return multi_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // With RerankTableOptions::map: the records, valid while the table
  // lives; null otherwise. Row r's vectors at mapped_vectors() +
  // offset(r) * dim in a multi-vector table, at mapped_vectors() + r *
  // stride() in a single-vector one (mapped_row).
  const float* mapped_vectors() const;
  // Single-vector tables: floats from one row's vector to the next (dim or
  // more; see RerankTableWriter::RecordStride).
  uint64_t stride() const { return stride_ / sizeof(float); }
  // With map: row r's first vector, either kind of table.
  const float* mapped_row(uint64_t r) const {
    return mapped_vectors() + (multi_ ? offsets_[r] * dim_ : r * stride());
  }
  // With map: unmaps the pages this process has touched from its page
  // tables (madvise MADV_DONTNEED); they stay in the page cache, and a
  // reader that touches one again faults it back in with the same bytes
  // (the mapping is read-only and shared), so this is safe while others
  // read. A start-up that checked every row through the mapping calls it,
  // so that the process's resident memory shows what searches use rather
  // than the whole table.
  void ReleaseMappedPages() const;
  // Multi tables: rows + 1 offsets (in vectors) of each row's first vector.
  const uint64_t* offsets() const { return offsets_.data(); }
  // First vector of row r, counted in vectors from the first record.
  uint64_t offset(uint64_t r) const { return multi_ ? offsets_[r] : r; }
  // Vectors of row r (1 for single-vector tables).
  uint32_t count(uint64_t r) const {
    return multi_ ? static_cast<uint32_t>(offsets_[r + 1] - offsets_[r]) : 1;
  }

  // Starts reading rows[i]'s vectors (count * dim floats each) and returns
  // without waiting. INVALID_ARGUMENT for a row out of range. `reads`, if
  // set, is increased by the number of device reads issued: one per record
  // (with O_DIRECT, one covering the 4 KiB blocks the record spans).
  absl::StatusOr<std::unique_ptr<RerankRead>> Submit(const std::vector<uint64_t>& rows,
                                                     uint64_t* reads = nullptr) const;
  // Submit and Wait.
  absl::Status Read(const std::vector<uint64_t>& rows, std::vector<std::vector<float>>* out,
                    uint64_t* reads = nullptr) const;

 private:
  RerankTable() = default;

  int fd_ = -1;
  bool direct_ = false;
  uint32_t dim_ = 0;
  uint64_t rows_ = 0;
  uint64_t sequence_ = 0;
  bool multi_ = false;
  uint64_t data_offset_ = 0;
  uint64_t stride_ = 0;  // bytes; single-vector tables
  uint64_t file_bytes_ = 0;
  std::vector<uint64_t> offsets_;  // multi only: rows + 1, in vectors
  void* map_ = nullptr;            // RerankTableOptions::map
  size_t map_bytes_ = 0;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_RERANK_TABLE_H_
