#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "query/write_limits.h"
#include "server/log_limit.h"
#include "server/status.h"
#include "spdlog/spdlog.h"
#include "base/status_macros.h"
#include "base/truncate.h"

namespace quiver::server {
namespace {

absl::Time Deadline(const grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

// Whether `s` is the client's doing or an expected refusal, not a server
// fault: bad requests, key refusals (already logged at warn by Authorize),
// failed preconditions and backpressure (UNAVAILABLE with a retry hint).
bool IsExpectedFailure(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsNotFound(s) || absl::IsAlreadyExists(s) ||
         absl::IsUnimplemented(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s) ||
         absl::IsResourceExhausted(s) || absl::IsUnauthenticated(s) ||
         absl::IsPermissionDenied(s) || absl::IsFailedPrecondition(s) ||
         (absl::IsUnavailable(s) && RetryAfter(s).has_value());
}

// Successes and expected failures are logged at debug; everything that is
// the server's fault at error, at most a few lines per method and code per
// 10 s (one failing disk must not turn every request into a log line).
void LogRpc(const char* method, absl::Time start, const absl::Status& s) {
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (s.ok() || IsExpectedFailure(s)) {
    spdlog::debug("{} {:.3f}ms {}", method, ms, TruncateForMessage(s.ToString(), 1024));
    return;
  }
  const LogRateLimiter::Decision d = RequestLogLimiter().Admit(
      absl::StrCat(method, " ", absl::StatusCodeToString(s.code())), absl::Now());
  if (d.suppressed > 0) {
    spdlog::error("{}: suppressed {} similar lines", method, d.suppressed);
  }
  if (d.write) spdlog::error("{} {:.3f}ms {}", method, ms, TruncateForMessage(s.ToString(), 1024));
}

// A reactor that records the RPC's cancellation (client cancel, deadline,
// connection loss) in a flag the request's StopToken watches. gRPC calls
// OnCancel at most once, before OnDone; the reactor deletes itself in OnDone,
// after Finish, so the flag outlives the work that reads it.
class CancellableReactor final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }
  const std::atomic<bool>* cancelled() const { return &cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* ctx) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  return reactor;
}

// Finishes an RPC refused at entry (API key, per-method limit) with `s`:
// counted and timed like any other, logged as LogRpc does.
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, RpcObserver& obs,
                                 const absl::Status& s) {
  obs.Start();
  obs.Finish(s);
  LogRpc(obs.method(), absl::Now(), s);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(s));
  return reactor;
}

// The API key check at the entry of every RPC (server/auth.h): OK when the
// call may go on, else UNAUTHENTICATED or PERMISSION_DENIED. Refusals are
// logged at warn, rate limited, with the peer's address (never the key).
absl::Status Authorize(grpc::CallbackServerContext* ctx, const RpcGate* gate,
                       const RpcObserver& obs) {
  const Authorizer* auth = gate->authorizer();
  if (auth == nullptr) return absl::OkStatus();
  absl::Status s = auth->Check(*ctx, obs.method(), obs.request());
  if (s.ok()) return s;
  const LogRateLimiter::Decision d = RequestLogLimiter().Admit(
      absl::StrCat("auth ", absl::StatusCodeToString(s.code())), absl::Now());
  if (d.suppressed > 0) spdlog::warn("refused requests: suppressed {} similar lines", d.suppressed);
  if (d.write) spdlog::warn("{} from {} refused: {}", obs.method(), ctx->peer(), s.ToString());
  return s;
}

// What every RPC passes at entry, in order: its API key, then its method's
// concurrency cap. On refusal returns the finished reactor, else null with
// `permit` holding the method's slot until the RPC ends.
grpc::ServerUnaryReactor* Admit(grpc::CallbackServerContext* ctx, const RpcGate* gate,
                                RpcObserver& obs, MethodLimits::Permit* permit) {
  if (absl::Status a = Authorize(ctx, gate, obs); !a.ok()) return Refuse(ctx, obs, a);
  *permit = MethodLimits::Admit(gate->method_limits(), obs.method());
  if (!permit->ok()) return Refuse(ctx, obs, permit->status());
  return nullptr;
}

