#include "storage/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/sst_file_manager.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "base/status_macros.h"
#include "rocksdb/file_system.h"
#include "storage/wal_check.h"

namespace quiver::storage {
namespace fs = std::filesystem;
namespace {

// RocksDB's info log, the LOG file in the database directory. It replaces
// RocksDB's default (EnvLogger), which does not survive a full disk: once
// one of its appends fails, its next append or flush goes through
// WritableFileWriter::AssertFalseAndGetStatusForPrevError, and with
// assertions compiled in (Debian's librocksdb 7.8 has them) the assertion
// `sync_without_flush_called_` aborts the process; a few seconds after the
// disk fills up, the next LOG line or periodic LOG flush does it. Here
// every line is one write(2) and a line that cannot be written is dropped.
// Warnings and errors also go to quiverd's own log, where operators look.
class InfoLog final : public rocksdb::Logger {
 public:
  InfoLog(FileSystem& fs, const std::string& path) {
    absl::StatusOr<std::unique_ptr<WritableFile>> f = fs.NewWritableFile(path, /*append=*/true);
    if (f.ok()) file_ = *std::move(f);
    absl::StatusOr<uint64_t> size = fs.FileSize(path);
    size_ = size.ok() ? *size : 0;
  }

  void Logv(const char* format, va_list ap) override {
    Write(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    Write(level, format, ap);
  }
  void LogHeader(const char* format, va_list ap) override {
    Write(rocksdb::InfoLogLevel::HEADER_LEVEL, format, ap);
  }
  // Until the database is open its warnings stay in LOG: Store::Open
  // reports a failure in one line of its own.
  void ForwardToQuiverLog() { forward_.store(true, std::memory_order_relaxed); }

  size_t GetLogFileSize() const override { return size_.load(std::memory_order_relaxed); }

 private:
  void Write(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
    char stack[512];
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(stack, sizeof(stack), format, copy);
    va_end(copy);
    if (n < 0) return;
    std::string msg;
    if (static_cast<size_t>(n) < sizeof(stack)) {
      msg.assign(stack, static_cast<size_t>(n));
    } else {
      msg.resize(static_cast<size_t>(n) + 1);
      std::vsnprintf(msg.data(), msg.size(), format, ap);
      msg.resize(static_cast<size_t>(n));
    }
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (file_ != nullptr) {
      timeval tv;
      ::gettimeofday(&tv, nullptr);
      tm t;
      ::localtime_r(&tv.tv_sec, &t);
      static constexpr const char* kTags[] = {"[DEBUG] ", "", "[WARN] ", "[ERROR] ", "[FATAL] ",
                                              ""};
      char prefix[96];
      std::snprintf(prefix, sizeof(prefix), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %lx %s",
                    t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                    static_cast<long>(tv.tv_usec), static_cast<unsigned long>(::pthread_self()),
                    level < rocksdb::InfoLogLevel::NUM_INFO_LOG_LEVELS ? kTags[level] : "");
      const std::string line = absl::StrCat(prefix, msg, "\n");
      // A full disk only costs log lines.
      std::lock_guard<std::mutex> lock(mu_);
      if (file_->Append(line).ok()) size_.fetch_add(line.size(), std::memory_order_relaxed);
    }
    if (!forward_.load(std::memory_order_relaxed)) return;
    if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
      spdlog::warn("rocksdb: {}", msg);
    } else if (level == rocksdb::InfoLogLevel::ERROR_LEVEL ||
               level == rocksdb::InfoLogLevel::FATAL_LEVEL) {
      spdlog::error("rocksdb: {}", msg);
    }
  }

