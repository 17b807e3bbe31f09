#include "storage/wal_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace quiver::storage {
namespace {

// db/log_format.h of RocksDB 7.8.
constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;  // crc (4), length (2), type (1)
enum RecordType : unsigned {
  kZeroType = 0,
  kFullType = 1,
  kFirstType = 2,
  kMiddleType = 3,
  kLastType = 4,
  kRecyclableFullType = 5,
  kRecyclableLastType = 8,
  kSetCompressionType = 9,
};
// log::Reader's internal results beyond the record types.
enum : unsigned {
  kEof = 100,
  kBadRecord,
  kBadHeader,
  kBadRecordLen,
  kBadRecordChecksum,
  kUnsupported,
};
// A write batch starts with its sequence number (8) and update count (4).
constexpr size_t kBatchHeader = 12;

#if !defined(__SSE4_2__)
std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
#endif

uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

uint32_t Fixed32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian, as RocksDB writes on this machine
  return v;
}

uint64_t Fixed64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// True if a physical record with a valid checksum starts in [begin, end).
bool IntactRecordIn(const char* begin, const char* end);

// log::Reader (ReadRecord, ReadPhysicalRecord, ReadMore) for
// kTolerateCorruptedTailRecords, reduced to what a check needs: instead of
// reporting corruption and going on, it stops at the first report.
class Scanner {
 public:
  Scanner(int fd, uint64_t size) : fd_(fd), size_(size) {}

  // The next logical record into *record (and its offset); false at the
  // end of the log or at damage (then damage() is set) or a read error.
  bool ReadRecord(std::string* record, uint64_t* record_offset) {
    record->clear();
    bool in_fragment = false;
    uint64_t fragment_start = 0;
    for (;;) {
      const char* data = nullptr;
      size_t length = 0;
      uint64_t physical_offset = 0;
      const unsigned type = ReadPhysicalRecord(&data, &length, &physical_offset);
      switch (type) {
        case kFullType:
          if (in_fragment && !record->empty()) {
            return Damage(fragment_start, "partial record without end(1)");
          }
          record->assign(data, length);
          *record_offset = physical_offset;
          return true;
        case kFirstType:
          if (in_fragment && !record->empty()) {
            return Damage(fragment_start, "partial record without end(2)");
          }
          record->assign(data, length);
          in_fragment = true;
          fragment_start = physical_offset;
          break;
        case kMiddleType:
          if (!in_fragment) return Damage(physical_offset, "missing start of fragmented record(1)");
          record->append(data, length);
          break;
        case kLastType:
          if (!in_fragment) return Damage(physical_offset, "missing start of fragmented record(2)");
          record->append(data, length);
          *record_offset = fragment_start;
          return true;
        case kSetCompressionType:
          // Written first in a compressed WAL; the records after it would
          // need decompressing.
          error_ = absl::UnimplementedError("compressed WAL records");
          return false;
        case kBadHeader:  // a header cut short at the end: a torn tail
        case kEof:        // (with a fragment pending, its record is dropped)
          return false;
        case kBadRecord:  // a zero-filled region; RocksDB skips it
          if (in_fragment) return Damage(fragment_start, "error in middle of record");
          break;
        case kBadRecordLen:
          // A record cut short by the end of the file is a torn tail, unless
          // intact records follow it (RocksDB tolerates that too).
          if (eof_ && !intact_after_) return false;
          return Damage(in_fragment ? fragment_start : physical_offset, "bad record length");
        case kBadRecordChecksum:
          return Damage(in_fragment ? fragment_start : physical_offset, "checksum mismatch");
        case kUnsupported:
          error_ = absl::UnimplementedError("recyclable WAL records");
          return false;
        default:
          return Damage(in_fragment ? fragment_start : physical_offset,
                        absl::StrCat("unknown record type ", type));
      }
    }
  }

  const std::optional<WalDamage>& damage() const { return damage_; }
  const absl::Status& error() const { return error_; }

  // Called for a complete logical record that RocksDB would refuse.
  bool Damage(uint64_t offset, std::string reason) {
    WalDamage d;
    d.file_size = size_;
    d.offset = offset;
    d.reason = std::move(reason);
    damage_ = std::move(d);
    return false;
  }

 private:
  size_t buffer_size() const { return buffer_end_ - buffer_pos_; }

  // *offset: where the record's header is in the file.
  unsigned ReadPhysicalRecord(const char** data, size_t* length, uint64_t* offset) {
    for (;;) {
      if (buffer_size() < kHeaderSize) {
        unsigned r = kEof;
        if (!ReadMore(&r)) return r;
        continue;
      }
      *offset = end_of_buffer_offset_ - buffer_size();
      const char* header = block_.data() + buffer_pos_;
      const uint32_t a = static_cast<unsigned char>(header[4]);
      const uint32_t b = static_cast<unsigned char>(header[5]);
      const unsigned type = static_cast<unsigned char>(header[6]);
      const uint32_t len = a | (b << 8);
      if (type >= kRecyclableFullType && type <= kRecyclableLastType) return kUnsupported;
      if (kHeaderSize + len > buffer_size()) {
        if (eof_) {
          intact_after_ = IntactRecordIn(header + kHeaderSize, block_.data() + buffer_end_);
        }
        buffer_pos_ = buffer_end_;
        return kBadRecordLen;
      }
      if (type == kZeroType && len == 0) {
        buffer_pos_ = buffer_end_;
        return kBadRecord;
      }
      // The CRC covers the type byte and the payload.
      const uint32_t expected = Unmask(Fixed32(header));
      const uint32_t actual = Crc32c(absl::string_view(header + 6, len + kHeaderSize - 6));
      if (actual != expected) {
        buffer_pos_ = buffer_end_;
        return kBadRecordChecksum;
      }
      buffer_pos_ += kHeaderSize + len;
      *data = header + kHeaderSize;
      *length = len;
      return type;
    }
  }

