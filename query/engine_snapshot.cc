// Engine snapshots (engine.h, "Snapshots"): creating, listing and deleting
// snapshot files, and removing what interrupted ones left. Restores are in
// engine_restore.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/engine.h"
#include "query/engine_writer.h"
#include "spdlog/spdlog.h"
#include "base/units.h"

namespace quiver {
namespace {

constexpr char kSuffix[] = ".qsnap";
constexpr char kTmpSuffix[] = ".qsnap.tmp";
// Temporary entries of the snapshot directory, all removed at start-up.
constexpr char kStagingPrefix[] = ".tmp-";
constexpr char kRestorePrefix[] = ".restore-";
constexpr char kUploadPrefix[] = ".upload-";

bool ValidSnapshotName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return !absl::EndsWith(name, ".tmp");
}

absl::Status BadName(const std::string& name) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid snapshot name \"", TruncateForMessage(name),
                   "\": names match [A-Za-z0-9][A-Za-z0-9_.-]{0,127} and do not end in .tmp"));
}

// Relative paths of every regular file under `root`, sorted; none if
// `root` does not exist (a snapshot of collections with no segment). Any
// error listing a directory fails the walk: a partial list would pack a
// snapshot that verifies but cannot be restored.
absl::Status FilesUnder(storage::FileSystem& fs, const std::string& root, const std::string& rel,
                        std::vector<std::string>* out) {
  const std::string dir = rel.empty() ? root : absl::StrCat(root, "/", rel);
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (rel.empty() && absl::IsNotFound(names.status())) return absl::OkStatus();
  if (!names.ok()) return names.status();
  for (const std::string& n : *names) {
    const std::string sub = rel.empty() ? n : absl::StrCat(rel, "/", n);
    struct stat st;
    if (::lstat(absl::StrCat(root, "/", sub).c_str(), &st) != 0) {
      return storage::IoError("stat", absl::StrCat(root, "/", sub), errno);
    }
    if (S_ISDIR(st.st_mode)) {
      QUIVER_RETURN_IF_ERROR(FilesUnder(fs, root, sub, out));
    } else if (S_ISREG(st.st_mode)) {
      out->push_back(sub);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FilesUnder(storage::FileSystem& fs,
                                                    const std::string& root) {
  std::vector<std::string> out;
  QUIVER_RETURN_IF_ERROR(FilesUnder(fs, root, "", &out));
  std::sort(out.begin(), out.end());
  return out;
}

// Kept free beyond the estimate: the live database goes on writing.
constexpr uint64_t kSpaceMargin = 64 * kMiB;

// Bytes of the regular files under `dir` (0 if missing; an estimate, so
// errors only make it smaller).
uint64_t BytesUnder(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uint64_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

}  // namespace

absl::Status Engine::CheckSnapshotSpace(const std::string& name,
                                        const std::vector<std::shared_ptr<Collection>>& colls,
                                        bool all) {
  // The export is a second copy of the database, packed into a third
  // (the staging copy is removed only after packing); segment files are
  // linked into staging (copied where links fail) and packed once.
  uint64_t db = 0, segs = 0;
  if (all) {
    const storage::StoreStats st = store_->Stats();
    db = st.live_sst_bytes + st.memtable_bytes;
  }
  for (const auto& c : colls) {
    if (!all) db += store_->ApproximateCollectionBytes(c->id());
    segs += BytesUnder(files_->CollectionDir(c->id()));
  }
  const uint64_t need = 2 * db + 2 * segs + kSpaceMargin;
  QUIVER_ASSIGN_OR_RETURN(const uint64_t avail,
                          options_.store.fs->AvailableBytes(SnapshotDir()));
  if (avail >= need) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "snapshot \"", name, "\" not started: it needs about ", need / kMiB,
      " MiB free on the data file system (twice the database export, ", db / kMiB,
      " MiB, and the segment files, ", segs / kMiB, " MiB, plus ", kSpaceMargin / kMiB,
      " MiB to spare) and ", avail / kMiB, " MiB are free: free ",
      (need - avail + kMiB - 1) / kMiB, " MiB more (nothing was written)"));
}

absl::Status Engine::CleanSnapshotLeftovers() {
  storage::FileSystem& fs = *options_.store.fs;
  const std::string dir = SnapshotDir();
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (names.ok()) {
    for (const std::string& n : *names) {
      if (absl::StartsWith(n, kStagingPrefix) || absl::StartsWith(n, kRestorePrefix) ||
          absl::StartsWith(n, kUploadPrefix) || absl::EndsWith(n, kTmpSuffix)) {
        spdlog::info("removing {}/{}, left by an interrupted snapshot or restore", dir, n);
        QUIVER_RETURN_IF_ERROR(fs.DeleteTree(absl::StrCat(dir, "/", n)));
      }
    }
  }
  QUIVER_RETURN_IF_ERROR(fs.DeleteTree(options_.data_dir + "/.restore-tmp"));
  QUIVER_ASSIGN_OR_RETURN(std::vector<uint32_t> unfinished, store_->UnfinishedRestores());
  for (uint32_t cid : unfinished) {
    spdlog::info("removing collection id {}: a restore into it never finished", cid);
    std::unique_ptr<storage::Batch> b = store_->NewBatch();
    b->DropCollectionData(cid);
    b->DeleteRestoreMark(cid);
    QUIVER_RETURN_IF_ERROR(store_->Write(*b));
    QUIVER_RETURN_IF_ERROR(files_->RemoveCollection(cid));
  }
  return RemoveOrphanSegmentDirs();
}

absl::Status Engine::RemoveOrphanSegmentDirs() {
  // An index build that passed its collection's dropped check before an
  // abandoned restore (or a drop) marked it commits its files after the
  // collection's directory was removed: they belong to no collection.
  // Collection ids are never reused, so such a directory is only debris.
  QUIVER_ASSIGN_OR_RETURN(const std::vector<storage::CollectionState> states,
                          store_->LoadCollections());
  std::set<uint32_t> live;
  for (const storage::CollectionState& st : states) live.insert(st.record.id());
  storage::FileSystem& fs = *options_.store.fs;
  const std::string root = options_.data_dir + "/segments";
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(root);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  if (!names.ok()) return names.status();
  for (const std::string& n : *names) {
    uint32_t cid = 0;
    if (n.size() < 2 || n[0] != 'c' || !absl::SimpleAtoi(n.substr(1), &cid)) continue;
    if (live.count(cid) != 0 || files_->CollectionDir(cid) != absl::StrCat(root, "/", n)) continue;
    spdlog::info("removing {}/{}: segment files of no collection (left by a build that finished "
                 "as its collection's restore was abandoned or it was dropped)",
                 root, n);
    // Debris by definition: a directory that cannot be removed (left by a
    // run under another user, say) is worth a warning, not a failed start.
    if (absl::Status s = fs.DeleteTree(absl::StrCat(root, "/", n)); !s.ok()) {
      spdlog::warn("could not remove {}/{} (segment files of no collection): {}", root, n,
                   s.ToString());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Engine::SnapshotPath(const std::string& name) const {
  if (!ValidSnapshotName(name)) return BadName(name);
  const std::string path = absl::StrCat(SnapshotDir(), "/", name, kSuffix);
  QUIVER_ASSIGN_OR_RETURN(const bool exists, options_.store.fs->Exists(path));
  if (!exists) {
    return absl::NotFoundError(absl::StrCat("snapshot \"", name, "\" does not exist"));
  }
  return path;
}

std::string Engine::NewUploadPath() {
  return absl::StrCat(SnapshotDir(), "/", kUploadPrefix, ::getpid(), "-",
                      upload_counter_.fetch_add(1), kSuffix);
}

absl::Status Engine::LinkSegmentFiles(const Collection& c, uint64_t seq,
                                      const std::string& dest) {
  storage::FileSystem& fs = *options_.store.fs;
  const std::string src_dir = files_->CollectionDir(c.id());
  const std::string dst_dir = absl::StrCat(dest, "/c", c.id());
  // Under persist_mu_ no segment directory is being replaced; a compaction
  // on the commit thread may still remove one, and then its links fail and
  // the segment is left out (restore rebuilds it from the data). A segment
  // written after `seq` would be discarded by restore anyway.
  absl::Status result;
  c.WithPersistLocked([&] {
    std::vector<storage::SegmentManifest> ms =
        files_->List(c.id(), [](uint64_t, const std::string&, const std::string&) {});
    for (const storage::SegmentManifest& m : ms) {
      if (m.sequence() > seq) continue;
      const std::string seg = absl::StrCat("/s", m.segment_id());
      std::vector<std::pair<std::string, std::string>> links;  // from, to
      links.emplace_back(src_dir + seg + "/MANIFEST", dst_dir + seg + "/MANIFEST");
      for (const auto& e : m.indexes()) {
        links.emplace_back(absl::StrCat(src_dir, seg, "/", e.file()),
                           absl::StrCat(dst_dir, seg, "/", e.file()));
      }
      for (const auto& t : m.rerank_tables()) {
        const std::string p = files_->RerankTablePath(c.id(), m.segment_id(), t.field());
        links.emplace_back(p, dst_dir + "/rerank/" + std::filesystem::path(p).filename().string());
      }
      absl::Status s = fs.CreateDirs(dst_dir + seg);
      if (s.ok() && !m.rerank_tables().empty()) s = fs.CreateDirs(dst_dir + "/rerank");
      std::vector<std::string> made;
      for (const auto& [from, to] : links) {
        if (!s.ok()) break;
        s = fs.LinkFile(from, to);
        if (s.ok()) made.push_back(to);
      }
      if (!s.ok()) {
        for (const std::string& p : made) (void)fs.DeleteFile(p);
        (void)fs.DeleteTree(dst_dir + seg);
        if (!absl::IsNotFound(s)) {
          result = s;
          return;
        }
        spdlog::info("snapshot: collection \"{}\" segment {} left out (restore rebuilds it): {}",
                     c.name(), m.segment_id(), s.ToString());
      }
    }
  });
  return result;
}

absl::Status Engine::PackSnapshot(const std::string& staging, const std::string& final_path,
                                  const storage::SnapshotManifest& m) {
  storage::FileSystem& fs = *options_.store.fs;
  const std::string tmp = absl::StrCat(SnapshotDir(), "/", m.name(), kTmpSuffix);
  absl::Status s = [&]() -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<storage::SnapshotWriter> w,
                            storage::SnapshotWriter::Create(fs, tmp));
    for (const char* top : {"db", "segments"}) {
      QUIVER_ASSIGN_OR_RETURN(const std::vector<std::string> files,
                              FilesUnder(fs, absl::StrCat(staging, "/", top)));
      for (const std::string& rel : files) {
        // The export's own RocksDB info log is of no use to a restore.
        if (absl::StartsWith(rel, "LOG")) continue;
        QUIVER_RETURN_IF_ERROR(
            w->AddFile(absl::StrCat(top, "/", rel), absl::StrCat(staging, "/", top, "/", rel)));
      }
    }
    QUIVER_RETURN_IF_ERROR(w->Finish(m));
    QUIVER_RETURN_IF_ERROR(fs.Rename(tmp, final_path));
    return fs.SyncDir(SnapshotDir());
  }();
  if (!s.ok()) (void)fs.DeleteFile(tmp);
  return s;
}

absl::StatusOr<storage::SnapshotManifest> Engine::CreateSnapshot(const std::string& name_in,
                                                                 const std::string& collection) {
  if (!name_in.empty() && !ValidSnapshotName(name_in)) return BadName(name_in);
  std::shared_ptr<Collection> only;
  if (!collection.empty()) {
    QUIVER_ASSIGN_OR_RETURN(only, Find(collection));
  }
  MutexLock lock(&snapshot_mu_);
  storage::FileSystem& fs = *options_.store.fs;
  QUIVER_RETURN_IF_ERROR(fs.CreateDirs(SnapshotDir()));
  if (!name_in.empty()) {
    QUIVER_ASSIGN_OR_RETURN(const bool exists,
                            fs.Exists(absl::StrCat(SnapshotDir(), "/", name_in, kSuffix)));
    if (exists) {
      return absl::AlreadyExistsError(absl::StrCat("snapshot \"", name_in, "\" already exists"));
    }
  }
  // The consistent point: between two commit groups, everything before is
  // written and applied, nothing after has started.
  std::unique_ptr<storage::StoreSnapshot> snap;
  uint64_t seq = 0;
  std::vector<std::shared_ptr<Collection>> colls;
  absl::Status taken = RunJobOnCommitThread([&]() -> absl::Status {
    snap = store_->NewSnapshot();
    seq = store_->last_sequence();
    if (only != nullptr) {
      if (only->dropped()) {
        return absl::NotFoundError(absl::StrCat("collection \"", collection, "\" was dropped"));
      }
      colls.push_back(only);
    } else {
      colls = AllCollections();
    }
    return absl::OkStatus();
  });
  QUIVER_RETURN_IF_ERROR(taken);
  std::string name = name_in;
  if (name.empty()) {
    // Two snapshots in one second with no write between have the same time
    // and sequence: the name nobody chose gets a counter instead of
    // ALREADY_EXISTS (free names are stable under snapshot_mu_).
    const std::string base = absl::StrCat(
        "snap-", absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), "-", seq);
    name = base;
    for (int n = 2;; ++n) {
      QUIVER_ASSIGN_OR_RETURN(const bool taken,
                              fs.Exists(absl::StrCat(SnapshotDir(), "/", name, kSuffix)));
      if (!taken) break;
      name = absl::StrCat(base, "-", n);
    }
  }
  const std::string final_path = absl::StrCat(SnapshotDir(), "/", name, kSuffix);
  QUIVER_ASSIGN_OR_RETURN(const bool exists, fs.Exists(final_path));
  if (exists) return absl::AlreadyExistsError(absl::StrCat("snapshot \"", name, "\" already exists"));
  // Before any byte is written: a snapshot must not fill the disk that the
  // live database writes to.
  QUIVER_RETURN_IF_ERROR(CheckSnapshotSpace(name, colls, only == nullptr));
  const std::string staging = absl::StrCat(SnapshotDir(), "/", kStagingPrefix, name);
  storage::SnapshotManifest m;
  m.set_name(name);
  m.set_sequence(seq);
  m.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  m.set_all_collections(only == nullptr);
  std::vector<uint32_t> cids;
  for (const auto& c : colls) {
    cids.push_back(c->id());
    auto* e = m.add_collections();
    e->set_id(c->id());
    e->set_name(c->name());
  }
  const absl::Time start = absl::Now();
  absl::Status s = [&]() -> absl::Status {
    QUIVER_RETURN_IF_ERROR(fs.DeleteTree(staging));
    QUIVER_RETURN_IF_ERROR(fs.CreateDirs(staging));
    QUIVER_RETURN_IF_ERROR(
        store_->ExportTo(*snap, only == nullptr ? nullptr : &cids, staging + "/db"));
    snap.reset();  // RocksDB may drop the versions it kept from here on
    for (const auto& c : colls) {
      QUIVER_RETURN_IF_ERROR(LinkSegmentFiles(*c, seq, staging + "/segments"));
    }
    return PackSnapshot(staging, final_path, m);
  }();
  snap.reset();
  (void)fs.DeleteTree(staging);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("snapshot \"", name, "\": ", s.message()));
  }
  QUIVER_ASSIGN_OR_RETURN(storage::SnapshotManifest written,
                          storage::ReadSnapshotManifest(final_path));
  spdlog::info("snapshot \"{}\" at sequence {}: {} collections, {} files, {:.3f}s", name, seq,
               colls.size(), written.files_size(), absl::ToDoubleSeconds(absl::Now() - start));
  return written;
}