  std::mutex mu_;  // one line at a time into file_
  std::unique_ptr<WritableFile> file_;  // null if LOG cannot be opened
  std::atomic<size_t> size_{0};
  std::atomic<bool> forward_{false};
};

// Keeps the LOG of earlier runs as LOG.old.<microseconds>, as RocksDB's own
// logger does, but only the newest few.
void RotateInfoLog(FileSystem& fs, const std::string& dir) {
  constexpr size_t kKeep = 10;
  const std::string log = dir + "/LOG";
  if (absl::StatusOr<bool> e = fs.Exists(log); e.ok() && *e) {
    timeval tv;
    ::gettimeofday(&tv, nullptr);
    (void)fs.Rename(log, absl::StrCat(log, ".old.",
                                      static_cast<uint64_t>(tv.tv_sec) * 1000000 + tv.tv_usec));
  }
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (!names.ok()) return;
  std::vector<std::string> old;
  for (const std::string& n : *names) {
    if (n.rfind("LOG.old.", 0) == 0) old.push_back(absl::StrCat(dir, "/", n));
  }
  if (old.size() <= kKeep) return;
  std::sort(old.begin(), old.end());  // same-length numbers: oldest first
  for (size_t i = 0; i + kKeep < old.size(); ++i) (void)fs.DeleteFile(old[i]);
}

// Turns RocksDB's own recovery from out-of-space errors off, leaving
// Store::TryResume (DB::Resume on the next write) as the only one. RocksDB's
// (the SstFileManager polling every 5 s) resumes only once the free space
// exceeds the largest write buffer (64 MiB here), and while it waits
// DB::Resume answers Busy: with less than that free after a clean-up,
// writes would never resume.
class ManualNoSpaceRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    if (bg_error.IsNoSpace()) *auto_recovery = false;
  }
};

// A write refused for lack of space; a write stalled behind a background
// out-of-space error reports it as Incomplete.
bool IsNoSpace(const rocksdb::Status& s) {
  if (s.severity() >= rocksdb::Status::Severity::kFatalError) return false;
  return s.IsNoSpace() ||
         (s.IsIncomplete() && s.ToString().find("No space left") != std::string::npos);
}

// Copies `files` into a new directory damaged-wal-<UTC time>[-n] in
// `parent`, fsynced; returns its path.
absl::StatusOr<std::string> CopyAside(FileSystem& fs, const std::vector<std::string>& files,
                                      const std::string& parent) {
  const time_t now = ::time(nullptr);
  tm t;
  ::gmtime_r(&now, &t);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &t);
  std::string dir;
  for (int n = 1;; ++n) {
    dir = absl::StrCat(parent, "/damaged-wal-", stamp, n > 1 ? absl::StrCat("-", n) : "");
    absl::StatusOr<bool> exists = fs.Exists(dir);
    if (!exists.ok()) return exists.status();
    if (!*exists) break;
  }
  QUIVER_RETURN_IF_ERROR(fs.CreateDirs(dir));
  for (const std::string& f : files) {
    const std::string to = absl::StrCat(dir, "/", fs::path(f).filename().string());
    QUIVER_ASSIGN_OR_RETURN(const std::string bytes, fs.ReadFile(f));
    QUIVER_RETURN_IF_ERROR(WriteFileSynced(fs, to, bytes));
  }
  QUIVER_RETURN_IF_ERROR(fs.SyncDir(dir));
  QUIVER_RETURN_IF_ERROR(fs.SyncDir(parent));
  return dir;
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const uintmax_t n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

std::string FileNames(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  for (const auto& p : paths) names.push_back(fs::path(p).filename().string());
  return absl::StrJoin(names, ", ");
}

void AppendBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t ReadBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string CidKey(uint32_t cid) {
  std::string k;
  AppendBE(&k, cid, 4);
  return k;
}

std::string PointKey(uint32_t cid, uint64_t iid) {
  std::string k = CidKey(cid);
  AppendBE(&k, iid, 8);
  return k;
}

std::string VectorKey(uint32_t cid, uint16_t field, uint64_t iid) {
  std::string k = CidKey(cid);
  AppendBE(&k, field, 2);
  AppendBE(&k, iid, 8);
  return k;
}

std::string SeqKey(uint64_t seq) {
  std::string k;
  AppendBE(&k, seq, 8);
  return k;
}

std::string NextIidKey(uint32_t cid) { return "n/" + CidKey(cid); }

constexpr char kNextCidKey[] = "meta/next_cid";
constexpr char kLastSeqKey[] = "meta/last_seq";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": ", s.ToString()));
  return absl::InternalError(absl::StrCat("storage: ", what, ": ", s.ToString()));
}

}  // namespace

