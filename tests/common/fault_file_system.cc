#include "tests/common/fault_file_system.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rocksdb/file_system.h"

namespace quiver::testing {
namespace fs = std::filesystem;
using Op = FaultFileSystem::Op;

namespace {

// "a//b/" -> "a/b": RocksDB and Quiver spell directories differently.
std::string Normalize(const std::string& p) {
  std::string out;
  for (char c : p) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool PathExists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

uint64_t SizeOf(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

bool Under(const std::string& path, const std::string& prefix) {
  return path == prefix || absl::StartsWith(path, prefix + "/");
}

// Whether the '*'-separated pieces of `pattern` occur in `path` in order.
bool Matches(const std::string& path, const std::string& pattern) {
  size_t at = 0;
  for (absl::string_view piece : absl::StrSplit(pattern, '*')) {
    at = path.find(piece.data(), at, piece.size());
    if (at == std::string::npos) return false;
    at += piece.size();
  }
  return true;
}

rocksdb::IOStatus RocksError(const std::string& what, int err) {
  const std::string msg = absl::StrCat("injected ", what, ": ", std::strerror(err));
  if (err == ENOSPC) return rocksdb::IOStatus::NoSpace(msg);
  return rocksdb::IOStatus::IOError(msg);
}

// ------------------------------------------------------------ our files

class FaultWritableFile final : public storage::WritableFile {
 public:
  FaultWritableFile(FaultFileSystem* owner, std::unique_ptr<storage::WritableFile> base,
                    std::string path, uint64_t size)
      : owner_(owner), base_(std::move(base)), path_(std::move(path)), size_(size) {}

  absl::Status Append(absl::string_view data) override {
    bool torn = false;
    if (const int err = owner_->BeforeOp(Op::kAppend, path_, &torn); err != 0) {
      if (torn && base_->Append(data.substr(0, data.size() / 2)).ok()) {
        size_ += data.size() / 2;
        owner_->Appended(path_, size_);
      }
      return storage::IoError("write", path_, err);
    }
    absl::Status s = base_->Append(data);
    if (s.ok()) size_ += data.size();
    owner_->Appended(path_, size_);
    return s;
  }

  absl::Status WriteAt(uint64_t offset, absl::string_view data) override {
    if (const int err = owner_->BeforeOp(Op::kAppend, path_); err != 0) {
      return storage::IoError("write", path_, err);
    }
    absl::Status s = base_->WriteAt(offset, data);
    if (s.ok()) size_ = std::max<uint64_t>(size_, offset + data.size());
    owner_->Appended(path_, size_);
    return s;
  }

  absl::Status Sync() override {
    if (const int err = owner_->BeforeOp(Op::kSync, path_); err != 0) {
      return storage::IoError("fsync", path_, err);
    }
    absl::Status s = base_->Sync();
    if (s.ok()) owner_->Synced(path_, size_);
    return s;
  }

  absl::Status Close() override { return base_->Close(); }
  const std::string& path() const override { return path_; }

 private:
  FaultFileSystem* owner_;
  std::unique_ptr<storage::WritableFile> base_;
  const std::string path_;
  uint64_t size_;
};

// ------------------------------------------------------------ RocksDB's files

class RocksWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  RocksWritableFile(FaultFileSystem* owner, std::unique_ptr<rocksdb::FSWritableFile> base,
                    std::string path, uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(base)), owner_(owner), path_(std::move(path)),
        size_(size) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    bool torn = false;
    if (const int err = owner_->BeforeOp(Op::kAppend, path_, &torn); err != 0) {
      if (torn) {
        const rocksdb::Slice half(data.data(), data.size() / 2);
        if (target()->Append(half, o, dbg).ok()) {
          size_ += half.size();
          owner_->Appended(path_, size_);
        }
      }
      return RocksError("write " + path_, err);
    }
    rocksdb::IOStatus s = target()->Append(data, o, dbg);
    if (s.ok()) size_ += data.size();
    owner_->Appended(path_, size_);
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo&,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, o, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) override {
    if (const int err = owner_->BeforeOp(Op::kAppend, path_); err != 0) {
      return RocksError("write " + path_, err);
    }
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) size_ = std::max<uint64_t>(size_, offset + data.size());
    owner_->Appended(path_, size_);
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& o,
                                     const rocksdb::DataVerificationInfo&,
                                     rocksdb::IODebugContext* dbg) override {
    return PositionedAppend(data, offset, o, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) {
      size_ = size;
      owner_->Appended(path_, size_);
    }
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return SyncWith(o, dbg, false);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return SyncWith(o, dbg, true);
  }
  // RangeSync starts write-back; it promises nothing about durability.

