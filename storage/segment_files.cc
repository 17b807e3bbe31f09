#include "storage/segment_files.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include <zlib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "base/status_macros.h"
#include "base/truncate.h"

namespace quiver::storage {
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kTmpPrefix[] = ".tmp-";

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
  // The names are joined to the segment's directory: one that leaves it
  // would read, link or overwrite files elsewhere (a snapshot upload can
  // carry any manifest with a matching checksum).
  for (const auto& e : m.indexes()) {
    if (!SafeFileName(e.file())) {
      return absl::DataLossError(absl::StrCat("MANIFEST names an index file \"",
                                              absl::CHexEscape(TruncateForMessage(e.file())),
                                              "\" that is not a plain file name"));
    }
  }
  return m;
}

bool SafeFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.size() <= 255 &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

absl::Status SegmentFiles::CheckManifests() const {
  absl::StatusOr<std::vector<std::string>> colls = fs_->ListDir(root_);
  if (absl::IsNotFound(colls.status())) return absl::OkStatus();
  if (!colls.ok()) return colls.status();
  for (const std::string& c : *colls) {
    uint32_t cid = 0;
    if (c.size() < 2 || c[0] != 'c' || !absl::SimpleAtoi(c.substr(1), &cid)) continue;
    QUIVER_ASSIGN_OR_RETURN(const std::vector<std::string> segs,
                            fs_->ListDir(CollectionDir(cid)));
    for (const std::string& name : segs) {
      uint64_t id = 0;
      if (name.size() < 2 || name[0] != 's' || !absl::SimpleAtoi(name.substr(1), &id)) continue;
      absl::StatusOr<SegmentManifest> m = ReadManifest(cid, id);
      if (!m.ok()) {
        return absl::DataLossError(absl::StrCat("segments/", c, "/", name, "/", kManifest, ": ",
                                                m.status().message()));
      }
    }
  }
  return absl::OkStatus();
}

std::string SegmentFiles::CollectionDir(uint32_t cid) const {
  return absl::StrCat(root_, "/c", cid);
}

std::string SegmentFiles::SegmentDir(uint32_t cid, uint64_t segment_id) const {
  return absl::StrCat(CollectionDir(cid), "/s", segment_id);
}

absl::StatusOr<std::string> SegmentFiles::BeginWrite(uint32_t cid, uint64_t segment_id) const {
  static std::atomic<uint64_t> counter{0};
  QUIVER_RETURN_IF_ERROR(fs_->CreateDirs(CollectionDir(cid)));
  const std::string tmp = absl::StrCat(CollectionDir(cid), "/", kTmpPrefix, segment_id, "-",
                                       ::getpid(), "-", counter.fetch_add(1));
  QUIVER_RETURN_IF_ERROR(fs_->DeleteTree(tmp));
  QUIVER_RETURN_IF_ERROR(fs_->CreateDirs(tmp));
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
  QUIVER_RETURN_IF_ERROR(
      WriteFileSynced(*fs_, absl::StrCat(tmp_dir, "/", kManifest), EncodeManifest(manifest)));
  QUIVER_RETURN_IF_ERROR(fs_->SyncDir(tmp_dir));
  const std::string final_dir = SegmentDir(manifest.collection_id(), manifest.segment_id());
  QUIVER_RETURN_IF_ERROR(fs_->DeleteTree(final_dir));
  QUIVER_RETURN_IF_ERROR(fs_->Rename(tmp_dir, final_dir));
  return fs_->SyncDir(CollectionDir(manifest.collection_id()));
}

std::vector<SegmentManifest> SegmentFiles::List(
    uint32_t cid,
    const std::function<void(uint64_t, const std::string&, const std::string&)>& bad) const {
  std::vector<SegmentManifest> out;
  const std::string dir = CollectionDir(cid);
  absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (absl::StartsWith(name, kTmpPrefix)) {
      // A write that never committed (crash mid-write).
      (void)fs_->DeleteTree(path);
      continue;
    }
    uint64_t id = 0;
    if (name.size() < 2 || name[0] != 's' || !absl::SimpleAtoi(name.substr(1), &id)) continue;
    absl::StatusOr<SegmentManifest> m = ReadManifest(cid, id);
    if (!m.ok()) {
      bad(id, path, std::string(m.status().message()));
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
  absl::StatusOr<std::string> bytes = fs_->ReadFile(mpath);
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
  const std::string dir = CollectionDir(cid) + "/rerank";
  absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    uint64_t id = 0;
    const bool finished = absl::EndsWith(name, ".rrt");
    if (!finished || !TableSegment(name, &id) ||
        std::find(keep.begin(), keep.end(), id) == keep.end()) {
      (void)fs_->DeleteFile(absl::StrCat(dir, "/", name));
    }
  }
}

absl::Status SegmentFiles::RemoveSegment(uint32_t cid, uint64_t segment_id) const {
  QUIVER_RETURN_IF_ERROR(fs_->DeleteTree(SegmentDir(cid, segment_id)));
  const std::string dir = CollectionDir(cid) + "/rerank";
  absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir);
  if (!names.ok()) return absl::OkStatus();
  for (const std::string& name : *names) {
    uint64_t id = 0;
    if (TableSegment(name, &id) && id == segment_id) {
      (void)fs_->DeleteFile(absl::StrCat(dir, "/", name));
    }
  }
  return absl::OkStatus();
}

absl::Status SegmentFiles::RemoveCollection(uint32_t cid) const {
  return fs_->DeleteTree(CollectionDir(cid));
}

}  // namespace quiver::storage
