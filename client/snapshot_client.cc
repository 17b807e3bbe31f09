#include "client/snapshot_client.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace quiver::client {
namespace {

// The deadline (none for an infinite timeout), and the client's API key:
// snapshot calls need an admin key.
void SetDeadline(const Client& c, grpc::ClientContext* ctx, absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  c.AddCredentials(ctx);
}

}  // namespace

absl::StatusOr<v1::SnapshotInfo> CreateSnapshot(Client& c, const std::string& collection,
                                                const std::string& name,
                                                absl::Duration timeout) {
  auto stub = v1::SnapshotService::NewStub(c.channel());
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx, timeout);
  v1::CreateSnapshotRequest req;
  req.set_collection(collection);
  req.set_name(name);
  v1::CreateSnapshotResponse resp;
  if (absl::Status s = FromGrpc(stub->CreateSnapshot(&ctx, req, &resp)); !s.ok()) return s;
  return resp.snapshot();
}

absl::StatusOr<v1::ListSnapshotsResponse> ListSnapshots(Client& c, absl::Duration timeout) {
  auto stub = v1::SnapshotService::NewStub(c.channel());
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx, timeout);
  v1::ListSnapshotsResponse resp;
  if (absl::Status s = FromGrpc(stub->ListSnapshots(&ctx, {}, &resp)); !s.ok()) return s;
  return resp;
}

absl::Status DeleteSnapshot(Client& c, const std::string& name, absl::Duration timeout) {
  auto stub = v1::SnapshotService::NewStub(c.channel());
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx, timeout);
  v1::DeleteSnapshotRequest req;
  req.set_name(name);
  v1::DeleteSnapshotResponse resp;
  return FromGrpc(stub->DeleteSnapshot(&ctx, req, &resp));
}

absl::StatusOr<v1::SnapshotInfo> DownloadSnapshot(Client& c, const std::string& name,
                                                  const std::string& path,
                                                  absl::Duration timeout) {
  auto stub = v1::SnapshotService::NewStub(c.channel());
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx, timeout);
  v1::DownloadSnapshotRequest req;
  req.set_name(name);
  const std::string tmp = path + ".part";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot create ", tmp));
  auto reader = stub->DownloadSnapshot(&ctx, req);
  v1::DownloadSnapshotResponse msg;
  v1::SnapshotInfo info;
  uint64_t bytes = 0;
  bool first = true;
  while (reader->Read(&msg)) {
    if (first) info = msg.snapshot();
    first = false;
    out.write(msg.chunk().data(), static_cast<std::streamsize>(msg.chunk().size()));
    bytes += msg.chunk().size();
  }
  absl::Status s = FromGrpc(reader->Finish());
  out.close();
  if (s.ok() && !out) s = absl::InternalError(absl::StrCat("cannot write ", tmp));
  if (s.ok() && bytes != info.size_bytes()) {
    s = absl::DataLossError(absl::StrCat("download of \"", name, "\" ended after ", bytes,
                                         " of ", info.size_bytes(), " bytes"));
  }
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    s = absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  if (!s.ok()) {
    std::remove(tmp.c_str());
    return s;
  }
  return info;
}

absl::StatusOr<v1::RestoreSnapshotResponse> RestoreSnapshot(Client& c, const std::string& snapshot,
                                                            const std::string& upload_path,
                                                            const std::string& source,
                                                            const std::string& target,
                                                            absl::Duration timeout) {
  std::ifstream in;
  if (!upload_path.empty()) {
    in.open(upload_path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", upload_path));
  }
  auto stub = v1::SnapshotService::NewStub(c.channel());
  grpc::ClientContext ctx;
  SetDeadline(c, &ctx, timeout);
  v1::RestoreSnapshotResponse resp;
  auto writer = stub->RestoreSnapshot(&ctx, &resp);
  v1::RestoreSnapshotRequest req;
  req.set_snapshot(upload_path.empty() ? snapshot : "");
  req.set_source_collection(source);
  req.set_new_collection(target);
  bool sent = false;
  std::string buf(1 << 20, '\0');
  bool ok = true;
  while (ok && !upload_path.empty()) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    req.set_chunk(buf.data(), static_cast<size_t>(got));
    ok = writer->Write(req);
    sent = true;
    req.Clear();
  }
  if (ok && !sent) ok = writer->Write(req);
  if (ok) writer->WritesDone();
  absl::Status s = FromGrpc(writer->Finish());
  if (!s.ok()) return s;
  return resp;
}

}  // namespace quiver::client
