#include "storage/snapshot_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace quiver::storage {
namespace {

constexpr char kMagic[] = "QVSNAP01";
constexpr char kEndMagic[] = "QVSNAPND";
constexpr char kFileTag[] = "QVFL";
constexpr char kManifestTag[] = "QVMF";
constexpr size_t kChunk = 1 << 20;

uint32_t Crc(uint32_t crc, const char* data, size_t n) {
  uLong c = crc;
  while (n > 0) {
    const uInt step = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = crc32(c, reinterpret_cast<const Bytef*>(data), step);
    data += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}
uint32_t Crc(const std::string& s) { return Crc(0, s.data(), s.size()); }

void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A file read front to back, counting its offset.
class Input {
 public:
  static absl::StatusOr<Input> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    return Input(path, fd);
  }
  Input(Input&& o) noexcept : path_(o.path_), fd_(o.fd_), offset_(o.offset_) { o.fd_ = -1; }
  ~Input() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Reads up to n bytes at the current offset; fewer only at the end.
  absl::StatusOr<size_t> Read(char* buf, size_t n) {
    size_t done = 0;
    while (done < n) {
      const ssize_t got = ::read(fd_, buf + done, n - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return IoError("read", path_, errno);
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    offset_ += done;
    return done;
  }
  absl::StatusOr<uint64_t> Size() const {
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return IoError("seek", path_, errno);
    if (::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET) < 0) return IoError("seek", path_, errno);
    return static_cast<uint64_t>(end);
  }
  absl::Status Seek(uint64_t at) {
    if (::lseek(fd_, static_cast<off_t>(at), SEEK_SET) < 0) return IoError("seek", path_, errno);
    offset_ = at;
    return absl::OkStatus();
  }
  uint64_t offset() const { return offset_; }

 private:
  Input(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  uint64_t offset_ = 0;
};

// A packed path must stay inside the directory it is extracted to.
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.size() > 4096) return false;
  if (p == ".." || absl::StartsWith(p, "../") || absl::StrContains(p, "/../") ||
      absl::EndsWith(p, "/..") || absl::StrContains(p, std::string(1, '\0'))) {
    return false;
  }
  return true;
}

absl::Status Cut(const std::string& what) {
  return absl::DataLossError(absl::StrCat("snapshot is truncated: ", what));
}

// Reads and checks the whole snapshot; with `fs`, writes each file under
// `dest_dir`.
absl::StatusOr<SnapshotManifest> ReadAll(FileSystem* fs, const std::string& path,
                                         const std::string& dest_dir) {
  QUIVER_ASSIGN_OR_RETURN(Input in, Input::Open(path));
  char magic[8];
  QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(magic, 8));
  if (got != 8 || std::memcmp(magic, kMagic, 8) != 0) {
    return absl::DataLossError(absl::StrCat(path, " is not a Quiver snapshot (bad magic)"));
  }
  SnapshotManifest read;  // the files as found
  std::string buf(kChunk, '\0');
  std::string last = "(none)";
  for (;;) {
    char head[20];
    QUIVER_ASSIGN_OR_RETURN(got, in.Read(head, 4));
    if (got != 4) return Cut(absl::StrCat("it ends after file ", last, " with no manifest"));
    if (std::memcmp(head, kManifestTag, 4) == 0) break;
    if (std::memcmp(head, kFileTag, 4) != 0) {
      return absl::DataLossError(absl::StrCat("snapshot is damaged after file ", last,
                                              ": no file or manifest header at byte ",
                                              in.offset() - 4));
    }
    QUIVER_ASSIGN_OR_RETURN(got, in.Read(head + 4, 16));
    if (got != 16) return Cut(absl::StrCat("the header of the file after ", last, " is cut"));
    const uint64_t path_len = GetLE(head + 4, 4);
    const uint64_t size = GetLE(head + 8, 8);
    const uint32_t header_crc = static_cast<uint32_t>(GetLE(head + 16, 4));
    if (path_len > 4096) {
      return absl::DataLossError(absl::StrCat("snapshot is damaged: the header of the file after ",
                                              last, " failed its checksum"));
    }
    std::string rel(path_len, '\0');
    QUIVER_ASSIGN_OR_RETURN(got, in.Read(rel.data(), path_len));
    if (got != path_len) return Cut(absl::StrCat("the name of the file after ", last, " is cut"));
    if (Crc(Crc(0, head, 16), rel.data(), rel.size()) != header_crc || !SafeRelativePath(rel)) {
      return absl::DataLossError(absl::StrCat("snapshot is damaged: the header of the file after ",
                                              last, " failed its checksum"));
    }
    std::unique_ptr<WritableFile> out;
    if (fs != nullptr) {
      const std::string dest = absl::StrCat(dest_dir, "/", rel);
      QUIVER_RETURN_IF_ERROR(fs->CreateDirs(DirName(dest)));
      QUIVER_ASSIGN_OR_RETURN(out, fs->NewWritableFile(dest));
    }
    uint32_t crc = 0;
    for (uint64_t left = size; left > 0;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
      QUIVER_ASSIGN_OR_RETURN(got, in.Read(buf.data(), want));
      crc = Crc(crc, buf.data(), got);
      if (out != nullptr && got > 0) {
        QUIVER_RETURN_IF_ERROR(out->Append(absl::string_view(buf.data(), got)));
      }
      if (got != want) {
        return Cut(absl::StrCat("file ", rel, " has ", size - left + got, " of its ", size,
                                " bytes"));
      }
      left -= got;
    }
    char tail[4];
    QUIVER_ASSIGN_OR_RETURN(got, in.Read(tail, 4));
    if (got != 4) return Cut(absl::StrCat("the checksum of file ", rel, " is cut"));
    if (static_cast<uint32_t>(GetLE(tail, 4)) != crc) {
      return absl::DataLossError(absl::StrCat("snapshot is damaged: file ", rel,
                                              " failed its checksum (CRC-32 ", crc,
                                              ", expected ", GetLE(tail, 4), ")"));
    }
    if (out != nullptr) {
      QUIVER_RETURN_IF_ERROR(out->Sync());
      QUIVER_RETURN_IF_ERROR(out->Close());
    }
    SnapshotManifest::File* f = read.add_files();
    f->set_path(rel);
    f->set_size(size);
    f->set_crc32(crc);
    last = rel;
  }
  char mhead[12];
  QUIVER_ASSIGN_OR_RETURN(got, in.Read(mhead, 12));
  if (got != 12) return Cut("the manifest header is cut");
  const uint64_t len = GetLE(mhead, 8);
  const uint32_t want_crc = static_cast<uint32_t>(GetLE(mhead + 8, 4));
  QUIVER_ASSIGN_OR_RETURN(const uint64_t total, in.Size());
  if (len > total) return Cut("the manifest is cut");
  std::string bytes(len, '\0');
  QUIVER_ASSIGN_OR_RETURN(got, in.Read(bytes.data(), len));
  if (got != len) return Cut("the manifest is cut");
  SnapshotManifest m;
  if (Crc(bytes) != want_crc || !m.ParseFromString(bytes)) {
    return absl::DataLossError("snapshot is damaged: its manifest failed its checksum");
  }
  char footer[16];
  QUIVER_ASSIGN_OR_RETURN(got, in.Read(footer, 16));
  if (got != 16) return Cut("the footer is cut");
  if (std::memcmp(footer + 8, kEndMagic, 8) != 0 || in.offset() != total) {
    return absl::DataLossError("snapshot is damaged: its footer is wrong");
  }
  if (m.files_size() != read.files_size()) {
    return absl::DataLossError(absl::StrCat("snapshot is damaged: its manifest lists ",
                                            m.files_size(), " files, it holds ",
                                            read.files_size()));
  }
  for (int i = 0; i < m.files_size(); ++i) {
    const auto& a = m.files(i);
    const auto& b = read.files(i);
    if (a.path() != b.path() || a.size() != b.size() || a.crc32() != b.crc32()) {
      return absl::DataLossError(absl::StrCat("snapshot is damaged: file ", b.path(),
                                              " disagrees with the manifest"));
    }
  }
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(FileSystem& fs,
                                                                       const std::string& path) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, fs.NewWritableFile(path));
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(std::move(f)));
  QUIVER_RETURN_IF_ERROR(w->file_->Append(absl::string_view(kMagic, 8)));
  w->offset_ = 8;
  return w;
}

