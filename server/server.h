// Server: quiverd's gRPC server — the v1 services, the standard health
// service (grpc.health.v1) and server reflection — over one Engine.
//
// A Server owns its Engine, the work queue and the services.
// Thread-safety: Shutdown may be called from any thread, once; Wait from
// one thread.
// Errors: Start returns Engine::Open's status, or UNAVAILABLE when it cannot
// listen on the configured address.
#ifndef QUIVER_SERVER_SERVER_H_
#define QUIVER_SERVER_SERVER_H_

#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "query/engine.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/services.h"

namespace quiver::server {

class Server {
 public:
  // Opens the engine on config.data_dir (recovering it) and starts serving.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config);
  ~Server();

  // The port actually bound (useful with port 0).
  int port() const { return port_; }
  // Blocks until Shutdown has completed.
  void Wait();
  // Stops accepting RPCs, lets in-flight ones finish (up to the grace
  // period), then closes the engine (flushing RocksDB).
  void Shutdown();

 private:
  Server() = default;
  void ShutdownOnce();
  void NotifyShutDown();
  ServerConfig config_;
  std::unique_ptr<Engine> engine_;
  // Null without --metrics-listen. Destroyed before the engine it reads.
  std::unique_ptr<MetricsServer> metrics_;
  RpcGate gate_;
  // Declared after the engine, destroyed before it: its queued jobs use it.
  std::unique_ptr<WorkQueue> expensive_;
  std::unique_ptr<CollectionServiceImpl> collections_;
  std::unique_ptr<PointServiceImpl> points_;
  std::unique_ptr<SearchServiceImpl> search_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
  std::once_flag shutdown_once_;
  Mutex done_mu_;
  CondVar done_cv_;
  bool shut_down_ ABSL_GUARDED_BY(done_mu_) = false;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_SERVER_H_
