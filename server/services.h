// The gRPC services of API v1 over an Engine. Each handler uses the callback
// API: cheap reads run inline on the gRPC thread (they never wait on
// writes); reads the engine estimates expensive (Engine::IsExpensive:
// filtered searches and counts over many rows, big batches, exact scans)
// run on the WorkQueue, so at most its thread count of them run at once and
// gRPC's few threads stay free for everything else; writes are handed to
// the engine's commit thread, which finishes the RPC when the write is
// durable. Queued and running expensive reads stop early, with CANCELLED or
// DEADLINE_EXCEEDED, when their client cancels or their deadline passes.
// Handlers run concurrently on gRPC's threads and the WorkQueue and share
// only the Engine, RpcGate and WorkQueue, all safe for concurrent use; no
// handler holds a lock across requests.
//
// Every RPC is first admitted by its method's concurrency cap (the
// RpcGate's MethodLimits, server/method_limits.h): past it, it is refused
// at once with RESOURCE_EXHAUSTED. A write refused for backpressure
// carries its retry hint to the client as the "retry-after-ms" trailer.
//
// The Engine, RpcGate and WorkQueue are borrowed and must outlive the
// services. Errors: each RPC finishes with the engine's absl::Status mapped

// The Engine, RpcGate, WorkQueue and RpcMetrics (null: no metrics) are
// borrowed and must outlive the services; every RPC is observed by an
// RpcObserver (server/rpc_metrics.h) from entry to finish. Errors: each RPC finishes with the engine's absl::Status mapped
// one-to-one to a gRPC status (server/status.h); once the gate closes for
// shutdown, new RPCs get UNAVAILABLE; with API keys (the gate's
// Authorizer), every RPC is first checked and may end UNAUTHENTICATED or
// PERMISSION_DENIED without running. Server-side failures are logged, rate
// limited; client errors only at debug.
#ifndef QUIVER_SERVER_SERVICES_H_
#define QUIVER_SERVER_SERVICES_H_

#include <atomic>

#include "base/mutex.h"
#include "base/sanitizers.h"
#include "absl/time/time.h"
#include "query/engine.h"
#include "server/method_limits.h"

#include "server/arena_allocator.h"
#include "server/auth.h"

#include "server/rpc_metrics.h"
#include "server/work_queue.h"
#include "quiver/v1/collections.grpc.pb.h"
#include "quiver/v1/points.grpc.pb.h"
#include "quiver/v1/search.grpc.pb.h"

namespace quiver::server {

// Counts RPCs in flight so shutdown can wait for exactly those. gRPC 1.51's
// Server::Shutdown(deadline) waits out the whole deadline while any client
// keeps a connection open, even an idle one, so quiverd drains its own
// RPCs first and then shuts gRPC down with an immediate deadline.
// Thread-safe.
class RpcGate {
 public:
  // False once draining: the caller must fail the RPC with UNAVAILABLE.
  bool Enter() {
    inflight_.fetch_add(1, std::memory_order_acq_rel);
    if (draining_.load(std::memory_order_acquire)) {
      Exit();
      return false;
    }
    return true;
  }
  void Exit() {
    if (inflight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      MutexLock lock(&mu_);  // so the notification cannot slip past Drain's check
      idle_.NotifyAll();
    }
  }
  // Refuses new RPCs and waits until none is in flight or `deadline`.
  // Returns the number still in flight.
  int Drain(absl::Time deadline) {
    draining_.store(true, std::memory_order_release);
    MutexLock lock(&mu_);
    idle_.WaitUntil(&mu_, deadline,
                    [this] { return inflight_.load(std::memory_order_acquire) == 0; });
    return inflight_.load(std::memory_order_acquire);
  }
  // The per-method concurrency caps the wrappers admit RPCs through
  // (server/method_limits.h); null: none. Set before serving.
  void set_method_limits(MethodLimits* limits) { method_limits_ = limits; }
  MethodLimits* method_limits() const { return method_limits_; }

  // The API keys every RPC is checked against; null: none required. Set
  // once, before serving starts (gRPC's start orders it before any RPC).
  void set_authorizer(const Authorizer* auth) { auth_ = auth; }
  const Authorizer* authorizer() const { return auth_; }

 private:
  MethodLimits* method_limits_ = nullptr;

