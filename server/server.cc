#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "server/cpu_limit.h"
#include "server/decode_errors.h"
#include "server/limits_setup.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"

namespace quiver::server {
namespace {

// Linking grpc++_reflection registers its plugin for every ServerBuilder
// (a static initializer), so without --reflection the plugin is taken out
// of this builder's list again.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
      return p->name() == "proto_server_reflection";
    });
  }
};

// The services health answers for by name, reflection lists and the HTTP
// gateway serves (besides reflection itself).
std::vector<std::string> ServedServices() {
  return {v1::CollectionService::service_full_name(), v1::PointService::service_full_name(),
          v1::SearchService::service_full_name(), v1::SnapshotService::service_full_name()};
}

// The health service's full name; taken from its generated descriptor,
// which also links that descriptor in for the HTTP gateway's GET /healthz.
std::string HealthServiceName() {
  return grpc::health::v1::HealthCheckRequest::descriptor()->file()->service(0)->full_name();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config) {
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
  if (absl::Status exposed = CheckExposure(config); !exposed.ok()) return exposed;
  if (!config.api_keys_file.empty()) {
    auto auth = Authorizer::Load(config.api_keys_file);
    if (!auth.ok()) return auth.status();
    s->auth_ = *std::move(auth);
    s->gate_.set_authorizer(s->auth_.get());
    spdlog::info("API keys: {} from {}", s->auth_->key_count(), config.api_keys_file);
  }
  if (!config.tls_cert.empty()) {
    auto tls = ServerTls::Load(config.tls_cert, config.tls_key, config.tls_client_ca);
    if (!tls.ok()) return tls.status();
    s->tls_ = *std::move(tls);
    spdlog::info("TLS: {}{}", config.tls_cert,
                 s->tls_->mutual() ? ", client certificates required" : "");
    if (s->auth_ == nullptr && !s->tls_->mutual() && !IsLoopbackListen(config.listen)) {
      spdlog::warn("TLS without --api-keys-file or --tls-client-ca: traffic is encrypted, but "
                   "any client that reaches {} may call every RPC", config.listen);
    }
  }

  const std::string blas = ConfigureBlas(config.search_threads);
  if (blas.rfind("OpenBLAS", 0) == 0) spdlog::info("BLAS: {}", blas);
  else spdlog::warn("BLAS: {}", blas);

  EngineOptions eo;
  eo.data_dir = config.data_dir;
  eo.collection.segment_max_rows = static_cast<uint32_t>(config.segment_max_rows);
  eo.collection.merge_idle = absl::Seconds(config.merge_idle_s);
  eo.collection.compact_deleted_ratio = config.compact_deleted_ratio;
  eo.collection.rerank_direct_io = config.rerank_direct_io;
  eo.collection.map_index_files = config.index_mmap;
  eo.collection.index_check_samples = config.index_check_samples;
  eo.collection.max_response_bytes = static_cast<size_t>(config.max_message_bytes);
  eo.seal_idle = absl::Milliseconds(config.seal_idle_ms);
  eo.builder.workers = config.index_build_workers;
  const CpuLimit cpu = DetectCpuLimit();
  // All cores but one: on 2 cores a second build thread did not build
  // faster beside a busy searcher (33-38 s against 36 s for 50k x 784
  // HNSW) and took searches' p99 from 1.1-1.3x idle to 2.4-4.5x, nice 10
  // or not; the core left over serves requests.
  eo.builder.threads_per_build =
      config.index_build_threads > 0 ? config.index_build_threads : std::max(1, cpu.cores - 1);
  spdlog::info("cores: {} ({}); index builds use {} thread{} at nice {}", cpu.cores, cpu.source,
               eo.builder.threads_per_build, eo.builder.threads_per_build == 1 ? "" : "s",
               eo.builder.nice);
  eo.builder.check_samples = config.index_check_samples;
  eo.builder.calibration.samples = config.calibration_samples;
  eo.builder.calibration.filtered_samples =
      std::min(config.calibration_samples, eo.builder.calibration.filtered_samples);
  eo.on_write_failure = [srv = s.get()] {
    if (srv->grpc_ != nullptr) srv->grpc_->GetHealthCheckService()->SetServingStatus(false);
  };
  eo.store.durability = config.durability == "async" ? storage::Durability::kAsync
                                                     : storage::Durability::kSync;
  eo.store.block_cache_bytes = static_cast<size_t>(config.block_cache_mb) << 20;
  eo.store.accept_wal_loss = config.accept_wal_loss;
  QUIVER_RETURN_IF_ERROR(ConfigureLimits(&s->config_, &eo, &s->method_limits_));
  s->gate_.set_method_limits(s->method_limits_.get());
  if (!config.restore_from.empty()) {
    if (absl::Status r = Engine::RestoreDataDir(config.restore_from, config.data_dir,
                                                *storage::FileSystem::Default());
        !r.ok()) {
      return r;
    }
  }

  eo.recall_audit_rate = config.recall_audit_rate;
  eo.recall_audit_cpu_share = config.recall_audit_cpu;
  auto engine = Engine::Open(eo);
  if (!engine.ok()) return engine.status();
  s->engine_ = *std::move(engine);

  const int workers = config.expensive_workers > 0 ? config.expensive_workers : cpu.cores;
  s->expensive_ = std::make_unique<WorkQueue>(workers);
  if (!config.metrics_listen.empty()) {
    auto metrics = MetricsServer::Start(config.metrics_listen, s->engine_.get());
    if (!metrics.ok()) return metrics.status();
    s->metrics_ = *std::move(metrics);
  }
  RpcMetrics* rpc_metrics = s->metrics_ ? s->metrics_->rpc() : nullptr;
  s->collections_ = std::make_unique<CollectionServiceImpl>(s->engine_.get(), &s->gate_,
                                                            s->expensive_.get(), rpc_metrics);
  s->points_ = std::make_unique<PointServiceImpl>(s->engine_.get(), &s->gate_,
                                                  s->expensive_.get(), rpc_metrics);
  s->search_ = std::make_unique<SearchServiceImpl>(s->engine_.get(), &s->gate_,
                                                   s->expensive_.get(), rpc_metrics);

  s->snapshots_ = std::make_unique<SnapshotServiceImpl>(s->engine_.get(), &s->gate_, rpc_metrics);

  // The HTTP port is taken before gRPC starts: gRPC's health service
  // answers SERVING as soon as it runs, and a client that saw SERVING must
  // not have its HTTP connection refused.
  if (!config.http_listen.empty()) {
    HttpGatewayOptions ho;
    ho.listen = config.http_listen;
    ho.max_body_bytes = config.max_message_bytes;
    ho.services = ServedServices();
    ho.services.push_back(HealthServiceName());
    auto http = HttpGateway::Bind(ho, s->tls_.get());
    if (!http.ok()) return http.status();
    s->http_ = *std::move(http);
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!config.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  // Without this a second quiverd on a busy port would bind it too
  // (SO_REUSEPORT) and split the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(
      config.listen,
      s->tls_ != nullptr ? s->tls_->Credentials() : grpc::InsecureServerCredentials(), &s->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> intercept;
  intercept.push_back(std::make_unique<DecodeErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(intercept));
  builder.RegisterService(s->collections_.get());
  builder.RegisterService(s->points_.get());
  builder.RegisterService(s->search_.get());
  builder.RegisterService(s->snapshots_.get());
  if (config.reflection) {
    std::vector<std::string> listed = ServedServices();
    listed.insert(listed.end(), {HealthServiceName(), "grpc.reflection.v1alpha.ServerReflection",
                                 "grpc.reflection.v1.ServerReflection"});
    s->reflection_v1_ = std::make_unique<ReflectionV1Service>(std::move(listed));
    builder.RegisterService(s->reflection_v1_.get());
  }
  s->grpc_ = builder.BuildAndStart();
  if (s->grpc_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  if (s->http_ != nullptr) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
    s->http_->Serve(s->grpc_->InProcessChannel(args));
    spdlog::info("HTTP/JSON on {} (port {}){}", config.http_listen, s->http_->port(),
                 s->http_->https() ? ", HTTPS" : "");
  }
  s->grpc_->GetHealthCheckService()->SetServingStatus(true);
  // Per service name too; SetServingStatus(false) turns them all off.
  for (const std::string& name : ServedServices()) {
    s->grpc_->GetHealthCheckService()->SetServingStatus(name, true);
  }
  spdlog::info("quiverd serving on {} (port {}), data dir {}, durability {}", config.listen,
               s->port_, config.data_dir, config.durability);
  return s;
}

Server::~Server() { Shutdown(); }

void Server::Reload() {
  if (auth_ != nullptr) {
    const absl::Status st = auth_->Reload();
    if (st.ok()) {
      spdlog::info("reloaded API keys: {} from {}", auth_->key_count(), auth_->path());
    } else {
      spdlog::error("reload: {}; keeping the {} API keys loaded before",
                    std::string(st.message()), auth_->key_count());
    }
  }
  if (tls_ != nullptr) {
    const absl::Status st = tls_->Reload();
    if (st.ok()) {
      spdlog::info("reloaded TLS files; new connections use them");
    } else {
      spdlog::error("reload: {}; keeping the TLS certificate loaded before",
                    std::string(st.message()));
    }
  }
  if (auth_ == nullptr && tls_ == nullptr) spdlog::info("reload: no API keys or TLS to reload");
}

void Server::Wait() {
  MutexLock lock(&done_mu_);
  done_cv_.Wait(&done_mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(done_mu_) { return shut_down_; });
}

void Server::NotifyShutDown() {
  {
    MutexLock lock(&done_mu_);
    shut_down_ = true;
  }
  done_cv_.NotifyAll();
}

void Server::Shutdown() {
  std::call_once(shutdown_once_, [this] { ShutdownOnce(); });
}

void Server::ShutdownOnce() {
  if (grpc_ == nullptr) {
    // Start failed part-way; there is nothing to drain.
    metrics_.reset();
    engine_.reset();
    NotifyShutDown();
    return;
  }
  spdlog::info("shutting down: finishing in-flight requests");
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  // Builds are redone after the restart anyway; stopped now they leave the
  // CPU to the requests being drained.
  engine_->StopIndexBuilds();
  const int left = gate_.Drain(absl::Now() + absl::Seconds(config_.shutdown_grace_seconds));
  if (left > 0) spdlog::warn("{} requests still in flight after the grace period; cancelling", left);
  // No new HTTP connections; requests already read still reach the gRPC
  // server until it shuts down (then UNAVAILABLE), and the gateway's
  // threads are joined before the server they call is destroyed.
  if (http_ != nullptr) http_->StopListening();
  // Our own requests are done (or out of time). The short deadline lets the
  // UNAVAILABLE replies of requests refused meanwhile reach their clients
  // instead of being cancelled.
  grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(250));
  grpc_->Wait();
  http_.reset();
  engine_->StopAcceptingWrites();
  grpc_.reset();
  expensive_.reset();  // runs what is queued (cancelled by now), joins
  metrics_.reset();    // before the engine its scrapes read
  engine_.reset();  // drains the commit thread, closes RocksDB
  spdlog::info("shutdown complete");
  NotifyShutDown();
}

}  // namespace quiver::server
