// quiverctl collection create|list|describe|set-index|drop: the schema
// flags (--vector, --attr, --multi-vector) and how a collection is shown.
#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "client/commands/commands.h"
#include "client/commands/segments.h"
#include "client/import/import.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

struct CreateArgs {
  std::string name;
  std::vector<std::string> vectors;
  std::vector<std::string> multi_vectors;
  uint32_t max_vectors = 0;
  std::vector<std::string> encoding;  // k=v
  std::vector<std::string> attrs;
  std::vector<std::string> sparse;  // sparse vector field names
  std::string schema_file;
};

// ------------------------------------------------------------ parsing

absl::StatusOr<v1::Metric> ParseMetric(const std::string& s) {
  const std::string m = absl::AsciiStrToUpper(s);
  if (m == "L2") return v1::L2;
  if (m == "IP") return v1::IP;
  if (m == "COSINE") return v1::COSINE;
  return UsageError(absl::StrCat("unknown metric \"", s, "\" (expected L2, IP or COSINE)"));
}

// TYPE[,param=value...], e.g. "HNSW,M=16,ef_construction=200" or
// "IVF_FLAT,nlist=64": the index part of --vector, and set-index's --index.
// Only the form is checked here; the server judges types and values, so its
// INVALID_ARGUMENT names what is wrong. `flag` prefixes usage errors.
absl::StatusOr<v1::IndexSpec> ParseIndexSpec(const std::string& text, const std::string& flag) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  v1::IndexSpec index;
  const std::string type(absl::StripAsciiWhitespace(parts[0]));
  if (type.empty()) {
    return UsageError(absl::StrCat(flag, ": no index type (expected TYPE[,param=value...])"));
  }
  index.set_type(absl::AsciiStrToUpper(type));
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    if (kv.first.empty() || parts[i].find('=') == std::string::npos) {
      return UsageError(
          absl::StrCat(flag, ": index parameter \"", parts[i], "\" is not name=value"));
    }
    (*index.mutable_params())[kv.first] = kv.second;
  }
  return index;
}

// name:dim:metric[:index][:memory|:disk][:optional], index =
// TYPE[,param=value...], e.g. "emb:768:COSINE:HNSW,M=16,ef_construction=200"
// or "img:784:L2:IVF_PQ,m=56:disk".
absl::StatusOr<v1::VectorField> ParseVectorSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  v1::StorageMode storage = v1::MEMORY;
  bool optional = false;
  while (parts.size() >= 4) {
    const std::string last = absl::AsciiStrToLower(parts.back());
    if (last == "disk" || last == "memory") {
      storage = last == "disk" ? v1::DISK : v1::MEMORY;
    } else if (last == "optional") {
      optional = true;
    } else {
      break;
    }
    parts.pop_back();
  }
  if (parts.size() < 3 || parts.size() > 4) {
    return UsageError(absl::StrCat(
        "--vector \"", spec, "\": expected name:dim:metric[:index][:memory|:disk][:optional]"));
  }
  v1::VectorField f;
  f.set_name(parts[0]);
  uint32_t dim = 0;
  if (!absl::SimpleAtoi(parts[1], &dim) || dim == 0) {
    return UsageError(absl::StrCat("--vector \"", spec, "\": dimension \"", parts[1],
                                   "\" is not a positive integer"));
  }
  f.set_dim(dim);
  QUIVER_ASSIGN_OR_RETURN(v1::Metric metric, ParseMetric(parts[2]));
  f.set_metric(metric);
  QUIVER_ASSIGN_OR_RETURN(*f.mutable_index(),
                          ParseIndexSpec(parts.size() == 4 ? parts[3] : "FLAT",
                                         absl::StrCat("--vector \"", spec, "\"")));
  f.set_storage(storage);
  f.set_optional(optional);
  return f;
}