Batch::Batch(Store* store) : store_(store), wb_(std::make_unique<rocksdb::WriteBatch>()) {}
Batch::~Batch() = default;

void Batch::PutCollection(const CollectionRecord& rec) {
  rec.SerializeToString(&scratch_);
  wb_->Put(store_->catalog_, "c/" + rec.name(), scratch_);
}

void Batch::DropCollection(uint32_t cid, absl::string_view name) {
  wb_->Delete(store_->catalog_, absl::StrCat("c/", name));
  wb_->Delete(store_->catalog_, NextIidKey(cid));
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  for (auto* cf : {store_->vectors_, store_->attributes_, store_->idmap_}) {
    wb_->DeleteRange(cf, begin, end);
  }
}

void Batch::PutNextCollectionId(uint32_t next) {
  std::string v;
  AppendBE(&v, next, 4);
  wb_->Put(store_->catalog_, kNextCidKey, v);
  next_cid_ = next;
}

void Batch::PutNextInternalId(uint32_t cid, uint64_t next) {
  std::string v;
  AppendBE(&v, next, 8);
  wb_->Put(store_->catalog_, NextIidKey(cid), v);
}

void Batch::PutPoint(uint32_t cid, uint64_t iid, const PointRecord& rec,
                     absl::Span<const float* const> vectors,
                     absl::Span<const uint32_t> dims) {
  rec.SerializeToString(&scratch_);
  wb_->Put(store_->attributes_, PointKey(cid, iid), scratch_);
  for (size_t f = 0; f < vectors.size(); ++f) {
    if (vectors[f] == nullptr) continue;  // an optional field the point lacks
    // Stored as raw little-endian float32 (the only byte order we build for).
    wb_->Put(store_->vectors_, VectorKey(cid, static_cast<uint16_t>(f), iid),
             rocksdb::Slice(reinterpret_cast<const char*>(vectors[f]),
                            dims[f] * sizeof(float)));
  }
  std::string v;
  AppendBE(&v, iid, 8);
  wb_->Put(store_->idmap_, CidKey(cid) + rec.id(), v);
}

void Batch::DeletePointData(uint32_t cid, uint64_t iid, size_t num_vector_fields) {
  wb_->Delete(store_->attributes_, PointKey(cid, iid));
  for (size_t f = 0; f < num_vector_fields; ++f) {
    wb_->Delete(store_->vectors_, VectorKey(cid, static_cast<uint16_t>(f), iid));
  }
}

void Batch::DeleteVectorField(uint32_t cid, uint16_t field) {
  // Keys are cid(4) field(2) iid(8): the field's vectors are one range.
  // (Fields number at most kMaxVectorFields: field + 1 fits.)
  wb_->DeleteRange(store_->vectors_, VectorKey(cid, field, 0),
                   VectorKey(cid, static_cast<uint16_t>(field + 1), 0));
}

void Batch::DeleteIdMapping(uint32_t cid, absl::string_view external_id) {
  wb_->Delete(store_->idmap_, absl::StrCat(CidKey(cid), external_id));
}

void Batch::LogOp(uint64_t seq, const OpRecord& op) {
  op.SerializeToString(&scratch_);
  wb_->Put(store_->oplog_, SeqKey(seq), scratch_);
  wb_->Put(store_->catalog_, kLastSeqKey, SeqKey(seq));
  last_seq_ = seq;
  const uint64_t keep = store_->options_.oplog_retention;
  // Trimming in steps keeps the number of range tombstones small.
  if (seq > keep && seq % 1024 == 0) {
    wb_->DeleteRange(store_->oplog_, SeqKey(0), SeqKey(seq - keep));
  }
}

void Batch::SetSavePoint() {
  wb_->SetSavePoint();
  saved_.push_back({last_seq_, next_cid_});
}

void Batch::RollbackToSavePoint() {
  (void)wb_->RollbackToSavePoint();
  if (!saved_.empty()) {
    last_seq_ = saved_.back().first;
    next_cid_ = saved_.back().second;
    saved_.pop_back();
  }
}
void Batch::PopSavePoint() {
  (void)wb_->PopSavePoint();
  if (!saved_.empty()) saved_.pop_back();
}

