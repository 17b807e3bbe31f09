// MetricsServer: quiverd's Prometheus endpoint (--metrics-listen HOST:PORT).
// It serves the text exposition format at http://HOST:PORT/metrics through
// prometheus-cpp's Exposer (its own small HTTP server and threads): the
// per-RPC families of RpcMetrics (server/rpc_metrics.h), which the services
// update as RPCs finish, and the families EngineCollector
// (server/metrics_collector.h) computes from the engine at each scrape.
//
// Ownership: owns the exposer, the registry and both metric sources;
// borrows the Engine, which must outlive it (quiverd destroys the metrics
// server after gRPC has drained and before the engine closes). Thread-safety:
// scrapes run on the exposer's threads; rpc() is thread-safe. Errors: Start
// returns INVALID_ARGUMENT for an address that is not HOST:PORT and
// UNAVAILABLE when it cannot listen there (port taken, address not local).
#ifndef QUIVER_SERVER_METRICS_H_
#define QUIVER_SERVER_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "query/engine.h"
#include "server/rpc_metrics.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace quiver::server {

class EngineCollector;

class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                             Engine* engine);
  // Stops serving (waits for a scrape in progress).
  ~MetricsServer();

  RpcMetrics* rpc() { return rpc_.get(); }
  // The port it listens on (the one asked for, or the one chosen for 0).
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<RpcMetrics> rpc_;
  std::shared_ptr<EngineCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_METRICS_H_
