// Vector files for import and search queries: the formats quiverctl reads
// and a row-by-row reader of dense vectors.
//
// Formats (each may also be gzip-compressed; zlib reads plain files as they
// are, so compression is detected from the content, not the name):
// - fvecs: per row, a little-endian int32 dimension then that many float32.
// - npy:   a 2-D C-order float32 or uint8 array (format versions 1-3).
// - IDX:   the MNIST format: big-endian header, magic 0x000008nn/0x00000Dnn
//          (ubyte or float32 items); a 3-D file (n, rows, cols) gives n
//          vectors of rows*cols components. IDX1 files hold labels.
// - jsonl: one JSON object per line (see jsonl.h); not a vector file.
//
// Every error names the file and, where there is one, the row; a damaged
// file (truncated, wrong magic, implausible header) gives an error, never a
// crash or an out-of-bounds read.
//
// A reader owns its open file. Not thread-safe: one reader per thread.
#ifndef QUIVER_CLIENT_IMPORT_VECTOR_FILE_H_
#define QUIVER_CLIENT_IMPORT_VECTOR_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver::ctl {

enum class FileFormat { kFvecs, kNpy, kIdx, kJsonl };

// "fvecs", "npy", "idx", "jsonl".
const char* FileFormatName(FileFormat f);
// Parses a --format value (case-insensitive; "ndjson" means jsonl).
// INVALID_ARGUMENT for anything else.
absl::StatusOr<FileFormat> ParseFileFormat(const std::string& name);
// Guesses from the file name, ignoring a trailing ".gz": ".fvecs", ".npy",
// ".jsonl"/".ndjson", and IDX names (".idx", ".idx1".."idx4", or MNIST's
// "...-idx3-ubyte"). INVALID_ARGUMENT when the name says nothing.
absl::StatusOr<FileFormat> FileFormatFromName(const std::string& path);

// Reads dense vectors row by row from an fvecs, npy or IDX file.
class VectorFileReader {
 public:
  // Opens `path` and reads its header. NOT_FOUND / PERMISSION_DENIED when the
  // file cannot be opened; INVALID_ARGUMENT (naming the file) for a header
  // that is not the format's or an unsupported element type; DATA_LOSS when
  // an uncompressed file is shorter than its header promises.
  static absl::StatusOr<std::unique_ptr<VectorFileReader>> Open(const std::string& path,
                                                                FileFormat format);
  ~VectorFileReader();
  VectorFileReader(const VectorFileReader&) = delete;
  VectorFileReader& operator=(const VectorFileReader&) = delete;

  const std::string& path() const { return path_; }
  uint32_t dim() const { return dim_; }
  // Number of rows, or -1 when unknown before reading (gzip'd fvecs).
  int64_t rows() const { return rows_; }
  // Zero-based index of the row the next Next() returns.
  int64_t row() const { return row_; }

  // Reads the next row into *out (resized to dim()). Returns false at the
  // end of the data. DATA_LOSS for a truncated row; INVALID_ARGUMENT for an
  // fvecs row whose dimension differs from the first row's. After an error
  // the reader is unusable.
  absl::StatusOr<bool> Next(std::vector<float>* out);
  // Skips `n` rows; OUT_OF_RANGE if the file has fewer.
  absl::Status Skip(int64_t n);
  // Share of the file consumed so far, 0..1 (compressed bytes for .gz).
  double progress() const;

 private:
  struct Impl;
  VectorFileReader(std::string path, FileFormat format);
  absl::Status ReadHeader();
  // One format's header each; they set dim_, rows_ (when known) and the
  // element type.
  absl::Status ReadFvecsHeader();
  absl::Status ReadNpyVectorsHeader();
  absl::Status ReadIdxVectorsHeader();

  std::string path_;
  FileFormat format_;
  uint32_t dim_ = 0;
  int64_t rows_ = -1;
  int64_t row_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Rows [begin, end) of a vector file, for search queries. OUT_OF_RANGE when
// the file has fewer than `end` rows.
absl::StatusOr<std::vector<std::vector<float>>> ReadVectorRows(const std::string& path,
                                                               FileFormat format, int64_t begin,
                                                               int64_t end);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_VECTOR_FILE_H_
