// quiverctl: the admin command-line tool for quiverd.
//
//   quiverctl [--addr host:port] [--json] [--timeout SECONDS] [--api-key KEY]
//             [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] COMMAND ...
//
// Commands: health; collection create|list|describe|drop|set-index; import; get;
// delete; count; search; stats; verify; key hash. Run `quiverctl COMMAND --help`
// for each.
// Each command group lives in client/commands/<group>.cc and is registered
// below (see client/commands/command.h).
//
// Results go to stdout (tables for people, --json for scripts); errors go to
// stderr as "error: <CODE>: <message>", the server's message unchanged.
// Exit status: 0 success, 1 the server or a file said no, 2 bad usage,
// 3 verify found defects.
#include <iostream>
#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/commands/command.h"
#include "client/commands/commands.h"
#include "client/key_command.h"
#include "client/snapshot_cmd.h"

namespace quiver::ctl {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"quiverctl: administer a quiverd server"};
  app.require_subcommand(1);
  // Global flags may also follow the command: `quiverctl count c --json`.
  app.fallthrough();
  Globals g;
  app.add_option("--addr", g.addr, "Server address host:port")
      ->envname("QUIVER_ADDR")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print JSON instead of tables");
  CLI::Option* timeout_opt =
      app.add_option("--timeout", g.timeout_seconds, "Per-request timeout in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--api-key", g.api_key,
                 "API key, sent as 'authorization: Bearer KEY' (prefer the environment "
                 "variable: command lines are visible to other users)")
      ->envname("QUIVER_API_KEY");
  app.add_flag("--tls", g.tls, "Connect with TLS, verifying the server with the system's CAs");
  app.add_option("--tls-ca", g.tls_ca, "Connect with TLS; the server's CA certificates (PEM)")
      ->envname("QUIVER_TLS_CA");
  app.add_option("--tls-cert", g.tls_cert, "Mutual TLS: this client's certificate (PEM)")
      ->envname("QUIVER_TLS_CERT");
  app.add_option("--tls-key", g.tls_key, "Mutual TLS: the private key of --tls-cert (PEM)")
      ->envname("QUIVER_TLS_KEY");
  app.add_option("--tls-server-name", g.tls_server_name,
                 "Name the server's certificate must carry, if not the host of --addr")
      ->envname("QUIVER_TLS_SERVER_NAME");
  KeyCommand key_cmd(app);

  CommandSet commands;
  RegisterHealthCommands(app, commands);
  RegisterCollectionCommands(app, commands);
  RegisterAliasCommands(app, commands);
  RegisterImportCommands(app, commands);
  RegisterExportCommands(app, commands);
  RegisterPointCommands(app, commands);
  RegisterSearchCommands(app, commands);
  RegisterStatsCommands(app, commands);
  RegisterVerifyCommands(app, commands);
  SnapshotCommands snapshot_cmds(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "error: " << e.what() << "\nrun 'quiverctl --help' for usage\n";
    return 2;
  }

  Context c;
  c.globals = g;
  client::ClientOptions copts;
  copts.timeout = absl::Seconds(g.timeout_seconds);
  copts.api_key = g.api_key;
  copts.tls = g.tls;
  copts.tls_server_name = g.tls_server_name;
  absl::Status s = client::LoadClientTls(g.tls_ca, g.tls_cert, g.tls_key, &copts);
  c.client = std::make_unique<client::Client>(g.addr, copts);

  if (!s.ok()) {
  } else if (key_cmd.parsed()) {
    s = key_cmd.Run(g.json, std::cin, c.out, std::cerr);
  } else if (snapshot_cmds.parsed()) {
    s = snapshot_cmds.Run(*c.client, g.json, absl::Seconds(g.timeout_seconds),
                          timeout_opt->count() > 0, c.out);
  } else if (const CommandSet::Run* run = commands.Parsed()) {
    s = (*run)(c);
  }
  c.out.flush();
  if (s.ok()) return 0;
  if (IsDefects(s)) {
    std::cerr << "error: " << s.message() << "\n";
    return 3;
  }
  if (IsUsageError(s)) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  std::cerr << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return 1;
}

}  // namespace
}  // namespace quiver::ctl

int main(int argc, char** argv) { return quiver::ctl::Main(argc, argv); }
