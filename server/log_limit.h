// LogRateLimiter: keeps a repeated log line from flooding the log. A client
// that sends many bad requests would otherwise get one line each (gRPC and
// protobuf log every request they reject before any handler runs).
//
// Lines are grouped by a key (a call site, or the kind of message). Per key,
// at most `burst` lines are written per `window`; the rest are counted, and
// the first line written after the window closes is preceded by one
// "suppressed N similar lines" line.
//
// Thread-safety: all methods may be called concurrently.
// Does not fail: it only decides whether to write a line.
#ifndef QUIVER_SERVER_LOG_LIMIT_H_
#define QUIVER_SERVER_LOG_LIMIT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "base/mutex.h"

namespace quiver::server {

class LogRateLimiter {
 public:
  LogRateLimiter(int burst, absl::Duration window) : burst_(burst), window_(window) {}

  struct Decision {
    bool write = false;       // write this line
    uint64_t suppressed = 0;  // first report this many earlier lines suppressed
  };
  // Whether a line with `key` may be written at `now`.
  Decision Admit(std::string_view key, absl::Time now);

 private:
  struct Window {
    absl::Time start = absl::InfinitePast();
    int written = 0;
    uint64_t suppressed = 0;
  };
  // Bounded: keys are call sites and message kinds, but a caller passing
  // something unbounded must not grow the map without end.
  static constexpr size_t kMaxKeys = 1024;
  const int burst_;
  const absl::Duration window_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

// The limiter shared by quiverd's request-path logging: 5 lines per key
// per 10 seconds.
LogRateLimiter& RequestLogLimiter();

// Routes gRPC's own log (gpr_log) and protobuf's (GOOGLE_LOG) into spdlog,
// through RequestLogLimiter, keyed by source file and line. Protobuf's
// complaint about invalid UTF-8 in a string field, logged at ERROR for every
// such request, is a client's mistake: it goes out at warn. Call once at
// start-up, before serving.
void RouteLibraryLogs();

// What protobuf last logged on this thread (and forgets it): the reason a
// request just failed to parse, e.g. "String field
// 'quiver.v1.CountPointsRequest.filter' contains invalid UTF-8 data ...".
// Empty if nothing was logged since the last call.
std::string TakeThreadParseError();

}  // namespace quiver::server

#endif  // QUIVER_SERVER_LOG_LIMIT_H_