// name:type[:indexed|:window]
absl::StatusOr<v1::AttributeField> ParseAttrSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 4) {
    return UsageError(absl::StrCat(
        "--attr \"", spec, "\": expected name:type[:indexed|:window] or name:string:text[:LANG]"));
  }
  v1::AttributeField a;
  a.set_name(parts[0]);
  const std::string t = absl::AsciiStrToLower(parts[1]);
  if (t == "int64") {
    a.set_type(v1::INT64);
  } else if (t == "double") {
    a.set_type(v1::DOUBLE);
  } else if (t == "bool") {
    a.set_type(v1::BOOL);
  } else if (t == "string") {
    a.set_type(v1::STRING);
  } else if (t == "string_list") {
    a.set_type(v1::STRING_LIST);
  } else {
    return UsageError(absl::StrCat("--attr \"", spec, "\": unknown type \"", parts[1],
                                   "\" (expected int64, double, bool, string, string_list)"));
  }
  if (parts.size() >= 3 && absl::AsciiStrToLower(parts[2]) == "text") {
    // Full text: the server checks the type and the language.
    a.mutable_text()->set_language(parts.size() == 4 ? parts[3] : "");
    return a;
  }
  if (parts.size() == 4) {
    return UsageError(absl::StrCat("--attr \"", spec, "\": a fourth part is text's language"));
  }
  if (parts.size() == 3) {
    const std::string opt = absl::AsciiStrToLower(parts[2]);
    if (opt == "window") {
      a.set_window(true);  // implies indexed
    } else if (opt == "indexed") {
      a.set_indexed(true);
    } else {
      return UsageError(absl::StrCat("--attr \"", spec,
                                     "\": third part must be \"indexed\", \"window\" or \"text\", got \"",
                                     parts[2], "\""));
    }
  }
  return a;
}

// "name" or "name:idf" -> a SparseVectorField.
absl::StatusOr<v1::SparseVectorField> ParseSparseSpec(const std::string& spec,
                                                      const std::string& flag) {
  v1::SparseVectorField f;
  const size_t colon = spec.find(':');
  f.set_name(spec.substr(0, colon));
  if (colon != std::string::npos) {
    const std::string modifier = absl::AsciiStrToLower(spec.substr(colon + 1));
    if (modifier != "idf") {
      return UsageError(absl::StrCat(flag, " \"", spec, "\": expected NAME or NAME:idf"));
    }
    f.set_modifier(v1::IDF);
  }
  return f;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------ output

std::string IndexText(const v1::IndexSpec& index) {
  std::string type = index.type().empty() ? "FLAT" : index.type();
  if (index.params().empty()) return type;
  std::map<std::string, std::string> sorted(index.params().begin(), index.params().end());
  std::vector<std::string> kv;
  for (const auto& [k, v] : sorted) kv.push_back(absl::StrCat(k, "=", v));
  return absl::StrCat(type, "(", absl::StrJoin(kv, ", "), ")");
}

// ------------------------------------------------------------ commands

absl::Status CollectionCreate(Context& c, const CreateArgs& a) {
  v1::CollectionSchema schema;
  if (!a.schema_file.empty()) {
    if (!a.vectors.empty() || !a.attrs.empty() || !a.sparse.empty()) {
      return UsageError("--schema cannot be combined with --vector/--attr/--sparse");
    }
    QUIVER_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(a.schema_file));
    auto s = google::protobuf::util::JsonStringToMessage(text, &schema);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          a.schema_file, ": not a CollectionSchema in JSON: ", s.message().as_string()));
    }
  } else {
    if (a.vectors.empty() && a.multi_vectors.empty() && a.sparse.empty())
      return UsageError(
          "give at least one --vector (or --multi-vector) name:dim:metric or --sparse name, or "
          "--schema FILE");
    for (const auto& spec : a.vectors) {
      QUIVER_ASSIGN_OR_RETURN(*schema.add_vectors(), ParseVectorSpec(spec));
    }
    if (a.multi_vectors.empty() && (a.max_vectors != 0 || !a.encoding.empty())) {
      return UsageError("--max-vectors and --encoding go with --multi-vector");
    }
    for (const auto& spec : a.multi_vectors) {
      QUIVER_ASSIGN_OR_RETURN(v1::VectorField f, ParseVectorSpec(spec));
      v1::MultiVectorOptions* mv = f.mutable_multi_vector();
      mv->set_max_vectors_per_point(a.max_vectors);
      for (const std::string& kv : a.encoding) {
        const size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) {
          return UsageError(absl::StrCat("--encoding \"", kv, "\": expected name=value"));
        }
        (*mv->mutable_encoding_params())[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      *schema.add_vectors() = std::move(f);
    }
    for (const auto& spec : a.attrs) {
      QUIVER_ASSIGN_OR_RETURN(*schema.add_attributes(), ParseAttrSpec(spec));
    }
    for (const auto& spec : a.sparse) {
      QUIVER_ASSIGN_OR_RETURN(*schema.add_sparse_vectors(), ParseSparseSpec(spec, "--sparse"));
    }
  }
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->CreateCollection(a.name, schema));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(info));
  } else {
    c.out << "created collection " << info.name() << "\n";
  }
  return absl::OkStatus();
}

