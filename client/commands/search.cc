// quiverctl search: plain, batched, hybrid (several fields fused) and
// late-interaction (a query set scored by MaxSim) searches, and the hits
// table.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "client/commands/columns.h"
#include "client/commands/commands.h"
#include "client/import/vector_file.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

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
  float target_recall = 0;
  // Honest results, range and grouped search (SearchRequest's fields).
  uint32_t min_results = 0;
  bool exhaustive = false;
  std::optional<float> score_threshold;
  std::string group_by;
  uint32_t group_size = 0;
  // Diversity (MMR): lambda, and the candidates re-ranked.
  std::optional<float> diversity;
  uint32_t fetch_k = 0;
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
  // Sparse search: one query per flag, "INDEX:VALUE,..."; hybrid:
  // FIELD=INDEX:VALUE,... per sparse field.
  std::vector<std::string> sparse;
  std::vector<std::string> field_sparse;
  // Full-text search: one query per flag; hybrid: FIELD=TEXT.
  std::vector<std::string> text;
  std::vector<std::string> field_text;
  // Multi-stage search: KIND:FIELD=QUERY per stage, in order; the stages'
  // limits, in the same order; the fused candidates the first one takes.
  std::vector<std::string> stages;
  std::vector<uint32_t> stage_limits;
  uint32_t candidates = 0;
};

// ------------------------------------------------------------ parsing

// "3:0.5,17:1.2" (or with spaces, or as JSON {"3": 0.5}) -> a sparse vector;
// the server checks and sorts it.
absl::StatusOr<v1::SparseVector> ParseSparse(const std::string& flag, const std::string& text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  absl::ConsumePrefix(&s, "{");
  absl::ConsumeSuffix(&s, "}");
  v1::SparseVector v;
  for (absl::string_view part : absl::StrSplit(s, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    const size_t colon = part.find(':');
    uint32_t index = 0;
    float value = 0;
    absl::string_view idx = colon == absl::string_view::npos ? part : part.substr(0, colon);
    absl::ConsumePrefix(&idx, "\"");
    absl::ConsumeSuffix(&idx, "\"");
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(idx, &index) ||
        !absl::SimpleAtof(part.substr(colon + 1), &value)) {
      return UsageError(absl::StrCat(flag, ": \"", part, "\" is not INDEX:VALUE"));
    }
    v.add_indices(index);
    v.add_values(value);
  }
  if (v.indices().empty()) return UsageError(absl::StrCat(flag, ": no INDEX:VALUE pairs"));
  return v;
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

// ------------------------------------------------------------ search

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

void PrintHitTable(std::ostream& out, const google::protobuf::RepeatedPtrField<v1::Hit>& hits,
                   const std::vector<std::string>& output_attrs) {
  if (hits.empty()) {
    out << "(no results)\n";
    return;
  }
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

// One line when a list is short of k: how many it holds, how many points
// match, and why it stopped (SearchResult's count, matching_points and
// shortfall), so a short answer is never mistaken for a complete one.
void PrintShortfall(std::ostream& out, uint32_t count, bool exhaustive, v1::Shortfall shortfall,
                    uint64_t matching_points, uint32_t k, bool groups) {
  if (shortfall == v1::SHORTFALL_NONE) return;
  out << count << (groups ? " groups" : " hits") << " of k=" << k;
  if (matching_points > 0) out << ", " << matching_points << " matching points";
  switch (shortfall) {
    case v1::SHORTFALL_FEWER_MATCHES:
      out << ": fewer " << (groups ? "groups" : "points") << " match than k";
      break;
    case v1::SHORTFALL_INDEX_STOPPED_EARLY:
      out << ": the index stopped early (--min-results or --exhaustive fall back to an exact scan)";
      break;
    case v1::SHORTFALL_SCORE_THRESHOLD:
      out << ": the rest are outside --score-threshold";
      break;
    default:
      out << ": " << v1::Shortfall_Name(shortfall);
      break;
  }
  out << (exhaustive ? " (exhaustive)" : "") << "\n";
}

void PrintResult(std::ostream& out, const v1::SearchResult& result, uint32_t k,
                 const std::vector<std::string>& output_attrs) {
  const bool grouped = result.groups_size() > 0;
  if (!grouped) {
    PrintHitTable(out, result.hits(), output_attrs);
  } else {
    for (int g = 0; g < result.groups_size(); ++g) {
      const v1::HitGroup& group = result.groups(g);
      out << (g > 0 ? "\n" : "") << "group " << FormatValue(group.key()) << ":\n";
      PrintHitTable(out, group.hits(), output_attrs);
    }
  }
  PrintShortfall(out, result.count(), result.exhaustive(), result.shortfall(),
                 result.matching_points(), k, grouped);
  if (result.predicted_recall() > 0) {
    out << absl::StrFormat("predicted recall@%u: %.3f\n", k, result.predicted_recall());
  }
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
  for (const std::string& arg : a.field_text) {
    QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg("--field-text", arg));
    if (by_field.count(kv.first) != 0) {
      return UsageError(absl::StrCat("--field-text: field \"", kv.first, "\" is given twice"));
    }
    v1::FieldQuery* fq = req->add_field_queries();
    fq->set_field(kv.first);
    fq->set_text(kv.second);
    by_field[kv.first] = fq;
  }
  for (const std::string& arg : a.field_sparse) {
    QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg("--field-sparse", arg));
    QUIVER_ASSIGN_OR_RETURN(v1::SparseVector v, ParseSparse("--field-sparse", kv.second));
    if (by_field.count(kv.first) != 0) {
      return UsageError(absl::StrCat("--field-sparse: field \"", kv.first, "\" is given twice"));
    }
    v1::FieldQuery* fq = req->add_field_queries();
    fq->set_field(kv.first);
    *fq->mutable_sparse_vector() = std::move(v);
    by_field[kv.first] = fq;
  }
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
                                       "\" has no --field-vector, --field-vector-file, "
                                       "--field-sparse or --field-text"));
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
    fq.mutable_params()->set_target_recall(a.target_recall);
  }
  if (a.fusion.empty() || absl::EqualsIgnoreCase(a.fusion, "rrf")) {
    req->set_fusion(v1::RRF);
  } else if (absl::EqualsIgnoreCase(a.fusion, "weighted")) {
    req->set_fusion(v1::WEIGHTED);
  } else if (absl::EqualsIgnoreCase(a.fusion, "dbsf")) {
    req->set_fusion(v1::DBSF);
  } else {
    return UsageError(
        absl::StrCat("--fusion \"", a.fusion, "\": expected rrf, weighted or dbsf"));
  }
  req->set_rrf_k(a.rrf_k);
  req->set_with_field_results(a.field_results);
  return absl::OkStatus();
}