  const Authorizer* auth_ = nullptr;
  std::atomic<int> inflight_{0};
  std::atomic<bool> draining_{false};
  Mutex mu_;
  CondVar idle_;
};

class CollectionServiceImpl final : public v1::CollectionService::CallbackService {
 public:
  CollectionServiceImpl(Engine* engine, RpcGate* gate, WorkQueue* expensive,
                        RpcMetrics* metrics = nullptr)
      : engine_(engine), gate_(gate), expensive_(expensive), metrics_(metrics) {}
  grpc::ServerUnaryReactor* CreateCollection(grpc::CallbackServerContext* ctx,
                                             const v1::CreateCollectionRequest* req,
                                             v1::CreateCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* GetCollection(grpc::CallbackServerContext* ctx,
                                          const v1::GetCollectionRequest* req,
                                          v1::GetCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* ListCollections(grpc::CallbackServerContext* ctx,
                                            const v1::ListCollectionsRequest* req,
                                            v1::ListCollectionsResponse* resp) override;
  grpc::ServerUnaryReactor* DropCollection(grpc::CallbackServerContext* ctx,
                                           const v1::DropCollectionRequest* req,
                                           v1::DropCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateCollection(grpc::CallbackServerContext* ctx,
                                             const v1::UpdateCollectionRequest* req,
                                             v1::UpdateCollectionResponse* resp) override;
  // Reads only, but for long (whole scans of the collection): on the
  // expensive-request pool, stopped by a cancel or the deadline.
  grpc::ServerUnaryReactor* VerifyCollection(grpc::CallbackServerContext* ctx,
                                             const v1::VerifyCollectionRequest* req,
                                             v1::VerifyCollectionResponse* resp) override;
  // Alias changes go to the commit thread as writes do; ListAliases is a
  // cheap inline read.
  grpc::ServerUnaryReactor* CreateAlias(grpc::CallbackServerContext* ctx,
                                        const v1::CreateAliasRequest* req,
                                        v1::CreateAliasResponse* resp) override;
  grpc::ServerUnaryReactor* SwitchAlias(grpc::CallbackServerContext* ctx,
                                        const v1::SwitchAliasRequest* req,
                                        v1::SwitchAliasResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteAlias(grpc::CallbackServerContext* ctx,
                                        const v1::DeleteAliasRequest* req,
                                        v1::DeleteAliasResponse* resp) override;
  grpc::ServerUnaryReactor* ListAliases(grpc::CallbackServerContext* ctx,
                                        const v1::ListAliasesRequest* req,
                                        v1::ListAliasesResponse* resp) override;

 private:
  Engine* engine_;
  RpcGate* gate_;
  WorkQueue* expensive_;
  RpcMetrics* metrics_;  // null: no metrics
};

class PointServiceImpl final : public v1::PointService::CallbackService {
 public:
  PointServiceImpl(Engine* engine, RpcGate* gate, WorkQueue* expensive,
                   RpcMetrics* metrics = nullptr)
      : engine_(engine), gate_(gate), expensive_(expensive), metrics_(metrics) {
    // Not under ThreadSanitizer, for the reason given at Search's.
    if (!kThreadSanitizer) SetMessageAllocatorFor_UpsertPoints(&upsert_allocator_);
  }
  grpc::ServerUnaryReactor* UpsertPoints(grpc::CallbackServerContext* ctx,
                                         const v1::UpsertPointsRequest* req,
                                         v1::UpsertPointsResponse* resp) override;
  grpc::ServerUnaryReactor* GetPoints(grpc::CallbackServerContext* ctx,
                                      const v1::GetPointsRequest* req,
                                      v1::GetPointsResponse* resp) override;
  grpc::ServerUnaryReactor* DeletePoints(grpc::CallbackServerContext* ctx,
                                         const v1::DeletePointsRequest* req,
                                         v1::DeletePointsResponse* resp) override;
  grpc::ServerUnaryReactor* CountPoints(grpc::CallbackServerContext* ctx,
                                        const v1::CountPointsRequest* req,
                                        v1::CountPointsResponse* resp) override;
  grpc::ServerUnaryReactor* ScrollPoints(grpc::CallbackServerContext* ctx,
                                         const v1::ScrollPointsRequest* req,
                                         v1::ScrollPointsResponse* resp) override;
  grpc::ServerUnaryReactor* UpdatePoints(grpc::CallbackServerContext* ctx,
                                         const v1::UpdatePointsRequest* req,
                                         v1::UpdatePointsResponse* resp) override;

 private:
  Engine* engine_;
  RpcGate* gate_;
  WorkQueue* expensive_;
  RpcMetrics* metrics_;  // null: no metrics
  // A request's points on an arena of pooled blocks (server/arena_allocator.h).
  // A fresh arena was no faster than the heap for 3 MB of points (its
  // blocks were new memory every call); pooled blocks took ingest_bench's
  // requests from 16.5 to 15.7 ms (1000 x 784 points a request).
  PooledArenaMessageAllocator<v1::UpsertPointsRequest, v1::UpsertPointsResponse>
      upsert_allocator_;
};

class SearchServiceImpl final : public v1::SearchService::CallbackService {
 public:
  SearchServiceImpl(Engine* engine, RpcGate* gate, WorkQueue* expensive,
                    RpcMetrics* metrics = nullptr)
      : engine_(engine), gate_(gate), expensive_(expensive), metrics_(metrics) {
    // Not under ThreadSanitizer: protobuf's map_field.h adds two fields to
    // MapFieldBase when __SANITIZE_THREAD__ is defined, while Debian's
    // libprotobuf is built without it, so the library destroys the map
    // fields of a Hit on an arena at the wrong offsets and crashes. Heap
    // messages (the default allocator) never reach that code.
    if (!kThreadSanitizer) SetMessageAllocatorFor_Search(&allocator_);
  }
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override;

 private:
  Engine* engine_;
  RpcGate* gate_;
  WorkQueue* expensive_;
  RpcMetrics* metrics_;  // null: no metrics
  // Queries and hits on an arena per call (server/arena_allocator.h):
  // measured 4-8% less quiverd CPU per batched query at 1M x 128 (100
  // queries a call); single-query calls showed no difference beyond noise.
  ArenaMessageAllocator<v1::SearchRequest, v1::SearchResponse> allocator_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_SERVICES_H_
