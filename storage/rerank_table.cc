#include "storage/rerank_table.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"

namespace quiver::storage {
namespace {

constexpr char kMagic[8] = {'Q', 'V', 'R', 'R', 'T', 'B', 'L', '1'};
// Version 1: single-vector records packed (stride = dim * 4). Version 2 adds
// record_stride; both are read.
constexpr uint32_t kVersion = 2;
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kBlock = 4096;
constexpr size_t kWriteBuffer = 1 << 20;

struct RerankHeader {
  char magic[8];
  uint32_t version;
  uint32_t dim;
  uint64_t rows;
  uint64_t vectors;  // total vectors (rows for a single-vector table)
  uint64_t sequence;
  uint32_t multi;
  uint32_t data_crc;  // CRC-32 of bytes [kHeaderBytes, file_bytes)
  uint64_t data_offset;
  uint64_t file_bytes;
  uint32_t header_crc;  // CRC-32 of the fields above (and record_stride, v2)
  uint32_t record_stride;  // v2: bytes from one single-vector record to the
                           // next (0 in v1 and in multi-vector tables)
};
static_assert(sizeof(RerankHeader) <= kHeaderBytes);

uint32_t Crc(uint32_t crc, const void* p, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(p), n));
}

uint32_t HeaderCrc(const RerankHeader& h) {
  const uint32_t crc = Crc(crc32_z(0, Z_NULL, 0), &h, offsetof(RerankHeader, header_crc));
  return h.version < 2 ? crc : Crc(crc, &h.record_stride, sizeof(h.record_stride));
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Reads exactly n bytes at off (pread loops over short reads).
bool PreadAll(int fd, void* buf, size_t n, uint64_t off) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t got = pread(fd, p, n, static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    off += static_cast<uint64_t>(got);
  }
  return true;
}

}  // namespace

void AlignedFree::operator()(void* p) const { std::free(p); }

uint64_t RerankTableWriter::RecordStride(uint32_t dim) {
  const uint64_t record = uint64_t{dim} * sizeof(float);
  uint64_t stride = sizeof(float);
  if (record <= kBlock) {
    while (stride < record) stride <<= 1;  // a power of two: divides the block
  } else {
    stride = (record + kBlock - 1) & ~(kBlock - 1);
  }
  return 3 * stride <= 4 * record ? stride : record;
}

// ------------------------------------------------------------------ writer

RerankTableWriter::RerankTableWriter(FileSystem& fs, std::string path, uint32_t dim,
                                     uint64_t sequence, bool multi)
    : fs_(fs), path_(std::move(path)), tmp_path_(path_ + ".tmp"), dim_(dim), sequence_(sequence),
      multi_(multi), stride_(multi ? uint64_t{dim} * sizeof(float) : RecordStride(dim)) {
  crc_ = static_cast<uint32_t>(crc32_z(0, Z_NULL, 0));
  offsets_.push_back(0);
  status_ = Open();
}

RerankTableWriter::~RerankTableWriter() {
  file_.reset();
  if (!finished_) (void)fs_.DeleteFile(tmp_path_);
}

absl::Status RerankTableWriter::Open() {
  if (dim_ == 0) return absl::InvalidArgumentError("rerank table: dim must be positive");
  absl::StatusOr<std::unique_ptr<WritableFile>> f = fs_.NewWritableFile(tmp_path_);
  if (!f.ok()) return f.status();
  file_ = *std::move(f);
  // The header is written last, once the sizes and checksum are known.
  const std::string zeros(kHeaderBytes, '\0');
  return file_->Append(zeros);
}

absl::Status RerankTableWriter::WriteAll(const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  crc_ = Crc(crc_, p, n);
  while (n > 0) {
    const size_t chunk = std::min(n, kWriteBuffer);
    if (absl::Status s = file_->Append(absl::string_view(p, chunk)); !s.ok()) return s;
    p += chunk;
    n -= chunk;
  }
  return absl::OkStatus();
}

