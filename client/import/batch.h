// The loop parts every import shares: Batcher cuts points into
// UpsertPoints requests and sends them; Progress reports on stderr.
//
// A Batcher borrows the client and the options (both must outlive it).
// Neither is thread-safe. Batcher's errors keep the server's code, with the
// failed batch's positions and the points already imported appended.
#ifndef QUIVER_CLIENT_IMPORT_BATCH_H_
#define QUIVER_CLIENT_IMPORT_BATCH_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/import/import.h"

namespace quiver::ctl {

// Progress on stderr. Short imports print nothing: the report starts once
// an import has run for half a second. On a terminal it is a bar redrawn in
// place; in a log (stderr redirected) a line per 10% so logs stay short.
class Progress {
 public:
  // `total` points expected; -1 when unknown. `what` starts the log lines.
  Progress(bool enabled, int64_t total, const char* what = "import");

  // `done` points so far; `fraction` of the input consumed (used when the
  // total is unknown).
  void Update(uint64_t done, double fraction);

  // Leaves the terminal on a fresh line after a bar.
  void Finish(uint64_t done);

 private:
  double Seconds(std::chrono::steady_clock::time_point now) const;
  std::string Line(uint64_t done, double fraction, double elapsed) const;
  void Draw(uint64_t done, double fraction, double elapsed);

  const bool enabled_;
  const int64_t total_;
  const char* what_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
  int last_decile_ = 0;
};

// Collects points into UpsertPoints requests and sends them. `unit` names
// what a position is ("row", "line") in error messages.
class Batcher {
 public:
  // `progress` (borrowed) hears of every batch sent.
  Batcher(client::Client& client, const ImportOptions& options, const char* unit,
          Progress* progress);

  // Adds a point from `position` of the input; sends the batch when it is
  // full (options.batch points or 32 MiB), then reports progress with
  // `fraction`, the share of the input read so far.
  absl::Status Add(v1::Point point, int64_t position, double fraction);

  // Sends what is collected, if anything.
  absl::Status Flush();

  // The end of an import: sends the last batch and ends the progress
  // report; the points imported and the time since construction.
  absl::StatusOr<ImportResult> Finish();

  uint64_t imported() const { return imported_; }

 private:
  client::Client& client_;
  const ImportOptions& options_;
  const char* unit_;
  Progress* progress_;
  const std::chrono::steady_clock::time_point start_;
  v1::UpsertPointsRequest req_;
  size_t bytes_ = 0;
  int64_t first_ = 0, last_ = 0;
  uint64_t imported_ = 0;
};

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_BATCH_H_
