#include "storage/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "rocksdb/file_system.h"

namespace quiver::storage {
namespace fs = std::filesystem;

absl::Status IoError(absl::string_view what, const std::string& path, int err) {
  const std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError("disk full: " + msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    const char* p = data.data();
    size_t n = data.size();
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return IoError("write", path_, errno);
      if (w == 0) return IoError("write", path_, EIO);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  absl::Status WriteAt(uint64_t offset, absl::string_view data) override {
    const char* p = data.data();
    size_t n = data.size();
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return IoError("write", path_, errno);
      if (w == 0) return IoError("write", path_, EIO);
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return IoError("fsync", path_, errno);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    const int r = ::close(fd_);
    fd_ = -1;
    // close(2) reports late write-back errors on some file systems (NFS).
    if (r != 0) return IoError("close", path_, errno);
    return absl::OkStatus();
  }

  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                               bool append) override {
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return IoError("create", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    std::string out;
    char buf[1 << 16];
    for (;;) {
      const ssize_t got = ::read(fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        const int err = errno;
        ::close(fd);
        return IoError("read", path, err);
      }
      if (got == 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    ::close(fd);
    return out;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return IoError(absl::StrCat("rename ", from, " to"), to, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("open", dir, errno);
    const int r = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (r != 0) return IoError("fsync", dir, err);
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& dir) override {
    std::vector<std::string> missing;  // deepest first
    for (std::string p = dir; p != "/" && p != "."; p = DirName(p)) {
      struct stat st;
      if (::stat(p.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return IoError("create", p, ENOTDIR);
        break;
      }
      missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) return IoError("create", *it, errno);
      // The new name is durable once its parent is.
      if (absl::Status s = SyncDir(DirName(*it)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status DeleteFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("remove", path, errno);
    return absl::OkStatus();
  }

  absl::Status DeleteTree(const std::string& path) override {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) return IoError("remove", path, ec.value());
    return absl::OkStatus();
  }

  absl::StatusOr<bool> Exists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return IoError("stat", path, errno);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    fs::directory_iterator it(dir, ec);
    if (ec) return IoError("list", dir, ec.value());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return IoError("list", dir, ec.value());
    return names;
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return IoError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status LinkFile(const std::string& from, const std::string& to) override {
    if (::link(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
    const int err = errno;
    if (err == EXDEV || err == EPERM || err == EMLINK) return FileSystem::LinkFile(from, to);
    return IoError(absl::StrCat("link ", from, " to"), to, err);
  }

  std::shared_ptr<rocksdb::FileSystem> ForRocksDb() override {
    return rocksdb::FileSystem::Default();
  }
};

}  // namespace

std::shared_ptr<FileSystem> FileSystem::Default() {
  static const std::shared_ptr<FileSystem> posix = std::make_shared<PosixFileSystem>();
  return posix;
}

absl::StatusOr<uint64_t> FileSystem::AvailableBytes(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return IoError("statvfs", path, errno);
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

absl::Status FileSystem::LinkFile(const std::string& from, const std::string& to) {
  absl::StatusOr<bool> exists = Exists(to);
  if (!exists.ok()) return exists.status();
  if (*exists) return IoError(absl::StrCat("link ", from, " to"), to, EEXIST);
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open", from, errno);
  absl::StatusOr<std::unique_ptr<WritableFile>> out = NewWritableFile(to);
  absl::Status s = out.status();
  std::string buf(1 << 20, '\0');
  while (s.ok()) {
    const ssize_t got = ::read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      s = IoError("read", from, errno);
      break;
    }
    if (got == 0) break;
    s = (*out)->Append(absl::string_view(buf.data(), static_cast<size_t>(got)));
  }
  ::close(fd);
  if (s.ok()) s = (*out)->Sync();
  if (out.ok()) {
    if (absl::Status c = (*out)->Close(); s.ok()) s = c;
  }
  if (!s.ok() && out.ok()) (void)DeleteFile(to);
  return s;
}

absl::Status WriteFileSynced(FileSystem& fs, const std::string& path, absl::string_view data) {
  absl::StatusOr<std::unique_ptr<WritableFile>> f = fs.NewWritableFile(path);
  if (!f.ok()) return f.status();
  absl::Status s = (*f)->Append(data);
  if (s.ok()) s = (*f)->Sync();
  if (absl::Status c = (*f)->Close(); s.ok()) s = c;
  return s;
}

absl::Status WriteFileAtomic(FileSystem& fs, const std::string& path, absl::string_view data) {
  const std::string tmp = path + ".tmp";
  absl::Status s = WriteFileSynced(fs, tmp, data);
  if (s.ok()) s = fs.Rename(tmp, path);
  if (!s.ok()) {
    (void)fs.DeleteFile(tmp);
    return s;
  }
  return fs.SyncDir(DirName(path));
}

}  // namespace quiver::storage