absl::Status RerankTableWriter::Add(const float* vectors, size_t count) {
  if (!status_.ok()) return status_;
  if (finished_) return absl::FailedPreconditionError("rerank table: Add after Finish");
  if (!multi_ && count != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rerank table: a row holds one vector, got ", count));
  }
  if (count > 0) status_ = WriteAll(vectors, count * dim_ * sizeof(float));
  const uint64_t pad = multi_ ? 0 : stride_ - uint64_t{dim_} * sizeof(float);
  if (status_.ok() && pad > 0) {
    if (padding_.size() < pad) padding_.assign(pad, '\0');
    status_ = WriteAll(padding_.data(), pad);
  }
  ++rows_;
  vectors_ += count;
  if (multi_) offsets_.push_back(vectors_);
  return status_;
}

absl::Status RerankTableWriter::Finish() {
  if (!status_.ok()) return status_;
  if (finished_) return absl::FailedPreconditionError("rerank table: Finish twice");
  if (multi_) {
    status_ = WriteAll(offsets_.data(), offsets_.size() * sizeof(uint64_t));
    if (!status_.ok()) return status_;
  }
  RerankHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.dim = dim_;
  h.rows = rows_;
  h.vectors = vectors_;
  h.sequence = sequence_;
  h.multi = multi_ ? 1 : 0;
  h.data_crc = crc_;
  h.data_offset = kHeaderBytes;
  h.record_stride = multi_ ? 0 : static_cast<uint32_t>(stride_);
  h.file_bytes = kHeaderBytes +
                 (multi_ ? vectors_ * dim_ * sizeof(float) + offsets_.size() * sizeof(uint64_t)
                         : rows_ * stride_);
  h.header_crc = HeaderCrc(h);
  status_ = file_->WriteAt(0, absl::string_view(reinterpret_cast<const char*>(&h), sizeof(h)));
  if (status_.ok()) status_ = file_->Sync();
  if (status_.ok()) status_ = file_->Close();
  if (!status_.ok()) return status_;
  file_.reset();
  status_ = fs_.Rename(tmp_path_, path_);
  if (!status_.ok()) return status_;
  // The rename is durable once the directory is. If that fails, the caller
  // never lists the table, so it must not stay behind under its final name.
  status_ = fs_.SyncDir(DirName(path_));
  if (!status_.ok()) {
    (void)fs_.DeleteFile(path_);
    return status_;
  }
  finished_ = true;
  return absl::OkStatus();
}

// ------------------------------------------------------------------ reader

RerankTable::~RerankTable() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
  if (fd_ >= 0) close(fd_);
}

const float* RerankTable::mapped_vectors() const {
  if (map_ == nullptr) return nullptr;
  return reinterpret_cast<const float*>(static_cast<const char*>(map_) + data_offset_);
}

void RerankTable::ReleaseMappedPages() const {
  // Advice only: a failure leaves the pages resident, which is what the
  // caller had before.
  if (map_ != nullptr) (void)madvise(map_, map_bytes_, MADV_DONTNEED);
}