  bool ReadMore(unsigned* result) {
    if (!eof_ && error_.ok()) {
      // The bytes left in the block are its trailer.
      block_.resize(kBlockSize);
      size_t got = 0;
      while (got < kBlockSize) {
        const ssize_t n = ::read(fd_, block_.data() + got, kBlockSize - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          error_ = absl::InternalError(absl::StrCat("read error: ", std::strerror(errno)));
          buffer_pos_ = buffer_end_ = 0;
          *result = kEof;
          return false;
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      buffer_pos_ = 0;
      buffer_end_ = got;
      end_of_buffer_offset_ += got;
      if (got < kBlockSize) eof_ = true;
      return true;
    }
    // Bytes left here are a header cut short at the end of the file.
    *result = buffer_size() > 0 ? kBadHeader : kEof;
    buffer_pos_ = buffer_end_;
    return false;
  }

  const int fd_;
  const uint64_t size_;
  std::string block_;
  size_t buffer_pos_ = 0, buffer_end_ = 0;
  uint64_t end_of_buffer_offset_ = 0;
  bool eof_ = false;
  absl::Status error_;
  std::optional<WalDamage> damage_;
  bool intact_after_ = false;
};

bool IntactRecordIn(const char* begin, const char* end) {
  for (const char* p = begin; end - p >= static_cast<std::ptrdiff_t>(kHeaderSize); ++p) {
    const unsigned type = static_cast<unsigned char>(p[6]);
    if (type < kFullType || type > kLastType) continue;
    const size_t len = static_cast<unsigned char>(p[4]) | (static_cast<unsigned char>(p[5]) << 8);
    if (static_cast<size_t>(end - p) < kHeaderSize + len) continue;
    if (Unmask(Fixed32(p)) == Crc32c(absl::string_view(p + 6, len + 1))) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::optional<WalDamage>> CheckWalTail(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
  // RocksDB reads a full last block before it knows it is the last, and
  // then reports a bad length; only a partial one has the blind spot.
  if (size % kBlockSize == 0) return std::optional<WalDamage>();
  const uint64_t start = size - size % kBlockSize;
  std::string block(size - start, '\0');
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  const ssize_t got = ::pread(fd, block.data(), block.size(), static_cast<off_t>(start));
  ::close(fd);
  if (got != static_cast<ssize_t>(block.size())) {
    return absl::InternalError(absl::StrCat("cannot read ", path));
  }
  size_t pos = 0;
  while (block.size() - pos >= kHeaderSize) {
    const char* h = block.data() + pos;
    const unsigned type = static_cast<unsigned char>(h[6]);
    const size_t len = static_cast<unsigned char>(h[4]) | (static_cast<unsigned char>(h[5]) << 8);
    if (type >= kRecyclableFullType && type <= kRecyclableLastType) break;
    if (pos + kHeaderSize + len > block.size()) {
      if (!IntactRecordIn(h + kHeaderSize, block.data() + block.size())) break;
      WalDamage d;
      d.file = path;
      d.file_size = size;
      d.offset = start + pos;
      d.reason = "bad record length";
      return std::optional<WalDamage>(std::move(d));
    }
    // Zeros, or a checksum RocksDB checks itself.
    if (type == kZeroType && len == 0) break;
    if (Unmask(Fixed32(h)) != Crc32c(absl::string_view(h + 6, len + 1))) break;
    pos += kHeaderSize + len;
  }
  return std::optional<WalDamage>();
}

uint32_t Crc32c(absl::string_view data) {
#if defined(__SSE4_2__)
  // The crc32 instruction computes CRC-32C.
  uint64_t c = 0xffffffffu;
  const char* p = data.data();
  size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, Fixed64(p));
  for (; n > 0; ++p, --n) c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*p));
  return static_cast<uint32_t>(c) ^ 0xffffffffu;
#else
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xffffffffu;
  for (unsigned char ch : data) c = table[(c ^ ch) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
#endif
}

std::vector<std::string> ListWalFiles(const std::string& db_dir) {
  std::vector<std::pair<uint64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(db_dir, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t number = 0;
    if (!absl::EndsWith(name, ".log") ||
        !absl::SimpleAtoi(name.substr(0, name.size() - 4), &number)) {
      continue;
    }
    found.emplace_back(number, entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [number, path] : found) out.push_back(std::move(path));
  return out;
}

absl::StatusOr<std::optional<WalDamage>> CheckWalFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  ::lseek(fd, 0, SEEK_SET);
  Scanner scanner(fd, size < 0 ? 0 : static_cast<uint64_t>(size));
  std::string record;
  uint64_t record_offset = 0;
  uint64_t batches = 0, last_sequence = 0;
  while (scanner.ReadRecord(&record, &record_offset)) {
    if (record.size() < kBatchHeader) {
      // DBImpl::RecoverLogFiles: "log record too small".
      scanner.Damage(record_offset, "log record too small");
      break;
    }
    const uint64_t seq = Fixed64(record.data());
    const uint32_t count = Fixed32(record.data() + 8);
    ++batches;
    if (count > 0) last_sequence = seq + count - 1;
  }
  ::close(fd);
  if (!scanner.error().ok()) {
    return absl::Status(scanner.error().code(),
                        absl::StrCat(path, ": ", scanner.error().message()));
  }
  std::optional<WalDamage> damage = scanner.damage();
  if (damage.has_value()) {
    damage->file = path;
    damage->intact_batches = batches;
    damage->last_intact_sequence = last_sequence;
  }
  return damage;
}

}  // namespace quiver::storage
