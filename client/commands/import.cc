// quiverctl import: the command's flags, and its report of what the import
// (client/import/) did.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/import/import.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct ImportArgs {
  std::string collection;
  std::string file;
  std::string format;
  std::string field;
  std::string id_prefix;
  int64_t start_id = 0;
  int batch = 1000;
  std::string labels;
  std::string label_attr = "label";
  int64_t limit = -1;
  std::string offsets;
  std::string meta;
  bool no_progress = false;
};

absl::Status Import(Context& c, const ImportArgs& a) {
  ImportOptions o;
  o.collection = a.collection;
  o.path = a.file;
  if (!a.format.empty()) {
    absl::StatusOr<FileFormat> f = ParseFileFormat(a.format);
    if (!f.ok()) return AsUsage(f.status());
    o.format = *f;
  } else {
    absl::StatusOr<FileFormat> f = FileFormatFromName(a.file);
    if (!f.ok()) return AsUsage(f.status());
    o.format = *f;
  }
  if (a.batch <= 0) return UsageError("--batch must be positive");
  if (*o.format == FileFormat::kJsonl && !a.labels.empty()) {
    return UsageError("--labels applies to fvecs, npy and idx files; jsonl lines carry attributes");
  }
  o.field = a.field;
  o.id_prefix = a.id_prefix;
  o.start_id = a.start_id;
  o.batch = a.batch;
  o.labels_path = a.labels;
  o.offsets_path = a.offsets;
  o.meta_path = a.meta;
  o.label_attr = a.label_attr;
  o.limit = a.limit;
  o.show_progress = !a.no_progress;
  QUIVER_ASSIGN_OR_RETURN(ImportResult r, ::quiver::ctl::Import(*c.client, o));
  const double rate = r.seconds > 0 ? static_cast<double>(r.points) / r.seconds : 0;
  if (c.globals.json) {
    PrintJson(c.out, {{"imported", r.points}, {"seconds", r.seconds}, {"pointsPerSecond", rate}});
  } else {
    c.out << absl::StrFormat("imported %d points in %.2f s (%.0f points/s)\n", r.points, r.seconds,
                             rate);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterImportCommands(CLI::App& app, CommandSet& commands) {
  auto imp_args = std::make_shared<ImportArgs>();
  ImportArgs& imp = *imp_args;
  auto* import_cmd = app.add_subcommand("import", "Import points from a file");
  import_cmd->add_option("collection", imp.collection, "Collection name")->required();
  import_cmd->add_option("file", imp.file, "fvecs, npy, IDX or jsonl file (optionally .gz)")
      ->required();
  import_cmd->add_option("--format", imp.format,
                         "fvecs|npy|idx|jsonl (default: from the file name)");
  import_cmd->add_option("--field", imp.field, "Vector field (default: the only one)");
  import_cmd->add_option("--id-prefix", imp.id_prefix, "fvecs/npy/idx: id = prefix + row number");
  import_cmd->add_option("--start-id", imp.start_id, "fvecs/npy/idx: number of the first row")
      ->capture_default_str();
  import_cmd->add_option("--batch", imp.batch, "Points per request")->capture_default_str();
  import_cmd->add_option("--labels", imp.labels, "IDX1 or .npy integer labels, one per row");
  import_cmd->add_option("--label-attr", imp.label_attr, "Attribute the labels go to")
      ->capture_default_str();
  import_cmd->add_option("--limit", imp.limit, "Import at most N rows");
  import_cmd->add_option("--offsets", imp.offsets,
                         "Multi-vector field: IDX1 or .npy integers, the row where each point's "
                         "vectors start (n + 1 entries, the last = the file's rows)");
  import_cmd->add_option("--meta", imp.meta,
                         "fvecs/npy/idx: jsonl of each row's (point's) id and attributes, as "
                         "`export --format npy` writes it (instead of --id-prefix and --labels)");
  import_cmd->add_flag("--no-progress", imp.no_progress, "No progress report on stderr");

  commands.Add(import_cmd, [imp_args](Context& c) { return Import(c, *imp_args); });
}

}  // namespace quiver::ctl