absl::StatusOr<std::unique_ptr<RerankTable>> RerankTable::Open(const std::string& path,
                                                               const RerankTableExpect& expect,
                                                               const RerankTableOptions& options) {
  std::unique_ptr<RerankTable> t(new RerankTable());
  t->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (t->fd_ < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no rerank table ", path));
    return Errno("cannot open", path);
  }
  struct stat st;
  if (fstat(t->fd_, &st) != 0) return Errno("cannot stat", path);
  const auto size = static_cast<uint64_t>(st.st_size);
  RerankHeader h{};
  auto lost = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("rerank table ", path, ": ", why));
  };
  if (size < kHeaderBytes || !PreadAll(t->fd_, &h, sizeof(h), 0)) return lost("truncated header");
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return lost("not a rerank table");
  if (h.header_crc != HeaderCrc(h)) return lost("header checksum mismatch");
  if (h.version != 1 && h.version != kVersion) {
    return lost(absl::StrCat("unknown format version ", h.version));
  }
  const uint64_t vector_bytes = uint64_t{h.dim} * sizeof(float);
  const bool multi = h.multi != 0;
  // Version 1 packed every record; version 2 says how far apart a
  // single-vector table's are (at least a record, at most two plus a block).
  const bool packed = multi || h.version == 1;
  const uint64_t stride = packed ? vector_bytes : h.record_stride;
  const bool stride_ok = packed ? h.record_stride == 0
                                : stride >= vector_bytes && stride % sizeof(float) == 0 &&
                                      stride <= 2 * vector_bytes + kBlock;
  // Sizes that cannot overflow: at most 2^40 rows of at most 2^23 bytes.
  if (h.dim == 0 || h.dim > (1u << 20) || h.vectors > (uint64_t{1} << 40) ||
      h.data_offset != kHeaderBytes || (!multi && h.vectors != h.rows) || !stride_ok ||
      h.file_bytes != kHeaderBytes + (multi ? h.vectors * vector_bytes +
                                                  (h.rows + 1) * sizeof(uint64_t)
                                            : h.rows * stride)) {
    return lost("inconsistent header");
  }
  if (size != h.file_bytes) {
    return lost(absl::StrCat("size ", size, " bytes, header says ", h.file_bytes));
  }
  if (h.dim != expect.dim || h.rows != expect.rows || h.sequence != expect.sequence ||
      multi != expect.multi) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rerank table ", path, " is stale: dim ", h.dim, ", rows ", h.rows, ", sequence ",
        h.sequence, ", expected dim ", expect.dim, ", rows ", expect.rows, ", sequence ",
        expect.sequence));
  }
  // Everything after the header is checksummed, so a flipped bit anywhere
  // is caught here rather than returned as a wrong distance later.
  std::vector<char> buf(kWriteBuffer);
  uint32_t crc = static_cast<uint32_t>(crc32_z(0, Z_NULL, 0));
  for (uint64_t off = kHeaderBytes; off < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    if (!PreadAll(t->fd_, buf.data(), n, off)) return lost("read failed");
    crc = Crc(crc, buf.data(), n);
    off += n;
  }
  if (crc != h.data_crc) return lost("data checksum mismatch");
  if (multi) {
    t->offsets_.resize(h.rows + 1);
    if (!PreadAll(t->fd_, t->offsets_.data(), t->offsets_.size() * sizeof(uint64_t),
                  kHeaderBytes + h.vectors * vector_bytes)) {
      return lost("read failed");
    }
    if (t->offsets_[0] != 0 || t->offsets_[h.rows] != h.vectors ||
        !std::is_sorted(t->offsets_.begin(), t->offsets_.end())) {
      return lost("bad offsets");
    }
  }
  if (options.direct_io) {
    const int dfd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (dfd < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot open ", path, " with O_DIRECT (", std::strerror(errno),
          "): the file system does not support direct I/O"));
    }
    close(t->fd_);
    t->fd_ = dfd;
    t->direct_ = true;
  }
  if (options.map) {
    void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, t->fd_, 0);
    if (m == MAP_FAILED) return Errno("cannot map", path);
    t->map_ = m;
    t->map_bytes_ = size;
  }
  t->dim_ = h.dim;
  t->rows_ = h.rows;
  t->sequence_ = h.sequence;
  t->multi_ = multi;
  t->data_offset_ = h.data_offset;
  t->stride_ = stride;
  t->file_bytes_ = size;
  return t;
}

// One record's read: its byte range, widened to whole blocks for O_DIRECT
// (which also needs an aligned buffer).
struct RerankRead::Request {
  uint64_t offset = 0;  // file offset read from
  uint64_t bytes = 0;   // bytes read
  uint64_t skip = 0;    // bytes before the record in the buffer
  uint64_t need = 0;    // bytes that must arrive: skip + the record (the
                        // last block may run past the end of the file)
  char* dest = nullptr;
};