absl::Status CollectionList(Context& c) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<v1::CollectionInfo> list, c.client->ListCollections());
  if (c.globals.json) {
    v1::ListCollectionsResponse resp;
    for (auto& info : list) *resp.add_collections() = std::move(info);
    PrintJson(c.out, ProtoToJson(resp));
    return absl::OkStatus();
  }
  if (list.empty()) {
    c.out << "no collections\n";
    return absl::OkStatus();
  }
  Table t({"NAME", "VECTORS", "ATTRIBUTES", "POINTS", "CREATED"});
  for (const auto& info : list) {
    std::vector<std::string> vectors;
    for (const auto& f : info.schema().vectors()) {
      vectors.push_back(absl::StrCat(f.name(), ":", f.dim(), ":", MetricName(f.metric())));
    }
    t.AddRow(
        {info.name(), absl::StrJoin(vectors, " "), absl::StrCat(info.schema().attributes_size()),
         absl::StrCat(info.stats().point_count()), FormatUnixMillis(info.created_at_unix_ms())});
  }
  t.Print(c.out);
  return absl::OkStatus();
}

// describe's output: the whole CollectionInfo as JSON, or for people the
// collection's figures, its schema and its segments.
void PrintDescribe(Context& c, const v1::CollectionInfo& info) {
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(info));
    return;
  }
  const v1::CollectionStats& st = info.stats();
  PrintKeyValues(c.out, {
                            {"collection", info.name()},
                            {"created", FormatUnixMillis(info.created_at_unix_ms())},
                            {"points", absl::StrCat(st.point_count())},
                            {"deleted", absl::StrCat(st.deleted_count())},
                            {"storage", absl::StrCat(FormatBytes(st.storage_bytes()), " (",
                                                     st.storage_bytes(), " bytes)")},
                            {"last sequence", absl::StrCat(st.last_sequence())},
                        });
  std::map<std::string, const v1::VectorFieldStats*> field_stats;
  for (const auto& v : st.vectors()) field_stats[v.name()] = &v;
  c.out << "\n";
  Table vt({"VECTOR FIELD", "DIM", "METRIC", "INDEX", "STORAGE", "MEMORY", "DISK"});
  for (const auto& f : info.schema().vectors()) {
    auto it = field_stats.find(f.name());
    const std::string mem = it == field_stats.end() ? "-" : FormatBytes(it->second->memory_bytes());
    const std::string disk = it == field_stats.end() ? "-" : FormatBytes(it->second->disk_bytes());
    std::string name = f.name();
    if (f.has_multi_vector()) name += " (multi)";
    if (f.optional()) name += " (optional)";
    vt.AddRow({name, absl::StrCat(f.dim()), MetricName(f.metric()), IndexText(f.index()),
               StorageModeName(f.storage()), mem, disk});
  }
  vt.Print(c.out);
  if (info.schema().attributes_size() > 0) {
    c.out << "\n";
    Table at({"ATTRIBUTE", "TYPE", "INDEXED"});
    for (const auto& a : info.schema().attributes()) {
      std::string indexed = a.window() ? "window" : a.indexed() ? "yes" : "no";
      // Sealed segments whose attribute index still differs from the
      // schema's (an update being built).
      int sealed = 0, pending = 0;
      for (const auto& seg : info.stats().segments()) {
        if (seg.state() == v1::SegmentInfo::GROWING) continue;
        ++sealed;
        const bool has = absl::c_linear_search(seg.indexed_attributes(), a.name());
        pending += has != a.indexed();
      }
      if (pending > 0) absl::StrAppend(&indexed, " (building ", pending, "/", sealed, ")");
      at.AddRow({a.name(), AttributeTypeName(a.type()), indexed});
    }
    at.Print(c.out);
  }
  PrintSegments(c.out, info);
}