// For reads, which run inline on the gRPC thread, once admitted (`permit`
// from Admit). `run` returns the status.
template <typename Run>
grpc::ServerUnaryReactor* RunInlineAdmitted(grpc::CallbackServerContext* ctx, RpcGate* gate,
                                            RpcObserver obs, MethodLimits::Permit permit,
                                            Run run) {
  if (!gate->Enter()) return Reject(ctx);
  obs.Start();
  const absl::Time start = absl::Now();
  const absl::Status s = run();
  obs.Finish(s);
  LogRpc(obs.method(), start, s);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(s));
  gate->Exit();
  return reactor;
}

template <typename Run>
grpc::ServerUnaryReactor* RunInline(grpc::CallbackServerContext* ctx, RpcGate* gate,
                                    RpcObserver obs, Run run) {
  MethodLimits::Permit permit;
  if (auto* refused = Admit(ctx, gate, obs, &permit)) return refused;
  return RunInlineAdmitted(ctx, gate, std::move(obs), std::move(permit), std::move(run));
}

// For expensive reads, once admitted: `run(stop)` runs on a worker of
// `queue`, and the reactor is finished from there. A request cancelled or
// past its deadline while it waited is answered without running.
template <typename Run>
grpc::ServerUnaryReactor* RunQueuedAdmitted(grpc::CallbackServerContext* ctx, RpcGate* gate,
                                            WorkQueue* queue, RpcObserver obs,
                                            MethodLimits::Permit permit, Run run) {
  if (!gate->Enter()) return Reject(ctx);
  obs.Start();
  auto* reactor = new CancellableReactor();
  const absl::Time start = absl::Now();
  const StopToken stop(Deadline(ctx), reactor->cancelled());
  queue->Submit([reactor, gate, obs, start, stop, permit, run = std::move(run)]() mutable {
    absl::Status s = stop.Check();
    if (s.ok()) s = run(stop);
    obs.Finish(s);
    LogRpc(obs.method(), start, s);
    reactor->Finish(ToGrpc(s));
    gate->Exit();
  });
  return reactor;
}

template <typename Run>
grpc::ServerUnaryReactor* RunQueued(grpc::CallbackServerContext* ctx, RpcGate* gate,
                                    WorkQueue* queue, RpcObserver obs, Run run) {
  MethodLimits::Permit permit;
  if (auto* refused = Admit(ctx, gate, obs, &permit)) return refused;
  return RunQueuedAdmitted(ctx, gate, queue, std::move(obs), std::move(permit), std::move(run));
}

