// Segment files: persisted, derived data of sealed segments — one directory
// per segment holding its ANN index files and a MANIFEST that lists the
// segment's rows (internal ids) and each file's size and CRC-32.
//
// Layout: <root>/c<collection id>/s<segment id>/{MANIFEST, f<field>.index}
//
// MANIFEST is framed so that damage to it is detected, not parsed into a
// different but valid manifest (a flipped internal id still parses, and
// would attach one point's row, and its rerank-table record, to another):
//   [0, 4)    magic "QVMF"
//   [4, 8)    format version (uint32 little-endian, kManifestVersion)
//   [8, 16)   payload length in bytes (uint64 little-endian)
//   [16, 20)  CRC-32 (zlib) of the payload (uint32 little-endian)
//   [20, ...) payload: a serialized SegmentManifest, exactly `length` bytes
// A manifest written before the frame existed (a bare SegmentManifest) is
// reported as damaged: the segment is derived data and is rebuilt.
//
// A segment directory is written under a temporary name and renamed into
// place after everything in it is fsynced, so a crash leaves either the old
// state or the whole new directory. Everything here is derived from RocksDB:
// a missing, truncated or corrupt directory is reported (VerifyFile) and the
// caller rebuilds; deleting the whole root never loses data.
//
// Every file and directory is written, renamed and removed through the
// FileSystem given at construction (storage/file_system.h); reads of whole
// files for checksums go to the disk directly.
//
// Thread-safety: functions are safe to call concurrently for different
// segments; the caller serializes work on one segment.
// Errors: a missing file is NOT_FOUND; a manifest or index file that is
// unframed, of another version, fails its CRC or size, names another
// segment or names an index file that is not a plain file name (empty, ".",
// "..", or holding '/' or NUL: it would leave the segment's directory) is
// DATA_LOSS; write, fsync and rename failures are the
// FileSystem's statuses, passed on.
#ifndef QUIVER_STORAGE_SEGMENT_FILES_H_
#define QUIVER_STORAGE_SEGMENT_FILES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/file_system.h"
#include "storage/records.pb.h"

namespace quiver::storage {

inline constexpr uint32_t kManifestVersion = 1;

// The framed bytes of `m` (see the layout above).
std::string EncodeManifest(const SegmentManifest& m);
// Parses framed manifest bytes. DATA_LOSS, saying why, if the magic,
// version, length or checksum is wrong, the payload does not parse, or an
// index file name is not SafeFileName.
absl::StatusOr<SegmentManifest> DecodeManifest(const std::string& bytes);
// True for a name that stays inside the directory it is joined to: not
// empty, ".", "..", longer than 255 bytes, and without '/' or NUL.
bool SafeFileName(const std::string& name);

class SegmentFiles {
 public:
  // `fs`: what the files are written through; the POSIX one by default.
  explicit SegmentFiles(std::string root, std::shared_ptr<FileSystem> fs = FileSystem::Default())
      : root_(std::move(root)), fs_(std::move(fs)) {}

  // The file system segment files (and the indexes and tables a caller
  // writes into a segment) go through.
  FileSystem& fs() const { return *fs_; }

  // Directory of one segment and of one collection.
  std::string SegmentDir(uint32_t cid, uint64_t segment_id) const;
  std::string CollectionDir(uint32_t cid) const;

  // A fresh temporary directory for writing segment `segment_id`.
  absl::StatusOr<std::string> BeginWrite(uint32_t cid, uint64_t segment_id) const;
  // Fills size and crc32 of `entry` from the file it names in `tmp_dir`.
  absl::Status Checksum(const std::string& tmp_dir, SegmentManifest::IndexFile* entry) const;
  // Writes MANIFEST into `tmp_dir`, fsyncs it and the directory and renames
  // the directory into place (replacing an older one of the same segment),
  // then fsyncs the collection directory. The index files in `tmp_dir` must
  // be synced already (the caller wrote them through fs()).
  absl::Status Commit(const std::string& tmp_dir, const SegmentManifest& manifest) const;

  // Manifests of every committed segment of collection `cid`, in segment-id
  // order; directories whose MANIFEST is missing, damaged or names another
  // segment are reported through `bad` (segment id, path and why) and
  // skipped. Leftover temporary directories are removed.
  std::vector<SegmentManifest> List(
      uint32_t cid,
      const std::function<void(uint64_t, const std::string&, const std::string&)>& bad) const;
  // OK if every segment directory under the root has a MANIFEST that
  // ReadManifest accepts; else DATA_LOSS naming the first one that fails
  // ("segments/c1/s3/MANIFEST: ...") and why. Removes nothing (unlike
  // List): for checking an unpacked snapshot before it is used.
  absl::Status CheckManifests() const;
  // The verified MANIFEST of one segment. NOT_FOUND if the segment has no
  // directory or no MANIFEST; DATA_LOSS if it is damaged or names another
  // segment.
  absl::StatusOr<SegmentManifest> ReadManifest(uint32_t cid, uint64_t segment_id) const;
  // OK if the file of `entry` in the segment's directory has the recorded
  // size and CRC-32; NOT_FOUND if it is missing, DATA_LOSS otherwise.
  absl::Status VerifyFile(uint32_t cid, uint64_t segment_id,
                          const SegmentManifest::IndexFile& entry) const;

  // Rerank table of a segment's field (storage/rerank_table.h). Tables live
  // beside the segment directories, in <collection dir>/rerank/, because a
  // segment directory is replaced whole whenever its indexes are rewritten
  // while a table, written once, stays: the MANIFEST names it (with the
  // sequence it was written at) and RemoveSegment removes it.
  std::string RerankTablePath(uint32_t cid, uint64_t segment_id, uint32_t field) const;
  // Removes rerank tables (and unfinished temporary ones) of collection
  // `cid` whose segment is not in `keep`.
  void RemoveOrphanTables(uint32_t cid, const std::vector<uint64_t>& keep) const;

  // Removes the segment's directory and its rerank tables.
  absl::Status RemoveSegment(uint32_t cid, uint64_t segment_id) const;
  absl::Status RemoveCollection(uint32_t cid) const;

 private:
  std::string root_;
  std::shared_ptr<FileSystem> fs_;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_SEGMENT_FILES_H_
