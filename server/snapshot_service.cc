#include "server/snapshot_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "server/log_limit.h"
#include "server/status.h"
#include "spdlog/spdlog.h"

namespace quiver::server {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

grpc::Status Unavailable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down");
}

// For a job that waited on the worker: a client that is gone (cancelled,
// or its deadline passed) would not learn of a snapshot or collection made
// after it stopped waiting, and its retry would make a second one.
absl::Status Gone(const char* what) {
  return absl::CancelledError(absl::StrCat(what, " not started: the client cancelled or its "
                                                 "deadline passed while it waited for an earlier "
                                                 "one"));
}

// Client-caused failures at debug; the rest at warn, rate limited per
// method and code like the other services' (server/log_limit.h).
void LogFailure(const char* method, const absl::Status& s) {
  if (s.ok()) return;
  if (absl::IsInvalidArgument(s) || absl::IsNotFound(s) || absl::IsAlreadyExists(s) ||
      absl::IsFailedPrecondition(s) || absl::IsResourceExhausted(s) || absl::IsCancelled(s) ||
      absl::IsDeadlineExceeded(s) || absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s)) {
    spdlog::debug("{}: {}", method, s.ToString());
    return;
  }
  const LogRateLimiter::Decision d = RequestLogLimiter().Admit(
      absl::StrCat(method, " ", absl::StatusCodeToString(s.code())), absl::Now());
  if (d.suppressed > 0) spdlog::warn("{}: suppressed {} similar lines", method, d.suppressed);
  if (d.write) spdlog::warn("{}: {}", method, s.ToString());
}

uint64_t SizeOf(Engine& engine, const std::string& name) {
  absl::StatusOr<std::string> path = engine.SnapshotPath(name);
  if (!path.ok()) return 0;
  absl::StatusOr<uint64_t> size = engine.file_system().FileSize(*path);
  return size.ok() ? *size : 0;
}