size_t Batch::ByteSize() const { return wb_->GetDataSize(); }

Store::~Store() {
  if (db_) {
    // With async durability the WAL tail may still be in the OS only; a
    // clean shutdown makes it durable (sync durability synced every
    // acknowledged write already). Not after a write failed for lack of
    // space: syncing a WAL file whose write failed trips an assertion in
    // RocksDB 7.8 (WritableFileWriter::SyncWithoutFlush) and aborts.
    if (options_.durability == Durability::kAsync && !disk_full()) (void)db_->SyncWAL();
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store());
  store->options_ = options;
  if (store->options_.fs == nullptr) store->options_.fs = FileSystem::Default();
  FileSystem& files = *store->options_.fs;
  if (absl::Status s = files.CreateDirs(options.path); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open data directory ", options.path, ": ", s.message()));
  }
  RotateInfoLog(files, options.path);
  store->info_log_ = std::make_shared<InfoLog>(files, options.path + "/LOG");
  store->env_ = rocksdb::NewCompositeEnv(files.ForRocksDb());

  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.IncreaseParallelism(2);
  // Fewer, larger memtables: ingest is bulk float data.
  db_opts.write_buffer_size = 64 << 20;
  db_opts.max_write_buffer_number = 3;
  db_opts.enable_pipelined_write = false;
  db_opts.info_log = store->info_log_;
  db_opts.env = store->env_.get();
  db_opts.listeners.push_back(std::make_shared<ManualNoSpaceRecovery>());
  store->statistics_ = rocksdb::CreateDBStatistics();
  store->statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  db_opts.statistics = store->statistics_;
  // A torn last record is what a crash leaves and holds nothing that was
  // acknowledged; damage before it does. RocksDB's default,
  // kPointInTimeRecovery, stops replay at either and then drops the rest
  // of the WAL with only a warning in LOG.
  db_opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::ColumnFamilyOptions cf_opts(db_opts);
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::ColumnFamilyOptions vec_opts = cf_opts;
  // Float data barely compresses; don't spend CPU on it.
  vec_opts.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, cf_opts},
      {"catalog", cf_opts},
      {"vectors", vec_opts},
      {"attributes", cf_opts},
      {"idmap", cf_opts},
      {"oplog", cf_opts},
  };
  rocksdb::DBOptions dbo(db_opts);
  auto open = [&](rocksdb::DBOptions o) {
    rocksdb::Status s;
    for (;;) {
      // The SstFileManager tracks the files of one DB instance. Setting it
      // explicitly changes nothing (7.8 creates one per DB); what matters is
      // ManualNoSpaceRecovery above.
      o.sst_file_manager.reset(rocksdb::NewSstFileManager(store->env_.get(),
                                                          store->info_log_));
      rocksdb::DB* raw = nullptr;
      store->handles_.clear();
      s = rocksdb::DB::Open(o, options.path, cfs, &store->handles_, &raw);
      if (s.ok()) {
        store->db_.reset(raw);
        return s;
      }
      if (!s.IsNoSpace() || o.avoid_flush_during_recovery) return s;
      // Recovery writes what it replays from the WAL to new SST files
      // before the WAL can go; without space for them, keep it in memory
      // and the WAL in place instead (flushed later, like any memtable).
      spdlog::warn("storage: no space to flush the recovered write-ahead log ({}); keeping it "
                   "in memory",
                   s.ToString());
      o.avoid_flush_during_recovery = true;
    }
  };
  std::optional<WalDamage> damage;
  std::vector<std::string> discarded;  // WAL files replay stops in or skips
  std::string aside;
  // The one damage RocksDB would take for a torn tail, dropping what
  // follows it without a word: checked first, cheaply (last block only).
  const std::vector<std::string> wals = ListWalFiles(options.path);
  for (size_t i = 0; i < wals.size() && !damage.has_value(); ++i) {
    absl::StatusOr<std::optional<WalDamage>> tail = CheckWalTail(wals[i]);
    if (!tail.ok() || !tail->has_value()) continue;
    damage = **tail;
    absl::StatusOr<std::optional<WalDamage>> whole = CheckWalFile(wals[i]);
    if (whole.ok() && whole->has_value()) damage = **whole;
    discarded.assign(wals.begin() + static_cast<std::ptrdiff_t>(i), wals.end());
  }
  rocksdb::Status s = damage.has_value() ? rocksdb::Status::Corruption("damaged WAL tail")
                                         : open(dbo);
  if (s.IsCorruption()) {
    for (size_t i = 0; i < wals.size() && !damage.has_value(); ++i) {
      absl::StatusOr<std::optional<WalDamage>> d = CheckWalFile(wals[i]);
      if (!d.ok()) {
        spdlog::warn("storage: cannot check {}: {}", wals[i], d.status().ToString());
        continue;
      }
      if (d->has_value()) {
        damage = **d;
        discarded.assign(wals.begin() + static_cast<std::ptrdiff_t>(i), wals.end());
      }
    }
    if (!damage.has_value()) {
      return absl::DataLossError(
          absl::StrCat("cannot open data directory ", options.path, ": ", s.ToString()));
    }
    const std::string parent = fs::path(options.path).parent_path().string();
    const std::vector<std::string> later(discarded.begin() + 1, discarded.end());
    if (!options.accept_wal_loss) {
      return absl::DataLossError(absl::StrCat(
          "write-ahead log ", damage->file, " is damaged at byte ", damage->offset, " of ",
          damage->file_size, " (", damage->reason, "): the ",
          damage->file_size - damage->offset, " bytes from there on",
          later.empty() ? "" : absl::StrCat(" and the later WAL files ", FileNames(later)),
          " hold writes that cannot be replayed, acknowledged ones among them; the ",
          damage->intact_batches, " write batches before the damage (through RocksDB sequence ",
          damage->last_intact_sequence,
          ") are intact. Nothing was changed. To start with the data before the damage and "
          "discard the rest, restart with --accept-wal-loss (it first copies the WAL files to ",
          parent, "/damaged-wal-<time>/)"));
    }
    absl::StatusOr<std::string> copied = CopyAside(files, discarded, parent);
    if (!copied.ok()) {
      return absl::Status(copied.status().code(),
                          absl::StrCat("--accept-wal-loss: cannot copy the damaged write-ahead "
                                       "log aside, so nothing was discarded: ",
                                       copied.status().message()));
    }
    aside = *std::move(copied);
    dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    s = open(dbo);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat(
          "cannot open data directory ", options.path,
          " even discarding the write-ahead log after its damage (copies in ", aside,
          "): ", s.ToString()));
    }
  }
  if (!s.ok()) {
    if (s.IsNoSpace()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("disk full: cannot open data directory ", options.path, ": ",
                       s.ToString()));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open data directory ", options.path, ": ", s.ToString()));
  }
  static_cast<InfoLog*>(store->info_log_.get())->ForwardToQuiverLog();
  rocksdb::DB* raw = store->db_.get();
  store->catalog_ = store->handles_[1];
  store->vectors_ = store->handles_[2];
  store->attributes_ = store->handles_[3];
  store->idmap_ = store->handles_[4];
  store->oplog_ = store->handles_[5];

  std::string v;
  s = raw->Get(rocksdb::ReadOptions(), store->catalog_, kLastSeqKey, &v);
  if (s.ok() && v.size() == 8) store->last_seq_ = ReadBE(v.data(), 8);
  else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read last sequence");
  s = raw->Get(rocksdb::ReadOptions(), store->catalog_, kNextCidKey, &v);
  if (s.ok() && v.size() == 4) store->next_cid_ = static_cast<uint32_t>(ReadBE(v.data(), 4));
  else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read next collection id");

  if (damage.has_value()) {
    uint64_t later_bytes = 0;
    for (size_t i = 1; i < discarded.size(); ++i) later_bytes += FileSize(discarded[i]);
    store->wal_loss_report_ = absl::StrCat(
        "accepted write-ahead log loss: discarded ", damage->file, " from byte ", damage->offset,
        " on (", damage->file_size - damage->offset, " bytes after the damage: ", damage->reason,
        ")",
        discarded.size() > 1
            ? absl::StrCat(" and the later WAL files ",
                           FileNames({discarded.begin() + 1, discarded.end()}), " (",
                           later_bytes, " bytes)")
            : "",
        "; recovered through RocksDB sequence ", raw->GetLatestSequenceNumber(),
        ", Quiver operation ", store->last_seq_.load(), "; the WAL files as found are in ",
        aside);
    spdlog::warn("{}", store->wal_loss_report_);
  } else if (options.accept_wal_loss) {
    spdlog::info("--accept-wal-loss: the write-ahead log is intact, nothing was discarded");
  }
  return store;
}