struct DescribeArgs {
  bool wait_indexed = false;
  double wait_timeout_seconds = 300;
};

constexpr absl::Duration kIndexPollInterval = absl::Milliseconds(200);

// Polls describe until every segment is INDEXED (the growing one sealed and
// every sealed one's indexes built to the current spec), or `timeout`.
absl::StatusOr<v1::CollectionInfo> WaitIndexed(Context& c, const std::string& name,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->GetCollection(name));
    if (AllSegmentsIndexed(info.stats())) return info;
    if (absl::Now() + kIndexPollInterval > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("collection \"", name, "\" not fully indexed after ",
                       absl::FormatDuration(timeout), ": ", SegmentSummary(info.stats())));
    }
    absl::SleepFor(kIndexPollInterval);
  }
}

absl::Status CollectionDescribe(Context& c, const std::string& name, const DescribeArgs& a) {
  v1::CollectionInfo info;
  if (a.wait_indexed) {
    if (!(a.wait_timeout_seconds > 0)) return UsageError("--timeout-s must be positive");
    QUIVER_ASSIGN_OR_RETURN(info, WaitIndexed(c, name, absl::Seconds(a.wait_timeout_seconds)));
  } else {
    QUIVER_ASSIGN_OR_RETURN(info, c.client->GetCollection(name));
  }
  PrintDescribe(c, info);
  return absl::OkStatus();
}

struct SetIndexArgs {
  std::string name;
  std::string field;
  std::string index;
};

absl::Status CollectionSetIndex(Context& c, const SetIndexArgs& a) {
  QUIVER_ASSIGN_OR_RETURN(v1::IndexSpec index, ParseIndexSpec(a.index, "--index"));
  std::string field = a.field;
  if (field.empty()) {
    // As import does: the only vector field, else ask for --field.
    QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo current, c.client->GetCollection(a.name));
    QUIVER_ASSIGN_OR_RETURN(const v1::VectorField* f, ResolveField(a.name, current.schema(), ""));
    field = f->name();
  }
  v1::UpdateCollectionRequest req;
  req.set_name(a.name);
  v1::VectorFieldUpdate* u = req.add_vectors();
  u->set_field(field);
  *u->mutable_index() = std::move(index);
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->UpdateCollection(req));
  if (!c.globals.json) {
    std::string now = "?";
    for (const auto& f : info.schema().vectors()) {
      if (f.name() == field) now = IndexText(f.index());
    }
    c.out << "vector field " << field << " of collection " << info.name() << " now has index "
          << now << "; sealed segments are re-indexed in the background\n\n";
  }
  PrintDescribe(c, info);
  return absl::OkStatus();
}

struct UpdateArgs {
  std::string name;
  std::vector<std::string> add_attrs;  // name:type[:indexed|:window]
  std::vector<std::string> index_attrs;  // name[:window]
  std::vector<std::string> unindex_attrs;
  std::vector<std::string> add_vectors;  // as create --vector
  std::vector<std::string> drop_vectors;
  std::vector<std::string> add_sparse;
};

