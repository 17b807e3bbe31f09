#include "client/import/byte_input.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace quiver::ctl {

absl::StatusOr<std::unique_ptr<GzInput>> GzInput::Open(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": is a directory"));
  }
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno != 0 ? errno : ENOMEM;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  gzbuffer(f, 1 << 17);  // fewer read calls on large files
  auto in = std::unique_ptr<GzInput>(new GzInput(path, f));
  in->size_ = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  return in;
}

absl::StatusOr<size_t> GzInput::Read(void* buf, size_t n, absl::string_view where) {
  size_t got = 0;
  auto* p = static_cast<unsigned char*>(buf);
  while (got < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
    const int r = gzread(file_, p + got, chunk);
    if (r < 0) return ZlibError(where);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  if (got < n) {
    // A short read is either a clean end or a cut-off gzip stream; zlib
    // tells them apart only through gzerror.
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum != Z_OK && errnum != Z_STREAM_END) return ZlibError(where);
  }
  return got;
}

absl::StatusOr<bool> GzInput::ReadLine(std::string* line, absl::string_view where) {
  line->clear();
  while (true) {
    if (pos_ < buf_.size()) {
      const auto nl = std::find(buf_.begin() + static_cast<ptrdiff_t>(pos_), buf_.end(), '\n');
      line->append(buf_.begin() + static_cast<ptrdiff_t>(pos_), nl);
      if (nl != buf_.end()) {
        pos_ = static_cast<size_t>(nl - buf_.begin()) + 1;
        return true;
      }
      pos_ = buf_.size();
    }
    buf_.resize(1 << 16);
    QUIVER_ASSIGN_OR_RETURN(size_t n, Read(buf_.data(), buf_.size(), where));
    buf_.resize(n);
    pos_ = 0;
    if (n == 0) return !line->empty();
  }
}

double GzInput::progress() const {
  if (size_ == 0) return 0;
  const z_off_t off = gzoffset(file_);
  return off <= 0 ? 0.0 : std::min(1.0, static_cast<double>(off) / static_cast<double>(size_));
}

absl::Status GzInput::ZlibError(absl::string_view where) {
  int errnum = Z_OK;
  const char* msg = gzerror(file_, &errnum);
  absl::string_view text = msg != nullptr ? msg : "unknown error";
  if (errnum == Z_ERRNO) text = std::strerror(errno);
  // zlib puts the path in front of its message; we add our own with the
  // position, so drop zlib's.
  absl::ConsumePrefix(&text, path_);
  absl::ConsumePrefix(&text, ": ");
  const char* what = errnum == Z_BUF_ERROR ? "truncated gzip data" : "read error";
  return absl::DataLossError(absl::StrCat(path_, ": ", where, ": ", what, " (", text, ")"));
}

uint32_t LoadBE32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint32_t LoadLE32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

// Reads exactly `n` header bytes; a shorter file is not of the format.
absl::Status ReadHeaderBytes(GzInput& in, void* buf, size_t n, const char* what) {
  QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(buf, n, "header"));
  if (got < n) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": too short for ", what, " (", got, " bytes)"));
  }
  return absl::OkStatus();
}

// Size of `rows` rows of `row_bytes`, or an error when a header claims so
// much that it cannot be real (and the product would overflow).
absl::StatusOr<uint64_t> DataBytes(const std::string& path, uint64_t rows, uint64_t row_bytes) {
  if (row_bytes != 0 && rows > (uint64_t{1} << 60) / row_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": implausible header: ", rows, " rows of ", row_bytes, " bytes"));
  }
  return rows * row_bytes;
}

// For an uncompressed file, compares its size with what the header promises
// so truncation shows before anything is imported.
absl::Status CheckSize(GzInput& in, uint64_t header_bytes, uint64_t rows, uint64_t row_bytes,
                       const char* unit) {
  if (!in.direct() || in.file_size() == 0) return absl::OkStatus();
  QUIVER_ASSIGN_OR_RETURN(uint64_t need, DataBytes(in.path(), rows, row_bytes));
  const uint64_t have = in.file_size() > header_bytes ? in.file_size() - header_bytes : 0;
  if (have >= need) return absl::OkStatus();
  const uint64_t whole = row_bytes == 0 ? 0 : have / row_bytes;
  return absl::DataLossError(absl::StrCat(in.path(), ": truncated: the header promises ", rows, " ",
                                          unit, "s (", need, " bytes of data) but the file has ",
                                          have, "; ", unit, " ", whole, " is incomplete"));
}

}  // namespace quiver::ctl
