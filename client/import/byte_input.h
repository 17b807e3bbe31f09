// Byte input for the import readers: GzInput reads a file through zlib (so
// one reader serves plain and gzip'd files), plus the little helpers every
// header parser uses (endian loads, exact header reads, size checks).
//
// A GzInput owns its zlib handle. Not thread-safe. Errors are statuses
// whose message names the file: DATA_LOSS for damaged or cut-off data,
// INVALID_ARGUMENT for a header too short or implausible, errno's code when
// the file cannot be opened.
#ifndef QUIVER_CLIENT_IMPORT_BYTE_INPUT_H_
#define QUIVER_CLIENT_IMPORT_BYTE_INPUT_H_

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quiver::ctl {

// A file read through zlib. zlib passes plain files through unchanged, so one
// reader serves both "x.fvecs" and "x.fvecs.gz" and the content decides.
class GzInput {
 public:
  static absl::StatusOr<std::unique_ptr<GzInput>> Open(const std::string& path);
  ~GzInput() { gzclose(file_); }
  GzInput(const GzInput&) = delete;
  GzInput& operator=(const GzInput&) = delete;

  // Reads up to `n` bytes; fewer only at the end of the data. DATA_LOSS when
  // the compressed stream is damaged or cut short; its message names the
  // file and `where` ("row 12").
  absl::StatusOr<size_t> Read(void* buf, size_t n, absl::string_view where);

  // Reads the next line (without its '\n'). false at the end of the data.
  absl::StatusOr<bool> ReadLine(std::string* line, absl::string_view where);

  // True when the file is not compressed (valid after the first read).
  bool direct() const { return gzdirect(file_) == 1; }
  // Size of the file on disk; 0 for pipes and other non-regular files.
  uint64_t file_size() const { return size_; }
  // Share of the file on disk consumed, for progress reports.
  double progress() const;
  const std::string& path() const { return path_; }

 private:
  GzInput(std::string path, gzFile f) : path_(std::move(path)), file_(f) {}

  absl::Status ZlibError(absl::string_view where);

  std::string path_;
  gzFile file_;
  uint64_t size_ = 0;
  std::vector<char> buf_;  // ReadLine's look-ahead
  size_t pos_ = 0;
};

uint32_t LoadBE32(const unsigned char* p);
uint32_t LoadLE32(const unsigned char* p);

// Reads exactly `n` header bytes; a shorter file is not of the format.
absl::Status ReadHeaderBytes(GzInput& in, void* buf, size_t n, const char* what);

// Size of `rows` rows of `row_bytes`, or an error when a header claims so
// much that it cannot be real (and the product would overflow).
absl::StatusOr<uint64_t> DataBytes(const std::string& path, uint64_t rows, uint64_t row_bytes);

// For an uncompressed file, compares its size with what the header promises
// so truncation shows before anything is imported.
absl::Status CheckSize(GzInput& in, uint64_t header_bytes, uint64_t rows, uint64_t row_bytes,
                       const char* unit);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_BYTE_INPUT_H_