// One UpdateCollection request, all or nothing: --index-attribute and
// --unindex-attribute send the attribute with its type left unspecified
// (the server keeps it) and the flags it should have.
absl::Status CollectionUpdate(Context& c, const UpdateArgs& a) {
  if (a.add_attrs.empty() && a.index_attrs.empty() && a.unindex_attrs.empty() &&
      a.add_vectors.empty() && a.drop_vectors.empty() && a.add_sparse.empty()) {
    return UsageError(
        "nothing to change: give --add-attribute, --index-attribute, --unindex-attribute, "
        "--add-vector, --drop-vector or --add-sparse");
  }
  v1::UpdateCollectionRequest req;
  req.set_name(a.name);
  for (const std::string& spec : a.add_sparse) {
    QUIVER_ASSIGN_OR_RETURN(*req.add_add_sparse_vectors(), ParseSparseSpec(spec, "--add-sparse"));
  }
  for (const std::string& spec : a.add_vectors) {
    QUIVER_ASSIGN_OR_RETURN(*req.add_add_vectors(), ParseVectorSpec(spec));
  }
  for (const std::string& name : a.drop_vectors) req.add_drop_vectors(name);
  for (const std::string& spec : a.add_attrs) {
    QUIVER_ASSIGN_OR_RETURN(*req.add_attributes(), ParseAttrSpec(spec));
  }
  if (!a.index_attrs.empty()) {
    // An attribute indexed again keeps its window unless :window asks for one.
    QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo current, c.client->GetCollection(a.name));
    for (const std::string& spec : a.index_attrs) {
      std::vector<std::string> parts = absl::StrSplit(spec, ':');
      if (parts.size() > 2 || (parts.size() == 2 && absl::AsciiStrToLower(parts[1]) != "window")) {
        return UsageError(
            absl::StrCat("--index-attribute \"", spec, "\": expected name[:window]"));
      }
      v1::AttributeField* f = req.add_attributes();
      f->set_name(parts[0]);
      f->set_indexed(true);
      f->set_window(parts.size() == 2);
      for (const auto& have : current.schema().attributes()) {
        if (have.name() == parts[0]) f->set_window(f->window() || have.window());
      }
    }
  }
  for (const std::string& name : a.unindex_attrs) {
    v1::AttributeField* f = req.add_attributes();
    f->set_name(name);  // indexed and window off
  }
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->UpdateCollection(req));
  if (!c.globals.json) {
    c.out << "collection " << info.name() << " updated; sealed segments build changed "
          << "indexes in the background\n\n";
  }
  PrintDescribe(c, info);
  return absl::OkStatus();
}

