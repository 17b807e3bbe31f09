// FileSystem: the one door through which Quiver writes files -- segment
// files and their MANIFESTs, index files, rerank tables, RocksDB's info log
// -- and the rocksdb::FileSystem RocksDB itself writes through. Production
// uses FileSystem::Default() (POSIX); tests substitute an implementation
// that records what was written but not synced and can drop it ("power
// loss"), or fail chosen operations with EIO or ENOSPC
// (tests/common/fault_file_system.h).
//
// Durability follows POSIX: bytes appended to a file are durable once
// WritableFile::Sync returns OK; a name created, renamed or deleted in a
// directory is durable once SyncDir of that directory returns OK.
// WriteFileAtomic does the whole dance for a small file.
//
// Errors: absl::Status carrying the operation, the path and errno's text.
// ENOSPC and EDQUOT are RESOURCE_EXHAUSTED with a message starting
// "disk full: " (what Store reports for RocksDB's out-of-space errors),
// ENOENT is NOT_FOUND, anything else INTERNAL.
//
// Ownership: the engine holds the FileSystem as a shared_ptr (StoreOptions)
// and hands references down; a WritableFile belongs to its caller.
// Thread-safety: FileSystem methods are safe to call concurrently; one
// WritableFile is used by one thread at a time.
#ifndef QUIVER_STORAGE_FILE_SYSTEM_H_
#define QUIVER_STORAGE_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace quiver::storage {

// The status of a failed `what` (say "write") on `path` with errno `err`.
absl::Status IoError(absl::string_view what, const std::string& path, int err);

class WritableFile {
 public:
  // Closes the file if Close was not called, ignoring errors: a caller
  // that cares about the data calls Sync and Close.
  virtual ~WritableFile() = default;
  // Writes `data` at the end of the file.
  virtual absl::Status Append(absl::string_view data) = 0;
  // Writes `data` at `offset` (a header filled in last, say).
  virtual absl::Status WriteAt(uint64_t offset, absl::string_view data) = 0;
  // Makes everything written so far durable (fsync).
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  // The POSIX file system, shared by everyone who does not ask for another.
  static std::shared_ptr<FileSystem> Default();
  virtual ~FileSystem() = default;

  // Creates `path`, or truncates it; with `append`, opens it for appending
  // and keeps what it holds.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                       bool append = false) = 0;
  // The whole contents of `path`.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // rename(2): replaces `to` if it exists.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync of a directory: makes the names created, renamed or deleted in
  // it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Creates `dir` and missing parents, durably (the parent of each new
  // directory is fsynced); OK if it exists.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  // Removes a file; OK if it does not exist.
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Removes a file or a directory with everything in it; OK if missing.
  virtual absl::Status DeleteTree(const std::string& path) = 0;
  virtual absl::StatusOr<bool> Exists(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`; NOT_FOUND if it is missing.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // Bytes an unprivileged writer may still use on the file system holding
  // `path` (statvfs: f_bavail * f_frsize).
  virtual absl::StatusOr<uint64_t> AvailableBytes(const std::string& path);
  // Makes `to` a second name of the file `from` (link(2)), so that it keeps
  // the contents `from` has now even if `from` is replaced or removed
  // later; fails if `to` exists. Where a link is impossible (another file
  // system) or for an implementation without links (this default), a
  // synced copy written through NewWritableFile. The new name is durable
  // once SyncDir of its directory returns OK.
  virtual absl::Status LinkFile(const std::string& from, const std::string& to);

  // What RocksDB writes through: the same file system, seen through
  // RocksDB's interface (rocksdb/file_system.h).
  virtual std::shared_ptr<rocksdb::FileSystem> ForRocksDb() = 0;
};

// Writes `data` to `path` so that a crash leaves either the old file or the
// whole new one: write `path`.tmp, fsync it, rename it over `path`, fsync
// the directory. The temporary file is removed on failure.
absl::Status WriteFileAtomic(FileSystem& fs, const std::string& path, absl::string_view data);

// Creates `path`, writes `data`, syncs and closes it (no rename: the caller
// commits it some other way, a directory rename, say).
absl::Status WriteFileSynced(FileSystem& fs, const std::string& path, absl::string_view data);

// The directory part of `path` ("." if none).
std::string DirName(const std::string& path);

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_FILE_SYSTEM_H_
