// quiverctl get, delete and count: points by id or by filter.
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "client/commands/columns.h"
#include "client/commands/commands.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct GetArgs {
  std::string collection;
  std::vector<std::string> ids;
  bool vectors = false;
  std::vector<std::string> attrs;
};

struct DeleteArgs {
  std::string collection;
  std::vector<std::string> ids;
  std::string filter;
};

absl::Status Get(Context& c, const GetArgs& a) {
  v1::GetPointsRequest req;
  req.set_collection(a.collection);
  for (const auto& id : a.ids) req.add_ids(id);
  req.set_with_vectors(a.vectors);
  for (const auto& name : a.attrs) req.add_attributes(name);
  QUIVER_ASSIGN_OR_RETURN(v1::GetPointsResponse resp, c.client->GetPoints(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
  } else if (resp.points_size() > 0) {
    const auto& pts = resp.points();
    std::vector<std::string> attr_cols = AttrColumns(
        pts, [](const v1::Point& p) -> const auto& { return p.attributes(); }, a.attrs);
    std::vector<std::string> vec_cols = VectorColumns(
        pts, [](const v1::Point& p) -> const auto& { return p.vectors(); });
    std::vector<std::string> headers = {"ID"};
    headers.insert(headers.end(), attr_cols.begin(), attr_cols.end());
    headers.insert(headers.end(), vec_cols.begin(), vec_cols.end());
    Table t(headers);
    for (const auto& p : pts) {
      std::vector<std::string> row = {p.id()};
      for (const auto& name : attr_cols) {
        auto it = p.attributes().find(name);
        row.push_back(it == p.attributes().end() ? "" : FormatValue(it->second));
      }
      for (const auto& name : vec_cols) {
        auto it = p.vectors().find(name);
        row.push_back(it == p.vectors().end() ? "" : FormatVector(it->second, kShownVectorValues));
      }
      t.AddRow(std::move(row));
    }
    t.Print(c.out);
  }
  // Like `kubectl get a b`: print what exists, then fail naming the rest.
  std::set<std::string> found;
  for (const auto& p : resp.points()) found.insert(p.id());
  std::vector<std::string> missing;
  for (const auto& id : a.ids) {
    if (!found.count(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    return absl::NotFoundError(absl::StrCat("no point with id ", absl::StrJoin(missing, ", "),
                                            " in collection \"", a.collection, "\""));
  }
  return absl::OkStatus();
}

absl::Status Delete(Context& c, const DeleteArgs& a) {
  if (a.ids.empty() == a.filter.empty()) {
    return UsageError("give either point ids or --filter EXPR (exactly one)");
  }
  v1::DeletePointsRequest req;
  req.set_collection(a.collection);
  for (const auto& id : a.ids) req.add_ids(id);
  req.set_filter(a.filter);
  QUIVER_ASSIGN_OR_RETURN(v1::DeletePointsResponse resp, c.client->Delete(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
  } else {
    c.out << "deleted " << resp.deleted_count() << " points (sequence " << resp.sequence() << ")\n";
  }
  return absl::OkStatus();
}

absl::Status Count(Context& c, const std::string& collection, const std::string& filter) {
  QUIVER_ASSIGN_OR_RETURN(uint64_t n, c.client->Count(collection, filter));
  if (c.globals.json) {
    PrintJson(c.out, {{"count", n}});
  } else {
    c.out << n << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterPointCommands(CLI::App& app, CommandSet& commands) {
  auto get_args = std::make_shared<GetArgs>();
  GetArgs& get = *get_args;
  auto* get_cmd = app.add_subcommand("get", "Fetch points by id");
  get_cmd->add_option("collection", get.collection, "Collection name")->required();
  get_cmd->add_option("ids", get.ids, "Point ids")->required();
  get_cmd->add_flag("--vectors", get.vectors, "Include vectors");
  get_cmd->add_option("--attrs", get.attrs, "Attributes to return (a,b; default all)")
      ->delimiter(',');

  auto del_args = std::make_shared<DeleteArgs>();
  DeleteArgs& del = *del_args;
  auto* delete_cmd = app.add_subcommand("delete", "Delete points by id or by filter");
  delete_cmd->add_option("collection", del.collection, "Collection name")->required();
  delete_cmd->add_option("ids", del.ids, "Point ids");
  delete_cmd->add_option("--filter", del.filter, "Delete the points matching this filter");

  auto count_args = std::make_shared<std::pair<std::string, std::string>>();
  std::string& count_coll = count_args->first;
  std::string& count_filter = count_args->second;
  auto* count_cmd = app.add_subcommand("count", "Count points");
  count_cmd->add_option("collection", count_coll, "Collection name")->required();
  count_cmd->add_option("--filter", count_filter, "Count only points matching this filter");

  commands.Add(get_cmd, [get_args](Context& c) { return Get(c, *get_args); });
  commands.Add(delete_cmd, [del_args](Context& c) { return Delete(c, *del_args); });
  commands.Add(count_cmd, [count_args](Context& c) {
    return Count(c, count_args->first, count_args->second);
  });
}

}  // namespace quiver::ctl
