// Import: the loops behind `quiverctl import`: read rows (vector files) or
// lines (jsonl), turn them into points, batch them to the server.
#include "client/import/import.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "client/import/batch.h"
#include "client/import/byte_input.h"
#include "client/import/jsonl.h"
#include "client/import/labels.h"
#include "client/import/vector_file.h"

namespace quiver::ctl {

std::string FieldNames(const v1::CollectionSchema& schema) {
  std::vector<std::string> names;
  for (const auto& f : schema.vectors()) names.push_back(f.name());
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<const v1::VectorField*> ResolveField(const std::string& collection,
                                                    const v1::CollectionSchema& schema,
                                                    const std::string& field) {
  if (field.empty()) {
    if (schema.vectors_size() == 1) return &schema.vectors(0);
    return absl::InvalidArgumentError(absl::StrCat("collection \"", collection, "\" has ",
                                                   schema.vectors_size(), " vector fields (",
                                                   FieldNames(schema), "); pass --field"));
  }
  for (const auto& f : schema.vectors()) {
    if (f.name() == field) return &f;
  }
  return absl::InvalidArgumentError(absl::StrCat("collection \"", collection,
                                                 "\" has no vector field \"", field,
                                                 "\" (fields: ", FieldNames(schema), ")"));
}

namespace {

// A label as a value of the label attribute's type.
v1::Value LabelValue(int64_t label, v1::AttributeType type) {
  v1::Value v;
  switch (type) {
    case v1::DOUBLE:
      v.set_double_value(static_cast<double>(label));
      break;
    case v1::STRING:
      v.set_string_value(absl::StrCat(label));
      break;
    default:
      v.set_int_value(label);
      break;
  }
  return v;
}

// --meta: the id and attributes of each row (or point), a jsonl line each.
class MetaLines {
 public:
  static absl::StatusOr<std::unique_ptr<MetaLines>> Open(const ImportOptions& options,
                                                         const v1::CollectionSchema& schema) {
    if (options.meta_path.empty()) return std::unique_ptr<MetaLines>();
    QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<GzInput> in, GzInput::Open(options.meta_path));
    return std::unique_ptr<MetaLines>(new MetaLines(options.meta_path, std::move(in), schema));
  }

  // The next line's id and attributes into *p.
  absl::Status Next(v1::Point* p) {
    std::string line;
    do {
      QUIVER_ASSIGN_OR_RETURN(bool more, in_->ReadLine(&line, absl::StrCat("line ", line_ + 1)));
      if (!more) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, " ends after ", line_, " lines, before the vectors do"));
      }
      ++line_;
    } while (absl::StripAsciiWhitespace(line).empty());
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": line ", line_, ": invalid JSON: ", ParseErrorText(e.what())));
    }
    if (j.is_object() && (j.contains("vector") || j.contains("vectors"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": line ", line_, ": --meta lines hold ids and attributes, not vectors"));
    }
    if (absl::Status s = converter_.Convert(j, p); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": line ", line_, ": ", s.message()));
    }
    return absl::OkStatus();
  }

 private:
  MetaLines(std::string path, std::unique_ptr<GzInput> in, const v1::CollectionSchema& schema)
      : path_(std::move(path)), in_(std::move(in)), converter_(schema, "") {}

  std::string path_;
  std::unique_ptr<GzInput> in_;
  JsonlConverter converter_;
  int64_t line_ = 0;
};

