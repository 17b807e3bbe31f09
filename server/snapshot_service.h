// SnapshotService (proto/quiver/v1/snapshots.proto) over the Engine's
// snapshots (query/engine.h, "Snapshots"). Creating and restoring run on
// the service's own worker thread, one at a time (the engine serializes
// them anyway), so they never hold a gRPC thread; list and delete run
// inline. Downloads stream the file in 1 MiB chunks, read as the client
// takes them; uploads for RestoreSnapshot are written through the engine's
// FileSystem to a temporary file in the snapshot directory, restored from,
// and removed.
//
// The Engine and RpcGate are borrowed and must outlive the service.
// Thread-safety: handlers run concurrently on gRPC's threads and the
// worker; each stream's reactor is touched by one gRPC callback at a time.
// Errors: the engine's absl::Status mapped to gRPC (server/status.h); a
// malformed request (no target name, a snapshot name and chunks at once)
// is INVALID_ARGUMENT; UNAVAILABLE once shutting down; UNAUTHENTICATED or
// PERMISSION_DENIED, before anything else, when API keys are required and
// the caller's is missing or not an unlimited admin key; RESOURCE_EXHAUSTED
// past the method's cap (--max-concurrent-requests, --method-concurrency).
// Every RPC is counted in quiver_rpc_* (server/rpc_metrics.h) when metrics
// are on; for the streams, the request count, code and duration.
#ifndef QUIVER_SERVER_SNAPSHOT_SERVICE_H_
#define QUIVER_SERVER_SNAPSHOT_SERVICE_H_

#include <functional>

#include "query/engine.h"
#include "quiver/v1/snapshots.grpc.pb.h"
#include "server/services.h"
#include "server/work_queue.h"

namespace quiver::server {

// The API form of a snapshot's manifest; `size_bytes` from the file.
v1::SnapshotInfo ToSnapshotInfo(const storage::SnapshotManifest& m, uint64_t size_bytes);

class SnapshotServiceImpl final : public v1::SnapshotService::CallbackService {
 public:
  // `metrics` null: no RPC metrics.
  SnapshotServiceImpl(Engine* engine, RpcGate* gate, RpcMetrics* metrics = nullptr)
      : engine_(engine), gate_(gate), metrics_(metrics), worker_(1) {}
  grpc::ServerUnaryReactor* CreateSnapshot(grpc::CallbackServerContext* ctx,
                                           const v1::CreateSnapshotRequest* req,
                                           v1::CreateSnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* ListSnapshots(grpc::CallbackServerContext* ctx,
                                          const v1::ListSnapshotsRequest* req,
                                          v1::ListSnapshotsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteSnapshot(grpc::CallbackServerContext* ctx,
                                           const v1::DeleteSnapshotRequest* req,
                                           v1::DeleteSnapshotResponse* resp) override;
  grpc::ServerWriteReactor<v1::DownloadSnapshotResponse>* DownloadSnapshot(
      grpc::CallbackServerContext* ctx, const v1::DownloadSnapshotRequest* req) override;
  grpc::ServerReadReactor<v1::RestoreSnapshotRequest>* RestoreSnapshot(
      grpc::CallbackServerContext* ctx, v1::RestoreSnapshotResponse* resp) override;

 private:
  // What every snapshot RPC passes first, in order: the API key check
  // (server/auth.h; all of them need an admin key that is not limited to
  // collections), then the method's cap. A refusal is counted in `obs` and
  // logged (rate limited) and returned; else `permit` holds the slot.
  absl::Status Admit(const grpc::ServerContextBase& ctx, RpcObserver& obs,
                     const google::protobuf::Message& req, MethodLimits::Permit* permit) const;
  // Answers a unary RPC: once admitted (Admit) and inside the gate, `run`
  // is called with `done`, which it (or work it hands on) calls once with
  // the status: counted in `obs`, logged if a failure, answered, and the
  // gate and the method's slot left. Refusals are answered here.
  using Done = std::function<void(const absl::Status&)>;
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, RpcObserver obs,
                                     const google::protobuf::Message& req,
                                     const std::function<void(Done)>& run);

  Engine* engine_;
  RpcGate* gate_;
  RpcMetrics* metrics_;
  WorkQueue worker_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_SNAPSHOT_SERVICE_H_