std::unique_ptr<Batch> Store::NewBatch() { return std::unique_ptr<Batch>(new Batch(this)); }

absl::Status Store::FlushMemtables() {
  rocksdb::FlushOptions fo;
  fo.wait = false;
  fo.allow_write_stall = true;
  const rocksdb::Status s = db_->Flush(fo, handles_);
  if (!s.ok()) return absl::InternalError(absl::StrCat("memtable flush: ", s.ToString()));
  return absl::OkStatus();
}

absl::Status Store::Write(Batch& batch) {
  if (disk_full()) {
    if (absl::Status s = TryResume(); !s.ok()) return s;
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.durability == Durability::kSync;
  rocksdb::Status s = db_->Write(wo, batch.wb_.get());
  if (!s.ok()) return WriteError(s);
  if (batch.last_seq_ != 0) last_seq_.store(batch.last_seq_, std::memory_order_release);
  if (batch.next_cid_ != 0) next_cid_ = batch.next_cid_;
  return absl::OkStatus();
}

absl::Status Store::WriteError(const rocksdb::Status& s) {
  if (!IsNoSpace(s)) return FromRocks(s, "write");
  // RocksDB has stopped writing (a hard background error); the batch did
  // not reach the memtables and its WAL record, if any part of it was
  // written, is dropped when Resume flushes the memtables and starts a new
  // WAL. Only a crash before that could replay it, like a write in flight.
  disk_full_error_ = s.ToString();
  if (!disk_full_.exchange(true, std::memory_order_acq_rel)) {
    last_resume_ = std::chrono::steady_clock::now();
    spdlog::error("storage: disk full, writes fail until space is freed (reads go on): {}",
                  disk_full_error_);
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "disk full: cannot write to ", options_.path, " (", disk_full_error_,
      "); writes fail until space is freed, reads go on"));
}

