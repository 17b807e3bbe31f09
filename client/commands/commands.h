// The quiverctl command groups: one Register function per group, each in
// its own file under client/commands/, called from main (client/quiverctl.cc)
// in the order the commands appear in --help.
//
// Each adds its CLI11 subcommands to `app` and their run functions to
// `commands` (see command.h for ownership and errors). Not thread-safe.
#ifndef QUIVER_CLIENT_COMMANDS_COMMANDS_H_
#define QUIVER_CLIENT_COMMANDS_COMMANDS_H_

#include "CLI/CLI.hpp"
#include "client/commands/command.h"

namespace quiver::ctl {

// health
void RegisterHealthCommands(CLI::App& app, CommandSet& commands);
// collection create|list|describe|set-index|drop
void RegisterCollectionCommands(CLI::App& app, CommandSet& commands);
// alias create|switch|delete|list
void RegisterAliasCommands(CLI::App& app, CommandSet& commands);
// import
void RegisterImportCommands(CLI::App& app, CommandSet& commands);
// export
void RegisterExportCommands(CLI::App& app, CommandSet& commands);
// get, delete, count
void RegisterPointCommands(CLI::App& app, CommandSet& commands);
// search
void RegisterSearchCommands(CLI::App& app, CommandSet& commands);
// stats
void RegisterStatsCommands(CLI::App& app, CommandSet& commands);
// verify
void RegisterVerifyCommands(CLI::App& app, CommandSet& commands);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_COMMANDS_COMMANDS_H_
