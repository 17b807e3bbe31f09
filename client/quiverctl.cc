// quiverctl: the admin command-line tool for quiverd.
//
//   quiverctl [--addr host:port] [--json] [--timeout SECONDS] COMMAND ...
//
// Commands: health; collection create|list|describe|drop|set-index; import; get;
// delete; count; search; stats; verify. Run `quiverctl COMMAND --help` for each.
//
// Results go to stdout (tables for people, --json for scripts); errors go to
// stderr as "error: <CODE>: <message>", the server's message unchanged.
// Exit status: 0 success, 1 the server or a file said no, 2 bad usage,
// 3 verify found defects.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/import.h"
#include "client/output.h"
#include "client/recall_output.h"
#include "base/status_macros.h"

namespace quiver::ctl {
namespace {

// ------------------------------------------------------------ errors

// Usage errors (exit 2) travel as INVALID_ARGUMENT like the server's own
// (exit 1); a payload tells them apart without a second error type.
constexpr char kUsagePayload[] = "quiverctl/usage";

absl::Status UsageError(absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kUsagePayload, absl::Cord("1"));
  return s;
}

bool IsUsageError(const absl::Status& s) { return s.GetPayload(kUsagePayload).has_value(); }

// `verify` ran and found defects (exit 3): the report is on stdout already.
constexpr char kDefectsPayload[] = "quiverctl/defects";
bool IsDefects(const absl::Status& s) { return s.GetPayload(kDefectsPayload).has_value(); }

// Turns a local parsing failure into a usage error, keeping the text.
absl::Status AsUsage(const absl::Status& s) { return s.ok() ? s : UsageError(s.message()); }

// ------------------------------------------------------------ options

struct Globals {
  std::string addr = "127.0.0.1:50051";
  bool json = false;
  double timeout_seconds = 60;
};

struct CreateArgs {
  std::string name;
  std::vector<std::string> vectors;
  std::vector<std::string> multi_vectors;
  uint32_t max_vectors = 0;
  std::vector<std::string> encoding;  // k=v
  std::vector<std::string> attrs;
  std::string schema_file;
};

struct GetArgs {
  std::string collection;
  std::vector<std::string> ids;
  bool vectors = false;
  std::vector<std::string> attrs;
};

struct DeleteArgs {
  std::string collection;
  std::vector<std::string> ids;
  std::string filter;
};

struct SearchArgs {
  std::string collection;
  std::string vector;
  std::string vector_file;
  std::optional<int64_t> row;
  std::string rows;
  std::string query_json;
  std::string format;
  std::string field;
  uint32_t k = 10;
  std::string filter;
  std::vector<std::string> output_attrs;
  bool with_vectors = false;
  uint32_t ef = 0;
  uint32_t nprobe = 0;
  bool exact = false;
  std::string strategy = "auto";
  bool explain = false;
  float refine = 0;
  // Hybrid search: NAME=1,2,3 / NAME=PATH[:ROW] per field, and per-field k
  // and weight as NAME=N.
  std::vector<std::string> field_vectors;
  std::vector<std::string> field_vector_files;
  std::vector<std::string> field_ks;
  std::vector<std::string> weights;
  std::string fusion;
  float rrf_k = 0;
  bool field_results = false;
  // Late interaction: one query set.
  std::string query_set_json;
  std::string query_set_file;
};

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
  bool no_progress = false;
};

// What the command writes; set up once so each command is a plain function.
struct Context {
  Globals globals;
  std::unique_ptr<client::Client> client;
  std::ostream& out = std::cout;
};

// ------------------------------------------------------------ parsing helpers

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

// name:dim:metric[:index][:memory|:disk], index = TYPE[,param=value...],
// e.g. "emb:768:COSINE:HNSW,M=16,ef_construction=200" or
// "img:784:L2:IVF_PQ,m=56:disk".
absl::StatusOr<v1::VectorField> ParseVectorSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  v1::StorageMode storage = v1::MEMORY;
  if (parts.size() >= 4) {
    const std::string last = absl::AsciiStrToLower(parts.back());
    if (last == "disk" || last == "memory") {
      storage = last == "disk" ? v1::DISK : v1::MEMORY;
      parts.pop_back();
    }
  }
  if (parts.size() < 3 || parts.size() > 4) {
    return UsageError(absl::StrCat("--vector \"", spec,
                                   "\": expected name:dim:metric[:index][:memory|:disk]"));
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
  return f;
}

// name:type[:indexed|:window]
absl::StatusOr<v1::AttributeField> ParseAttrSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return UsageError(
        absl::StrCat("--attr \"", spec, "\": expected name:type[:indexed|:window]"));
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
  if (parts.size() == 3) {
    const std::string opt = absl::AsciiStrToLower(parts[2]);
    if (opt == "window") {
      a.set_window(true);  // implies indexed
    } else if (opt == "indexed") {
      a.set_indexed(true);
    } else {
      return UsageError(absl::StrCat("--attr \"", spec,
                                     "\": third part must be \"indexed\" or \"window\", got \"",
                                     parts[2], "\""));
    }
  }
  return a;
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