absl::Status Store::TryResume() {
  const auto now = std::chrono::steady_clock::now();
  // While the file system is still full, Resume (a synchronous memtable
  // flush on the commit thread) fails anyway after stalling every writer
  // queued behind it: try only once some space is back.
  struct statvfs fs_stat;
  const bool still_full = ::statvfs(options_.path.c_str(), &fs_stat) == 0 &&
                          static_cast<uint64_t>(fs_stat.f_bavail) * fs_stat.f_frsize < (1u << 20);
  if (!still_full && now - last_resume_ >= std::chrono::seconds(1)) {
    last_resume_ = now;
    // Flushes the memtables to new SST files and switches to a new WAL.
    const rocksdb::Status s = db_->Resume();
    if (s.ok()) {
      disk_full_.store(false, std::memory_order_release);
      spdlog::info("storage: space available again, writes resumed");
      return absl::OkStatus();
    }
    if (!s.IsBusy() && !IsNoSpace(s)) return FromRocks(s, "resume after a full disk");
    disk_full_error_ = s.ToString();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "disk full: cannot write to ", options_.path, " (", disk_full_error_,
      "); writes fail until space is freed, reads go on"));
}

absl::StatusOr<std::vector<CollectionState>> Store::LoadCollections() {
  std::vector<CollectionState> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), catalog_));
  for (it->Seek("c/"); it->Valid() && it->key().starts_with("c/"); it->Next()) {
    CollectionState st;
    if (!st.record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("corrupt catalog record ", it->key().ToString()));
    }
    std::string v;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), catalog_, NextIidKey(st.record.id()), &v);
    if (s.ok() && v.size() == 8) st.next_iid = ReadBE(v.data(), 8);
    else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read next internal id");
    out.push_back(std::move(st));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan catalog");
  return out;
}

