// quiverctl stats: a collection's figures, fields and segments.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/commands/segments.h"
#include "client/output.h"
#include "client/recall_output.h"

namespace quiver::ctl {
namespace {

void PrintStats(std::ostream& out, const v1::CollectionInfo& info) {
  const v1::CollectionStats& st = info.stats();
  PrintKeyValues(out, {
                          {"collection", info.name()},
                          {"points", absl::StrCat(st.point_count())},
                          {"deleted", absl::StrCat(st.deleted_count())},
                          {"storage", absl::StrCat(FormatBytes(st.storage_bytes()), " (",
                                                   st.storage_bytes(), " bytes)")},
                          {"last sequence", absl::StrCat(st.last_sequence())},
                      });
  if (st.vectors_size() > 0) {
    out << "\n";
    Table t({"VECTOR FIELD", "MEMORY", "DISK"});
    for (const auto& v : st.vectors()) {
      t.AddRow({v.name(), FormatBytes(v.memory_bytes()), FormatBytes(v.disk_bytes())});
    }
    t.Print(out);
  }
  PrintRecallAudit(out, st);
  PrintSegments(out, info);
}

absl::Status Stats(Context& c, const std::string& name) {
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->GetCollection(name));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(info.stats()));
  } else {
    PrintStats(c.out, info);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterStatsCommands(CLI::App& app, CommandSet& commands) {
  auto stats_coll_ptr = std::make_shared<std::string>();
  std::string& stats_coll = *stats_coll_ptr;
  auto* stats_cmd = app.add_subcommand("stats", "Statistics of a collection");
  stats_cmd->add_option("collection", stats_coll, "Collection name")->required();

  commands.Add(stats_cmd, [stats_coll_ptr](Context& c) { return Stats(c, *stats_coll_ptr); });
}

}  // namespace quiver::ctl