// Streams one snapshot file. Reads happen in OnWriteDone, one chunk ahead
// of the client; the file stays readable if it is deleted meanwhile.
class DownloadReactor final : public grpc::ServerWriteReactor<v1::DownloadSnapshotResponse> {
 public:
  DownloadReactor(Engine* engine, RpcGate* gate, RpcObserver obs, MethodLimits::Permit permit,
                  const std::string& name)
      : gate_(gate), obs_(std::move(obs)), permit_(std::move(permit)) {
    obs_.Start();
    absl::StatusOr<std::string> path = engine->SnapshotPath(name);
    absl::StatusOr<storage::SnapshotManifest> m =
        path.ok() ? storage::ReadSnapshotManifest(*path) : path.status();
    if (!m.ok()) {
      End(m.status());
      return;
    }
    fd_ = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      End(storage::IoError("open", *path, errno));
      return;
    }
    m->set_name(name);
    *msg_.mutable_snapshot() = ToSnapshotInfo(*m, SizeOf(*engine, name));
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return End(absl::CancelledError("download cancelled"));
    Next();
  }
  void OnDone() override {
    if (fd_ >= 0) ::close(fd_);
    gate_->Exit();
    delete this;
  }

 private:
  void Next() {
    std::string* chunk = msg_.mutable_chunk();
    chunk->resize(kChunkBytes);
    size_t got = 0;
    while (got < kChunkBytes) {
      const ssize_t n = ::read(fd_, chunk->data() + got, kChunkBytes - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return End(storage::IoError("read", "snapshot", errno));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    chunk->resize(got);
    if (got == 0 && !first_) return End(absl::OkStatus());
    first_ = false;
    out_ = msg_;
    msg_.Clear();
    StartWrite(&out_);
  }

  // Finishes the stream (once), counted and logged.
  void End(const absl::Status& s) {
    obs_.Finish(s);
    LogFailure("DownloadSnapshot", s);
    Finish(ToGrpc(s));
  }

  RpcGate* gate_;
  RpcObserver obs_;
  MethodLimits::Permit permit_;  // the method's slot, until the stream ends
  int fd_ = -1;
  bool first_ = true;
  v1::DownloadSnapshotResponse msg_, out_;
};

// Receives RestoreSnapshot's messages; an upload is written to a temporary
// file as it comes. The restore itself runs on the service's worker.
class RestoreReactor final : public grpc::ServerReadReactor<v1::RestoreSnapshotRequest> {
 public:
  RestoreReactor(grpc::CallbackServerContext* ctx, Engine* engine, RpcGate* gate,
                 WorkQueue* worker, RpcObserver obs, MethodLimits::Permit permit,
                 v1::RestoreSnapshotResponse* resp)
      : ctx_(ctx),
        engine_(engine),
        gate_(gate),
        worker_(worker),
        obs_(std::move(obs)),
        permit_(std::move(permit)),
        resp_(resp) {
    obs_.Start();
    StartRead(&req_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Complete();
    absl::Status s = Take();
    if (!s.ok()) return Fail(s);
    req_.Clear();
    StartRead(&req_);
  }
  void OnDone() override {
    if (upload_ != nullptr) (void)upload_->Close();
    if (!upload_path_.empty()) (void)engine_->file_system().DeleteFile(upload_path_);
    gate_->Exit();
    delete this;
  }

 private:
  absl::Status Take() {
    if (first_) {
      first_ = false;
      snapshot_ = req_.snapshot();
      source_ = req_.source_collection();
      target_ = req_.new_collection();
      if (target_.empty()) {
        return absl::InvalidArgumentError("new_collection is required: the name to restore as");
      }
      if (snapshot_.empty()) {
        upload_path_ = engine_->NewUploadPath();
        absl::Status s = engine_->file_system().CreateDirs(storage::DirName(upload_path_));
        if (!s.ok()) return s;
        absl::StatusOr<std::unique_ptr<storage::WritableFile>> f =
            engine_->file_system().NewWritableFile(upload_path_);
        if (!f.ok()) return f.status();
        upload_ = *std::move(f);
      }
    } else if (!req_.snapshot().empty() || !req_.new_collection().empty() ||
               !req_.source_collection().empty()) {
      return absl::InvalidArgumentError(
          "only the first RestoreSnapshot message names the snapshot and collections");
    }
    if (req_.chunk().empty()) return absl::OkStatus();
    if (upload_ == nullptr) {
      return absl::InvalidArgumentError(
          "a RestoreSnapshot request names a snapshot on the server or uploads one, not both");
    }
    received_ += req_.chunk().size();
    return upload_->Append(req_.chunk());
  }

  // Removes the upload before answering, so a client that lists the
  // snapshot directory after the answer finds nothing of it.
  void Respond(const absl::Status& s) {
    if (upload_ != nullptr) (void)upload_->Close();
    upload_.reset();
    if (!upload_path_.empty()) (void)engine_->file_system().DeleteFile(upload_path_);
    upload_path_.clear();
    obs_.Finish(s);
    Finish(ToGrpc(s));
  }
  void Fail(const absl::Status& s) {
    LogFailure("RestoreSnapshot", s);
    Respond(s);
  }

  void Complete() {
    // OnReadDone(false) also comes of a cancel, not only of a half-close.
    if (ctx_->IsCancelled()) return Respond(Gone("restore"));
    if (first_) return Fail(absl::InvalidArgumentError("RestoreSnapshot got no request"));
    absl::Status s;
    if (upload_ != nullptr) {
      s = upload_->Sync();
      if (absl::Status c = upload_->Close(); s.ok()) s = c;
      upload_.reset();
      if (s.ok() && received_ == 0) s = absl::InvalidArgumentError("the upload is empty");
      if (!s.ok()) return Fail(s);
    }
    worker_->Submit([this] {
      if (ctx_->IsCancelled()) return Respond(Gone("restore"));
      absl::StatusOr<std::string> path =
          upload_path_.empty() ? engine_->SnapshotPath(snapshot_) : upload_path_;
      absl::StatusOr<std::shared_ptr<Collection>> c =
          path.ok() ? engine_->RestoreCollection(*path, source_, target_) : path.status();
      if (!c.ok()) {
        // The client named a snapshot or sent one: where its file lies on
        // the server is none of its business (and the data directory's
        // path no client's to learn).
        if (!path.ok()) return Fail(c.status());
        const std::string shown = upload_path_.empty()
                                      ? absl::StrCat("snapshot \"", snapshot_, "\"")
                                      : std::string("the uploaded snapshot");
        return Fail(absl::Status(c.status().code(),
                                 absl::StrReplaceAll(c.status().message(), {{*path, shown}})));
      }
      engine_->DescribeCollection(**c, resp_->mutable_collection());
      if (absl::StatusOr<storage::SnapshotManifest> m = storage::ReadSnapshotManifest(*path);
          m.ok()) {
        resp_->set_sequence(m->sequence());
      }
      Respond(absl::OkStatus());
    });
  }

  grpc::CallbackServerContext* ctx_;
  Engine* engine_;
  RpcGate* gate_;
  WorkQueue* worker_;
  RpcObserver obs_;
  MethodLimits::Permit permit_;  // the method's slot, until the RPC ends
  v1::RestoreSnapshotResponse* resp_;
  v1::RestoreSnapshotRequest req_;
  bool first_ = true;
  std::string snapshot_, source_, target_;
  std::string upload_path_;
  std::unique_ptr<storage::WritableFile> upload_;
  uint64_t received_ = 0;
};

}  // namespace

v1::SnapshotInfo ToSnapshotInfo(const storage::SnapshotManifest& m, uint64_t size_bytes) {
  v1::SnapshotInfo info;
  info.set_name(m.name());
  info.set_sequence(m.sequence());
  info.set_created_unix_ms(m.created_unix_ms());
  info.set_all_collections(m.all_collections());
  for (const auto& c : m.collections()) info.add_collections(c.name());
  info.set_size_bytes(size_bytes);
  info.set_file_count(static_cast<uint32_t>(m.files_size()));
  return info;
}

grpc::ServerUnaryReactor* SnapshotServiceImpl::RunUnary(
    grpc::CallbackServerContext* ctx, RpcObserver obs, const google::protobuf::Message& req,
    const std::function<void(Done)>& run) {
  auto* reactor = ctx->DefaultReactor();
  MethodLimits::Permit permit;
  if (absl::Status a = Admit(*ctx, obs, req, &permit); !a.ok()) {
    reactor->Finish(ToGrpc(a));
    return reactor;
  }
  if (!gate_->Enter()) {
    reactor->Finish(Unavailable());
    return reactor;
  }
  obs.Start();
  run([this, reactor, obs, permit](const absl::Status& s) mutable {
    obs.Finish(s);
    LogFailure(obs.method(), s);
    reactor->Finish(ToGrpc(s));
    gate_->Exit();
  });
  return reactor;
}

grpc::ServerUnaryReactor* SnapshotServiceImpl::CreateSnapshot(
    grpc::CallbackServerContext* ctx, const v1::CreateSnapshotRequest* req,
    v1::CreateSnapshotResponse* resp) {
  return RunUnary(ctx, RpcObserver(metrics_, "CreateSnapshot", req, resp), *req,
                  [this, ctx, req, resp](Done done) {
                    worker_.Submit([this, ctx, req, resp, done] {
                      if (ctx->IsCancelled()) {
                        spdlog::info("CreateSnapshot \"{}\": the client is gone; not started",
                                     req->name());
                        return done(Gone("snapshot"));
                      }
                      absl::StatusOr<storage::SnapshotManifest> m =
                          engine_->CreateSnapshot(req->name(), req->collection());
                      if (m.ok()) {
                        *resp->mutable_snapshot() = ToSnapshotInfo(*m, SizeOf(*engine_, m->name()));
                      }
                      done(m.status());
                    });
                  });
}

grpc::ServerUnaryReactor* SnapshotServiceImpl::ListSnapshots(grpc::CallbackServerContext* ctx,
                                                             const v1::ListSnapshotsRequest* req,
                                                             v1::ListSnapshotsResponse* resp) {
  return RunUnary(ctx, RpcObserver(metrics_, "ListSnapshots", req, resp), *req,
                  [this, resp](Done done) {
                    std::vector<std::pair<std::string, std::string>> damaged;
                    absl::StatusOr<std::vector<storage::SnapshotManifest>> all =
                        engine_->ListSnapshots(&damaged);
                    if (all.ok()) {
                      for (const auto& m : *all) {
                        *resp->add_snapshots() = ToSnapshotInfo(m, SizeOf(*engine_, m.name()));
                      }
                      for (const auto& [name, why] : damaged) {
                        resp->add_damaged(absl::StrCat(name, ": ", why));
                      }
                    }
                    done(all.status());
                  });
}

grpc::ServerUnaryReactor* SnapshotServiceImpl::DeleteSnapshot(grpc::CallbackServerContext* ctx,
                                                              const v1::DeleteSnapshotRequest* req,
                                                              v1::DeleteSnapshotResponse* resp) {
  return RunUnary(ctx, RpcObserver(metrics_, "DeleteSnapshot", req, resp), *req,
                  [this, req](Done done) { done(engine_->DeleteSnapshot(req->name())); });
}

grpc::ServerWriteReactor<v1::DownloadSnapshotResponse>* SnapshotServiceImpl::DownloadSnapshot(
    grpc::CallbackServerContext* ctx, const v1::DownloadSnapshotRequest* req) {
  // The chunks are not counted in the response bytes.
  RpcObserver obs(metrics_, "DownloadSnapshot", req, nullptr);
  MethodLimits::Permit permit;
  if (absl::Status a = Admit(*ctx, obs, *req, &permit); !a.ok()) {
    struct Denied final : grpc::ServerWriteReactor<v1::DownloadSnapshotResponse> {
      explicit Denied(const absl::Status& s) { Finish(ToGrpc(s)); }
      void OnDone() override { delete this; }
    };
    return new Denied(a);
  }
  if (!gate_->Enter()) {
    struct Refused final : grpc::ServerWriteReactor<v1::DownloadSnapshotResponse> {
      Refused() { Finish(Unavailable()); }
      void OnDone() override { delete this; }
    };
    return new Refused();
  }
  return new DownloadReactor(engine_, gate_, std::move(obs), std::move(permit), req->name());
}

grpc::ServerReadReactor<v1::RestoreSnapshotRequest>* SnapshotServiceImpl::RestoreSnapshot(
    grpc::CallbackServerContext* ctx, v1::RestoreSnapshotResponse* resp) {
  // The uploaded messages are not read yet: the check is on the method
  // alone, which needs an admin key not limited to collections.
  // Nor are the uploaded chunks in the request bytes.
  RpcObserver obs(metrics_, "RestoreSnapshot", nullptr, resp);
  MethodLimits::Permit permit;
  if (absl::Status a = Admit(*ctx, obs, v1::RestoreSnapshotRequest(), &permit); !a.ok()) {
    struct Denied final : grpc::ServerReadReactor<v1::RestoreSnapshotRequest> {
      explicit Denied(const absl::Status& s) { Finish(ToGrpc(s)); }
      void OnDone() override { delete this; }
    };
    return new Denied(a);
  }
  if (!gate_->Enter()) {
    struct Refused final : grpc::ServerReadReactor<v1::RestoreSnapshotRequest> {
      Refused() { Finish(Unavailable()); }
      void OnDone() override { delete this; }
    };
    return new Refused();
  }
  return new RestoreReactor(ctx, engine_, gate_, &worker_, std::move(obs), std::move(permit),
                            resp);
}

absl::Status SnapshotServiceImpl::Admit(const grpc::ServerContextBase& ctx, RpcObserver& obs,
                                        const google::protobuf::Message& req,
                                        MethodLimits::Permit* permit) const {
  absl::Status s;
  if (const Authorizer* auth = gate_->authorizer(); auth != nullptr) {
    s = auth->Check(ctx, obs.method(), req);
    if (!s.ok()) {
      // The same key as services.cc's refusals: one budget for all of them.
      const LogRateLimiter::Decision d = RequestLogLimiter().Admit(
          absl::StrCat("auth ", absl::StatusCodeToString(s.code())), absl::Now());
      if (d.suppressed > 0) {
        spdlog::warn("refused requests: suppressed {} similar lines", d.suppressed);
      }
      if (d.write) spdlog::warn("{} from {} refused: {}", obs.method(), ctx.peer(), s.ToString());
    }
  }
  if (s.ok()) {
    *permit = MethodLimits::Admit(gate_->method_limits(), obs.method());
    s = permit->status();
    LogFailure(obs.method(), s);
  }
  if (!s.ok()) {
    obs.Start();
    obs.Finish(s);
  }
  return s;
}

}  // namespace quiver::server
