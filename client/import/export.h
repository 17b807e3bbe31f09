// Export: the loop behind `quiverctl export`: pages through a collection
// with ScrollPoints and writes its points in a format `quiverctl import`
// reads back into an identical collection (same ids, vectors bit for bit,
// attributes with their types):
//   jsonl  one line per point, {"id", "vectors": {field: [...]},
//          "attributes": {...}}, any schema;
//   npy    the vectors of the collection's only vector field as float32
//          (rows x dim; a multi-vector field: every vector, and the
//          offsets of each point's first row in <stem>.offsets.npy), and
//          each row's id and attributes in <stem>.meta.jsonl (import's
//          --meta).
//
// Errors name the file; a server error keeps the server's code, with the
// points written so far appended. Not thread-safe: one export per thread.
#ifndef QUIVER_CLIENT_IMPORT_EXPORT_H_
#define QUIVER_CLIENT_IMPORT_EXPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace quiver::ctl {

enum class ExportFormat { kJsonl, kNpy };

// "jsonl" or "npy"; INVALID_ARGUMENT otherwise.
absl::StatusOr<ExportFormat> ParseExportFormat(const std::string& name);

struct ExportOptions {
  std::string collection;
  // Output file; "-" writes jsonl to stdout (npy needs a file).
  std::string path;
  ExportFormat format = ExportFormat::kJsonl;
  std::string filter;  // empty: every point
  // Points per ScrollPoints page (0: the server's default).
  uint32_t page_size = 1000;
  // Progress on stderr: a bar on a terminal, a line per ~10% otherwise.
  bool show_progress = true;
};

struct ExportResult {
  uint64_t points = 0;
  double seconds = 0;
  // npy: the files written besides `path` ("" if none).
  std::string meta_path;
  std::string offsets_path;
};

// The files an npy export writes beside `path`: <stem>.meta.jsonl and
// <stem>.offsets.npy, stem being `path` without ".npy".
std::string NpyMetaPath(const std::string& path);
std::string NpyOffsetsPath(const std::string& path);

absl::StatusOr<ExportResult> Export(client::Client& client, const ExportOptions& options);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_EXPORT_H_
