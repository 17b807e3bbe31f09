#include "server/rpc_metrics.h"

#include <google/protobuf/message.h>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace quiver::server {
namespace {

// From 100 us (a cached get) to 60 s (a verify of a large collection).
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  return *b;
}

}  // namespace

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("quiver_rpc_requests_total")
                    .Help("gRPC requests finished, by method and status code")
                    .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("quiver_rpc_duration_seconds")
                    .Help("gRPC request time from the handler's entry to its finish")
                    .Register(registry)),
      in_flight_(prometheus::BuildGauge()
                     .Name("quiver_rpc_in_flight")
                     .Help("gRPC requests being handled now, by method")
                     .Register(registry)),
      request_bytes_(prometheus::BuildCounter()
                         .Name("quiver_rpc_request_bytes_total")
                         .Help("Serialized bytes of the requests, by method and status code")
                         .Register(registry)),
      response_bytes_(prometheus::BuildCounter()
                          .Name("quiver_rpc_response_bytes_total")
                          .Help("Serialized bytes of the responses, by method and status code")
                          .Register(registry)) {}

RpcMetrics::~RpcMetrics() = default;

RpcMetrics::MethodSeries* RpcMetrics::Method(const char* method) {
  {
    ReaderMutexLock lock(&mu_);
    auto it = by_site_.find(method);
    if (it != by_site_.end()) return it->second;
  }
  MutexLock lock(&mu_);
  std::unique_ptr<MethodSeries>& m = methods_[method];
  if (m == nullptr) {
    m = std::make_unique<MethodSeries>();
    m->in_flight = &in_flight_.Add({{"method", method}});
  }
  by_site_[method] = m.get();
  return m.get();
}

RpcMetrics::CodeSeries* RpcMetrics::Code(const char* method, MethodSeries* m,
                                         absl::StatusCode code) {
  const size_t c = static_cast<size_t>(code);
  if (c >= m->by_code.size()) return nullptr;
  if (CodeSeries* s = m->by_code[c].load(std::memory_order_acquire)) return s;
  MutexLock lock(&mu_);
  if (CodeSeries* s = m->by_code[c].load(std::memory_order_acquire)) return s;
  const prometheus::Labels labels{{"method", method}, {"code", absl::StatusCodeToString(code)}};
  codes_.push_back(std::make_unique<CodeSeries>(
      CodeSeries{&requests_.Add(labels), &duration_.Add(labels, DurationBuckets()),
                 &request_bytes_.Add(labels), &response_bytes_.Add(labels)}));
  CodeSeries* s = codes_.back().get();
  m->by_code[c].store(s, std::memory_order_release);
  return s;
}

void RpcObserver::Start() {
  if (metrics_ == nullptr) return;
  series_ = metrics_->Method(method_);
  series_->in_flight->Increment();
  start_ = std::chrono::steady_clock::now();
}

void RpcObserver::Finish(const absl::Status& s) {
  if (metrics_ == nullptr || series_ == nullptr) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  series_->in_flight->Decrement();
  RpcMetrics::CodeSeries* c = metrics_->Code(method_, series_, s.code());
  if (c == nullptr) return;
  c->requests->Increment();
  c->duration->Observe(seconds);
  if (request_ != nullptr) c->request_bytes->Increment(static_cast<double>(request_->ByteSizeLong()));
  // A failed RPC sends no response message.
  if (response_ != nullptr && s.ok()) {
    c->response_bytes->Increment(static_cast<double>(response_->ByteSizeLong()));
  }
}

}  // namespace quiver::server