// "1,2,3", "[1, 2, 3]" or "1 2 3" -> floats.
absl::StatusOr<std::vector<float>> ParseFloatList(const std::string& text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  absl::ConsumePrefix(&s, "[");
  absl::ConsumeSuffix(&s, "]");
  std::vector<float> out;
  for (absl::string_view part : absl::StrSplit(s, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    float v = 0;
    if (!absl::SimpleAtof(part, &v)) {
      return UsageError(absl::StrCat("--vector: \"", part, "\" is not a number"));
    }
    out.push_back(v);
  }
  if (out.empty()) return UsageError("--vector: no values");
  return out;
}

// A JSON array of numbers (one query) or of arrays (a batch).
absl::StatusOr<std::vector<std::vector<float>>> ParseQueryJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array() || j.empty()) {
    return UsageError("--query-json: expected a JSON array of numbers or an array of arrays");
  }
  auto row = [](const nlohmann::json& a) -> absl::StatusOr<std::vector<float>> {
    std::vector<float> v;
    for (const auto& x : a) {
      if (!x.is_number())
        return UsageError(absl::StrCat("--query-json: ", x.dump(), " is not a number"));
      v.push_back(x.get<float>());
    }
    return v;
  };
  std::vector<std::vector<float>> out;
  if (j[0].is_array()) {
    for (const auto& a : j) {
      if (!a.is_array()) return UsageError("--query-json: mixes arrays and numbers");
      QUIVER_ASSIGN_OR_RETURN(std::vector<float> v, row(a));
      out.push_back(std::move(v));
    }
  } else {
    QUIVER_ASSIGN_OR_RETURN(std::vector<float> v, row(j));
    out.push_back(std::move(v));
  }
  return out;
}

// --rows "A:B" -> [A, B), as in a Python slice.
absl::StatusOr<std::pair<int64_t, int64_t>> ParseRowRange(const std::string& text) {
  std::pair<std::string, std::string> ab = absl::StrSplit(text, absl::MaxSplits(':', 1));
  int64_t a = 0, b = 0;
  if (text.find(':') == std::string::npos || !absl::SimpleAtoi(ab.first, &a) ||
      !absl::SimpleAtoi(ab.second, &b) || a < 0 || b <= a) {
    return UsageError(absl::StrCat("--rows \"", text, "\": expected A:B with 0 <= A < B"));
  }
  return std::make_pair(a, b);
}

// ------------------------------------------------------------ shared output

std::string IndexText(const v1::IndexSpec& index) {
  std::string type = index.type().empty() ? "FLAT" : index.type();
  if (index.params().empty()) return type;
  std::map<std::string, std::string> sorted(index.params().begin(), index.params().end());
  std::vector<std::string> kv;
  for (const auto& [k, v] : sorted) kv.push_back(absl::StrCat(k, "=", v));
  return absl::StrCat(type, "(", absl::StrJoin(kv, ", "), ")");
}

std::string SegmentStateName(v1::SegmentInfo::State s) {
  switch (s) {
    case v1::SegmentInfo::GROWING:
      return "growing";
    case v1::SegmentInfo::SEALED:
      return "sealed";
    case v1::SegmentInfo::BUILDING:
      return "building";
    case v1::SegmentInfo::INDEXED:
      return "indexed";
    default:
      return "unknown";
  }
}

// "3 segments (1 indexed, 1 building, 0 sealed waiting, 1 growing)".
std::string SegmentSummary(const v1::CollectionStats& st) {
  const int n = st.segments_size();
  std::map<v1::SegmentInfo::State, int> by_state;
  for (const auto& seg : st.segments()) ++by_state[seg.state()];
  std::string out = absl::StrFormat(
      "%d segment%s (%d indexed, %d building, %d sealed waiting, %d growing", n, n == 1 ? "" : "s",
      by_state[v1::SegmentInfo::INDEXED], by_state[v1::SegmentInfo::BUILDING],
      by_state[v1::SegmentInfo::SEALED], by_state[v1::SegmentInfo::GROWING]);
  const int other = by_state[v1::SegmentInfo::STATE_UNSPECIFIED];
  if (other > 0) absl::StrAppend(&out, ", ", other, " unknown");
  return out + ")";
}

bool AllSegmentsIndexed(const v1::CollectionStats& st) {
  for (const auto& seg : st.segments()) {
    if (seg.state() != v1::SegmentInfo::INDEXED) return false;
  }
  return true;
}

