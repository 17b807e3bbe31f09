// The gRPC services of API v1 over an Engine. Each handler uses the callback
// API: reads run inline on the gRPC thread (they never wait on writes);
// writes are handed to the engine's commit thread, which finishes the RPC
// when the write is durable. No handler holds a lock across requests.
//
// The Engine is borrowed and must outlive the services.
#ifndef QUIVER_SERVER_SERVICES_H_
#define QUIVER_SERVER_SERVICES_H_

#include "query/engine.h"
#include "quiver/v1/collections.grpc.pb.h"
#include "quiver/v1/points.grpc.pb.h"
#include "quiver/v1/search.grpc.pb.h"

namespace quiver::server {

class CollectionServiceImpl final : public v1::CollectionService::CallbackService {
 public:
  explicit CollectionServiceImpl(Engine* engine) : engine_(engine) {}
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

 private:
  Engine* engine_;
};

class PointServiceImpl final : public v1::PointService::CallbackService {
 public:
  explicit PointServiceImpl(Engine* engine) : engine_(engine) {}
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

 private:
  Engine* engine_;
};

class SearchServiceImpl final : public v1::SearchService::CallbackService {
 public:
  explicit SearchServiceImpl(Engine* engine) : engine_(engine) {}
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override;

 private:
  Engine* engine_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_SERVICES_H_
