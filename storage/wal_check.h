// WAL check: finds where a RocksDB write-ahead log is damaged.
//
// RocksDB refuses to open a database whose WAL is damaged before its tail
// (Store opens with WALRecoveryMode::kTolerateCorruptedTailRecords) but
// says only "Corruption: checksum mismatch". To tell the operator which
// file and which byte, this reads the WAL format of RocksDB 7.8
// (db/log_format.h: 32 KiB blocks of physical records, each with a 7-byte
// header of masked CRC-32C, little-endian length and type; logical records
// split into FIRST/MIDDLE/LAST fragments) the way log::Reader::ReadRecord
// does in that mode: a record cut short by the end of the file (a torn
// tail after a crash) ends the log normally; anything else that RocksDB
// reports as corruption is damage, and so is a record whose length runs
// past the end of the file while intact records follow it (see
// CheckWalTail). Not detected, as RocksDB does not: a zero-filled header
// (RocksDB skips the rest of that 32 KiB block).
//
// Read-only: never modifies a file. Thread-safe (no shared state).
// Errors: damage is a result (a WalDamage), not an error. A missing file is
// NOT_FOUND, one that cannot be opened, stat'ed or read INTERNAL, and
// recyclable records (recycle_log_file_num, which Store does not use) or
// compressed WALs UNIMPLEMENTED.
#ifndef QUIVER_STORAGE_WAL_CHECK_H_
#define QUIVER_STORAGE_WAL_CHECK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quiver::storage {

struct WalDamage {
  std::string file;          // path of the damaged WAL
  uint64_t file_size = 0;
  // Start of the first logical record that cannot be recovered: replay
  // stops here, so everything from here to the end of the file is lost.
  uint64_t offset = 0;
  std::string reason;        // RocksDB's wording, e.g. "checksum mismatch"
  // Intact write batches before the damage, and the RocksDB sequence number
  // of the last update among them (0 if there is none).
  uint64_t intact_batches = 0;
  uint64_t last_intact_sequence = 0;
};

// The WAL files (<number>.log) in RocksDB directory `db_dir`, full paths,
// oldest (lowest number) first.
std::vector<std::string> ListWalFiles(const std::string& db_dir);

// Reads one WAL file. nullopt if it is intact (possibly with a torn tail);
// the first damage otherwise. NOT_FOUND / INTERNAL if it cannot be read,
// UNIMPLEMENTED for recyclable or compressed records.
absl::StatusOr<std::optional<WalDamage>> CheckWalFile(const std::string& path);

// The one kind of damage RocksDB 7.8 takes for a torn tail: in the final,
// partial 32 KiB block of a WAL, a record whose length (damaged) runs past
// the end of the file although intact records follow it. Reads that block
// only, so Store checks every WAL this way before each open.
absl::StatusOr<std::optional<WalDamage>> CheckWalTail(const std::string& path);

// CRC-32C (Castagnoli) of `data`, as RocksDB's crc32c::Value computes it.
uint32_t Crc32c(absl::string_view data);

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_WAL_CHECK_H_