// The segments table, one row per segment; for each vector field (in schema
// order) its index, memory and disk. With several fields the field name
// prefixes those columns.
void PrintSegments(std::ostream& out, const v1::CollectionInfo& info) {
  const v1::CollectionStats& st = info.stats();
  out << "\n";
  if (st.segments_size() == 0) {
    out << SegmentSummary(st) << "\n";
    return;
  }
  std::vector<std::string> fields;
  for (const auto& f : info.schema().vectors()) fields.push_back(f.name());
  // Fields a segment reports that the schema does not list (should not
  // happen) still get columns.
  for (const auto& seg : st.segments()) {
    for (const auto& f : seg.fields()) {
      if (std::find(fields.begin(), fields.end(), f.name()) == fields.end()) {
        fields.push_back(f.name());
      }
    }
  }
  std::vector<std::string> headers = {"SEGMENT", "STATE", "ROWS", "DELETED"};
  for (const auto& name : fields) {
    const std::string prefix = fields.size() == 1 ? "" : name + " ";
    for (const char* h : {"INDEX", "MEMORY", "DISK"}) headers.push_back(prefix + h);
  }
  Table t(headers);
  for (const auto& seg : st.segments()) {
    std::vector<std::string> row = {absl::StrCat(seg.id()), SegmentStateName(seg.state()),
                                    absl::StrCat(seg.rows()), absl::StrCat(seg.deleted())};
    for (const auto& name : fields) {
      const v1::SegmentInfo::Field* field = nullptr;
      for (const auto& f : seg.fields()) {
        if (f.name() == name) field = &f;
      }
      if (field == nullptr) {
        row.insert(row.end(), {"-", "-", "-"});
        continue;
      }
      row.push_back(field->index().empty() ? "-" : field->index());
      row.push_back(FormatBytes(field->memory_bytes()));
      row.push_back(FormatBytes(field->disk_bytes()));
    }
    t.AddRow(std::move(row));
  }
  t.Print(out);
  out << SegmentSummary(st) << "\n";
}

void PrintStats(std::ostream& out, const v1::CollectionInfo& info) {
  const v1::CollectionStats& st = info.stats();
  PrintKeyValues(out, {
                          {"collection", info.name()},
                          {"points", absl::StrCat(st.point_count())},
                          {"deleted", absl::StrCat(st.deleted_count())},
                          {"storage", absl::StrCat(FormatBytes(st.storage_bytes()), " (",
                                                   st.storage_bytes(), " bytes)")},
                          {"last sequence", absl::StrCat(st.last_sequence())},
                      });
  if (st.vectors_size() > 0) {
    out << "\n";
    Table t({"VECTOR FIELD", "MEMORY", "DISK"});
    for (const auto& v : st.vectors()) {
      t.AddRow({v.name(), FormatBytes(v.memory_bytes()), FormatBytes(v.disk_bytes())});
    }
    t.Print(out);
  }
  PrintRecallAudit(out, st);
  PrintSegments(out, info);
}

// Attribute columns for hits or points: the requested names in their order,
// else every name seen, sorted.
template <typename Items, typename GetAttrs>
std::vector<std::string> AttrColumns(const Items& items, GetAttrs attrs,
                                     const std::vector<std::string>& requested) {
  if (!requested.empty() && !(requested.size() == 1 && requested[0] == "*")) return requested;
  std::set<std::string> names;
  for (const auto& it : items) {
    for (const auto& [k, v] : attrs(it)) names.insert(k);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

template <typename Items, typename GetVectors>
std::vector<std::string> VectorColumns(const Items& items, GetVectors vectors) {
  std::set<std::string> names;
  for (const auto& it : items) {
    for (const auto& [k, v] : vectors(it)) names.insert(k);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

constexpr size_t kShownVectorValues = 8;

// ------------------------------------------------------------ commands

absl::Status Health(Context& c) {
  QUIVER_RETURN_IF_ERROR(c.client->Health());
  if (c.globals.json) {
    PrintJson(c.out, {{"status", "SERVING"}});
  } else {
    c.out << "SERVING\n";
  }
  return absl::OkStatus();
}

absl::Status CollectionCreate(Context& c, const CreateArgs& a) {
  v1::CollectionSchema schema;
  if (!a.schema_file.empty()) {
    if (!a.vectors.empty() || !a.attrs.empty()) {
      return UsageError("--schema cannot be combined with --vector/--attr");
    }
    QUIVER_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(a.schema_file));
    auto s = google::protobuf::util::JsonStringToMessage(text, &schema);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          a.schema_file, ": not a CollectionSchema in JSON: ", s.message().as_string()));
    }
  } else {
    if (a.vectors.empty() && a.multi_vectors.empty())
      return UsageError(
          "give at least one --vector (or --multi-vector) name:dim:metric, or --schema FILE");
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
    vt.AddRow({name, absl::StrCat(f.dim()), MetricName(f.metric()), IndexText(f.index()),
               StorageModeName(f.storage()), mem, disk});
  }
  vt.Print(c.out);
  if (info.schema().attributes_size() > 0) {
    c.out << "\n";
    Table at({"ATTRIBUTE", "TYPE", "INDEXED"});
    for (const auto& a : info.schema().attributes()) {
      at.AddRow({a.name(), AttributeTypeName(a.type()),
                 a.window() ? "window" : a.indexed() ? "yes" : "no"});
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

absl::Status CollectionDrop(Context& c, const std::string& name) {
  QUIVER_RETURN_IF_ERROR(c.client->DropCollection(name));
  if (c.globals.json) {
    PrintJson(c.out, {{"name", name}, {"dropped", true}});
  } else {
    c.out << "dropped collection " << name << "\n";
  }
  return absl::OkStatus();
}

absl::Status Stats(Context& c, const std::string& name) {
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, c.client->GetCollection(name));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(info.stats()));
  } else {
    PrintStats(c.out, info);
  }
  return absl::OkStatus();
}

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
  absl::Status s = absl::DataLossError(absl::StrCat("collection \"", a.collection, "\": ",
                                                    resp.defects_total(), " defects found"));
  s.SetPayload(kDefectsPayload, absl::Cord("1"));
  return s;
}

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