 private:
  rocksdb::IOStatus SyncWith(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                             bool full) {
    if (const int err = owner_->BeforeOp(Op::kSync, path_); err != 0) {
      return RocksError("fsync " + path_, err);
    }
    // What is synced is what was appended before the call.
    const uint64_t size = size_;
    rocksdb::IOStatus s = full ? target()->Fsync(o, dbg) : target()->Sync(o, dbg);
    if (s.ok()) owner_->Synced(path_, size);
    return s;
  }

  FaultFileSystem* owner_;
  const std::string path_;
  std::atomic<uint64_t> size_;
};

class RocksDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  RocksDirectory(FaultFileSystem* owner, std::unique_ptr<rocksdb::FSDirectory> base,
                 std::string path)
      : FSDirectoryWrapper(std::move(base)), owner_(owner), path_(std::move(path)) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (const int err = owner_->BeforeOp(Op::kSyncDir, path_); err != 0) {
      return RocksError("fsync " + path_, err);
    }
    rocksdb::IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) owner_->DirSynced(path_);
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& d) override {
    if (const int err = owner_->BeforeOp(Op::kSyncDir, path_); err != 0) {
      return RocksError("fsync " + path_, err);
    }
    rocksdb::IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    if (s.ok()) owner_->DirSynced(path_);
    return s;
  }

 private:
  FaultFileSystem* owner_;
  const std::string path_;
};

class RocksFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit RocksFileSystem(FaultFileSystem* owner)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), owner_(owner) {}
  const char* Name() const override { return "QuiverFaultFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    const std::string path = Normalize(f);
    if (const int err = owner_->BeforeOp(Op::kCreate, path); err != 0) {
      return RocksError("create " + path, err);
    }
    const bool existed = PathExists(path);
    std::unique_ptr<rocksdb::FSWritableFile> base;
    rocksdb::IOStatus s = target()->NewWritableFile(f, opts, &base, dbg);
    if (!s.ok()) return s;
    owner_->FileCreated(path, existed, 0);
    *r = std::make_unique<RocksWritableFile>(owner_, std::move(base), path, 0);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    const std::string path = Normalize(f);
    if (const int err = owner_->BeforeOp(Op::kCreate, path); err != 0) {
      return RocksError("open " + path, err);
    }
    const bool existed = PathExists(path);
    const uint64_t size = SizeOf(path);
    std::unique_ptr<rocksdb::FSWritableFile> base;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, opts, &base, dbg);
    if (!s.ok()) return s;
    owner_->FileCreated(path, existed, size);
    *r = std::make_unique<RocksWritableFile>(owner_, std::move(base), path, size);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = RenameFile(old, f, rocksdb::IOOptions(), dbg);
    if (!s.ok()) return s;
    return NewWritableFile(f, opts, r, dbg);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSDirectory> base;
    rocksdb::IOStatus s = target()->NewDirectory(name, io, &base, dbg);
    if (!s.ok()) return s;
    *r = std::make_unique<RocksDirectory>(owner_, std::move(base), Normalize(name));
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    const std::string from = Normalize(src), to = Normalize(dst);
    if (const int err = owner_->BeforeOp(Op::kRename, from); err != 0) {
      return RocksError("rename " + from, err);
    }
    if (const int err = owner_->DoRename(from, to); err != 0) {
      return rocksdb::IOStatus::IOError(absl::StrCat("rename ", from, ": ", std::strerror(err)));
    }
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions&,
                               rocksdb::IODebugContext*) override {
    const std::string path = Normalize(f);
    if (const int err = owner_->BeforeOp(Op::kDelete, path); err != 0) {
      return RocksError("delete " + path, err);
    }
    if (!PathExists(path)) return rocksdb::IOStatus::PathNotFound(path);
    if (const int err = owner_->DoDelete(path); err != 0) {
      return rocksdb::IOStatus::IOError(absl::StrCat("delete ", path, ": ", std::strerror(err)));
    }
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus DeleteDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override {
    return DeleteFile(d, o, dbg);
  }
  rocksdb::IOStatus CreateDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override {
    const std::string path = Normalize(d);
    const bool existed = PathExists(path);
    rocksdb::IOStatus s = target()->CreateDir(d, o, dbg);
    if (s.ok() && !existed) owner_->DirCreated(path);
    return s;
  }
  rocksdb::IOStatus CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override {
    const std::string path = Normalize(d);
    const bool existed = PathExists(path);
    rocksdb::IOStatus s = target()->CreateDirIfMissing(d, o, dbg);
    if (s.ok() && !existed) owner_->DirCreated(path);
    return s;
  }

 private:
  FaultFileSystem* owner_;
};

}  // namespace

