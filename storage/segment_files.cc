#include "storage/segment_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include <zlib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace quiver::storage {
namespace fs = std::filesystem;
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kTmpPrefix[] = ".tmp-";

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return Errno("open", path);
  const int r = ::fsync(fd);
  ::close(fd);
  return r == 0 ? absl::OkStatus() : Errno("fsync", path);
}

// CRC-32 and size of a whole file.
absl::Status FileCrc(const std::string& path, uint64_t* size, uint32_t* crc) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<char> buf(1 << 20);
  uLong c = crc32(0L, Z_NULL, 0);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    c = crc32(c, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(got));
    total += static_cast<uint64_t>(got);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  *size = total;
  *crc = static_cast<uint32_t>(c);
  return absl::OkStatus();
}

constexpr char kManifestMagic[4] = {'Q', 'V', 'M', 'F'};
constexpr size_t kFrameBytes = 20;

void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

uint32_t Crc(const std::string& data, size_t from) {
  uLong c = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed it in pieces.
  for (size_t at = from; at < data.size();) {
    const size_t n = std::min<size_t>(data.size() - at, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(data.data() + at), static_cast<uInt>(n));
    at += n;
  }
  return static_cast<uint32_t>(c);
}

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  return data;
}

}  // namespace

std::string EncodeManifest(const SegmentManifest& m) {
  std::string payload;
  m.SerializeToString(&payload);
  std::string out(kManifestMagic, sizeof(kManifestMagic));
  PutLE(&out, kManifestVersion, 4);
  PutLE(&out, payload.size(), 8);
  PutLE(&out, Crc(payload, 0), 4);
  out += payload;
  return out;
}

absl::StatusOr<SegmentManifest> DecodeManifest(const std::string& bytes) {
  if (bytes.size() < kFrameBytes ||
      std::memcmp(bytes.data(), kManifestMagic, sizeof(kManifestMagic)) != 0) {
    return absl::DataLossError("MANIFEST has no frame (damaged, or written by an older version)");
  }
  const uint64_t version = GetLE(bytes.data() + 4, 4);
  if (version != kManifestVersion) {
    return absl::DataLossError(absl::StrCat("MANIFEST format version ", version, " (expected ",
                                            kManifestVersion, ")"));
  }
  const uint64_t length = GetLE(bytes.data() + 8, 8);
  if (length != bytes.size() - kFrameBytes) {
    return absl::DataLossError(absl::StrCat("MANIFEST payload is ", bytes.size() - kFrameBytes,
                                            " bytes, its frame says ", length));
  }
  const uint32_t want = static_cast<uint32_t>(GetLE(bytes.data() + 16, 4));
  const uint32_t got = Crc(bytes, kFrameBytes);
  if (got != want) {
    return absl::DataLossError(
        absl::StrCat("MANIFEST checksum mismatch (crc ", got, ", expected ", want, ")"));
  }
  SegmentManifest m;
  if (!m.ParseFromArray(bytes.data() + kFrameBytes, static_cast<int>(length))) {
    return absl::DataLossError("MANIFEST payload does not parse");
  }
  return m;
}

std::string SegmentFiles::CollectionDir(uint32_t cid) const {
  return absl::StrCat(root_, "/c", cid);
}

std::string SegmentFiles::SegmentDir(uint32_t cid, uint64_t segment_id) const {
  return absl::StrCat(CollectionDir(cid), "/s", segment_id);
}

absl::StatusOr<std::string> SegmentFiles::BeginWrite(uint32_t cid, uint64_t segment_id) const {
  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  fs::create_directories(CollectionDir(cid), ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", CollectionDir(cid), ": ", ec.message()));
  const std::string tmp = absl::StrCat(CollectionDir(cid), "/", kTmpPrefix, segment_id, "-",
                                       ::getpid(), "-", counter.fetch_add(1));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec) {
    return absl::InternalError(absl::StrCat("create ", tmp, ": ", ec.message()));
  }
  return tmp;
}

absl::Status SegmentFiles::Checksum(const std::string& tmp_dir,
                                    SegmentManifest::IndexFile* entry) const {
  uint64_t size = 0;
  uint32_t crc = 0;
  absl::Status s = FileCrc(absl::StrCat(tmp_dir, "/", entry->file()), &size, &crc);
  if (!s.ok()) return s;
  entry->set_size(size);
  entry->set_crc32(crc);
  return absl::OkStatus();
}

