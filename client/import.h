// Import: reading points from files and writing them to a collection.
//
// Formats (each may also be gzip-compressed; zlib reads plain files as they
// are, so compression is detected from the content, not the name):
// - fvecs: per row, a little-endian int32 dimension then that many float32.
// - npy:   a 2-D C-order float32 or uint8 array (format versions 1-3).
// - IDX:   the MNIST format: big-endian header, magic 0x000008nn/0x00000Dnn
//          (ubyte or float32 items); a 3-D file (n, rows, cols) gives n
//          vectors of rows*cols components. IDX1 files hold labels.
// - jsonl: one JSON object per line, {"id": ..., "vectors": {...},
//          "attributes": {...}}, converted by the collection's schema.
//
// Every error names the file and, where there is one, the row or line; a
// damaged file (truncated, wrong magic, implausible header) gives an error,
// never a crash or an out-of-bounds read. Errors found before the first
// write (missing file, bad header, dimension not the field's, truncation of
// an uncompressed file) leave the collection untouched.
//
// Not thread-safe: one reader or import per thread.
#ifndef QUIVER_CLIENT_IMPORT_H_
#define QUIVER_CLIENT_IMPORT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

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

  std::string path_;
  FileFormat format_;
  uint32_t dim_ = 0;
  int64_t rows_ = -1;
  int64_t row_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Reads integer labels from an IDX1 file (ubyte, sbyte, int16 or int32
// items, optionally gzip'd) or a 1-D (or n x 1) .npy array of any integer
// dtype. Errors as for VectorFileReader::Open.
absl::StatusOr<std::vector<int64_t>> ReadLabels(const std::string& path);

// Rows [begin, end) of a vector file, for search queries. OUT_OF_RANGE when
// the file has fewer than `end` rows.
absl::StatusOr<std::vector<std::vector<float>>> ReadVectorRows(const std::string& path,
                                                               FileFormat format, int64_t begin,
                                                               int64_t end);

struct ImportOptions {
  std::string collection;
  std::string path;
  // Unset: guessed from the file name.
  std::optional<FileFormat> format;
  // Vector field that fvecs/npy/IDX rows (and jsonl's "vector") go to.
  // Empty: the collection's only vector field.
  std::string field;
  // fvecs/npy/IDX rows get the id id_prefix + (start_id + row index).
  std::string id_prefix;
  int64_t start_id = 0;
  // Points per UpsertPoints request. Default: 1000. A request is also cut
  // when it reaches 32 MiB, so wide vectors stay below the server's default
  // 64 MiB message limit.
  int batch = 1000;
  // fvecs/npy/IDX only: labels (see ReadLabels), one per row, stored as the
  // attribute `label_attr` (converted to its type in the schema).
  std::string labels_path;
  std::string label_attr = "label";
  // Multi-vector fields (fvecs/npy/IDX): the file holds every point's
  // vectors back to back, and this file (as for labels) the row where each
  // point's start, n + 1 entries from 0 to the file's rows.
  std::string offsets_path;
  // Import at most this many rows; -1 for all.
  int64_t limit = -1;
  // Progress on stderr: a bar on a terminal, a line per ~10% otherwise.
  bool show_progress = true;
};

struct ImportResult {
  uint64_t points = 0;
  double seconds = 0;
};

// The vector field named `field`, or with `field` empty the schema's only
// vector field. INVALID_ARGUMENT naming the fields if there is no such field
// or, `field` empty, not exactly one.
absl::StatusOr<const v1::VectorField*> ResolveField(const std::string& collection,
                                                    const v1::CollectionSchema& schema,
                                                    const std::string& field);
// "a, b": the schema's vector field names.
std::string FieldNames(const v1::CollectionSchema& schema);

// Reads the collection's schema, then the file, upserting points in
// batches. Local problems come back with the file and row or line in the
// message; a server error keeps the server's code, with the rows of the
// failed batch and the number of points already imported appended.
absl::StatusOr<ImportResult> Import(client::Client& client, const ImportOptions& options);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_H_