// ------------------------------------------------------------ controller

const char* FaultFileSystem::OpName(Op op) {
  switch (op) {
    case Op::kCreate: return "create";
    case Op::kAppend: return "write";
    case Op::kSync: return "fsync";
    case Op::kRename: return "rename";
    case Op::kDelete: return "delete";
    case Op::kSyncDir: return "fsync-dir";
    case Op::kList: return "list";
  }
  return "?";
}

FaultFileSystem::FaultFileSystem(std::string trash_dir) : trash_dir_(std::move(trash_dir)) {
  rocks_ = std::make_shared<RocksFileSystem>(this);
}

std::shared_ptr<FaultFileSystem> FaultFileSystem::Create(const std::string& trash_dir) {
  std::error_code ec;
  fs::create_directories(trash_dir, ec);
  return std::shared_ptr<FaultFileSystem>(new FaultFileSystem(Normalize(trash_dir)));
}

void FaultFileSystem::Inject(const Fault& fault) {
  MutexLock lock(&mu_);
  faults_.push_back(fault);
}

void FaultFileSystem::ClearFaults() {
  MutexLock lock(&mu_);
  faults_.clear();
  fired_ = 0;
}

int FaultFileSystem::faults_fired() const {
  MutexLock lock(&mu_);
  return fired_;
}

void FaultFileSystem::PowerOff() {
  MutexLock lock(&mu_);
  off_ = true;
}

void FaultFileSystem::PowerOffAfter(uint64_t ops) {
  MutexLock lock(&mu_);
  off_at_ = ops_ + ops;
}

bool FaultFileSystem::powered_off() const {
  MutexLock lock(&mu_);
  return off_;
}

uint64_t FaultFileSystem::ops() const {
  MutexLock lock(&mu_);
  return ops_;
}

void FaultFileSystem::CountOp() {
  ++ops_;
  if (off_at_ != 0 && ops_ >= off_at_) off_ = true;
}

int FaultFileSystem::BeforeOp(Op op, const std::string& path, bool* torn) {
  MutexLock lock(&mu_);
  // RocksDB's info log writes hundreds of lines at open: cut points are
  // counted among the operations that matter.
  if (!absl::EndsWith(path, "/LOG") && op != Op::kList) CountOp();
  for (Fault& f : faults_) {
    if (f.op != op || f.times == 0) continue;
    if (!Matches(path, f.path_contains)) continue;
    if (f.skip > 0) {
      --f.skip;
      continue;
    }
    if (f.times > 0) --f.times;
    ++fired_;
    if (torn != nullptr) *torn = f.torn;
    return f.err;
  }
  return 0;
}

void FaultFileSystem::FileCreated(const std::string& path, bool existed, uint64_t size) {
  MutexLock lock(&mu_);
  files_[path] = FileState{size, size};
  if (!existed) pending_.push_back({NameChange::kCreate, storage::DirName(path), path, "", ""});
}

void FaultFileSystem::Appended(const std::string& path, uint64_t new_size) {
  MutexLock lock(&mu_);
  auto it = files_.find(path);
  if (it != files_.end()) it->second.size = new_size;
}

void FaultFileSystem::Synced(const std::string& path, uint64_t size) {
  MutexLock lock(&mu_);
  if (off_) return;
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced = std::max(it->second.synced, size);
}

std::string FaultFileSystem::TrashName() {
  return absl::StrCat(trash_dir_, "/", ++trash_seq_);
}