// For writes: the reactor is finished from the engine's commit thread.
template <typename Start>
grpc::ServerUnaryReactor* FinishLater(grpc::CallbackServerContext* ctx, RpcGate* gate,
                                      RpcObserver obs, Start start_write) {
  MethodLimits::Permit permit;
  if (auto* refused = Admit(ctx, gate, obs, &permit)) return refused;
  if (!gate->Enter()) return Reject(ctx);
  obs.Start();
  auto* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  start_write([ctx, reactor, gate, obs, start, permit](absl::Status s) mutable {
    obs.Finish(s);
    LogRpc(obs.method(), start, s);
    AddRetryAfter(ctx, s);
    reactor->Finish(ToGrpc(s));
    gate->Exit();
  });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* CollectionServiceImpl::CreateCollection(
    grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
    v1::CreateCollectionResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "CreateCollection", req, resp),
                     [&](Engine::Done done) {
                       engine_->CreateCollection(*req, resp, std::move(done));
                     });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::GetCollection(
    grpc::CallbackServerContext* ctx, const v1::GetCollectionRequest* req,
    v1::GetCollectionResponse* resp) {
  return RunInline(ctx, gate_, RpcObserver(metrics_, "GetCollection", req, resp),
                   [&] { return engine_->GetCollection(*req, resp); });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::ListCollections(
    grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest* req,
    v1::ListCollectionsResponse* resp) {
  return RunInline(ctx, gate_, RpcObserver(metrics_, "ListCollections", req, resp), [&] {
    QUIVER_RETURN_IF_ERROR(engine_->ListCollections(resp));
    // A key limited to collections sees only those.
    if (gate_->authorizer() != nullptr) gate_->authorizer()->FilterCollections(*ctx, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::DropCollection(
    grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
    v1::DropCollectionResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "DropCollection", req, resp),
                     [&](Engine::Done done) {
                       engine_->DropCollection(*req, resp, std::move(done));
                     });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::UpdateCollection(
    grpc::CallbackServerContext* ctx, const v1::UpdateCollectionRequest* req,
    v1::UpdateCollectionResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "UpdateCollection", req, resp),
                     [&](Engine::Done done) {
                       engine_->UpdateCollection(*req, resp, std::move(done));
                     });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::VerifyCollection(
    grpc::CallbackServerContext* ctx, const v1::VerifyCollectionRequest* req,
    v1::VerifyCollectionResponse* resp) {
  return RunQueued(ctx, gate_, expensive_, RpcObserver(metrics_, "VerifyCollection", req, resp),
                   [this, req, resp](const StopToken& stop) {
                     return engine_->VerifyCollection(*req, resp, stop);
                   });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::CreateAlias(grpc::CallbackServerContext* ctx,
                                                          const v1::CreateAliasRequest* req,
                                                          v1::CreateAliasResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "CreateAlias", req, resp),
                     [&](Engine::Done done) { engine_->CreateAlias(*req, resp, std::move(done)); });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::SwitchAlias(grpc::CallbackServerContext* ctx,
                                                          const v1::SwitchAliasRequest* req,
                                                          v1::SwitchAliasResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "SwitchAlias", req, resp),
                     [&](Engine::Done done) { engine_->SwitchAlias(*req, resp, std::move(done)); });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::DeleteAlias(grpc::CallbackServerContext* ctx,
                                                          const v1::DeleteAliasRequest* req,
                                                          v1::DeleteAliasResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "DeleteAlias", req, resp),
                     [&](Engine::Done done) { engine_->DeleteAlias(*req, resp, std::move(done)); });
}

grpc::ServerUnaryReactor* CollectionServiceImpl::ListAliases(grpc::CallbackServerContext* ctx,
                                                          const v1::ListAliasesRequest* req,
                                                          v1::ListAliasesResponse* resp) {
  return RunInline(ctx, gate_, RpcObserver(metrics_, "ListAliases", req, resp), [&] {
    QUIVER_RETURN_IF_ERROR(engine_->ListAliases(*req, resp));
    // A key limited to collections sees only aliases within its limit.
    if (gate_->authorizer() != nullptr) gate_->authorizer()->FilterAliases(*ctx, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PointServiceImpl::UpsertPoints(grpc::CallbackServerContext* ctx,
                                                         const v1::UpsertPointsRequest* req,
                                                         v1::UpsertPointsResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "UpsertPoints", req, resp),
                     [&](Engine::Done done) {
                       absl::StatusOr<Bound<BoundUpsert>> up = engine_->BindUpsert(*req);
                       if (!up.ok()) return done(up.status());
                       engine_->Upsert(*std::move(up), resp, Deadline(ctx), std::move(done));
                     });
}

grpc::ServerUnaryReactor* PointServiceImpl::GetPoints(grpc::CallbackServerContext* ctx,
                                                      const v1::GetPointsRequest* req,
                                                      v1::GetPointsResponse* resp) {
  return RunInline(ctx, gate_, RpcObserver(metrics_, "GetPoints", req, resp),
                   [&] { return engine_->GetPoints(*req, resp); });
}

grpc::ServerUnaryReactor* PointServiceImpl::DeletePoints(grpc::CallbackServerContext* ctx,
                                                         const v1::DeletePointsRequest* req,
                                                         v1::DeletePointsResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "DeletePoints", req, resp),
                     [&](Engine::Done done) {
                       absl::StatusOr<Bound<BoundDelete>> del = engine_->BindDelete(*req);
                       if (!del.ok()) return done(del.status());
                       engine_->Delete(*std::move(del), resp, Deadline(ctx), std::move(done));
                     });
}

