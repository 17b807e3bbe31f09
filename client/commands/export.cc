// quiverctl export: the command's flags, and its report of what the export
// (client/import/export.h) wrote.
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/import/export.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct ExportArgs {
  std::string collection;
  std::string output = "-";
  std::string format = "jsonl";
  std::string filter;
  uint32_t page_size = 1000;
  bool no_progress = false;
};

absl::Status Export(Context& c, const ExportArgs& a) {
  ExportOptions o;
  o.collection = a.collection;
  o.path = a.output;
  absl::StatusOr<ExportFormat> f = ParseExportFormat(a.format);
  if (!f.ok()) return AsUsage(f.status());
  o.format = *f;
  if (o.format == ExportFormat::kNpy && o.path == "-") {
    return UsageError("--format npy writes files: give -o FILE.npy");
  }
  o.filter = a.filter;
  o.page_size = a.page_size;
  o.show_progress = !a.no_progress;
  QUIVER_ASSIGN_OR_RETURN(ExportResult r, ::quiver::ctl::Export(*c.client, o));
  const double rate = r.seconds > 0 ? static_cast<double>(r.points) / r.seconds : 0;
  // With jsonl on stdout the report goes to stderr, out of the data's way.
  std::ostream& report = o.path == "-" ? std::cerr : c.out;
  if (c.globals.json) {
    PrintJson(report, {{"exported", r.points},
                       {"seconds", r.seconds},
                       {"pointsPerSecond", rate},
                       {"file", o.path},
                       {"metaFile", r.meta_path},
                       {"offsetsFile", r.offsets_path}});
  } else {
    report << absl::StrFormat("exported %d points in %.2f s (%.0f points/s)\n", r.points,
                              r.seconds, rate);
    if (!r.meta_path.empty()) {
      report << "import it with: quiverctl import NEW_NAME " << o.path << " --meta "
             << r.meta_path << (r.offsets_path.empty() ? "" : " --offsets ") << r.offsets_path
             << "\n";
    }
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterExportCommands(CLI::App& app, CommandSet& commands) {
  auto args = std::make_shared<ExportArgs>();
  ExportArgs& a = *args;
  auto* cmd = app.add_subcommand(
      "export", "Write a collection's points to a file that `import` reads back");
  cmd->add_option("collection", a.collection, "Collection name")->required();
  cmd->add_option("-o,--output", a.output, "Output file (jsonl: - for stdout)")
      ->capture_default_str();
  cmd->add_option("--format", a.format,
                  "jsonl (every field and attribute) or npy (the only vector field; ids and "
                  "attributes in FILE.meta.jsonl)")
      ->capture_default_str();
  cmd->add_option("--filter", a.filter, "Export only the points matching this filter");
  cmd->add_option("--page-size", a.page_size, "Points per ScrollPoints page")
      ->capture_default_str();
  cmd->add_flag("--no-progress", a.no_progress, "No progress report on stderr");
  commands.Add(cmd, [args](Context& c) { return Export(c, *args); });
}

}  // namespace quiver::ctl