absl::Status CollectionDrop(Context& c, const std::string& name) {
  QUIVER_RETURN_IF_ERROR(c.client->DropCollection(name));
  if (c.globals.json) {
    PrintJson(c.out, {{"name", name}, {"dropped", true}});
  } else {
    c.out << "dropped collection " << name << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterCollectionCommands(CLI::App& app, CommandSet& commands) {
  auto* coll = app.add_subcommand(
      "collection",
      "Create, list, describe or drop collections, or change their index or attributes");
  coll->require_subcommand(1);
  auto create_args = std::make_shared<CreateArgs>();
  CreateArgs& create = *create_args;
  auto* create_cmd = coll->add_subcommand("create", "Create a collection");
  create_cmd->add_option("name", create.name, "Collection name")->required();
  create_cmd->add_option("--vector", create.vectors,
                         "Vector field name:dim:metric[:index][:disk][:optional] (metric "
                         "L2|IP|COSINE; index FLAT (default), HNSW,M=16,..., IVF_FLAT,nlist=..., "
                         "or a compressed IVF_SQ8, IVF_PQ,m=..., HNSW_SQ8; disk: only the "
                         "compressed index in memory, full vectors in a rerank table on disk; "
                         "optional: points may lack it); repeatable");
  create_cmd->add_option("--attr", create.attrs,
                         "Attribute name:type[:indexed|:window] (int64|double|bool|string|"
                         "string_list; window: numeric, indexed, with window indexes for range "
                         "filters), or name:string:text[:LANGUAGE] for full-text (BM25) search "
                         "(LANGUAGE a Snowball stemmer, default english, or none); repeatable");
  create_cmd->add_option("--sparse", create.sparse,
                         "Sparse vector field name[:idf] (points hold INDEX:VALUE pairs, "
                         "searched by dot product; idf weighs each query index by its inverse "
                         "document frequency); repeatable");
  create_cmd->add_option("--schema", create.schema_file,
                         "CollectionSchema as JSON (instead of --vector/--attr)");
  create_cmd->add_option("--multi-vector", create.multi_vectors,
                         "Multi-vector (late interaction) field name:dim:metric[:index][:disk]: "
                         "each point holds a set of vectors, scored by MaxSim; the index is "
                         "built over MUVERA encodings of the sets; repeatable");
  create_cmd->add_option("--max-vectors", create.max_vectors,
                         "Multi-vector fields: most vectors per point (default 1024)");
  create_cmd->add_option("--encoding", create.encoding,
                         "Multi-vector fields: MUVERA parameter name=value (k_sim, d_proj, "
                         "r_reps, fill_empty, final_dim, seed); repeatable")
      ->delimiter(',');
  auto* list_cmd = coll->add_subcommand("list", "List collections");
  auto describe_name = std::make_shared<std::string>();
  auto describe_args = std::make_shared<DescribeArgs>();
  DescribeArgs& describe = *describe_args;
  auto* describe_cmd =
      coll->add_subcommand("describe", "Schema, statistics and segments of a collection");
  describe_cmd->add_option("name", *describe_name, "Collection name")->required();
  auto* wait_flag = describe_cmd->add_flag(
      "--wait-indexed", describe.wait_indexed,
      "Poll until every segment is indexed (the growing one sealed, every index built), "
      "then print");
  describe_cmd
      ->add_option("--timeout-s", describe.wait_timeout_seconds,
                   "Give up --wait-indexed after this many seconds (exit 1)")
      ->check(CLI::PositiveNumber)
      ->needs(wait_flag)
      ->capture_default_str();
  auto set_index_args = std::make_shared<SetIndexArgs>();
  SetIndexArgs& set_index = *set_index_args;
  auto* set_index_cmd = coll->add_subcommand(
      "set-index",
      "Change a vector field's index; sealed segments are re-indexed in the background");
  set_index_cmd->add_option("name", set_index.name, "Collection name")->required();
  set_index_cmd->add_option("--field", set_index.field, "Vector field (default: the only one)");
  set_index_cmd
      ->add_option("--index", set_index.index,
                   "TYPE[,param=value...] as in create --vector: FLAT, HNSW,M=16,"
                   "ef_construction=200 or IVF_FLAT,nlist=1024")
      ->required();
  auto update_args = std::make_shared<UpdateArgs>();
  auto* update_cmd = coll->add_subcommand(
      "update",
      "Change a collection's schema: add attributes, turn attribute indexes or windows on or "
      "off, add or drop vector fields (indexes built in the background); one request, all or "
      "nothing");
  update_cmd->add_option("name", update_args->name, "Collection name")->required();
  update_cmd->add_option("--add-attribute", update_args->add_attrs,
                         "New attribute name:type[:indexed|:window] as in create --attr (points "
                         "written before are null in it); repeatable");
  update_cmd->add_option("--index-attribute", update_args->index_attrs,
                         "Turn an attribute's index on, name[:window] (window: numeric, adds "
                         "window indexes); repeatable");
  update_cmd->add_option("--unindex-attribute", update_args->unindex_attrs,
                         "Turn an attribute's index and window off; repeatable");
  update_cmd->add_option("--add-vector", update_args->add_vectors,
                         "New vector field name:dim:metric[:index] as in create --vector; "
                         "optional (points written before lack it), in memory; repeatable");
  update_cmd->add_option("--add-sparse", update_args->add_sparse,
                         "New sparse vector field name[:idf] (points written before lack it); "
                         "repeatable");
  update_cmd->add_option("--drop-vector", update_args->drop_vectors,
                         "Drop a vector field and its vectors (its name is free again); "
                         "repeatable");
  auto drop_name = std::make_shared<std::string>();
  auto* drop_cmd = coll->add_subcommand("drop", "Drop a collection and all its points");
  drop_cmd->add_option("name", *drop_name, "Collection name")->required();

  commands.Add(create_cmd, [create_args](Context& c) { return CollectionCreate(c, *create_args); });
  commands.Add(list_cmd, [](Context& c) { return CollectionList(c); });
  commands.Add(describe_cmd, [describe_name, describe_args](Context& c) {
    return CollectionDescribe(c, *describe_name, *describe_args);
  });
  commands.Add(set_index_cmd,
               [set_index_args](Context& c) { return CollectionSetIndex(c, *set_index_args); });
  commands.Add(update_cmd,
               [update_args](Context& c) { return CollectionUpdate(c, *update_args); });
  commands.Add(drop_cmd, [drop_name](Context& c) { return CollectionDrop(c, *drop_name); });
}

}  // namespace quiver::ctl