absl::Status SnapshotWriter::AddFile(const std::string& rel, const std::string& src) {
  QUIVER_ASSIGN_OR_RETURN(Input in, Input::Open(src));
  QUIVER_ASSIGN_OR_RETURN(const uint64_t size, in.Size());
  std::string head(kFileTag, 4);
  PutLE(&head, rel.size(), 4);
  PutLE(&head, size, 8);
  PutLE(&head, Crc(Crc(0, head.data(), head.size()), rel.data(), rel.size()), 4);
  head += rel;
  QUIVER_RETURN_IF_ERROR(file_->Append(head));
  std::string buf(kChunk, '\0');
  uint32_t crc = 0;
  for (uint64_t left = size; left > 0;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
    QUIVER_ASSIGN_OR_RETURN(const size_t got, in.Read(buf.data(), want));
    if (got != want) {
      return absl::InternalError(absl::StrCat(src, " shrank while it was being packed"));
    }
    crc = Crc(crc, buf.data(), got);
    QUIVER_RETURN_IF_ERROR(file_->Append(absl::string_view(buf.data(), got)));
    left -= got;
  }
  std::string tail;
  PutLE(&tail, crc, 4);
  QUIVER_RETURN_IF_ERROR(file_->Append(tail));
  offset_ += head.size() + size + 4;
  SnapshotManifest::File* f = files_.add_files();
  f->set_path(rel);
  f->set_size(size);
  f->set_crc32(crc);
  return absl::OkStatus();
}

