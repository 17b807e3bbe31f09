// RpcMetrics and RpcObserver: per-RPC Prometheus metrics of quiverd's gRPC
// services, by method and status code:
//   quiver_rpc_requests_total{method,code}          counter
//   quiver_rpc_duration_seconds{method,code}        histogram
//   quiver_rpc_in_flight{method}                    gauge
//   quiver_rpc_request_bytes_total{method,code}     counter (serialized request)
//   quiver_rpc_response_bytes_total{method,code}    counter (serialized response)
//
// The services' three wrappers (server/services.cc) make one RpcObserver
// per RPC and call Start() at entry and Finish(status) once when the RPC
// ends; an observer without metrics (quiverd without --metrics-listen)
// records nothing and costs nothing. Series for a method and code are made
// the first time that pair is seen, so the output holds only what
// happened; after that an RPC costs a reader lock, two atomic adds per
// counter, and one histogram bucket.
//
// Ownership: RpcMetrics registers its families in a registry that must
// outlive it (server/metrics.h owns both); observers point at it and must
// finish before it goes away (quiverd drains RPCs before it tears down
// metrics). Thread-safety: RpcMetrics is thread-safe; an RpcObserver is
// used by one RPC at a time (Start and Finish may run on different
// threads, one after the other). Errors: none; metrics cannot fail an RPC.
#ifndef QUIVER_SERVER_RPC_METRICS_H_
#define QUIVER_SERVER_RPC_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/mutex.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace quiver::server {

class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry);
  ~RpcMetrics();
  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // The series of one method and status code.
  struct CodeSeries {
    prometheus::Counter* requests;
    prometheus::Histogram* duration;
    prometheus::Counter* request_bytes;
    prometheus::Counter* response_bytes;
  };
  // One method's series; codes filled in as they are first seen.
  struct MethodSeries {
    prometheus::Gauge* in_flight = nullptr;
    std::array<std::atomic<CodeSeries*>, 17> by_code{};
  };
  // `method` is a name that lives for the program (a string literal).
  MethodSeries* Method(const char* method);
  CodeSeries* Code(const char* method, MethodSeries* m, absl::StatusCode code);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Counter>& request_bytes_;
  prometheus::Family<prometheus::Counter>& response_bytes_;
  Mutex mu_;
  // Keyed by the literal's address: each call site names its method with
  // one literal, and one method's sites may use several (same series).
  absl::flat_hash_map<const char*, MethodSeries*> by_site_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> methods_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<CodeSeries>> codes_ ABSL_GUARDED_BY(mu_);
};

// One RPC's observation (see above). Copyable: a wrapper hands it to the
// thread that finishes the RPC.
class RpcObserver {
 public:
  // `metrics` null: records nothing. `request` and `response` must stay
  // alive until Finish (they are the RPC's own messages).
  RpcObserver(RpcMetrics* metrics, const char* method,
              const google::protobuf::Message* request,
              const google::protobuf::Message* response)
      : metrics_(metrics), method_(method), request_(request), response_(response) {}

  const char* method() const { return method_; }
  const google::protobuf::Message& request() const { return *request_; }
  // At entry: one more in flight; the clock starts.
  void Start();
  // When the RPC ends with `s`: counted, timed and sized; one less in flight.
  void Finish(const absl::Status& s);

 private:
  RpcMetrics* metrics_;
  const char* method_;
  const google::protobuf::Message* request_;
  const google::protobuf::Message* response_;
  RpcMetrics::MethodSeries* series_ = nullptr;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_RPC_METRICS_H_
