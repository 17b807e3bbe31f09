#include "server/limits_setup.h"

#include <google/protobuf/descriptor.h>

#include "base/status_macros.h"
#include "server/memory_limit.h"
#include "spdlog/spdlog.h"

namespace quiver::server {
namespace {

// The short names of the API's methods ("Search"), as services.cc's
// and snapshot_service.cc's wrappers name them.
std::vector<std::string> ApiMethods() {
  std::vector<std::string> out;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* service :
       {"quiver.v1.CollectionService", "quiver.v1.PointService", "quiver.v1.SearchService",
        "quiver.v1.SnapshotService"}) {
    const google::protobuf::ServiceDescriptor* d = pool->FindServiceByName(service);
    for (int i = 0; d != nullptr && i < d->method_count(); ++i) {
      out.push_back(d->method(i)->name());
    }
  }
  return out;
}

}  // namespace

absl::Status ConfigureLimits(ServerConfig* config, EngineOptions* engine,
                             std::unique_ptr<MethodLimits>* methods) {
  const MemoryLimit memory = DetectMemoryLimit();
  ResolveLimits(config, memory.bytes);
  LimitOptions& l = engine->limits;
  l.memory_budget_bytes = static_cast<uint64_t>(config->memory_budget_mb) << 20;
  l.max_request_memory_bytes = static_cast<uint64_t>(config->max_request_memory_mb) << 20;
  engine->collection.merge_target_bytes = static_cast<uint64_t>(config->merge_target_mb) << 20;
  l.max_unindexed_rows = static_cast<uint64_t>(config->max_unindexed_rows);
  l.max_compaction_debt_rows = static_cast<uint64_t>(config->max_compaction_debt_rows);
  l.max_write_delay = absl::Milliseconds(config->max_write_delay_ms);
  QUIVER_ASSIGN_OR_RETURN(*methods, MethodLimits::Create(config->max_concurrent_requests,
                                                         config->method_concurrency,
                                                         ApiMethods()));
  spdlog::info(
      "limits: memory {} MiB ({}), --memory-budget-mb={}, --max-request-memory-mb={}, "
      "--merge-target-mb={}, --max-concurrent-requests={}, --max-unindexed-rows={}, "
      "--max-compaction-debt-rows={}, --max-write-delay-ms={}",
      memory.bytes >> 20, memory.source.empty() ? "unknown" : memory.source,
      config->memory_budget_mb, config->max_request_memory_mb, config->merge_target_mb,
      config->max_concurrent_requests, config->max_unindexed_rows,
      config->max_compaction_debt_rows, config->max_write_delay_ms);
  return absl::OkStatus();
}

}  // namespace quiver::server
