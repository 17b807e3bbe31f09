// Server: quiverd's gRPC server — the v1 services, the standard health
// service (grpc.health.v1, answering for "" and for each quiver.v1 service
// name) and, with --reflection, server reflection (v1alpha from gRPC, v1
// from server/reflection_v1.h) — over one Engine, behind API keys and TLS
// when configured; with --http-listen also the HTTP/JSON gateway
// (server/http_gateway.h) in front of it.
//
// A Server owns its Engine, the work queue, the services, the Authorizer and
// the TLS material. Thread-safety: Shutdown may be called from any thread,
// once; Wait from one thread; Reload from any thread, any time.
// Errors: Start returns FAILED_PRECONDITION when it would serve a network
// address unprotected (server/auth.h CheckExposure), the keys file's or TLS
// files' error, Engine::Open's status, or UNAVAILABLE when it cannot listen
// on the configured address (--listen, or --http-listen).
#ifndef QUIVER_SERVER_SERVER_H_
#define QUIVER_SERVER_SERVER_H_

#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "query/engine.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http_gateway.h"
#include "server/method_limits.h"

#include "server/metrics.h"
#include "server/services.h"
#include "server/tls.h"

#include "server/snapshot_service.h"
#include "server/reflection_v1.h"

namespace quiver::server {

class Server {
 public:
  // Opens the engine on config.data_dir (recovering it) and starts serving.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config);
  ~Server();

  // The port actually bound (useful with port 0).
  int port() const { return port_; }
  // The HTTP/JSON endpoint's port; 0 without --http-listen.
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  // Blocks until Shutdown has completed.
  void Wait();
  // Stops accepting RPCs, lets in-flight ones finish (up to the grace
  // period), then closes the engine (flushing RocksDB).
  void Shutdown();
  // Re-reads the API keys file and the TLS files (on SIGHUP). What fails to
  // load is logged and the previous keys or certificates stay in force.
  void Reload();

 private:
  Server() = default;
  void ShutdownOnce();
  void NotifyShutDown();
  ServerConfig config_;
  // Declared before the gRPC server, destroyed after it: it calls into them.
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<ServerTls> tls_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<MethodLimits> method_limits_;  // outlives the gate's use of it

  // Null without --metrics-listen. Destroyed before the engine it reads.
  std::unique_ptr<MetricsServer> metrics_;
  RpcGate gate_;
  // Declared after the engine, destroyed before it: its queued jobs use it.
  std::unique_ptr<WorkQueue> expensive_;
  std::unique_ptr<CollectionServiceImpl> collections_;
  std::unique_ptr<PointServiceImpl> points_;
  std::unique_ptr<SearchServiceImpl> search_;
  std::unique_ptr<SnapshotServiceImpl> snapshots_;
  std::unique_ptr<ReflectionV1Service> reflection_v1_;  // null without --reflection
  std::unique_ptr<grpc::Server> grpc_;
  // Null without --http-listen. Destroyed before grpc_, whose in-process
  // channel it calls.
  std::unique_ptr<HttpGateway> http_;
  int port_ = 0;
  std::once_flag shutdown_once_;
  Mutex done_mu_;
  CondVar done_cv_;
  bool shut_down_ ABSL_GUARDED_BY(done_mu_) = false;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_SERVER_H_
