#include "server/log_limit.h"

#include <grpc/support/log.h>

#include <google/protobuf/stubs/logging.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "base/truncate.h"

namespace quiver::server {

LogRateLimiter::Decision LogRateLimiter::Admit(std::string_view key, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = windows_.find(absl::string_view(key.data(), key.size()));
  if (it == windows_.end()) {
    if (windows_.size() >= kMaxKeys) windows_.clear();
    it = windows_.emplace(std::string(key), Window()).first;
  }
  Window& w = it->second;
  Decision d;
  if (now - w.start >= window_) {
    d.suppressed = w.suppressed;
    w.start = now;
    w.written = 0;
    w.suppressed = 0;
  }
  if (w.written < burst_) {
    ++w.written;
    d.write = true;
  } else {
    ++w.suppressed;
  }
  return d;
}

LogRateLimiter& RequestLogLimiter() {
  static LogRateLimiter* limiter = new LogRateLimiter(5, absl::Seconds(10));
  return *limiter;
}

namespace {

// gRPC parses a request on the thread that then runs the interceptors of
// its RPC, so the reason protobuf logs is picked up there.
thread_local std::string tls_parse_error;

void Emit(spdlog::level::level_enum level, const std::string& key, std::string_view source,
          std::string_view message) {
  const LogRateLimiter::Decision d = RequestLogLimiter().Admit(key, absl::Now());
  if (d.suppressed > 0) {
    spdlog::log(level, "{}: suppressed {} similar lines", source, d.suppressed);
  }
  if (d.write) spdlog::log(level, "{}: {}", source, TruncateForMessage(message, 1024));
}

void GrpcLog(gpr_log_func_args* args) {
  const spdlog::level::level_enum level = args->severity == GPR_LOG_SEVERITY_ERROR
                                              ? spdlog::level::err
                                          : args->severity == GPR_LOG_SEVERITY_INFO
                                              ? spdlog::level::info
                                              : spdlog::level::debug;
  const std::string source = absl::StrCat("grpc ", args->file, ":", args->line);
  Emit(level, source, source, args->message == nullptr ? "" : args->message);
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  spdlog::level::level_enum l = spdlog::level::err;
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO: l = spdlog::level::info; break;
    case google::protobuf::LOGLEVEL_WARNING: l = spdlog::level::warn; break;
    default: l = spdlog::level::err; break;
  }
  // Parsing a request whose string field holds invalid UTF-8: the client's
  // mistake, answered with an error status; not a server error.
  if (absl::StrContains(message, "invalid UTF-8")) l = spdlog::level::warn;
  tls_parse_error = TruncateForMessage(message, 512);
  const std::string source = absl::StrCat("protobuf ", file, ":", line);
  Emit(l, source, source, message);
}

}  // namespace

std::string TakeThreadParseError() {
  std::string s = std::move(tls_parse_error);
  tls_parse_error.clear();
  return s;
}

void RouteLibraryLogs() {
  gpr_set_log_function(GrpcLog);
  google::protobuf::SetLogHandler(ProtobufLog);
}

}  // namespace quiver::server
