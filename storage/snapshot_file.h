// Snapshot files: one self-checking file that packs a set of files (a
// RocksDB export and segment files) with a manifest, for backup and restore
// (query/snapshot.h decides what goes in; this only packs and unpacks).
//
// Layout (integers little-endian):
//   "QVSNAP01"                                    8-byte magic
//   per file: "QVFL" u32 path_len  u64 size  u32 header_crc (CRC-32 of the
//             preceding 16 bytes and the path)  path  data[size]
//             u32 data_crc (CRC-32 of data)
//   "QVMF" u64 manifest_len u32 manifest_crc  manifest (a serialized
//             SnapshotManifest listing every file with its size and CRC-32)
//   u64 offset of "QVMF"  "QVSNAPND"             16-byte footer
// A reader checks each file as it comes (so a cut or altered snapshot is
// refused naming the first file that fails) and then that the manifest
// lists exactly the files read. The manifest sits at the end so a writer
// needs one pass; the footer lets List read it without reading the rest.
//
// Writes go through the FileSystem given (storage/file_system.h); reads
// go to the disk directly. Errors: the FileSystem's statuses for writes
// (RESOURCE_EXHAUSTED "disk full: ..." when the disk is full); DATA_LOSS
// for a snapshot that is cut short, altered or not a snapshot, with a
// message naming the packed file that failed ("file db/000012.sst failed
// its checksum"); NOT_FOUND for a missing snapshot.
// Thread-safety: a SnapshotWriter is used by one thread; the functions are
// safe to call concurrently on different files.
#ifndef QUIVER_STORAGE_SNAPSHOT_FILE_H_
#define QUIVER_STORAGE_SNAPSHOT_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/file_system.h"
#include "storage/snapshot.pb.h"

namespace quiver::storage {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

class SnapshotWriter {
 public:
  // Creates (truncates) `path`.
  static absl::StatusOr<std::unique_ptr<SnapshotWriter>> Create(FileSystem& fs,
                                                                const std::string& path);
  // Appends the file at `src` under the name `rel`, recording it in the
  // manifest Finish writes.
  absl::Status AddFile(const std::string& rel, const std::string& src);
  // Writes the manifest (`m` without files; the files added are appended
  // to it) and the footer, syncs and closes the file.
  absl::Status Finish(SnapshotManifest m);

 private:
  SnapshotWriter(std::unique_ptr<WritableFile> f) : file_(std::move(f)) {}
  std::unique_ptr<WritableFile> file_;
  uint64_t offset_ = 0;
  SnapshotManifest files_;
};

// The manifest of the snapshot at `path`, from its footer (the files are
// not checked). DATA_LOSS if the footer or manifest is missing or damaged.
absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& path);

// Checks every file of the snapshot at `path` and writes them under
// `dest_dir` (created; "db/x" goes to dest_dir/db/x), synced, through `fs`.
// On any error what was written under dest_dir stays: the caller removes
// the directory. Returns the manifest.
absl::StatusOr<SnapshotManifest> ExtractSnapshot(FileSystem& fs, const std::string& path,
                                                 const std::string& dest_dir);

// Checks every file of the snapshot at `path` without writing anything.
absl::StatusOr<SnapshotManifest> VerifySnapshot(const std::string& path);

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_SNAPSHOT_FILE_H_
