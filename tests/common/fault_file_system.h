// FaultFileSystem: a storage::FileSystem for tests that models what a power
// loss keeps, and fails chosen operations.
//
// It works on the real files (of the POSIX file system) and remembers what
// is not durable yet, both for Quiver's own files and for RocksDB's (its
// ForRocksDb() is a rocksdb::FileSystemWrapper reporting to the same
// controller):
//   - per file written through it, how many bytes were synced;
//   - per directory, the names created, renamed or deleted in it since its
//     last SyncDir (deleted files and files replaced by a rename are moved
//     to a trash directory so they can come back).
// PowerOff() stops all progress towards durability: later syncs are
// ignored (the process goes on, as a machine would until its power dies).
// DropUnsyncedData(), called once the engine is closed, then puts the disk
// in the state a power loss at that moment could leave: unsynced names are
// undone (newest first) and every file is cut back to its synced size (or,
// with keep_torn_tail, to a random point in its unsynced tail).
// PowerOffAfter(n) powers off after n more mutating operations (the info
// log's appends not counted), for cutting a run at many points.
//
// Faults: Inject() makes a matching operation fail with an errno (EIO,
// ENOSPC); a torn append writes a prefix of its data first. Both Quiver's
// files and RocksDB's see them.
//
// Limits: bytes overwritten in place (WriteAt, RocksDB's PositionedAppend)
// inside the synced part of a file are not restored; a rename counts as
// durable when the directory of its target is synced.
//
// Errors: an injected fault is the errno's status (storage::IoError) for
// Quiver's files and an IOStatus (NoSpace for ENOSPC, IOError otherwise)
// for RocksDB's; DropUnsyncedData reports a restore that failed.
// Thread-safety: everything is safe to call concurrently.
#ifndef QUIVER_TESTS_COMMON_FAULT_FILE_SYSTEM_H_
#define QUIVER_TESTS_COMMON_FAULT_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/mutex.h"
#include "storage/file_system.h"

namespace quiver::testing {

class FaultFileSystem final : public storage::FileSystem,
                              public std::enable_shared_from_this<FaultFileSystem> {
 public:
  // The mutating operations, as faults name them, and kList (listing a
  // directory: it can fail, but is not counted for PowerOffAfter).
  enum class Op { kCreate, kAppend, kSync, kRename, kDelete, kSyncDir, kList };
  static const char* OpName(Op op);

  struct Fault {
    Op op = Op::kAppend;
    int err = 5;  // EIO
    // Only operations on a path containing this; '*' separates pieces that
    // must occur in order ("segments/*/MANIFEST"). Empty: any path.
    std::string path_contains;
    // Let this many matching operations pass first.
    int skip = 0;
    // How many matching operations fail (-1: all, until Clear).
    int times = 1;
    // kAppend only: write the first half of the data, then fail.
    bool torn = false;
  };

  // `trash_dir`: where deleted and replaced files wait until their
  // directory is synced; must be on the same file system as the data.
  static std::shared_ptr<FaultFileSystem> Create(const std::string& trash_dir);

  void Inject(const Fault& fault);
  void ClearFaults();
  // Faults that fired since the last ClearFaults.
  int faults_fired() const;

  void PowerOff();
  void PowerOffAfter(uint64_t ops);
  bool powered_off() const;
  // Mutating operations seen so far (both Quiver's and RocksDB's).
  uint64_t ops() const;
  // Undoes everything not durable (see above) and powers on again. Call
  // with nothing writing through this file system.
  absl::Status DropUnsyncedData(bool keep_torn_tail = false, uint64_t seed = 1);

  // Makes AvailableBytes report `bytes` (a nearly full disk without
  // filling one); nullopt: the real figure again.
  void SetAvailableBytes(std::optional<uint64_t> bytes);

  // storage::FileSystem
  absl::StatusOr<std::unique_ptr<storage::WritableFile>> NewWritableFile(const std::string& path,
                                                                        bool append = false) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status DeleteTree(const std::string& path) override;
  absl::StatusOr<bool> Exists(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::StatusOr<uint64_t> AvailableBytes(const std::string& path) override;
  std::shared_ptr<rocksdb::FileSystem> ForRocksDb() override;

  // The bookkeeping both front ends (ours and RocksDB's) report to. Each
  // returns the errno of an injected fault (0: go ahead); `torn` is set
  // when an append should write half its data first.
  int BeforeOp(Op op, const std::string& path, bool* torn = nullptr);
  void FileCreated(const std::string& path, bool existed, uint64_t size);
  void Appended(const std::string& path, uint64_t new_size);
  void Synced(const std::string& path, uint64_t size);
  // Performs a rename or delete with its undo record.
  int DoRename(const std::string& from, const std::string& to);
  int DoDelete(const std::string& path);
  void DirCreated(const std::string& dir);
  void DirSynced(const std::string& dir);

 private:
  explicit FaultFileSystem(std::string trash_dir);

  struct FileState {
    uint64_t synced = 0;
    uint64_t size = 0;
  };
  // A change of names not durable yet. Undo: kCreate removes `path`;
  // kRename moves `path` back to `from` and `trash` (the replaced target,
  // if any) back to `path`; kDelete moves `trash` back to `path`.
  struct NameChange {
    enum Kind { kCreate, kRename, kDelete } kind;
    std::string dir;   // whose sync makes it durable
    std::string path;  // the name it made (created, renamed to, deleted)
    std::string from;
    std::string trash;
  };

  std::string TrashName() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MoveStates(const std::string& from, const std::string& to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountOp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string trash_dir_;
  std::shared_ptr<rocksdb::FileSystem> rocks_;
  mutable Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  int fired_ ABSL_GUARDED_BY(mu_) = 0;
  bool off_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ops_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t off_at_ ABSL_GUARDED_BY(mu_) = 0;  // 0: no scheduled power-off
  uint64_t trash_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
  std::vector<NameChange> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> available_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_FAULT_FILE_SYSTEM_H_
