#include "client/commands/command.h"

#include "absl/strings/cord.h"

namespace quiver::ctl {
namespace {

constexpr char kUsagePayload[] = "quiverctl/usage";
constexpr char kDefectsPayload[] = "quiverctl/defects";

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kUsagePayload, absl::Cord("1"));
  return s;
}

bool IsUsageError(const absl::Status& s) { return s.GetPayload(kUsagePayload).has_value(); }

absl::Status AsUsage(const absl::Status& s) { return s.ok() ? s : UsageError(s.message()); }

absl::Status DefectsError(absl::string_view message) {
  absl::Status s = absl::DataLossError(message);
  s.SetPayload(kDefectsPayload, absl::Cord("1"));
  return s;
}

bool IsDefects(const absl::Status& s) { return s.GetPayload(kDefectsPayload).has_value(); }

void CommandSet::Add(CLI::App* command, Run run) {
  commands_.emplace_back(command, std::move(run));
}

const CommandSet::Run* CommandSet::Parsed() const {
  for (const auto& [command, run] : commands_) {
    if (command->parsed()) return &run;
  }
  return nullptr;
}

}  // namespace quiver::ctl