grpc::ServerUnaryReactor* PointServiceImpl::CountPoints(grpc::CallbackServerContext* ctx,
                                                        const v1::CountPointsRequest* req,
                                                        v1::CountPointsResponse* resp) {
  if (engine_->IsExpensive(*req)) {
    return RunQueued(ctx, gate_, expensive_, RpcObserver(metrics_, "CountPoints", req, resp),
                     [this, req, resp](const StopToken& stop) {
                       return engine_->CountPoints(*req, resp, stop);
                     });
  }
  return RunInline(ctx, gate_, RpcObserver(metrics_, "CountPoints", req, resp),
                   [&] { return engine_->CountPoints(*req, resp, Deadline(ctx)); });
}

grpc::ServerUnaryReactor* PointServiceImpl::ScrollPoints(grpc::CallbackServerContext* ctx,
                                                         const v1::ScrollPointsRequest* req,
                                                         v1::ScrollPointsResponse* resp) {
  if (engine_->IsExpensive(*req)) {
    return RunQueued(ctx, gate_, expensive_, RpcObserver(metrics_, "ScrollPoints", req, resp),
                     [this, req, resp](const StopToken& stop) {
                       return engine_->ScrollPoints(*req, resp, stop);
                     });
  }
  return RunInline(ctx, gate_, RpcObserver(metrics_, "ScrollPoints", req, resp),
                   [&] { return engine_->ScrollPoints(*req, resp, Deadline(ctx)); });
}

grpc::ServerUnaryReactor* PointServiceImpl::UpdatePoints(grpc::CallbackServerContext* ctx,
                                                         const v1::UpdatePointsRequest* req,
                                                         v1::UpdatePointsResponse* resp) {
  return FinishLater(ctx, gate_, RpcObserver(metrics_, "UpdatePoints", req, resp),
                     [&](Engine::Done done) {
                       absl::StatusOr<Bound<BoundUpdate>> up = engine_->BindUpdate(*req);
                       if (!up.ok()) return done(up.status());
                       engine_->Update(*std::move(up), resp, Deadline(ctx), std::move(done));
                     });
}

grpc::ServerUnaryReactor* SearchServiceImpl::Search(grpc::CallbackServerContext* ctx,
                                                    const v1::SearchRequest* req,
                                                    v1::SearchResponse* resp) {
  // Key and method cap first: binding copies and normalizes every query
  // vector, work an unauthorized or over-limit caller must not cause.
  RpcObserver obs(metrics_, "Search", req, resp);
  MethodLimits::Permit permit;
  if (auto* refused = Admit(ctx, gate_, obs, &permit)) return refused;
  // Bound here, so that a request estimated expensive is queued already
  // checked; one that does not bind is answered inline.
  auto bound = std::make_shared<const absl::StatusOr<Bound<BoundSearchRequest>>>(
      engine_->BindSearch(*req));
  if (bound->ok() && engine_->IsExpensive(**bound)) {
    return RunQueuedAdmitted(ctx, gate_, expensive_, std::move(obs), std::move(permit),
                             [this, bound, resp](const StopToken& stop) {
                               return engine_->Search(**bound, stop, resp);
                             });
  }
  return RunInlineAdmitted(ctx, gate_, std::move(obs), std::move(permit), [&] {
    const StopToken stop(Deadline(ctx));
    QUIVER_RETURN_IF_ERROR(stop.Check());
    QUIVER_RETURN_IF_ERROR(bound->status());
    return engine_->Search(**bound, stop, resp);
  });
}

}  // namespace quiver::server
