// `quiverctl snapshot create|list|download|restore|delete`: the command
// group, registered on quiverctl's CLI11 app before parsing and run after.
//
// Ownership: the object owns the parsed arguments; the app must outlive
// parsing. Thread-safety: none needed (one command per process). Errors:
// Run returns the server's status, or a local file error.
#ifndef QUIVER_CLIENT_SNAPSHOT_CMD_H_
#define QUIVER_CLIENT_SNAPSHOT_CMD_H_

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace quiver::ctl {

class SnapshotCommands {
 public:
  explicit SnapshotCommands(CLI::App& app);
  // Whether a snapshot command was given.
  bool parsed() const { return group_->parsed(); }
  // `timeout` bounds list and delete; create, download and restore run as
  // long as the work takes (it grows with the database) unless
  // `timeout_given` (--timeout on the command line).
  absl::Status Run(client::Client& c, bool json, absl::Duration timeout, bool timeout_given,
                   std::ostream& out);

 private:
  CLI::App* group_;
  CLI::App* create_;
  CLI::App* list_;
  CLI::App* download_;
  CLI::App* restore_;
  CLI::App* delete_;
  std::string collection_, name_, file_, snapshot_, source_, target_;
};

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_SNAPSHOT_CMD_H_
