#include "client/import/batch.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace quiver::ctl {
namespace {

// Requests are cut at this size so that wide vectors stay under the
// server's default --max-message-bytes (64 MiB) with room to spare.
constexpr size_t kMaxRequestBytes = 32 << 20;

}  // namespace

Progress::Progress(bool enabled, int64_t total, const char* what)
    : enabled_(enabled),
      total_(total),
      what_(what),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

void Progress::Update(uint64_t done, double fraction) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = Seconds(now);
  if (elapsed < 0.5) return;
  if (total_ > 0) fraction = static_cast<double>(done) / static_cast<double>(total_);
  fraction = std::clamp(fraction, 0.0, 1.0);
  if (tty_) {
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Draw(done, fraction, elapsed);
  } else {
    const int decile = static_cast<int>(fraction * 10);
    if (decile <= last_decile_) return;
    last_decile_ = decile;
    std::cerr << what_ << ": " << Line(done, fraction, elapsed) << "\n";
  }
}

void Progress::Finish(uint64_t done) {
  if (!enabled_ || !tty_ || !drawn_) return;
  Draw(done, 1.0, Seconds(std::chrono::steady_clock::now()));
  std::cerr << "\n";
}

double Progress::Seconds(std::chrono::steady_clock::time_point now) const {
  return std::chrono::duration<double>(now - start_).count();
}

std::string Progress::Line(uint64_t done, double fraction, double elapsed) const {
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string points = total_ >= 0 ? absl::StrCat(done, "/", total_) : absl::StrCat(done);
  return absl::StrFormat("%5.1f%%  %s points  %.0f points/s", fraction * 100, points, rate);
}

void Progress::Draw(uint64_t done, double fraction, double elapsed) {
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  // \r returns to the line start; \x1b[K clears what a longer previous
  // line left behind.
  std::cerr << "\r[" << bar << "] " << Line(done, fraction, elapsed) << "\x1b[K" << std::flush;
  drawn_ = true;
}

Batcher::Batcher(client::Client& client, const ImportOptions& options, const char* unit,
                 Progress* progress)
    : client_(client),
      options_(options),
      unit_(unit),
      progress_(progress),
      start_(std::chrono::steady_clock::now()) {
  req_.set_collection(options.collection);
}

absl::Status Batcher::Add(v1::Point point, int64_t position, double fraction) {
  if (req_.points_size() == 0) first_ = position;
  last_ = position;
  bytes_ += point.ByteSizeLong();
  *req_.add_points() = std::move(point);
  if (req_.points_size() < options_.batch && bytes_ < kMaxRequestBytes) return absl::OkStatus();
  QUIVER_RETURN_IF_ERROR(Flush());
  progress_->Update(imported_, fraction);
  return absl::OkStatus();
}

absl::StatusOr<ImportResult> Batcher::Finish() {
  QUIVER_RETURN_IF_ERROR(Flush());
  progress_->Finish(imported_);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return ImportResult{imported_, secs};
}

absl::Status Batcher::Flush() {
  if (req_.points_size() == 0) return absl::OkStatus();
  absl::StatusOr<v1::UpsertPointsResponse> resp = client_.Upsert(req_);
  if (!resp.ok()) {
    return absl::Status(resp.status().code(),
                        absl::StrCat(resp.status().message(), " (in the batch of ", unit_, "s ",
                                     first_, "-", last_, " of ", options_.path, "; ", imported_,
                                     " points were imported before it)"));
  }
  imported_ += static_cast<uint64_t>(req_.points_size());
  req_.clear_points();
  bytes_ = 0;
  return absl::OkStatus();
}

}  // namespace quiver::ctl
