// NoopRpc: what one unary Search RPC of a benchmark's size costs on this
// machine with no search behind it. A callback SearchService in the bench's
// own process answers k fixed hits per query vector; its rate is the ceiling
// any server reached through gRPC has, so single-query QPS can be judged
// against "the peer's search plus one round trip" as well as against the
// peer alone.
//
// Owns its gRPC server and clients; not thread-safe (Rate drives its own
// client threads).
#ifndef QUIVER_BENCH_COMMON_NOOP_RPC_H_
#define QUIVER_BENCH_COMMON_NOOP_RPC_H_

#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "client/client.h"
#include "quiver/v1/search.grpc.pb.h"

namespace quiver::bench {

class NoopRpc {
 public:
  // `requests`: the calls to time (cycled), e.g. MakeSearches(..., 1, k).
  // Up to `max_threads` client threads. Dies if the server cannot start.
  NoopRpc(std::vector<v1::SearchRequest> requests, int max_threads);
  ~NoopRpc();

  // No-op RPCs per second over `threads` client threads (`calls` in all).
  double Rate(int threads, size_t calls = 3000);

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<client::Client>> clients_;
  std::vector<v1::SearchRequest> requests_;
};

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_NOOP_RPC_H_