absl::Status SnapshotWriter::Finish(SnapshotManifest m) {
  m.set_format_version(kSnapshotFormatVersion);
  m.clear_files();
  for (const auto& f : files_.files()) *m.add_files() = f;
  const std::string bytes = m.SerializeAsString();
  std::string out(kManifestTag, 4);
  PutLE(&out, bytes.size(), 8);
  PutLE(&out, Crc(bytes), 4);
  out += bytes;
  PutLE(&out, offset_, 8);
  out.append(kEndMagic, 8);
  QUIVER_RETURN_IF_ERROR(file_->Append(out));
  QUIVER_RETURN_IF_ERROR(file_->Sync());
  return file_->Close();
}

absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& path) {
  QUIVER_ASSIGN_OR_RETURN(Input in, Input::Open(path));
  QUIVER_ASSIGN_OR_RETURN(const uint64_t total, in.Size());
  if (total < 8 + 16 + 16) return Cut("it is too short to hold a manifest");
  QUIVER_RETURN_IF_ERROR(in.Seek(total - 16));
  char footer[16];
  QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(footer, 16));
  if (got != 16 || std::memcmp(footer + 8, kEndMagic, 8) != 0) {
    return Cut("no footer (it was cut short or is not a snapshot)");
  }
  const uint64_t at = GetLE(footer, 8);
  if (at < 8 || at + 16 + 16 > total) return absl::DataLossError("snapshot footer is damaged");
  QUIVER_RETURN_IF_ERROR(in.Seek(at));
  char head[16];
  QUIVER_ASSIGN_OR_RETURN(got, in.Read(head, 16));
  const uint64_t len = GetLE(head + 4, 8);
  if (got != 16 || std::memcmp(head, kManifestTag, 4) != 0 || at + 16 + len + 16 != total) {
    return absl::DataLossError("snapshot manifest header is damaged");
  }
  std::string bytes(len, '\0');
  QUIVER_ASSIGN_OR_RETURN(got, in.Read(bytes.data(), len));
  SnapshotManifest m;
  if (got != len || Crc(bytes) != static_cast<uint32_t>(GetLE(head + 12, 4)) ||
      !m.ParseFromString(bytes)) {
    return absl::DataLossError("snapshot is damaged: its manifest failed its checksum");
  }
  return m;
}

absl::StatusOr<SnapshotManifest> ExtractSnapshot(FileSystem& fs, const std::string& path,
                                                 const std::string& dest_dir) {
  QUIVER_RETURN_IF_ERROR(fs.CreateDirs(dest_dir));
  QUIVER_ASSIGN_OR_RETURN(SnapshotManifest m, ReadAll(&fs, path, dest_dir));
  return m;
}

absl::StatusOr<SnapshotManifest> VerifySnapshot(const std::string& path) {
  return ReadAll(nullptr, path, "");
}

}  // namespace quiver::storage