absl::Status Get(Context& c, const GetArgs& a) {
  v1::GetPointsRequest req;
  req.set_collection(a.collection);
  for (const auto& id : a.ids) req.add_ids(id);
  req.set_with_vectors(a.vectors);
  for (const auto& name : a.attrs) req.add_attributes(name);
  QUIVER_ASSIGN_OR_RETURN(v1::GetPointsResponse resp, c.client->GetPoints(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
  } else if (resp.points_size() > 0) {
    const auto& pts = resp.points();
    std::vector<std::string> attr_cols = AttrColumns(
        pts, [](const v1::Point& p) -> const auto& { return p.attributes(); }, a.attrs);
    std::vector<std::string> vec_cols = VectorColumns(
        pts, [](const v1::Point& p) -> const auto& { return p.vectors(); });
    std::vector<std::string> headers = {"ID"};
    headers.insert(headers.end(), attr_cols.begin(), attr_cols.end());
    headers.insert(headers.end(), vec_cols.begin(), vec_cols.end());
    Table t(headers);
    for (const auto& p : pts) {
      std::vector<std::string> row = {p.id()};
      for (const auto& name : attr_cols) {
        auto it = p.attributes().find(name);
        row.push_back(it == p.attributes().end() ? "" : FormatValue(it->second));
      }
      for (const auto& name : vec_cols) {
        auto it = p.vectors().find(name);
        row.push_back(it == p.vectors().end() ? "" : FormatVector(it->second, kShownVectorValues));
      }
      t.AddRow(std::move(row));
    }
    t.Print(c.out);
  }
  // Like `kubectl get a b`: print what exists, then fail naming the rest.
  std::set<std::string> found;
  for (const auto& p : resp.points()) found.insert(p.id());
  std::vector<std::string> missing;
  for (const auto& id : a.ids) {
    if (!found.count(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    return absl::NotFoundError(absl::StrCat("no point with id ", absl::StrJoin(missing, ", "),
                                            " in collection \"", a.collection, "\""));
  }
  return absl::OkStatus();
}

absl::Status Delete(Context& c, const DeleteArgs& a) {
  if (a.ids.empty() == a.filter.empty()) {
    return UsageError("give either point ids or --filter EXPR (exactly one)");
  }
  v1::DeletePointsRequest req;
  req.set_collection(a.collection);
  for (const auto& id : a.ids) req.add_ids(id);
  req.set_filter(a.filter);
  QUIVER_ASSIGN_OR_RETURN(v1::DeletePointsResponse resp, c.client->Delete(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
  } else {
    c.out << "deleted " << resp.deleted_count() << " points (sequence " << resp.sequence() << ")\n";
  }
  return absl::OkStatus();
}

absl::Status Count(Context& c, const std::string& collection, const std::string& filter) {
  QUIVER_ASSIGN_OR_RETURN(uint64_t n, c.client->Count(collection, filter));
  if (c.globals.json) {
    PrintJson(c.out, {{"count", n}});
  } else {
    c.out << n << "\n";
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<float>>> SearchQueries(const SearchArgs& a) {
  const int sources = !a.vector.empty() + !a.vector_file.empty() + !a.query_json.empty();
  if (sources != 1) {
    return UsageError("give exactly one of --vector, --vector-file or --query-json");
  }
  if (a.vector_file.empty() && (a.row || !a.rows.empty() || !a.format.empty())) {
    return UsageError("--row, --rows and --format go with --vector-file");
  }
  if (!a.vector.empty()) {
    QUIVER_ASSIGN_OR_RETURN(std::vector<float> v, ParseFloatList(a.vector));
    return std::vector<std::vector<float>>{std::move(v)};
  }
  if (!a.query_json.empty()) return ParseQueryJson(a.query_json);

  if (a.row && !a.rows.empty()) return UsageError("give --row or --rows, not both");
  FileFormat format;
  if (!a.format.empty()) {
    absl::StatusOr<FileFormat> f = ParseFileFormat(a.format);
    if (!f.ok()) return AsUsage(f.status());
    format = *f;
  } else {
    absl::StatusOr<FileFormat> f = FileFormatFromName(a.vector_file);
    if (!f.ok()) return AsUsage(f.status());
    format = *f;
  }
  if (format == FileFormat::kJsonl) return UsageError("--vector-file takes fvecs, npy or idx");
  int64_t begin = 0, end = 1;
  if (a.row) {
    if (*a.row < 0) return UsageError("--row must be >= 0");
    begin = *a.row;
    end = begin + 1;
  } else if (!a.rows.empty()) {
    QUIVER_ASSIGN_OR_RETURN(auto range, ParseRowRange(a.rows));
    begin = range.first;
    end = range.second;
  } else {
    // Without --row the file must hold exactly one query; guessing row 0 of
    // a large file would silently search for the wrong thing.
    QUIVER_ASSIGN_OR_RETURN(auto reader, VectorFileReader::Open(a.vector_file, format));
    if (reader->rows() != 1) {
      const std::string rows =
          reader->rows() < 0 ? "several rows" : absl::StrCat(reader->rows(), " rows");
      return UsageError(absl::StrCat(a.vector_file, " has ", rows,
                                     "; pick one with --row N or a batch with --rows A:B"));
    }
  }
  return ReadVectorRows(a.vector_file, format, begin, end);
}

void PrintHits(std::ostream& out, const v1::SearchResult& result,
               const std::vector<std::string>& output_attrs) {
  if (result.hits_size() == 0) {
    out << "(no results)\n";
    return;
  }
  const auto& hits = result.hits();
  std::vector<std::string> attr_cols = AttrColumns(
      hits, [](const v1::Hit& h) -> const auto& { return h.attributes(); }, output_attrs);
  std::vector<std::string> vec_cols = VectorColumns(
      hits, [](const v1::Hit& h) -> const auto& { return h.vectors(); });
  std::vector<std::string> headers = {"RANK", "ID", "SCORE"};
  headers.insert(headers.end(), attr_cols.begin(), attr_cols.end());
  headers.insert(headers.end(), vec_cols.begin(), vec_cols.end());
  Table t(headers);
  int rank = 0;
  for (const auto& h : hits) {
    std::vector<std::string> row = {absl::StrCat(++rank), h.id(), FormatFloat(h.score())};
    for (const auto& name : attr_cols) {
      auto it = h.attributes().find(name);
      row.push_back(it == h.attributes().end() ? "" : FormatValue(it->second));
    }
    for (const auto& name : vec_cols) {
      auto it = h.vectors().find(name);
      row.push_back(it == h.vectors().end() ? "" : FormatVector(it->second, kShownVectorValues));
    }
    t.AddRow(std::move(row));
  }
  t.Print(out);
}

// Splits "NAME=REST" (hybrid search options).
absl::StatusOr<std::pair<std::string, std::string>> SplitFieldArg(const std::string& flag,
                                                                  const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
    return UsageError(absl::StrCat(flag, " \"", arg, "\": expected FIELD=VALUE"));
  }
  return std::make_pair(arg.substr(0, eq), arg.substr(eq + 1));
}

// The field queries of a hybrid search, from --field-vector and
// --field-vector-file, with --field-k and --weight.
absl::Status AddFieldQueries(const SearchArgs& a, v1::SearchRequest* req) {
  std::map<std::string, v1::FieldQuery*> by_field;
  auto add = [&](const std::string& flag, const std::string& name,
                 std::vector<float> v) -> absl::Status {
    if (by_field.count(name) != 0) {
      return UsageError(absl::StrCat(flag, ": field \"", name, "\" is given twice"));
    }
    v1::FieldQuery* fq = req->add_field_queries();
    fq->set_field(name);
    fq->mutable_vector()->mutable_values()->Add(v.begin(), v.end());
    by_field[name] = fq;
    return absl::OkStatus();
  };
  for (const std::string& arg : a.field_vectors) {
    QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg("--field-vector", arg));
    QUIVER_ASSIGN_OR_RETURN(std::vector<float> v, ParseFloatList(kv.second));
    QUIVER_RETURN_IF_ERROR(add("--field-vector", kv.first, std::move(v)));
  }
  for (const std::string& arg : a.field_vector_files) {
    QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg("--field-vector-file", arg));
    std::string path = kv.second;
    int64_t row = 0;
    if (const size_t colon = path.rfind(':'); colon != std::string::npos) {
      if (!absl::SimpleAtoi(path.substr(colon + 1), &row) || row < 0) {
        return UsageError(absl::StrCat("--field-vector-file \"", arg,
                                       "\": expected FIELD=PATH or FIELD=PATH:ROW"));
      }
      path = path.substr(0, colon);
    }
    absl::StatusOr<FileFormat> format = FileFormatFromName(path);
    if (!format.ok()) return AsUsage(format.status());
    if (*format == FileFormat::kJsonl) {
      return UsageError("--field-vector-file takes fvecs, npy or idx");
    }
    QUIVER_ASSIGN_OR_RETURN(auto rows, ReadVectorRows(path, *format, row, row + 1));
    if (rows.size() != 1) {
      return UsageError(absl::StrCat("--field-vector-file \"", arg, "\": no row ", row));
    }
    QUIVER_RETURN_IF_ERROR(add("--field-vector-file", kv.first, std::move(rows[0])));
  }
  auto per_field = [&](const std::string& flag, const std::vector<std::string>& args,
                       auto set) -> absl::Status {
    for (const std::string& arg : args) {
      QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg(flag, arg));
      auto it = by_field.find(kv.first);
      if (it == by_field.end()) {
        return UsageError(absl::StrCat(flag, ": field \"", kv.first,
                                       "\" has no --field-vector or --field-vector-file"));
      }
      if (!set(it->second, kv.second)) {
        return UsageError(absl::StrCat(flag, " \"", arg, "\": bad number"));
      }
    }
    return absl::OkStatus();
  };
  QUIVER_RETURN_IF_ERROR(per_field("--field-k", a.field_ks, [](v1::FieldQuery* fq, const std::string& v) {
    uint32_t k = 0;
    if (!absl::SimpleAtoi(v, &k)) return false;
    fq->set_k(k);
    return true;
  }));
  QUIVER_RETURN_IF_ERROR(per_field("--weight", a.weights, [](v1::FieldQuery* fq, const std::string& v) {
    float w = 0;
    if (!absl::SimpleAtof(v, &w)) return false;
    fq->set_weight(w);
    return true;
  }));
  for (v1::FieldQuery& fq : *req->mutable_field_queries()) {
    fq.mutable_params()->set_ef(a.ef);
    fq.mutable_params()->set_nprobe(a.nprobe);
    fq.mutable_params()->set_exact(a.exact);
    fq.mutable_params()->set_refine_factor(a.refine);
  }
  if (a.fusion.empty() || absl::EqualsIgnoreCase(a.fusion, "rrf")) {
    req->set_fusion(v1::RRF);
  } else if (absl::EqualsIgnoreCase(a.fusion, "weighted")) {
    req->set_fusion(v1::WEIGHTED);
  } else {
    return UsageError(absl::StrCat("--fusion \"", a.fusion, "\": expected rrf or weighted"));
  }
  req->set_rrf_k(a.rrf_k);
  req->set_with_field_results(a.field_results);
  return absl::OkStatus();
}

absl::Status Search(Context& c, const SearchArgs& a) {
  v1::SearchRequest req;
  req.set_collection(a.collection);
  const bool hybrid = !a.field_vectors.empty() || !a.field_vector_files.empty();
  if (hybrid) {
    if (!a.vector.empty() || !a.vector_file.empty() || !a.query_json.empty() ||
        !a.field.empty()) {
      return UsageError(
          "--field-vector/--field-vector-file (hybrid search) replace --vector, "
          "--vector-file, --query-json and --field");
    }
    QUIVER_RETURN_IF_ERROR(AddFieldQueries(a, &req));
  } else if (!a.query_set_json.empty() || !a.query_set_file.empty()) {
    if (!a.vector.empty() || !a.vector_file.empty() || !a.query_json.empty() ||
        (!a.query_set_json.empty() && !a.query_set_file.empty())) {
      return UsageError(
          "give one query: --query-set-json or --query-set-file (late interaction), or "
          "--vector / --vector-file / --query-json");
    }
    std::vector<std::vector<float>> set;
    if (!a.query_set_json.empty()) {
      QUIVER_ASSIGN_OR_RETURN(set, ParseQueryJson(a.query_set_json));
    } else {
      absl::StatusOr<FileFormat> format = FileFormatFromName(a.query_set_file);
      if (!format.ok()) return AsUsage(format.status());
      QUIVER_ASSIGN_OR_RETURN(auto reader, VectorFileReader::Open(a.query_set_file, *format));
      std::vector<float> row;
      for (;;) {
        QUIVER_ASSIGN_OR_RETURN(bool more, reader->Next(&row));
        if (!more) break;
        set.push_back(row);
      }
    }
    req.set_field(a.field);
    v1::MultiVector* mv = req.add_multi_vectors();
    for (const auto& v : set) mv->add_vectors()->mutable_values()->Add(v.begin(), v.end());
  } else {
    if (!a.field_ks.empty() || !a.weights.empty() || !a.fusion.empty() || a.rrf_k != 0 ||
        a.field_results) {
      return UsageError(
          "--field-k, --weight, --fusion, --rrf-k and --field-results need "
          "--field-vector or --field-vector-file (hybrid search)");
    }
    QUIVER_ASSIGN_OR_RETURN(std::vector<std::vector<float>> queries, SearchQueries(a));
    req.set_field(a.field);
    for (const auto& q : queries) req.add_vectors()->mutable_values()->Add(q.begin(), q.end());
  }
  req.set_k(a.k);
  req.set_filter(a.filter);
  for (const auto& name : a.output_attrs) req.add_output_attributes(name);
  req.set_with_vectors(a.with_vectors);
  req.mutable_params()->set_ef(a.ef);
  req.mutable_params()->set_nprobe(a.nprobe);
  req.mutable_params()->set_exact(a.exact);
  req.mutable_params()->set_refine_factor(a.refine);
  v1::FilterStrategy strategy = v1::FILTER_STRATEGY_AUTO;
  if (a.strategy != "auto" && !v1::FilterStrategy_Parse(absl::AsciiStrToUpper(a.strategy), &strategy)) {
    return UsageError(absl::StrCat("--strategy \"", a.strategy,
                                   "\": expected auto, pre_filter, filtered_index, post_filter or window_filter"));
  }
  req.mutable_params()->set_filter_strategy(strategy);
  req.set_explain(a.explain);
  QUIVER_ASSIGN_OR_RETURN(v1::SearchResponse resp, c.client->Search(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
    return absl::OkStatus();
  }
  for (int i = 0; i < resp.results_size(); ++i) {
    if (resp.results_size() > 1) c.out << (i > 0 ? "\n" : "") << "query " << i << ":\n";
    if (hybrid) c.out << "fused (" << v1::FusionMethod_Name(req.fusion()) << "):\n";
    PrintHits(c.out, resp.results(i), a.output_attrs);
  }
  for (const v1::FieldResult& fr : resp.field_results()) {
    c.out << "\nfield " << fr.field() << ":\n";
    v1::SearchResult r;
    *r.mutable_hits() = fr.hits();
    PrintHits(c.out, r, a.output_attrs);
  }
  if (!resp.explain().text().empty()) c.out << "\nexplain:\n" << resp.explain().text() << "\n";
  return absl::OkStatus();
}

// ------------------------------------------------------------ main

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
  app.add_option("--timeout", g.timeout_seconds, "Per-request timeout in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  auto* health = app.add_subcommand("health", "Check that the server is serving");

  auto* coll = app.add_subcommand(
      "collection", "Create, list, describe or drop collections, or change their index");
  coll->require_subcommand(1);
  CreateArgs create;
  auto* create_cmd = coll->add_subcommand("create", "Create a collection");
  create_cmd->add_option("name", create.name, "Collection name")->required();
  create_cmd->add_option("--vector", create.vectors,
                         "Vector field name:dim:metric[:index][:disk] (metric L2|IP|COSINE; "
                         "index FLAT (default), HNSW,M=16,..., IVF_FLAT,nlist=..., or a "
                         "compressed IVF_SQ8, IVF_PQ,m=..., HNSW_SQ8; disk: only the "
                         "compressed index in memory, full vectors in a rerank table on disk); "
                         "repeatable");
  create_cmd->add_option("--attr", create.attrs,
                         "Attribute name:type[:indexed|:window] (int64|double|bool|string|"
                         "string_list; window: numeric, indexed, with window indexes for range "
                         "filters); repeatable");
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
  std::string coll_name;
  DescribeArgs describe;
  auto* describe_cmd =
      coll->add_subcommand("describe", "Schema, statistics and segments of a collection");
  describe_cmd->add_option("name", coll_name, "Collection name")->required();
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
  SetIndexArgs set_index;
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
  auto* drop_cmd = coll->add_subcommand("drop", "Drop a collection and all its points");
  drop_cmd->add_option("name", coll_name, "Collection name")->required();

  ImportArgs imp;
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
  import_cmd->add_flag("--no-progress", imp.no_progress, "No progress report on stderr");

  GetArgs get;
  auto* get_cmd = app.add_subcommand("get", "Fetch points by id");
  get_cmd->add_option("collection", get.collection, "Collection name")->required();
  get_cmd->add_option("ids", get.ids, "Point ids")->required();
  get_cmd->add_flag("--vectors", get.vectors, "Include vectors");
  get_cmd->add_option("--attrs", get.attrs, "Attributes to return (a,b; default all)")
      ->delimiter(',');

  DeleteArgs del;
  auto* delete_cmd = app.add_subcommand("delete", "Delete points by id or by filter");
  delete_cmd->add_option("collection", del.collection, "Collection name")->required();
  delete_cmd->add_option("ids", del.ids, "Point ids");
  delete_cmd->add_option("--filter", del.filter, "Delete the points matching this filter");

  std::string count_coll, count_filter;
  auto* count_cmd = app.add_subcommand("count", "Count points");
  count_cmd->add_option("collection", count_coll, "Collection name")->required();
  count_cmd->add_option("--filter", count_filter, "Count only points matching this filter");

  SearchArgs srch;
  auto* search_cmd = app.add_subcommand("search", "Nearest neighbours of query vectors");
  search_cmd->add_option("collection", srch.collection, "Collection name")->required();
  search_cmd->add_option("--vector", srch.vector, "Query vector \"1,2,3\"");
  search_cmd->add_option("--vector-file", srch.vector_file, "Queries from an fvecs/npy/idx file");
  search_cmd->add_option("--row", srch.row, "Row of --vector-file to use");
  search_cmd->add_option("--rows", srch.rows, "Rows A:B (A inclusive, B exclusive) as a batch");
  search_cmd->add_option("--format", srch.format,
                         "Format of --vector-file (default: from its name)");
  search_cmd->add_option("--query-json", srch.query_json, "[1,2,3] or [[1,2,3],[4,5,6]]");
  search_cmd->add_option("--field", srch.field, "Vector field (default: the only one)");
  search_cmd->add_option("-k,--k", srch.k, "Results per query")->capture_default_str();
  search_cmd->add_option("--filter", srch.filter, "Filter expression");
  search_cmd->add_option("--output-attrs", srch.output_attrs, "Attributes to return (a,b or '*')")
      ->delimiter(',');
  search_cmd->add_flag("--with-vectors", srch.with_vectors, "Return the hits' vectors");
  search_cmd->add_option("--ef", srch.ef, "HNSW search list size");
  search_cmd->add_option("--nprobe", srch.nprobe, "IVF lists to probe");
  search_cmd->add_flag("--exact", srch.exact, "Exact scan, bypassing the ANN index");
  search_cmd->add_option("--strategy", srch.strategy,
                         "With --filter: auto (the planner chooses per segment), pre_filter, "
                         "filtered_index, post_filter or window_filter")
      ->capture_default_str();
  search_cmd->add_flag("--explain", srch.explain,
                       "Show the plan per segment: strategy, selectivity, work and time");
  search_cmd->add_option("--field-vector", srch.field_vectors,
                         "Hybrid search: FIELD=1,2,3, a query vector for one field; repeat per "
                         "field. The fields' lists are fused (--fusion)");
  search_cmd->add_option("--field-vector-file", srch.field_vector_files,
                         "Hybrid search: FIELD=PATH[:ROW], a field's query vector from an "
                         "fvecs/npy/idx file (row 0 by default)");
  search_cmd->add_option("--field-k", srch.field_ks,
                         "Hybrid search: FIELD=N candidates from that field (default: -k)");
  search_cmd->add_option("--weight", srch.weights,
                         "Hybrid search: FIELD=W, the field's weight in the fusion (default 1)");
  search_cmd->add_option("--fusion", srch.fusion,
                         "Hybrid search: rrf (reciprocal rank fusion, default) or weighted "
                         "(weighted min-max normalized scores)");
  search_cmd->add_option("--rrf-k", srch.rrf_k, "Hybrid search: RRF's constant (default 60)");
  search_cmd->add_flag("--field-results", srch.field_results,
                       "Hybrid search: also print each field's own list");
  search_cmd->add_option("--query-set-json", srch.query_set_json,
                         "Late interaction: one query set [[1,2,3],[4,5,6]] for the "
                         "multi-vector --field, scored by MaxSim");
  search_cmd->add_option("--query-set-file", srch.query_set_file,
                         "Late interaction: one query set, every row of an fvecs/npy/idx file");
  search_cmd->add_option("--refine", srch.refine,
                         "Candidates reranked = k x this (compressed indexes; late interaction: "
                         "points scored by exact MaxSim). Default: the index's");

  std::string stats_coll;
  auto* stats_cmd = app.add_subcommand("stats", "Statistics of a collection");
  stats_cmd->add_option("collection", stats_coll, "Collection name")->required();

  VerifyArgs ver;
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
  c.client = std::make_unique<client::Client>(g.addr, copts);

  absl::Status s;
  if (health->parsed()) {
    s = Health(c);
  } else if (create_cmd->parsed()) {
    s = CollectionCreate(c, create);
  } else if (list_cmd->parsed()) {
    s = CollectionList(c);
  } else if (describe_cmd->parsed()) {
    s = CollectionDescribe(c, coll_name, describe);
  } else if (set_index_cmd->parsed()) {
    s = CollectionSetIndex(c, set_index);
  } else if (drop_cmd->parsed()) {
    s = CollectionDrop(c, coll_name);
  } else if (import_cmd->parsed()) {
    s = Import(c, imp);
  } else if (get_cmd->parsed()) {
    s = Get(c, get);
  } else if (delete_cmd->parsed()) {
    s = Delete(c, del);
  } else if (count_cmd->parsed()) {
    s = Count(c, count_coll, count_filter);
  } else if (search_cmd->parsed()) {
    s = Search(c, srch);
  } else if (stats_cmd->parsed()) {
    s = Stats(c, stats_coll);
  } else if (verify_cmd->parsed()) {
    s = Verify(c, ver);
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