void FaultFileSystem::MoveStates(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, FileState>> moved;
  for (auto it = files_.begin(); it != files_.end();) {
    if (Under(it->first, from)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [p, st] : moved) files_[p] = st;
}

int FaultFileSystem::DoRename(const std::string& from, const std::string& to) {
  MutexLock lock(&mu_);
  if (!PathExists(from)) return ENOENT;
  std::string trash;
  if (PathExists(to)) {
    trash = TrashName();
    if (::rename(to.c_str(), trash.c_str()) != 0) return errno;
    MoveStates(to, trash);
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    const int err = errno;
    if (!trash.empty()) {
      (void)::rename(trash.c_str(), to.c_str());
      MoveStates(trash, to);
    }
    return err;
  }
  MoveStates(from, to);
  pending_.push_back({NameChange::kRename, storage::DirName(to), to, from, trash});
  return 0;
}

int FaultFileSystem::DoDelete(const std::string& path) {
  MutexLock lock(&mu_);
  if (!PathExists(path)) return 0;
  const std::string trash = TrashName();
  if (::rename(path.c_str(), trash.c_str()) != 0) return errno;
  MoveStates(path, trash);
  pending_.push_back({NameChange::kDelete, storage::DirName(path), path, "", trash});
  return 0;
}

void FaultFileSystem::DirCreated(const std::string& dir) {
  MutexLock lock(&mu_);
  pending_.push_back({NameChange::kCreate, storage::DirName(dir), dir, "", ""});
}

void FaultFileSystem::DirSynced(const std::string& dir) {
  MutexLock lock(&mu_);
  if (off_) return;
  const std::string d = Normalize(dir);
  std::vector<NameChange> keep;
  for (NameChange& c : pending_) {
    if (c.dir != d) {
      keep.push_back(std::move(c));
      continue;
    }
    if (!c.trash.empty()) {
      std::error_code ec;
      fs::remove_all(c.trash, ec);
      for (auto it = files_.begin(); it != files_.end();) {
        it = Under(it->first, c.trash) ? files_.erase(it) : std::next(it);
      }
    }
  }
  pending_ = std::move(keep);
}

absl::Status FaultFileSystem::DropUnsyncedData(bool keep_torn_tail, uint64_t seed) {
  MutexLock lock(&mu_);
  std::error_code ec;
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    const NameChange& c = *it;
    switch (c.kind) {
      case NameChange::kCreate:
        fs::remove_all(c.path, ec);
        for (auto f = files_.begin(); f != files_.end();) {
          f = Under(f->first, c.path) ? files_.erase(f) : std::next(f);
        }
        break;
      case NameChange::kRename:
        if (::rename(c.path.c_str(), c.from.c_str()) != 0) {
          return absl::InternalError(absl::StrCat("undo rename ", c.path, ": ", strerror(errno)));
        }
        MoveStates(c.path, c.from);
        if (!c.trash.empty()) {
          if (::rename(c.trash.c_str(), c.path.c_str()) != 0) {
            return absl::InternalError(absl::StrCat("restore ", c.path, ": ", strerror(errno)));
          }
          MoveStates(c.trash, c.path);
        }
        break;
      case NameChange::kDelete:
        if (::rename(c.trash.c_str(), c.path.c_str()) != 0) {
          return absl::InternalError(absl::StrCat("restore ", c.path, ": ", strerror(errno)));
        }
        MoveStates(c.trash, c.path);
        break;
    }
  }
  pending_.clear();
  std::mt19937_64 rng(seed);
  for (const auto& [path, st] : files_) {
    if (!PathExists(path)) continue;
    const uint64_t actual = SizeOf(path);
    if (actual <= st.synced) continue;
    uint64_t keep = st.synced;
    if (keep_torn_tail) keep += rng() % (actual - st.synced + 1);
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      return absl::InternalError(absl::StrCat("truncate ", path, ": ", strerror(errno)));
    }
  }
  files_.clear();
  fs::remove_all(trash_dir_, ec);
  fs::create_directories(trash_dir_, ec);
  off_ = false;
  off_at_ = 0;
  return absl::OkStatus();
}

// ------------------------------------------------------------ storage::FileSystem

