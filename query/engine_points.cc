// The engine's entry points for ScrollPoints and UpdatePoints (engine.h):
// binding against the collection, and queueing a partial update as a
// Writer the commit thread merges and commits (engine_commit.cc).
#include <future>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/engine.h"
#include "query/engine_writer.h"

namespace quiver {

absl::StatusOr<Bound<BoundUpdate>> Engine::BindUpdate(const v1::UpdatePointsRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  // Binding copies every vector of the request (and encodes vector sets):
  // about the request's size again, plus an encoding per set.
  uint64_t bytes = req.ByteSizeLong();
  for (const v1::PointUpdate& u : req.updates()) {
    for (const auto& [name, mv] : u.multi_vectors()) {
      const int f = c->schema().VectorFieldIndex(name);
      if (f >= 0) bytes += uint64_t{(*c->bind_target().stored_dims)[f]} * sizeof(float);
    }
  }
  QUIVER_RETURN_IF_ERROR(CheckRequestMemory(
      options_.limits, bytes, absl::StrCat(req.updates_size(), " point updates with their vectors")));
  QUIVER_ASSIGN_OR_RETURN(BoundUpdate up, bind::BindUpdate(c->bind_target(), req));
  return Bound<BoundUpdate>{std::move(c), std::move(up)};
}

void Engine::Update(const v1::UpdatePointsRequest& req, v1::UpdatePointsResponse* resp,
                    absl::Time deadline, Done done) {
  absl::StatusOr<Bound<BoundUpdate>> up = BindUpdate(req);
  if (!up.ok()) return done(up.status());
  Update(*std::move(up), resp, deadline, std::move(done));
}

void Engine::Update(Bound<BoundUpdate> up, v1::UpdatePointsResponse* resp, absl::Time deadline,
                    Done done) {
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kPointUpdate;
  // Alone in its group: the merge reads the applied rows, which no earlier
  // write of the same group may have changed unseen.
  w->barrier = true;
  w->name = up.collection->name();
  w->coll = std::move(up.collection);
  w->point_update = std::move(up.request);
  w->deadline = deadline;
  w->bytes = w->point_update.request_bytes;
  w->respond = [resp](Writer& w) {
    resp->set_sequence(w.seq);
    resp->set_created_count(w.points_created);
    resp->set_updated_count(static_cast<uint32_t>(w.up.points.size()) - w.points_created);
  };
  w->done = std::move(done);
  AdmitUpsert(std::move(w));
}

absl::Status Engine::Update(const v1::UpdatePointsRequest& req, v1::UpdatePointsResponse* resp) {
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  Update(req, resp, absl::InfiniteFuture(), [&p](absl::Status s) { p.set_value(std::move(s)); });
  return f.get();
}

absl::Status Engine::ScrollPoints(const v1::ScrollPointsRequest& req,
                                  v1::ScrollPointsResponse* resp, const StopToken& stop) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(const BoundScroll q, bind::BindScroll(c->bind_target(), c->id(), req));
  const absl::Status s = c->Scroll(q, stop, resp);
  if (!s.ok()) resp->Clear();  // what was filled before a limit or a stop ended it
  return s;
}

bool Engine::IsExpensive(const v1::ScrollPointsRequest& req) const {
  absl::StatusOr<std::shared_ptr<Collection>> c = Find(req.collection());
  return c.ok() && (*c)->EstimateScrollWork(req.filter()) > kExpensiveWork;
}

}  // namespace quiver
