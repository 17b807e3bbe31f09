// Snapshot calls of the C++ client library (SnapshotService in
// proto/quiver/v1/snapshots.proto) over a Client's channel: create, list,
// delete, download to a local file, and restore from a snapshot on the
// server or by uploading a local file.
//
// Thread-safety: the functions may be called concurrently (gRPC channels
// are thread-safe). Errors: the server's gRPC status carried over
// unchanged as absl::Status; local file errors are INTERNAL or NOT_FOUND
// naming the path.
#ifndef QUIVER_CLIENT_SNAPSHOT_CLIENT_H_
#define QUIVER_CLIENT_SNAPSHOT_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "quiver/v1/snapshots.grpc.pb.h"

namespace quiver::client {

// `timeout`: absl::InfiniteDuration() sets no deadline.
// `collection` empty: every collection; `name` empty: the server names it.
absl::StatusOr<v1::SnapshotInfo> CreateSnapshot(Client& c, const std::string& collection,
                                                const std::string& name,
                                                absl::Duration timeout);
absl::StatusOr<v1::ListSnapshotsResponse> ListSnapshots(Client& c, absl::Duration timeout);
absl::Status DeleteSnapshot(Client& c, const std::string& name, absl::Duration timeout);
// Writes the snapshot to `path` (replaced only once the whole file came).
absl::StatusOr<v1::SnapshotInfo> DownloadSnapshot(Client& c, const std::string& name,
                                                  const std::string& path,
                                                  absl::Duration timeout);
// Restores `source` (empty: the snapshot's only collection) as `target`,
// from the server's snapshot `snapshot`, or, if `upload_path` is set, from
// that local file, uploaded.
absl::StatusOr<v1::RestoreSnapshotResponse> RestoreSnapshot(Client& c, const std::string& snapshot,
                                                            const std::string& upload_path,
                                                            const std::string& source,
                                                            const std::string& target,
                                                            absl::Duration timeout);

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_SNAPSHOT_CLIENT_H_