// The stages of a multi-stage search, from --stage KIND:FIELD=QUERY (KIND
// vector, set, sparse or text) and --stage-limits.
absl::Status AddStages(const SearchArgs& a, v1::SearchRequest* req) {
  if (a.stage_limits.size() > a.stages.size()) {
    return UsageError(absl::StrCat("--stage-limits gives ", a.stage_limits.size(),
                                   " limits for ", a.stages.size(), " --stage"));
  }
  for (size_t i = 0; i < a.stages.size(); ++i) {
    const std::string& arg = a.stages[i];
    const size_t colon = arg.find(':');
    const size_t eq = arg.find('=');
    if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
      return UsageError(absl::StrCat("--stage \"", arg,
                                     "\": expected KIND:FIELD=QUERY, KIND one of vector, set, "
                                     "sparse, text"));
    }
    const std::string kind = arg.substr(0, colon);
    QUIVER_ASSIGN_OR_RETURN(auto kv, SplitFieldArg("--stage", arg.substr(colon + 1)));
    v1::SearchStage* st = req->add_stages();
    st->set_field(kv.first);
    if (i < a.stage_limits.size()) st->set_limit(a.stage_limits[i]);
    if (kind == "vector") {
      QUIVER_ASSIGN_OR_RETURN(std::vector<float> v, ParseFloatList(kv.second));
      st->mutable_vector()->mutable_values()->Add(v.begin(), v.end());
    } else if (kind == "set") {
      QUIVER_ASSIGN_OR_RETURN(std::vector<std::vector<float>> set, ParseQueryJson(kv.second));
      for (const auto& v : set) {
        st->mutable_multi_vector()->add_vectors()->mutable_values()->Add(v.begin(), v.end());
      }
    } else if (kind == "sparse") {
      QUIVER_ASSIGN_OR_RETURN(*st->mutable_sparse_vector(), ParseSparse("--stage", kv.second));
    } else if (kind == "text") {
      st->set_text(kv.second);
    } else {
      return UsageError(absl::StrCat("--stage \"", arg, "\": unknown kind \"", kind,
                                     "\" (vector, set, sparse or text)"));
    }
  }
  req->set_candidates(a.candidates);
  return absl::OkStatus();
}