namespace {

// Rings set up once and reused: io_uring_queue_init (a syscall and three
// mappings) cost more than the reads of a small batch. Every ring has the
// full depth; a batch uses what it needs.
class RingPool {
 public:
  static RingPool& Get() {
    static auto* pool = new RingPool();
    return *pool;
  }
  bool Take(io_uring* ring) {
    {
      MutexLock lock(&mu_);
      if (!free_.empty()) {
        *ring = free_.back();
        free_.pop_back();
        return true;
      }
    }
    return io_uring_queue_init(RerankTable::kMaxQueueDepth, ring, 0) == 0;
  }
  // REQUIRES: nothing in flight on `ring`.
  void Give(io_uring* ring) {
    {
      MutexLock lock(&mu_);
      if (free_.size() < kKeep) {
        free_.push_back(*ring);
        return;
      }
    }
    io_uring_queue_exit(ring);
  }

 private:
  static constexpr size_t kKeep = 64;
  Mutex mu_;
  std::vector<io_uring> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

RerankRead::RerankRead() = default;

RerankRead::~RerankRead() {
  // Reads still in flight write into our buffers: wait for them first.
  if (ring_ok_) {
    bool clean = true;
    while (inflight_ > 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring_, &cqe) == -EINTR) continue;
      if (cqe == nullptr) {
        clean = false;
        break;
      }
      io_uring_cqe_seen(&ring_, cqe);
      --inflight_;
    }
    if (clean) {
      RingPool::Get().Give(&ring_);
    } else {
      io_uring_queue_exit(&ring_);
    }
  }
}

absl::StatusOr<std::unique_ptr<RerankRead>> RerankTable::Submit(const std::vector<uint64_t>& rows,
                                                                uint64_t* reads) const {
  for (uint64_t r : rows) {
    if (r >= rows_) {
      return absl::InvalidArgumentError(
          absl::StrCat("rerank table: row ", r, " out of range (", rows_, " rows)"));
    }
  }
  std::unique_ptr<RerankRead> b(new RerankRead());
  b->fd_ = fd_;
  b->direct_ = direct_;
  b->floats_.resize(rows.size());
  b->reqs_.resize(rows.size());
  const uint64_t vector_bytes = uint64_t{dim_} * sizeof(float);
  uint64_t total = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t first = multi_ ? offsets_[rows[i]] : rows[i];
    const uint64_t n = count(rows[i]);
    const uint64_t start = data_offset_ + first * (multi_ ? vector_bytes : stride_);
    const uint64_t len = n * vector_bytes;
    b->floats_[i] = n * dim_;
    RerankRead::Request& q = b->reqs_[i];
    if (!direct_) {
      q.offset = start;
      q.bytes = q.need = len;
    } else {
      q.offset = start & ~(kBlock - 1);
      q.bytes = ((start + len + kBlock - 1) & ~(kBlock - 1)) - q.offset;
      q.skip = start - q.offset;
      q.need = q.skip + len;
    }
    total += q.bytes;
  }
  if (total > 0) {
    // One buffer for the whole batch; with O_DIRECT each read lands on a
    // block boundary (every read's length is whole blocks). Records start
    // at a multiple of 4 bytes in the file, so each is float-aligned here.
    void* p = nullptr;
    if (posix_memalign(&p, kBlock, total) != 0) {
      return absl::ResourceExhaustedError("rerank table: cannot allocate a read buffer");
    }
    b->buffer_.reset(static_cast<char*>(p));
    uint64_t at = 0;
    for (RerankRead::Request& q : b->reqs_) {
      q.dest = b->buffer_.get() + at;
      at += q.bytes;
    }
  }
  if (reads != nullptr) *reads += rows.size();
  // A ring of its own (from the pool), so that several batches can be in
  // flight on one thread; where io_uring is refused (Docker's default
  // seccomp profile), Wait reads with pread.
  const unsigned depth =
      static_cast<unsigned>(std::clamp<size_t>(rows.size(), 1, RerankTable::kMaxQueueDepth));
  b->ring_ok_ = !rows.empty() && RingPool::Get().Take(&b->ring_);
  b->depth_ = depth;
  if (b->ring_ok_) {
    absl::Status s = b->Fill();
    if (!s.ok()) return s;
  }
  return b;
}

