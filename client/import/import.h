// Import: reading points from files and writing them to a collection, the
// loop behind `quiverctl import`. The file formats are read by
// vector_file.h, labels.h and jsonl.h; batching and progress are batch.h.
//
// Every error names the file and, where there is one, the row or line.
// Errors found before the first write (missing file, bad header, dimension
// not the field's, truncation of an uncompressed file) leave the collection
// untouched.
//
// Not thread-safe: one import per thread.
#ifndef QUIVER_CLIENT_IMPORT_IMPORT_H_
#define QUIVER_CLIENT_IMPORT_IMPORT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/import/vector_file.h"

namespace quiver::ctl {

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
  // fvecs/npy/IDX only, instead of id_prefix and labels: each row's (for a
  // multi-vector field each point's) id and attributes, one JSON object
  // per line ({"id": ..., "attributes": {...}}), as `quiverctl export
  // --format npy` writes them.
  std::string meta_path;
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

#endif  // QUIVER_CLIENT_IMPORT_IMPORT_H_
