// Export: page through a collection (ScrollPoints) and write jsonl or npy
// files that import reads back (export.h).
#include "client/import/export.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/import/batch.h"

namespace quiver::ctl {
namespace {

// Vectors go through JSON as doubles: a float widens to a double exactly,
// JSON holds that double exactly (shortest round-trip form), and import
// narrows it back to the same float.
nlohmann::json VectorJson(const v1::Vector& v) {
  nlohmann::json a = nlohmann::json::array();
  for (float x : v.values()) a.push_back(static_cast<double>(x));
  return a;
}

// Typed as the attribute: a DOUBLE attribute with a whole value is written
// as 3.0, which import reads as a double.
nlohmann::json ValueJson(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kIntValue: return v.int_value();
    case v1::Value::kDoubleValue: return nlohmann::json(static_cast<double>(v.double_value()));
    case v1::Value::kBoolValue: return v.bool_value();
    case v1::Value::kStringValue: return v.string_value();
    case v1::Value::kStringListValue: {
      nlohmann::json a = nlohmann::json::array();
      for (const std::string& s : v.string_list_value().values()) a.push_back(s);
      return a;
    }
    default: return nullptr;
  }
}

nlohmann::json AttributesJson(const v1::Point& p) {
  nlohmann::json attrs = nlohmann::json::object();
  for (const auto& [name, value] : p.attributes()) attrs[name] = ValueJson(value);
  return attrs;
}

nlohmann::json PointJson(const v1::Point& p) {
  nlohmann::json vectors = nlohmann::json::object();
  for (const auto& [name, v] : p.vectors()) vectors[name] = VectorJson(v);
  for (const auto& [name, mv] : p.multi_vectors()) {
    nlohmann::json set = nlohmann::json::array();
    for (const v1::Vector& v : mv.vectors()) set.push_back(VectorJson(v));
    vectors[name] = std::move(set);
  }
  return {{"id", p.id()}, {"vectors", std::move(vectors)}, {"attributes", AttributesJson(p)}};
}

// One JSON line; ids and strings are UTF-8 (the server checks), so the
// strict handler only throws on damage, reported as an error.
absl::Status WriteJsonLine(const nlohmann::json& j, const std::string& path, std::ostream& out) {
  try {
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict) << '\n';
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": cannot write a point as JSON: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status WriteError(const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
}

// An npy file of unknown row count: a fixed-size header written first and
// rewritten with the shape once the rows are in.
class NpyWriter {
 public:
  static absl::StatusOr<std::unique_ptr<NpyWriter>> Create(const std::string& path,
                                                           const char* descr, uint32_t dim) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return WriteError(path);
    auto w = std::unique_ptr<NpyWriter>(new NpyWriter(path, f, descr, dim));
    QUIVER_RETURN_IF_ERROR(w->WriteHeader(0));
    return w;
  }
  ~NpyWriter() {
    if (f_ != nullptr) std::fclose(f_);
  }
  absl::Status Append(const void* data, size_t bytes) {
    if (std::fwrite(data, 1, bytes, f_) != bytes) return WriteError(path_);
    return absl::OkStatus();
  }
  absl::Status Close(uint64_t rows) {
    if (std::fseek(f_, 0, SEEK_SET) != 0) return WriteError(path_);
    QUIVER_RETURN_IF_ERROR(WriteHeader(rows));
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) return WriteError(path_);
    return absl::OkStatus();
  }

 private:
  NpyWriter(std::string path, std::FILE* f, const char* descr, uint32_t dim)
      : path_(std::move(path)), f_(f), descr_(descr), dim_(dim) {}

  // Version 1.0: magic, version, header length, then the dict padded with
  // spaces to kHeaderBytes in all, ending in a newline.
  absl::Status WriteHeader(uint64_t rows) {
    constexpr size_t kHeaderBytes = 128;
    const std::string shape =
        dim_ == 0 ? absl::StrCat("(", rows, ",)") : absl::StrCat("(", rows, ", ", dim_, ")");
    std::string dict = absl::StrCat("{'descr': '", descr_, "', 'fortran_order': False, 'shape': ",
                                    shape, ", }");
    std::string h("\x93NUMPY\x01\x00", 8);
    const size_t len = kHeaderBytes - 10;
    dict.resize(len - 1, ' ');
    dict += '\n';
    h += static_cast<char>(len & 0xff);
    h += static_cast<char>(len >> 8);
    h += dict;
    return Append(h.data(), h.size());
  }

  std::string path_;
  std::FILE* f_;
  const char* descr_;
  uint32_t dim_;
};

// Where the points of each page go.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::Status Write(const v1::Point& p) = 0;
  virtual absl::Status Close(ExportResult* r) = 0;
};

class JsonlSink final : public Sink {
 public:
  explicit JsonlSink(std::string path) : path_(std::move(path)) {}
  absl::Status Open() {
    if (path_ == "-") return absl::OkStatus();
    file_.open(path_, std::ios::binary | std::ios::trunc);
    if (!file_) return WriteError(path_);
    return absl::OkStatus();
  }
  absl::Status Write(const v1::Point& p) override {
    return WriteJsonLine(PointJson(p), path_, out());
  }
  absl::Status Close(ExportResult*) override {
    out().flush();
    if (!out()) return WriteError(path_);
    return absl::OkStatus();
  }

 private:
  std::ostream& out() { return path_ == "-" ? std::cout : file_; }
  std::string path_;
  std::ofstream file_;
};