absl::Status Search(Context& c, const SearchArgs& a) {
  v1::SearchRequest req;
  req.set_collection(a.collection);
  const bool hybrid = !a.field_vectors.empty() || !a.field_vector_files.empty() ||
                      !a.field_sparse.empty() || !a.field_text.empty();
  if (hybrid) {
    if (!a.vector.empty() || !a.vector_file.empty() || !a.query_json.empty() ||
        !a.field.empty() || !a.sparse.empty() || !a.text.empty()) {
      return UsageError(
          "--field-vector/--field-vector-file/--field-sparse (hybrid search) replace --vector, "
          "--vector-file, --query-json, --sparse and --field");
    }
    QUIVER_RETURN_IF_ERROR(AddFieldQueries(a, &req));
    QUIVER_RETURN_IF_ERROR(AddStages(a, &req));
  } else if (!a.stages.empty() || !a.stage_limits.empty() || a.candidates != 0) {
    return UsageError(
        "--stage, --stage-limits and --candidates re-score a hybrid search's candidates: give "
        "them with --field-vector, --field-vector-file, --field-sparse or --field-text");
  } else if (!a.text.empty()) {
    if (!a.vector.empty() || !a.vector_file.empty() || !a.query_json.empty() ||
        !a.query_set_json.empty() || !a.query_set_file.empty() || !a.sparse.empty()) {
      return UsageError("--text takes the place of the other query flags");
    }
    if (a.field.empty()) return UsageError("--text needs --field (the text attribute)");
    req.set_field(a.field);
    for (const std::string& q : a.text) req.add_texts(q);
  } else if (!a.sparse.empty()) {
    if (!a.vector.empty() || !a.vector_file.empty() || !a.query_json.empty() ||
        !a.query_set_json.empty() || !a.query_set_file.empty()) {
      return UsageError("--sparse takes the place of the other query flags");
    }
    if (a.field.empty()) return UsageError("--sparse needs --field (the sparse vector field)");
    req.set_field(a.field);
    for (const std::string& q : a.sparse) {
      QUIVER_ASSIGN_OR_RETURN(*req.add_sparse_vectors(), ParseSparse("--sparse", q));
    }
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
          "--field-vector, --field-vector-file or --field-sparse (hybrid search)");
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
  req.mutable_params()->set_target_recall(a.target_recall);
  v1::FilterStrategy strategy = v1::FILTER_STRATEGY_AUTO;
  if (a.strategy != "auto" && !v1::FilterStrategy_Parse(absl::AsciiStrToUpper(a.strategy), &strategy)) {
    return UsageError(absl::StrCat("--strategy \"", a.strategy,
                                   "\": expected auto, pre_filter, filtered_index, post_filter or window_filter"));
  }
  req.mutable_params()->set_filter_strategy(strategy);
  req.set_explain(a.explain);
  // Range checks are the server's (INVALID_ARGUMENT with its reasons).
  req.set_min_results(a.min_results);
  req.set_exhaustive(a.exhaustive);
  if (a.score_threshold) req.set_score_threshold(*a.score_threshold);
  req.set_group_by(a.group_by);
  req.set_group_size(a.group_size);
  if (a.group_size != 0 && a.group_by.empty()) return UsageError("--group-size needs --group-by");
  if (a.diversity) {
    req.mutable_diversity()->set_lambda(*a.diversity);
    req.mutable_diversity()->set_fetch_k(a.fetch_k);
  } else if (a.fetch_k != 0) {
    return UsageError("--fetch-k needs --diversity");
  }
  QUIVER_ASSIGN_OR_RETURN(v1::SearchResponse resp, c.client->Search(req));
  if (c.globals.json) {
    PrintJson(c.out, ProtoToJson(resp));
    return absl::OkStatus();
  }
  for (int i = 0; i < resp.results_size(); ++i) {
    if (resp.results_size() > 1) c.out << (i > 0 ? "\n" : "") << "query " << i << ":\n";
    if (hybrid && req.stages().empty()) {
      c.out << "fused (" << v1::FusionMethod_Name(req.fusion()) << "):\n";
    } else if (hybrid) {
      c.out << "stage " << req.stages_size() << " (" << req.stages().rbegin()->field() << "):\n";
    }
    PrintResult(c.out, resp.results(i), a.k, a.output_attrs);
  }
  for (const v1::FieldResult& fr : resp.field_results()) {
    c.out << "\nfield " << fr.field() << ":\n";
    PrintHitTable(c.out, fr.hits(), a.output_attrs);
  }
  if (!resp.explain().text().empty()) c.out << "\nexplain:\n" << resp.explain().text() << "\n";
  return absl::OkStatus();
}

}  // namespace

