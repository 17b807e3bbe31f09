// The shape every quiverctl command shares: the global flags, the context a
// command runs in, the errors that pick quiverctl's exit status, and the
// CommandSet each command group registers into.
//
// Adding a command: write client/commands/<group>.cc with a
// Register<Group>Commands(CLI::App&, CommandSet&) (declared in
// client/commands/commands.h) that adds the CLI11 subcommand(s) and, for
// each, the function to run with its parsed arguments; call it from main in
// client/quiverctl.cc.
//
// Ownership: a CommandSet owns each command's run function, and through it
// the argument struct the CLI11 options write into, so it must outlive
// parsing. Context owns the client. Not thread-safe (quiverctl is
// single-threaded).
//
// Errors: commands return absl::Status. A server or file error maps to exit
// 1 with "error: <CODE>: <message>"; UsageError (exit 2) and DefectsError
// (exit 3) are marked by payloads so they stay plain statuses.
#ifndef QUIVER_CLIENT_COMMANDS_COMMAND_H_
#define QUIVER_CLIENT_COMMANDS_COMMAND_H_

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace quiver::ctl {

// Flags accepted before or after any command.
struct Globals {
  std::string addr = "127.0.0.1:50051";
  bool json = false;
  double timeout_seconds = 60;
  std::string api_key;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

// What a command runs with; set up once after parsing so each command is a
// plain function.
struct Context {
  Globals globals;
  std::unique_ptr<client::Client> client;
  std::ostream& out = std::cout;
};

// Usage errors (exit 2) travel as INVALID_ARGUMENT like the server's own
// (exit 1); a payload tells them apart without a second error type.
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& s);
// Turns a local parsing failure into a usage error, keeping the text.
absl::Status AsUsage(const absl::Status& s);

// `verify` ran and found defects (exit 3): the report is on stdout already.
absl::Status DefectsError(absl::string_view message);
bool IsDefects(const absl::Status& s);

// The commands the command line may name, each with what to run when it is
// the one parsed.
class CommandSet {
 public:
  using Run = std::function<absl::Status(Context&)>;

  // `command` is a CLI11 (sub)command owned by the app; `run` is called if
  // it was given on the command line.
  void Add(CLI::App* command, Run run);

  // The run function of the command that was parsed; nullptr if none was.
  const Run* Parsed() const;

 private:
  std::vector<std::pair<CLI::App*, Run>> commands_;
};

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_COMMANDS_COMMAND_H_
