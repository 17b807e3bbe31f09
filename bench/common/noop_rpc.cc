#include "bench/common/noop_rpc.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"

namespace quiver::bench {

class NoopRpc::Service final : public v1::SearchService::CallbackService {
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx, const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override {
    for (int q = 0; q < req->vectors_size(); ++q) {
      v1::SearchResult* r = resp->add_results();
      for (uint32_t h = 0; h < req->k(); ++h) {
        v1::Hit* hit = r->add_hits();
        hit->set_id(std::to_string(h));
        hit->set_score(static_cast<float>(h));
      }
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

NoopRpc::NoopRpc(std::vector<v1::SearchRequest> requests, int max_threads)
    : service_(std::make_unique<Service>()), requests_(std::move(requests)) {
  if (requests_.empty()) Die("noop server", absl::InvalidArgumentError("no requests"));
  int port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(service_.get());
  server_ = b.BuildAndStart();
  if (server_ == nullptr || port == 0) Die("noop server", absl::InternalError("start"));
  for (int t = 0; t < std::max(1, max_threads); ++t) {
    clients_.push_back(std::make_unique<client::Client>(absl::StrCat("127.0.0.1:", port)));
  }
  Rate(static_cast<int>(clients_.size()), 1000);  // connect and warm up
}

NoopRpc::~NoopRpc() {
  clients_.clear();
  if (server_ != nullptr) server_->Shutdown();
}

double NoopRpc::Rate(int threads, size_t calls) {
  threads = std::clamp(threads, 1, static_cast<int>(clients_.size()));
  Run run = Drive(calls, threads, 0, 0, [&](size_t c, int t, Run*) {
    auto resp = clients_[t]->Search(requests_[c % requests_.size()]);
    if (!resp.ok()) Die("noop Search", resp.status());
  });
  return static_cast<double>(calls) / run.seconds;
}

}  // namespace quiver::bench