void RegisterSearchCommands(CLI::App& app, CommandSet& commands) {
  auto srch_args = std::make_shared<SearchArgs>();
  SearchArgs& srch = *srch_args;
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
  search_cmd->add_option("--sparse", srch.sparse,
                         "Sparse search of --field: a query \"INDEX:VALUE,...\" (repeat for a "
                         "batch); hits score by dot product");
  search_cmd->add_option("--text", srch.text,
                         "Full-text search of --field (a text attribute): a plain-text query, "
                         "ranked by BM25 (repeat for a batch)");
  search_cmd->add_option("--field-text", srch.field_text,
                         "Hybrid search: FIELD=TEXT, a text attribute's query; repeat per field");
  search_cmd->add_option("--field-sparse", srch.field_sparse,
                         "Hybrid search: FIELD=INDEX:VALUE,..., a sparse field's query; repeat "
                         "per field");
  search_cmd->add_option("--fusion", srch.fusion,
                         "Hybrid search: rrf (reciprocal rank fusion, default), dbsf "
                         "(distribution-based score fusion) or weighted "
                         "(weighted min-max normalized scores)");
  search_cmd->add_option("--rrf-k", srch.rrf_k, "Hybrid search: RRF's constant (default 60)");
  search_cmd->add_flag("--field-results", srch.field_results,
                       "Hybrid search: also print each field's own list");
  search_cmd->add_option("--stage", srch.stages,
                         "Multi-stage search: KIND:FIELD=QUERY re-scores the hybrid search's "
                         "candidates exactly by FIELD (KIND vector: 1,2,3; set: [[1,2],[3,4]]; "
                         "sparse: 3:0.5,17:1.2; text: words); repeat for each stage, in order");
  search_cmd->add_option("--stage-limits", srch.stage_limits,
                         "Multi-stage search: how many candidates each --stage keeps, in order "
                         "(default: -k)")
      ->delimiter(',');
  search_cmd->add_option("--candidates", srch.candidates,
                         "Multi-stage search: the fused candidates the first --stage takes "
                         "(default: every point of the fields' lists)");
  search_cmd->add_option("--query-set-json", srch.query_set_json,
                         "Late interaction: one query set [[1,2,3],[4,5,6]] for the "
                         "multi-vector --field, scored by MaxSim");
  search_cmd->add_option("--query-set-file", srch.query_set_file,
                         "Late interaction: one query set, every row of an fvecs/npy/idx file");
  search_cmd->add_option("--min-results", srch.min_results,
                         "Fall back (wider search, then exact) until each list has this many "
                         "hits or every matching point");
  search_cmd->add_flag("--exhaustive", srch.exhaustive,
                       "Same as --min-results k: k hits, or every matching point");
  search_cmd->add_option("--score-threshold", srch.score_threshold,
                         "Range search: only hits within this distance (L2) or at least this "
                         "similarity (IP, COSINE)");
  search_cmd->add_option("--group-by", srch.group_by,
                         "Grouped search: the best hits per value of this attribute, k groups");
  search_cmd->add_option("--group-size", srch.group_size, "Hits per group with --group-by (default 1)");
  search_cmd->add_option("--diversity", srch.diversity,
                         "Diversity-aware results: re-rank the best --fetch-k by maximal "
                         "marginal relevance with this lambda (1: plain relevance order, lower: "
                         "fewer near-duplicates; 0.5 is a good start)");
  search_cmd->add_option("--fetch-k", srch.fetch_k,
                         "With --diversity: candidates re-ranked (default max(4k, 50))");
  search_cmd->add_option("--target-recall", srch.target_recall,
                         "Ask for this recall@k (0.5..0.999) instead of --ef, --nprobe and "
                         "--refine: each segment picks the cheapest setting its index's "
                         "calibration predicts reaches it; the predicted recall is printed");
  search_cmd->add_option("--refine", srch.refine,
                         "Candidates reranked = k x this (compressed indexes; late interaction: "
                         "points scored by exact MaxSim). Default: the index's");

  commands.Add(search_cmd, [srch_args](Context& c) { return Search(c, *srch_args); });
}

}  // namespace quiver::ctl
