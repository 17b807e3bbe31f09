// quiverctl health: is the server serving.
#include "absl/status/status.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

absl::Status Health(Context& c) {
  QUIVER_RETURN_IF_ERROR(c.client->Health());
  if (c.globals.json) {
    PrintJson(c.out, {{"status", "SERVING"}});
  } else {
    c.out << "SERVING\n";
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterHealthCommands(CLI::App& app, CommandSet& commands) {
  auto* health = app.add_subcommand("health", "Check that the server is serving");
  commands.Add(health, [](Context& c) { return Health(c); });
}

}  // namespace quiver::ctl