absl::StatusOr<std::vector<storage::SnapshotManifest>> Engine::ListSnapshots(
    std::vector<std::pair<std::string, std::string>>* damaged) const {
  std::vector<storage::SnapshotManifest> out;
  absl::StatusOr<std::vector<std::string>> names = options_.store.fs->ListDir(SnapshotDir());
  if (absl::IsNotFound(names.status())) return out;
  if (!names.ok()) return names.status();
  std::sort(names->begin(), names->end());
  for (const std::string& n : *names) {
    if (!absl::EndsWith(n, kSuffix) || absl::StartsWith(n, ".")) continue;
    const std::string name = n.substr(0, n.size() - strlen(kSuffix));
    absl::StatusOr<storage::SnapshotManifest> m =
        storage::ReadSnapshotManifest(absl::StrCat(SnapshotDir(), "/", n));
    if (!m.ok()) {
      if (damaged != nullptr) damaged->emplace_back(name, std::string(m.status().message()));
      continue;
    }
    m->set_name(name);
    out.push_back(*std::move(m));
  }
  return out;
}

absl::Status Engine::DeleteSnapshot(const std::string& name) {
  QUIVER_ASSIGN_OR_RETURN(const std::string path, SnapshotPath(name));
  QUIVER_RETURN_IF_ERROR(options_.store.fs->DeleteFile(path));
  return options_.store.fs->SyncDir(SnapshotDir());
}

}  // namespace quiver