absl::Status RerankRead::Fill() {
  unsigned added = 0;
  while (next_ < reqs_.size() && inflight_ < depth_) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) break;
    Request& q = reqs_[next_];
    io_uring_prep_read(sqe, fd_, q.dest, static_cast<unsigned>(q.bytes), q.offset);
    io_uring_sqe_set_data64(sqe, next_);
    ++next_;
    ++inflight_;
    ++added;
  }
  if (added == 0) return absl::OkStatus();
  const int rc = io_uring_submit(&ring_);
  if (rc < 0) {
    return absl::InternalError(absl::StrCat("rerank table: io_uring_submit: ", std::strerror(-rc)));
  }
  return absl::OkStatus();
}

const float* RerankRead::record(size_t i) const {
  return reinterpret_cast<const float*>(reqs_[i].dest + reqs_[i].skip);
}

absl::Status RerankRead::Wait(std::vector<std::vector<float>>* out) {
  if (absl::Status s = Wait(); !s.ok()) return s;
  out->resize(reqs_.size());
  for (size_t i = 0; i < reqs_.size(); ++i) (*out)[i].assign(record(i), record(i) + floats_[i]);
  return absl::OkStatus();
}

absl::Status RerankRead::Wait() {
  if (waited_) return absl::FailedPreconditionError("rerank table: Wait called twice");
  waited_ = true;
  absl::Status failed;
  if (!ring_ok_) {
    for (Request& q : reqs_) {
      bool ok;
      if (direct_) {
        // Whole aligned blocks in one call; the file may end inside the
        // last one.
        ssize_t got;
        do {
          got = pread(fd_, q.dest, q.bytes, static_cast<off_t>(q.offset));
        } while (got < 0 && errno == EINTR);
        ok = got >= static_cast<ssize_t>(q.need);
      } else {
        ok = PreadAll(fd_, q.dest, q.need, q.offset);
      }
      if (!ok) return absl::InternalError(absl::StrCat("rerank table: read failed: ", std::strerror(errno)));
    }
  }
  while (ring_ok_ && inflight_ > 0) {
    // Sleep once for many completions, not once per read: with everything
    // submitted, wait for all of it; otherwise for half of what is in
    // flight, then refill.
    const unsigned want = next_ >= reqs_.size() ? inflight_ : std::max(1u, inflight_ / 2);
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe_nr(&ring_, &cqe, want);
    if (rc == -EINTR) continue;
    if (rc < 0) return absl::InternalError(absl::StrCat("rerank table: io_uring_wait_cqe: ", std::strerror(-rc)));
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const auto i = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
      const int res = cqe->res;
      Request& q = reqs_[i];
      if (res < 0) {
        if (failed.ok()) failed = absl::InternalError(absl::StrCat("rerank table: read failed: ", std::strerror(-res)));
        continue;
      }
      // A short read of a regular file means its end: fine past the record
      // (O_DIRECT reads whole blocks), an error before it. Without O_DIRECT
      // the rest is read with pread; with it, an unaligned pread would fail.
      const auto got = static_cast<uint64_t>(res);
      if (got < q.need && failed.ok() &&
          (direct_ || !PreadAll(fd_, q.dest + got, q.need - got, q.offset + got))) {
        failed = absl::InternalError("rerank table: short read");
      }
    }
    io_uring_cq_advance(&ring_, seen);
    inflight_ -= seen;
    absl::Status s = Fill();
    if (!s.ok() && failed.ok()) failed = s;
  }
  return failed;
}

absl::Status RerankTable::Read(const std::vector<uint64_t>& rows,
                               std::vector<std::vector<float>>* out, uint64_t* reads) const {
  absl::StatusOr<std::unique_ptr<RerankRead>> b = Submit(rows, reads);
  if (!b.ok()) return b.status();
  return (*b)->Wait(out);
}

}  // namespace quiver::storage
