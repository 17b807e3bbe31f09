// quiverctl verify: check a collection against its stored points; exit 3
// (DefectsError) when anything is wrong.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct VerifyArgs {
  std::string collection;
  uint32_t index_samples = 0;
  bool skip_index = false;
  uint32_t vector_sample = 0;
  uint64_t seed = 0;
};

std::string DefectKindName(v1::VerifyDefect::Kind k) {
  std::string name = v1::VerifyDefect::Kind_Name(k);
  return name.empty() ? absl::StrCat(static_cast<int>(k)) : name;
}

absl::Status Verify(Context& c, const VerifyArgs& a) {
  v1::VerifyCollectionRequest req;
  req.set_name(a.collection);
  req.set_index_samples(a.index_samples);
  req.set_skip_index_check(a.skip_index);
  req.set_vector_sample_rows(a.vector_sample);
  req.set_seed(a.seed);
  QUIVER_ASSIGN_OR_RETURN(v1::VerifyCollectionResponse resp, c.client->VerifyCollection(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
  } else {
    PrintKeyValues(c.out, {{"sequence", absl::StrCat(resp.sequence())},
                           {"segments", absl::StrCat(resp.segments_checked())},
                           {"rows", absl::StrCat(resp.rows_checked())},
                           {"vectors", absl::StrCat(resp.vectors_checked())},
                           {"files", absl::StrCat(resp.files_checked())},
                           {"indexes", absl::StrCat(resp.indexes_checked())},
                           {"defects", absl::StrCat(resp.defects_total())}});
    if (resp.defects_size() > 0) {
      c.out << "\n";
      Table t({"SEGMENT", "KIND", "FIELD", "DETAIL"});
      for (const v1::VerifyDefect& d : resp.defects()) {
        t.AddRow({d.segment_id() == 0 ? "-" : absl::StrCat(d.segment_id()),
                  DefectKindName(d.kind()), d.field().empty() ? "-" : d.field(), d.detail()});
      }
      t.Print(c.out);
      if (resp.defects_total() > static_cast<uint64_t>(resp.defects_size())) {
        c.out << "(" << resp.defects_total() - resp.defects_size() << " more not listed)\n";
      }
    }
  }
  if (resp.defects_total() == 0) return absl::OkStatus();
  return DefectsError(absl::StrCat("collection \"", a.collection, "\": ", resp.defects_total(),
                                   " defects found"));
}

}  // namespace

void RegisterVerifyCommands(CLI::App& app, CommandSet& commands) {
  auto ver_args = std::make_shared<VerifyArgs>();
  VerifyArgs& ver = *ver_args;
  auto* verify_cmd = app.add_subcommand(
      "verify",
      "Check a collection's segments, files and indexes against the stored points "
      "(exit 3 if anything is wrong)");
  verify_cmd->add_option("collection", ver.collection, "Collection name")->required();
  verify_cmd->add_option("--index-samples", ver.index_samples,
                         "Rows per segment searched in its index (default 100)");
  verify_cmd->add_flag("--skip-index", ver.skip_index, "Do not check the vector indexes");
  verify_cmd->add_option("--vector-sample", ver.vector_sample,
                         "Compare only this many rows' vectors per segment (default: all)");
  verify_cmd->add_option("--seed", ver.seed, "Seed of the samples")->capture_default_str();

  commands.Add(verify_cmd, [ver_args](Context& c) { return Verify(c, *ver_args); });
}

}  // namespace quiver::ctl
