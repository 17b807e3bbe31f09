// Turns quiverd's limit flags into what enforces them: the defaults
// derived from the memory quiverd may use (server/memory_limit.h), the
// engine's LimitOptions (memory budget, request memory, write
// backpressure), the merge target, and the per-method concurrency caps
// (MethodLimits), and logs the result once at start-up.
//
// Called once by Server::Start, single-threaded. Errors: INVALID_ARGUMENT
// for a bad --method-concurrency.
#ifndef QUIVER_SERVER_LIMITS_SETUP_H_
#define QUIVER_SERVER_LIMITS_SETUP_H_

#include <memory>

#include "absl/status/status.h"
#include "query/engine.h"
#include "server/config.h"
#include "server/method_limits.h"

namespace quiver::server {

absl::Status ConfigureLimits(ServerConfig* config, EngineOptions* engine,
                             std::unique_ptr<MethodLimits>* methods);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_LIMITS_SETUP_H_
