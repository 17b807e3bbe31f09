#include "server/method_limits.h"

#include <algorithm>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "query/write_limits.h"

namespace quiver::server {

absl::StatusOr<std::unique_ptr<MethodLimits>> MethodLimits::Create(
    int per_method, const std::vector<std::string>& overrides,
    const std::vector<std::string>& methods) {
  if (per_method < 0) {
    return absl::InvalidArgumentError("--max-concurrent-requests must be >= 0");
  }
  std::unique_ptr<MethodLimits> limits(new MethodLimits());
  for (const std::string& name : methods) {
    auto m = std::make_unique<Method>();
    m->cap = per_method;
    m->flag = absl::StrCat("--max-concurrent-requests=", per_method);
    limits->methods_.emplace(name, std::move(m));
  }
  for (const std::string& entry : overrides) {
    // Several entries may come in one argument, comma-separated.
    for (absl::string_view one : absl::StrSplit(entry, ',', absl::SkipWhitespace())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(one, absl::MaxSplits('=', 1));
      int cap = 0;
      if (kv.second.empty() || !absl::SimpleAtoi(kv.second, &cap) || cap < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--method-concurrency: expected METHOD=N with N >= 0, got \"", one, "\""));
      }
      auto it = limits->methods_.find(kv.first);
      if (it == limits->methods_.end()) {
        std::vector<std::string> known = methods;
        std::sort(known.begin(), known.end());
        return absl::InvalidArgumentError(
            absl::StrCat("--method-concurrency: unknown method \"", kv.first,
                         "\"; methods are ", absl::StrJoin(known, ", ")));
      }
      it->second->cap = cap;
      it->second->flag = absl::StrCat("--method-concurrency=", kv.first, "=", cap);
    }
  }
  return limits;
}

MethodLimits::Permit MethodLimits::Admit(MethodLimits* limits, const char* method) {
  if (limits == nullptr) return Permit();
  auto it = limits->methods_.find(method);
  if (it == limits->methods_.end() || it->second->cap == 0) return Permit();
  Method* m = it->second.get();
  int now = m->inflight.load(std::memory_order_relaxed);
  do {
    if (now >= m->cap) {
      return Permit(absl::ResourceExhaustedError(absl::StrCat(
          "too many concurrent ", method, " requests: ", now,
          " are in flight, the limit set by ", m->flag, "; retry later")));
    }
  } while (!m->inflight.compare_exchange_weak(now, now + 1, std::memory_order_acq_rel,
                                              std::memory_order_relaxed));
  Permit p;
  // The slot's deleter gives it back: copies of the permit share it.
  p.slot_ = std::shared_ptr<void>(m, [](void* raw) {
    static_cast<Method*>(raw)->inflight.fetch_sub(1, std::memory_order_acq_rel);
  });
  return p;
}

int MethodLimits::InFlight(const std::string& method) const {
  auto it = methods_.find(method);
  return it == methods_.end() ? 0 : it->second->inflight.load(std::memory_order_relaxed);
}

void AddRetryAfter(grpc::ServerContextBase* ctx, const absl::Status& s) {
  if (s.ok()) return;
  if (std::optional<absl::Duration> after = RetryAfter(s)) {
    ctx->AddTrailingMetadata("retry-after-ms", absl::StrCat(absl::ToInt64Milliseconds(*after)));
  }
}

}  // namespace quiver::server