absl::StatusOr<std::unique_ptr<storage::WritableFile>> FaultFileSystem::NewWritableFile(
    const std::string& p, bool append) {
  const std::string path = Normalize(p);
  if (const int err = BeforeOp(Op::kCreate, path); err != 0) {
    return storage::IoError("create", path, err);
  }
  const bool existed = PathExists(path);
  const uint64_t size = append ? SizeOf(path) : 0;
  absl::StatusOr<std::unique_ptr<storage::WritableFile>> base =
      storage::FileSystem::Default()->NewWritableFile(path, append);
  if (!base.ok()) return base.status();
  FileCreated(path, existed, size);
  return std::unique_ptr<storage::WritableFile>(
      new FaultWritableFile(this, *std::move(base), path, size));
}

absl::StatusOr<std::string> FaultFileSystem::ReadFile(const std::string& path) {
  return storage::FileSystem::Default()->ReadFile(path);
}

absl::Status FaultFileSystem::Rename(const std::string& f, const std::string& t) {
  const std::string from = Normalize(f), to = Normalize(t);
  if (const int err = BeforeOp(Op::kRename, from); err != 0) {
    return storage::IoError(absl::StrCat("rename ", from, " to"), to, err);
  }
  if (const int err = DoRename(from, to); err != 0) {
    return storage::IoError(absl::StrCat("rename ", from, " to"), to, err);
  }
  return absl::OkStatus();
}

absl::Status FaultFileSystem::SyncDir(const std::string& d) {
  const std::string dir = Normalize(d);
  if (const int err = BeforeOp(Op::kSyncDir, dir); err != 0) {
    return storage::IoError("fsync", dir, err);
  }
  absl::Status s = storage::FileSystem::Default()->SyncDir(dir);
  if (s.ok()) DirSynced(dir);
  return s;
}

absl::Status FaultFileSystem::CreateDirs(const std::string& d) {
  const std::string dir = Normalize(d);
  if (PathExists(dir)) return absl::OkStatus();
  if (const int err = BeforeOp(Op::kCreate, dir); err != 0) {
    return storage::IoError("create", dir, err);
  }
  std::vector<std::string> missing;
  for (std::string p = dir; !p.empty() && p != "/" && p != "." && !PathExists(p);
       p = storage::DirName(p)) {
    missing.push_back(p);
  }
  absl::Status s = storage::FileSystem::Default()->CreateDirs(dir);
  if (!s.ok()) return s;
  // The POSIX CreateDirs fsyncs each new directory's parent.
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    DirCreated(*it);
    DirSynced(storage::DirName(*it));
  }
  return s;
}

absl::Status FaultFileSystem::DeleteFile(const std::string& p) {
  const std::string path = Normalize(p);
  if (const int err = BeforeOp(Op::kDelete, path); err != 0) {
    return storage::IoError("remove", path, err);
  }
  if (const int err = DoDelete(path); err != 0) return storage::IoError("remove", path, err);
  return absl::OkStatus();
}

absl::Status FaultFileSystem::DeleteTree(const std::string& path) { return DeleteFile(path); }

absl::StatusOr<bool> FaultFileSystem::Exists(const std::string& path) {
  return storage::FileSystem::Default()->Exists(path);
}

absl::StatusOr<std::vector<std::string>> FaultFileSystem::ListDir(const std::string& d) {
  const std::string dir = Normalize(d);
  if (const int err = BeforeOp(Op::kList, dir); err != 0) {
    return storage::IoError("list", dir, err);
  }
  return storage::FileSystem::Default()->ListDir(dir);
}

void FaultFileSystem::SetAvailableBytes(std::optional<uint64_t> bytes) {
  MutexLock lock(&mu_);
  available_ = bytes;
}

absl::StatusOr<uint64_t> FaultFileSystem::AvailableBytes(const std::string& path) {
  {
    MutexLock lock(&mu_);
    if (available_.has_value()) return *available_;
  }
  return storage::FileSystem::Default()->AvailableBytes(path);
}

absl::StatusOr<uint64_t> FaultFileSystem::FileSize(const std::string& path) {
  return storage::FileSystem::Default()->FileSize(path);
}

std::shared_ptr<rocksdb::FileSystem> FaultFileSystem::ForRocksDb() { return rocks_; }

}  // namespace quiver::testing