absl::Status SegmentFiles::Commit(const std::string& tmp_dir,
                                  const SegmentManifest& manifest) const {
  const std::string mpath = absl::StrCat(tmp_dir, "/", kManifest);
  {
    const std::string bytes = EncodeManifest(manifest);
    std::ofstream out(mpath, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
      return Errno("write", mpath);
    }
    // The last buffered bytes are written here; on a full disk this fails.
    out.close();
    if (!out) return Errno("write", mpath);
  }
  for (const auto& e : manifest.indexes()) {
    absl::Status s = FsyncPath(absl::StrCat(tmp_dir, "/", e.file()), false);
    if (!s.ok()) return s;
  }
  if (absl::Status s = FsyncPath(mpath, false); !s.ok()) return s;
  if (absl::Status s = FsyncPath(tmp_dir, true); !s.ok()) return s;
  const std::string final_dir = SegmentDir(manifest.collection_id(), manifest.segment_id());
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  if (::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) return Errno("rename to", final_dir);
  return FsyncPath(CollectionDir(manifest.collection_id()), true);
}

std::vector<SegmentManifest> SegmentFiles::List(
    uint32_t cid,
    const std::function<void(uint64_t, const std::string&, const std::string&)>& bad) const {
  std::vector<SegmentManifest> out;
  std::error_code ec;
  const std::string dir = CollectionDir(cid);
  if (!fs::exists(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, kTmpPrefix)) {
      // A write that never committed (crash mid-write).
      fs::remove_all(entry.path(), ec);
      continue;
    }
    uint64_t id = 0;
    if (name.size() < 2 || name[0] != 's' || !absl::SimpleAtoi(name.substr(1), &id)) continue;
    absl::StatusOr<SegmentManifest> m = ReadManifest(cid, id);
    if (!m.ok()) {
      bad(id, entry.path().string(), std::string(m.status().message()));
      continue;
    }
    out.push_back(*std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const SegmentManifest& a, const SegmentManifest& b) {
    return a.segment_id() < b.segment_id();
  });
  return out;
}

absl::StatusOr<SegmentManifest> SegmentFiles::ReadManifest(uint32_t cid,
                                                          uint64_t segment_id) const {
  const std::string mpath = absl::StrCat(SegmentDir(cid, segment_id), "/", kManifest);
  absl::StatusOr<std::string> bytes = ReadWhole(mpath);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<SegmentManifest> m = DecodeManifest(*bytes);
  if (!m.ok()) return m.status();
  if (m->collection_id() != cid || m->segment_id() != segment_id) {
    return absl::DataLossError(absl::StrCat("MANIFEST belongs to segment c", m->collection_id(),
                                            "/s", m->segment_id()));
  }
  return m;
}

absl::Status SegmentFiles::VerifyFile(uint32_t cid, uint64_t segment_id,
                                      const SegmentManifest::IndexFile& entry) const {
  const std::string path = absl::StrCat(SegmentDir(cid, segment_id), "/", entry.file());
  uint64_t size = 0;
  uint32_t crc = 0;
  absl::Status s = FileCrc(path, &size, &crc);
  if (!s.ok()) return s;
  if (size != entry.size() || crc != entry.crc32()) {
    return absl::DataLossError(absl::StrCat(path, ": size/checksum mismatch (", size, " bytes, crc ",
                                            crc, "; expected ", entry.size(), ", ",
                                            entry.crc32(), ")"));
  }
  return absl::OkStatus();
}

std::string SegmentFiles::RerankTablePath(uint32_t cid, uint64_t segment_id,
                                          uint32_t field) const {
  return absl::StrCat(CollectionDir(cid), "/rerank/s", segment_id, ".f", field, ".rrt");
}

namespace {

// The segment id of a rerank table file name "s<id>.f<field>.rrt[...]".
bool TableSegment(const std::string& name, uint64_t* id) {
  if (name.size() < 2 || name[0] != 's') return false;
  const size_t dot = name.find('.');
  return dot != std::string::npos && absl::SimpleAtoi(name.substr(1, dot - 1), id);
}

}  // namespace

void SegmentFiles::RemoveOrphanTables(uint32_t cid, const std::vector<uint64_t>& keep) const {
  std::error_code ec;
  const std::string dir = CollectionDir(cid) + "/rerank";
  if (!fs::exists(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t id = 0;
    const bool finished = absl::EndsWith(name, ".rrt");
    if (!finished || !TableSegment(name, &id) ||
        std::find(keep.begin(), keep.end(), id) == keep.end()) {
      fs::remove(entry.path(), ec);
    }
  }
}

absl::Status SegmentFiles::RemoveSegment(uint32_t cid, uint64_t segment_id) const {
  std::error_code ec;
  fs::remove_all(SegmentDir(cid, segment_id), ec);
  if (ec) return absl::InternalError(absl::StrCat("remove segment: ", ec.message()));
  const std::string dir = CollectionDir(cid) + "/rerank";
  if (fs::exists(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      uint64_t id = 0;
      if (TableSegment(entry.path().filename().string(), &id) && id == segment_id) {
        fs::remove(entry.path(), ec);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SegmentFiles::RemoveCollection(uint32_t cid) const {
  std::error_code ec;
  fs::remove_all(CollectionDir(cid), ec);
  if (ec) return absl::InternalError(absl::StrCat("remove collection files: ", ec.message()));
  return absl::OkStatus();
}

}  // namespace quiver::storage
