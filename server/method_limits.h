// MethodLimits: a cap on the requests of each RPC method in flight at once
// (--max-concurrent-requests, per method; --method-concurrency overrides it
// for named methods), so that one kind of request arriving in a flood
// (say, thousands of concurrent searches or upserts, each holding its
// request message and, for queued reads, a place in the expensive-request
// queue) cannot take every thread and byte of the server. A request past
// its method's cap is refused at once with RESOURCE_EXHAUSTED naming the
// flag; it never waits, so the client's own retry policy decides when to
// try again, and requests of other methods are not affected.
//
// Server owns one MethodLimits; each RPC wrapper in server/services.cc calls
// Admit once at its entry and holds the returned permit until the RPC is
// finished. Thread-safe: Admit and permits' release may run on any thread.
// Errors: Create reports a malformed or unknown override as
// INVALID_ARGUMENT; Admit reports a full method as RESOURCE_EXHAUSTED.
#ifndef QUIVER_SERVER_METHOD_LIMITS_H_
#define QUIVER_SERVER_METHOD_LIMITS_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver::server {

class MethodLimits {
 public:
  // `per_method`: the cap of every method (0: none). `overrides`:
  // "Method=N" entries (N >= 0, 0: none), Method one of `methods` (short
  // names, as "Search" or "UpsertPoints").
  static absl::StatusOr<std::unique_ptr<MethodLimits>> Create(
      int per_method, const std::vector<std::string>& overrides,
      const std::vector<std::string>& methods);

  // Holds one slot of a method until destroyed (copies share the slot).
  // An empty permit (from a refusal) holds nothing.
  class Permit {
   public:
    Permit() = default;
    explicit Permit(absl::Status refused) : refused_(std::move(refused)) {}
    bool ok() const { return refused_.ok(); }
    const absl::Status& status() const { return refused_; }

   private:
    friend class MethodLimits;
    std::shared_ptr<void> slot_;
    absl::Status refused_;
  };

  // A permit for one request of `method`, or RESOURCE_EXHAUSTED if its cap
  // is reached. `limits` may be null (no limits).
  static Permit Admit(MethodLimits* limits, const char* method);

  // Requests of `method` in flight now (for tests and logs).
  int InFlight(const std::string& method) const;

 private:
  struct Method {
    int cap = 0;  // 0: none
    std::atomic<int> inflight{0};
    std::string flag;  // the flag that set the cap, with its value
  };
  MethodLimits() = default;

  // Filled by Create, never changed after (only the counts inside change),
  // so lookups need no lock.
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_;
};

// Sends the retry hint of a refusal (query/write_limits.h: RetryAfter) to
// the client as the "retry-after-ms" trailer (milliseconds, decimal).
// Call before the RPC is finished.
void AddRetryAfter(grpc::ServerContextBase* ctx, const absl::Status& s);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_METHOD_LIMITS_H_
