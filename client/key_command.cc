#include "client/key_command.h"

#include <openssl/rand.h>

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/api_key.h"
#include "nlohmann/json.hpp"

namespace quiver::ctl {

KeyCommand::KeyCommand(CLI::App& app) {
  CLI::App* key = app.add_subcommand("key", "Make API keys for quiverd --api-keys-file");
  key->require_subcommand(1);
  hash_ = key->add_subcommand(
      "hash",
      "Print a new random API key, its SHA-256 and its line for the keys file (with --stdin: "
      "the line of a key read from standard input)");
  hash_->add_flag("--stdin", from_stdin_, "Hash the key on standard input (one line)");
  hash_->add_option("--role", role_, "Role of the key: read, write or admin")
      ->check(CLI::IsMember({"read", "write", "admin"}))
      ->capture_default_str();
  hash_->add_option("--collections", collections_,
                    "Limit the key to these collections (a,b); default: all")
      ->delimiter(',');
}

bool KeyCommand::parsed() const { return hash_->parsed(); }

absl::Status KeyCommand::Run(bool json, std::istream& in, std::ostream& out,
                             std::ostream& err) const {
  std::string key;
  if (from_stdin_) {
    std::getline(in, key);
    if (!key.empty() && key.back() == '\r') key.pop_back();
    if (key.empty()) return absl::InvalidArgumentError("no key on standard input");
  } else {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
      return absl::InternalError("the random number generator failed");
    }
    key = "qk_" + absl::WebSafeBase64Escape(
                      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  }
  const std::string sha = client::ApiKeySha256Hex(key);
  std::string line = absl::StrCat(sha, " ", role_);
  if (!collections_.empty()) absl::StrAppend(&line, " ", absl::StrJoin(collections_, ","));
  if (json) {
    nlohmann::json j = {{"sha256", sha}, {"role", role_}, {"collections", collections_},
                        {"line", line}};
    if (!from_stdin_) j["key"] = key;
    out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  if (from_stdin_) {
    out << line << "\n";
    return absl::OkStatus();
  }
  out << "key     " << key << "\n"
      << "sha256  " << sha << "\n"
      << "line    " << line << "\n";
  err << "Give the key to its client (QUIVER_API_KEY or --api-key) and add the line to "
         "quiverd's --api-keys-file, then send quiverd SIGHUP. The key is not stored anywhere.\n";
  return absl::OkStatus();
}

}  // namespace quiver::ctl