StoreSnapshot::~StoreSnapshot() { db_->ReleaseSnapshot(snap_); }

std::unique_ptr<StoreSnapshot> Store::NewSnapshot() {
  return std::unique_ptr<StoreSnapshot>(new StoreSnapshot(db_.get(), db_->GetSnapshot()));
}

rocksdb::ReadOptions Store::ScanOptions(const StoreSnapshot* snapshot,
                                       const rocksdb::Slice* upper) {
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = snapshot->snap_;
  ro.iterate_upper_bound = upper;
  ro.fill_cache = false;  // a whole-range scan would evict the working set
  return ro;
}

absl::Status Store::ScanPoints(
    uint32_t cid, const std::function<absl::Status(uint64_t, PointRecord&)>& fn,
    const StoreSnapshot* snapshot) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro = ScanOptions(snapshot, &upper);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, attributes_));
  PointRecord rec;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() != 12) return absl::DataLossError("corrupt point key");
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("corrupt point record");
    }
    absl::Status st = fn(ReadBE(it->key().data() + 4, 8), rec);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan points");
}

absl::Status Store::ScanVectors(
    uint32_t cid, uint16_t field,
    const std::function<absl::Status(uint64_t, const float*, size_t)>& fn,
    const StoreSnapshot* snapshot) {
  std::string begin = CidKey(cid), end = CidKey(cid);
  AppendBE(&begin, field, 2);
  AppendBE(&end, static_cast<uint64_t>(field) + 1, 2);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro = ScanOptions(snapshot, &upper);
  ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, vectors_));
  std::vector<float> aligned;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() != 14 || it->value().size() % sizeof(float) != 0) {
      return absl::DataLossError("corrupt vector entry");
    }
    const size_t dim = it->value().size() / sizeof(float);
    aligned.resize(dim);
    std::memcpy(aligned.data(), it->value().data(), it->value().size());
    absl::Status st = fn(ReadBE(it->key().data() + 6, 8), aligned.data(), dim);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan vectors");
}

absl::Status Store::ScanIdMap(
    uint32_t cid, const std::function<absl::Status(absl::string_view, uint64_t)>& fn,
    const StoreSnapshot* snapshot) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro = ScanOptions(snapshot, &upper);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, idmap_));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() <= 4 || it->value().size() != 8) {
      return absl::DataLossError("corrupt id-map entry");
    }
    absl::Status st = fn(absl::string_view(it->key().data() + 4, it->key().size() - 4),
                         ReadBE(it->value().data(), 8));
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan id map");
}

absl::Status Store::ScanOplog(
    uint64_t from, const std::function<absl::Status(uint64_t, const OpRecord&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), oplog_));
  OpRecord op;
  for (it->Seek(SeqKey(from)); it->Valid(); it->Next()) {
    if (it->key().size() != 8 ||
        !op.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("corrupt operation-log entry");
    }
    absl::Status st = fn(ReadBE(it->key().data(), 8), op);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan oplog");
}

uint64_t Store::ApproximateBytes(uint32_t cid,
                                 std::initializer_list<rocksdb::ColumnFamilyHandle*> cfs) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::Range r(begin, end);
  uint64_t total = 0;
  for (auto* cf : cfs) {
    uint64_t size = 0;
    rocksdb::SizeApproximationOptions o;
    o.include_memtables = true;
    o.include_files = true;
    if (db_->GetApproximateSizes(o, cf, &r, 1, &size).ok()) total += size;
  }
  return total;
}

uint64_t Store::ApproximateCollectionBytes(uint32_t cid) {
  return ApproximateBytes(cid, {vectors_, attributes_, idmap_});
}

uint64_t Store::ApproximateVectorBytes(uint32_t cid) { return ApproximateBytes(cid, {vectors_}); }

}  // namespace quiver::storage