// Points of a multi-vector field from a vector file of all their vectors,
// point i holding rows [offsets[i], offsets[i + 1]).
absl::StatusOr<ImportResult> ImportMultiVectors(client::Client& client,
                                                const ImportOptions& options,
                                                const v1::VectorField& field,
                                                VectorFileReader* reader,
                                                const std::vector<int64_t>& labels,
                                                v1::AttributeType label_type,
                                                MetaLines* meta) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> offsets, ReadLabels(options.offsets_path));
  if (offsets.size() < 2 || offsets.front() != 0 ||
      !std::is_sorted(offsets.begin(), offsets.end()) ||
      (reader->rows() >= 0 && offsets.back() != reader->rows())) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.offsets_path, ": offsets must start at 0, never decrease and end at the rows of ",
        options.path, reader->rows() >= 0 ? absl::StrCat(" (", reader->rows(), ")") : "",
        "; nothing was imported"));
  }
  const int64_t points = static_cast<int64_t>(offsets.size()) - 1;
  if (!labels.empty() && static_cast<int64_t>(labels.size()) != points) {
    return absl::InvalidArgumentError(absl::StrCat(options.labels_path, " has ", labels.size(),
                                                   " labels for ", points, " points"));
  }
  const int64_t total = options.limit >= 0 ? std::min(points, options.limit) : points;
  Progress progress(options.show_progress, total);
  Batcher batcher(client, options, "point", &progress);
  std::vector<float> row;
  for (int64_t i = 0; i < total; ++i) {
    v1::Point p;
    if (meta != nullptr) {
      QUIVER_RETURN_IF_ERROR(meta->Next(&p));
    } else {
      p.set_id(absl::StrCat(options.id_prefix, options.start_id + i));
    }
    v1::MultiVector& mv = (*p.mutable_multi_vectors())[field.name()];
    for (int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
      absl::StatusOr<bool> more = reader->Next(&row);
      if (!more.ok()) return more.status();
      if (!*more) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.path, " ends at row ", r, " but ", options.offsets_path, " says point ", i,
            " goes on to row ", offsets[i + 1], " (", batcher.imported(),
            " points were imported)"));
      }
      mv.add_vectors()->mutable_values()->Add(row.begin(), row.end());
    }
    if (!labels.empty()) {
      (*p.mutable_attributes())[options.label_attr] =
          LabelValue(labels[static_cast<size_t>(i)], label_type);
    }
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), i, reader->progress()));
  }
  return batcher.Finish();
}

absl::StatusOr<ImportResult> ImportVectors(client::Client& client, const ImportOptions& options,
                                           const v1::CollectionSchema& schema) {
  QUIVER_ASSIGN_OR_RETURN(const v1::VectorField* field,
                          ResolveField(options.collection, schema, options.field));
  const bool multi = field->has_multi_vector();
  if (multi != !options.offsets_path.empty()) {
    return absl::InvalidArgumentError(
        multi ? absl::StrCat("\"", field->name(),
                             "\" is a multi-vector field: give --offsets, the first row of each "
                             "point's vectors (n + 1 entries, the last = the rows of ",
                             options.path, ")")
              : absl::StrCat("--offsets goes with a multi-vector field; \"", field->name(),
                             "\" is not one"));
  }
  if (schema.vectors_size() > 1) {
    // Every point needs every vector field, and a vector file has one.
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", options.collection, "\" has several vector fields (", FieldNames(schema),
        ") and every point needs all of them; a ", FileFormatName(*options.format),
        " file fills one. Use jsonl with \"vectors\": {...}"));
  }
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<VectorFileReader> reader,
                          VectorFileReader::Open(options.path, *options.format));
  if (reader->dim() != field->dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path, " has vectors of dimension ", reader->dim(), " but field \"",
                     field->name(), "\" of collection \"", options.collection, "\" has dimension ",
                     field->dim(), "; nothing was imported"));
  }

  std::vector<int64_t> labels;
  v1::AttributeType label_type = v1::INT64;
  if (!options.labels_path.empty()) {
    const v1::AttributeField* attr = nullptr;
    for (const auto& a : schema.attributes()) {
      if (a.name() == options.label_attr) attr = &a;
    }
    if (attr == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("collection \"", options.collection, "\" has no attribute \"",
                       options.label_attr, "\" for the labels; create it with --attr ",
                       options.label_attr, ":int64 or pass --label-attr"));
    }
    if (attr->type() != v1::INT64 && attr->type() != v1::DOUBLE && attr->type() != v1::STRING) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attribute \"", attr->name(), "\" must be int64, double or string to hold labels"));
    }
    label_type = attr->type();
    QUIVER_ASSIGN_OR_RETURN(labels, ReadLabels(options.labels_path));
    if (reader->rows() >= 0 && static_cast<int64_t>(labels.size()) != reader->rows()) {
      return absl::InvalidArgumentError(absl::StrCat(options.labels_path, " has ", labels.size(),
                                                     " labels but ", options.path, " has ",
                                                     reader->rows(), " rows"));
    }
  }

  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<MetaLines> meta, MetaLines::Open(options, schema));
  if (multi) {
    return ImportMultiVectors(client, options, *field, reader.get(), labels, label_type,
                              meta.get());
  }

  int64_t total = reader->rows();
  if (options.limit >= 0 && (total < 0 || total > options.limit)) {
    // With an unknown row count the limit is only an upper bound.
    total = reader->rows() < 0 ? -1 : options.limit;
  }
  Progress progress(options.show_progress, total);
  Batcher batcher(client, options, "row", &progress);
  std::vector<float> row;
  int64_t n = 0;
  while (options.limit < 0 || n < options.limit) {
    const int64_t index = reader->row();
    absl::StatusOr<bool> more = reader->Next(&row);
    if (!more.ok()) {
      // Damage found mid-file (a gzip'd file cannot be checked up front):
      // say how much is already in the collection.
      return absl::Status(more.status().code(),
                          absl::StrCat(more.status().message(), " (", batcher.imported(),
                                       " points were imported before it)"));
    }
    if (!*more) break;
    v1::Point p;
    if (meta != nullptr) {
      QUIVER_RETURN_IF_ERROR(meta->Next(&p));
    } else {
      p.set_id(absl::StrCat(options.id_prefix, options.start_id + index));
    }
    auto* values = (*p.mutable_vectors())[field->name()].mutable_values();
    values->Reserve(static_cast<int>(row.size()));
    values->Add(row.begin(), row.end());
    if (!options.labels_path.empty()) {
      if (index >= static_cast<int64_t>(labels.size())) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.labels_path, " has only ", labels.size(), " labels; ", options.path, " row ",
            index, " has none (", batcher.imported(), " points were imported)"));
      }
      (*p.mutable_attributes())[options.label_attr] =
          LabelValue(labels[static_cast<size_t>(index)], label_type);
    }
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), index, reader->progress()));
    ++n;
  }
  return batcher.Finish();
}

