// quiverctl alias create|switch|delete|list: a second name for a
// collection, switched atomically (see CreateAlias in
// proto/quiver/v1/collections.proto).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct AliasArgs {
  std::string alias;
  std::string collection;
};

// One alias change: prints what changed and the operation-log sequence.
absl::Status PrintChange(Context& c, const char* verb, const AliasArgs& a, uint64_t seq) {
  if (c.globals.json) {
    nlohmann::ordered_json doc = {{"alias", a.alias}};
    if (!a.collection.empty()) doc["collection"] = a.collection;
    doc[verb] = true;
    doc["sequence"] = seq;
    PrintJson(c.out, doc);
  } else if (a.collection.empty()) {
    c.out << verb << " alias " << a.alias << " (sequence " << seq << ")\n";
  } else {
    c.out << verb << " alias " << a.alias << " -> " << a.collection << " (sequence " << seq
          << ")\n";
  }
  return absl::OkStatus();
}

absl::Status AliasList(Context& c, const std::string& collection) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<v1::AliasInfo> aliases, c.client->ListAliases(collection));
  if (c.globals.json) {
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    for (const v1::AliasInfo& a : aliases) doc.push_back(ProtoToJson(a));
    PrintJson(c.out, doc);
    return absl::OkStatus();
  }
  Table t({"ALIAS", "COLLECTION"});
  for (const v1::AliasInfo& a : aliases) t.AddRow({a.alias(), a.collection()});
  t.Print(c.out);
  return absl::OkStatus();
}

}  // namespace

void RegisterAliasCommands(CLI::App& app, CommandSet& commands) {
  auto* alias = app.add_subcommand(
      "alias", "Create, switch, delete or list aliases (second names for collections)");
  alias->require_subcommand(1);

  auto create = std::make_shared<AliasArgs>();
  auto* create_cmd = alias->add_subcommand("create", "Create an alias of a collection");
  create_cmd->add_option("alias", create->alias, "Alias name")->required();
  create_cmd->add_option("collection", create->collection, "Collection it names")->required();
  commands.Add(create_cmd, [create](Context& c) -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(uint64_t seq, c.client->CreateAlias(create->alias, create->collection));
    return PrintChange(c, "created", *create, seq);
  });

  auto sw = std::make_shared<AliasArgs>();
  auto* switch_cmd =
      alias->add_subcommand("switch", "Point an existing alias at another collection, atomically");
  switch_cmd->add_option("alias", sw->alias, "Alias name")->required();
  switch_cmd->add_option("collection", sw->collection, "Collection it will name")->required();
  commands.Add(switch_cmd, [sw](Context& c) -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(uint64_t seq, c.client->SwitchAlias(sw->alias, sw->collection));
    return PrintChange(c, "switched", *sw, seq);
  });

  auto del = std::make_shared<AliasArgs>();
  auto* delete_cmd = alias->add_subcommand("delete", "Delete an alias (never its collection)");
  delete_cmd->add_option("alias", del->alias, "Alias name")->required();
  commands.Add(delete_cmd, [del](Context& c) -> absl::Status {
    QUIVER_ASSIGN_OR_RETURN(uint64_t seq, c.client->DeleteAlias(del->alias));
    return PrintChange(c, "deleted", *del, seq);
  });

  auto list_collection = std::make_shared<std::string>();
  auto* list_cmd = alias->add_subcommand("list", "List aliases, sorted by name");
  list_cmd->add_option("--collection", *list_collection, "Only the aliases of this collection");
  commands.Add(list_cmd,
               [list_collection](Context& c) { return AliasList(c, *list_collection); });
}

}  // namespace quiver::ctl
