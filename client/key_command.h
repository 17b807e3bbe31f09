// `quiverctl key hash`: makes API keys for quiverd's --api-keys-file.
//
// Without --stdin it draws a new random key (32 bytes from OpenSSL's
// RAND_bytes, written "qk_" + URL-safe base64) and prints the key, its
// SHA-256 and the line to put in the keys file. With --stdin it reads a key
// (one line) and prints only that line. Nothing is stored or sent anywhere.
//
// KeyCommand registers the subcommand on quiverctl's CLI11 app and runs it
// once parsed; one object per process, one thread. Errors: absl::Status
// (INVALID_ARGUMENT for an empty key on stdin, INTERNAL if the random
// source fails).
#ifndef QUIVER_CLIENT_KEY_COMMAND_H_
#define QUIVER_CLIENT_KEY_COMMAND_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace quiver::ctl {

class KeyCommand {
 public:
  // Adds `key hash` to `app`.
  explicit KeyCommand(CLI::App& app);
  bool parsed() const;
  // Prints to `out` (JSON if `json`), reads a key from `in` with --stdin;
  // advice for people goes to `err`.
  absl::Status Run(bool json, std::istream& in, std::ostream& out, std::ostream& err) const;

 private:
  CLI::App* hash_ = nullptr;
  bool from_stdin_ = false;
  std::string role_ = "admin";
  std::vector<std::string> collections_;
};

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_KEY_COMMAND_H_