absl::StatusOr<ImportResult> ImportJsonl(client::Client& client, const ImportOptions& options,
                                         const v1::CollectionSchema& schema) {
  std::string default_field;
  if (!options.field.empty()) {
    QUIVER_ASSIGN_OR_RETURN(const v1::VectorField* f,
                            ResolveField(options.collection, schema, options.field));
    default_field = f->name();
  } else if (schema.vectors_size() == 1) {
    default_field = schema.vectors(0).name();
  }
  JsonlConverter converter(schema, default_field);
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<GzInput> in, GzInput::Open(options.path));

  Progress progress(options.show_progress, options.limit);
  Batcher batcher(client, options, "line", &progress);
  std::string line;
  int64_t line_no = 0, n = 0;
  while (options.limit < 0 || n < options.limit) {
    QUIVER_ASSIGN_OR_RETURN(bool more, in->ReadLine(&line, absl::StrCat("line ", line_no + 1)));
    if (!more) break;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto where = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(options.path, ": line ", line_no, ": ", msg,
                                                     " (", batcher.imported(),
                                                     " points were imported before it)"));
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return where(absl::StrCat("invalid JSON: ", ParseErrorText(e.what())));
    }
    v1::Point p;
    if (absl::Status s = converter.Convert(j, &p); !s.ok()) return where(s.message());
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), line_no, in->progress()));
    ++n;
  }
  return batcher.Finish();
}

}  // namespace

absl::StatusOr<ImportResult> Import(client::Client& client, const ImportOptions& options) {
  ImportOptions opts = options;
  if (!opts.format) {
    QUIVER_ASSIGN_OR_RETURN(opts.format, FileFormatFromName(opts.path));
  }
  if (opts.batch <= 0) return absl::InvalidArgumentError("--batch must be positive");
  if (*opts.format == FileFormat::kJsonl && !opts.labels_path.empty()) {
    return absl::InvalidArgumentError(
        "--labels applies to fvecs, npy and idx files; jsonl "
        "lines carry their own attributes");
  }
  if (!opts.meta_path.empty() &&
      (*opts.format == FileFormat::kJsonl || !opts.labels_path.empty() ||
       !opts.id_prefix.empty() || opts.start_id != 0)) {
    return absl::InvalidArgumentError(
        "--meta gives fvecs, npy and idx rows their ids and attributes: it goes without "
        "--labels, --id-prefix and --start-id, and jsonl lines carry their own");
  }
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, client.GetCollection(opts.collection));
  if (*opts.format == FileFormat::kJsonl) return ImportJsonl(client, opts, info.schema());
  return ImportVectors(client, opts, info.schema());
}

}  // namespace quiver::ctl