class NpySink final : public Sink {
 public:
  NpySink(std::string path, const v1::VectorField& field)
      : path_(std::move(path)), field_(field) {}
  absl::Status Open() {
    QUIVER_ASSIGN_OR_RETURN(vectors_, NpyWriter::Create(path_, "<f4", field_.dim()));
    meta_.open(NpyMetaPath(path_), std::ios::binary | std::ios::trunc);
    if (!meta_) return WriteError(NpyMetaPath(path_));
    offsets_.push_back(0);
    return absl::OkStatus();
  }
  absl::Status Write(const v1::Point& p) override {
    if (field_.has_multi_vector()) {
      auto it = p.multi_vectors().find(field_.name());
      if (it == p.multi_vectors().end()) return Missing(p);
      for (const v1::Vector& v : it->second.vectors()) QUIVER_RETURN_IF_ERROR(Row(v));
      offsets_.push_back(static_cast<int64_t>(rows_));
    } else {
      auto it = p.vectors().find(field_.name());
      if (it == p.vectors().end()) return Missing(p);
      QUIVER_RETURN_IF_ERROR(Row(it->second));
    }
    return WriteJsonLine({{"id", p.id()}, {"attributes", AttributesJson(p)}},
                         NpyMetaPath(path_), meta_);
  }
  absl::Status Close(ExportResult* r) override {
    QUIVER_RETURN_IF_ERROR(vectors_->Close(rows_));
    meta_.close();
    if (!meta_) return WriteError(NpyMetaPath(path_));
    r->meta_path = NpyMetaPath(path_);
    if (field_.has_multi_vector()) {
      r->offsets_path = NpyOffsetsPath(path_);
      QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<NpyWriter> off,
                              NpyWriter::Create(r->offsets_path, "<i8", 0));
      QUIVER_RETURN_IF_ERROR(off->Append(offsets_.data(), offsets_.size() * sizeof(int64_t)));
      QUIVER_RETURN_IF_ERROR(off->Close(offsets_.size()));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Row(const v1::Vector& v) {
    if (static_cast<uint32_t>(v.values_size()) != field_.dim()) {
      return absl::DataLossError(absl::StrCat("the server sent a vector of ", v.values_size(),
                                              " values for field \"", field_.name(), "\""));
    }
    ++rows_;
    return vectors_->Append(v.values().data(), v.values_size() * sizeof(float));
  }
  absl::Status Missing(const v1::Point& p) const {
    return absl::FailedPreconditionError(absl::StrCat(
        "point \"", p.id(), "\" has no vector of optional field \"", field_.name(),
        "\", which an npy file cannot leave out: export with --format jsonl"));
  }

  std::string path_;
  const v1::VectorField& field_;
  std::unique_ptr<NpyWriter> vectors_;
  std::ofstream meta_;
  std::vector<int64_t> offsets_;
  uint64_t rows_ = 0;
};

std::string Stem(const std::string& path) {
  return absl::EndsWith(path, ".npy") ? path.substr(0, path.size() - 4) : path;
}

absl::StatusOr<std::unique_ptr<Sink>> OpenSink(const ExportOptions& o,
                                               const v1::CollectionSchema& schema) {
  if (o.format == ExportFormat::kJsonl) {
    auto s = std::make_unique<JsonlSink>(o.path);
    QUIVER_RETURN_IF_ERROR(s->Open());
    return std::unique_ptr<Sink>(std::move(s));
  }
  if (o.path == "-") return absl::InvalidArgumentError("npy export needs an output file (-o)");
  if (schema.vectors_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", o.collection, "\" has ", schema.vectors_size(),
        " vector fields; an npy file holds one: export it with --format jsonl"));
  }
  auto s = std::make_unique<NpySink>(o.path, schema.vectors(0));
  QUIVER_RETURN_IF_ERROR(s->Open());
  return std::unique_ptr<Sink>(std::move(s));
}

}  // namespace

absl::StatusOr<ExportFormat> ParseExportFormat(const std::string& name) {
  if (name == "jsonl") return ExportFormat::kJsonl;
  if (name == "npy") return ExportFormat::kNpy;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown export format \"", name, "\" (jsonl or npy)"));
}

std::string NpyMetaPath(const std::string& path) { return Stem(path) + ".meta.jsonl"; }
std::string NpyOffsetsPath(const std::string& path) { return Stem(path) + ".offsets.npy"; }

absl::StatusOr<ExportResult> Export(client::Client& client, const ExportOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, client.GetCollection(options.collection));
  // The total is for the progress report only: writes may change it.
  QUIVER_ASSIGN_OR_RETURN(const uint64_t expected,
                          client.Count(options.collection, options.filter));
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<Sink> sink, OpenSink(options, info.schema()));
  Progress progress(options.show_progress, static_cast<int64_t>(expected), "export");
  v1::ScrollPointsRequest req;
  req.set_collection(options.collection);
  req.set_filter(options.filter);
  req.set_page_size(options.page_size);
  req.set_with_vectors(true);
  ExportResult r;
  for (;;) {
    absl::StatusOr<v1::ScrollPointsResponse> page = client.Scroll(req);
    if (!page.ok()) {
      return absl::Status(page.status().code(),
                          absl::StrCat(page.status().message(), " (", r.points,
                                       " points were exported before it)"));
    }
    for (const v1::Point& p : page->points()) {
      QUIVER_RETURN_IF_ERROR(sink->Write(p));
      ++r.points;
    }
    progress.Update(r.points, 0);
    if (page->next_cursor().empty()) break;
    req.set_cursor(page->next_cursor());
  }
  QUIVER_RETURN_IF_ERROR(sink->Close(&r));
  progress.Finish(r.points);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace quiver::ctl
