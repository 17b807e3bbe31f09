#include "client/snapshot_cmd.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/snapshot_client.h"
#include "nlohmann/json.hpp"

namespace quiver::ctl {
namespace {

nlohmann::json ToJson(const v1::SnapshotInfo& s) {
  return {{"name", s.name()},
          {"sequence", s.sequence()},
          {"created_unix_ms", s.created_unix_ms()},
          {"all_collections", s.all_collections()},
          {"collections", std::vector<std::string>(s.collections().begin(), s.collections().end())},
          {"size_bytes", s.size_bytes()},
          {"file_count", s.file_count()}};
}

std::string Line(const v1::SnapshotInfo& s) {
  return absl::StrCat(
      s.name(), "  sequence ", s.sequence(), "  ",
      absl::FormatTime("%Y-%m-%d %H:%M:%SZ", absl::FromUnixMillis(s.created_unix_ms()),
                       absl::UTCTimeZone()),
      "  ", s.size_bytes(), " bytes  ", s.file_count(), " files  ",
      s.all_collections() ? "all: " : "", absl::StrJoin(s.collections(), ","));
}

}  // namespace

SnapshotCommands::SnapshotCommands(CLI::App& app) {
  group_ = app.add_subcommand("snapshot", "Snapshots: create, list, download, restore, delete");
  group_->require_subcommand(1);
  create_ = group_->add_subcommand(
      "create", "Take a snapshot of one collection (or all), online, at one sequence number");
  create_->add_option("--collection", collection_, "Collection (default: all of them)");
  create_->add_option("--name", name_, "Snapshot name (default: snap-<UTC time>-<sequence>)");
  list_ = group_->add_subcommand("list", "List the server's snapshots");
  download_ = group_->add_subcommand("download", "Copy a snapshot from the server to a file");
  download_->add_option("name", snapshot_, "Snapshot name")->required();
  download_->add_option("file", file_, "Local file to write")->required();
  restore_ = group_->add_subcommand(
      "restore", "Restore a collection of a snapshot as a new collection, online");
  restore_->add_option("new_collection", target_, "Name of the new collection")->required();
  auto* from_name = restore_->add_option("--snapshot", snapshot_, "A snapshot on the server");
  auto* from_file = restore_->add_option("--file", file_, "A local snapshot file, uploaded");
  from_name->excludes(from_file);
  restore_->add_option("--source", source_,
                       "Collection in the snapshot (needed if it holds several)");
  delete_ = group_->add_subcommand("delete", "Delete a snapshot on the server");
  delete_->add_option("name", snapshot_, "Snapshot name")->required();
}

absl::Status SnapshotCommands::Run(client::Client& c, bool json, absl::Duration timeout,
                                   bool timeout_given, std::ostream& out) {
  const absl::Duration long_timeout = timeout_given ? timeout : absl::InfiniteDuration();
  if (create_->parsed()) {
    absl::StatusOr<v1::SnapshotInfo> s =
        client::CreateSnapshot(c, collection_, name_, long_timeout);
    if (!s.ok()) return s.status();
    out << (json ? ToJson(*s).dump(2) : Line(*s)) << "\n";
  } else if (list_->parsed()) {
    absl::StatusOr<v1::ListSnapshotsResponse> r = client::ListSnapshots(c, timeout);
    if (!r.ok()) return r.status();
    if (json) {
      nlohmann::json j = {{"snapshots", nlohmann::json::array()},
                          {"damaged", std::vector<std::string>(r->damaged().begin(),
                                                               r->damaged().end())}};
      for (const auto& s : r->snapshots()) j["snapshots"].push_back(ToJson(s));
      out << j.dump(2) << "\n";
    } else {
      for (const auto& s : r->snapshots()) out << Line(s) << "\n";
      for (const auto& d : r->damaged()) out << "damaged: " << d << "\n";
    }
  } else if (download_->parsed()) {
    absl::StatusOr<v1::SnapshotInfo> s =
        client::DownloadSnapshot(c, snapshot_, file_, long_timeout);
    if (!s.ok()) return s.status();
    out << (json ? ToJson(*s).dump(2) : absl::StrCat("wrote ", file_, ": ", Line(*s))) << "\n";
  } else if (restore_->parsed()) {
    if (snapshot_.empty() && file_.empty()) {
      return absl::InvalidArgumentError("restore needs --snapshot NAME or --file PATH");
    }
    absl::StatusOr<v1::RestoreSnapshotResponse> r =
        client::RestoreSnapshot(c, snapshot_, file_, source_, target_, long_timeout);
    if (!r.ok()) return r.status();
    if (json) {
      out << nlohmann::json{{"collection", r->collection().name()},
                            {"points", r->collection().stats().point_count()},
                            {"sequence", r->sequence()}}
                 .dump(2)
          << "\n";
    } else {
      out << "restored \"" << r->collection().name() << "\": "
          << r->collection().stats().point_count() << " points (snapshot sequence "
          << r->sequence() << ")\n";
    }
  } else if (delete_->parsed()) {
    if (absl::Status s = client::DeleteSnapshot(c, snapshot_, timeout); !s.ok()) return s;
    if (!json) out << "deleted snapshot \"" << snapshot_ << "\"\n";
  }
  return absl::OkStatus();
}

}  // namespace quiver::ctl
