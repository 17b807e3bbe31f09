// Output: how quiverctl shows results. People get aligned text tables and
// key/value lists; scripts (--json) get JSON, either a response message in
// proto3's JSON mapping or a document composed with nlohmann::json.
//
// Everything here writes to the stream it is given (borrowed, not owned) and
// never throws or fails; stream errors are left in the stream's state.
// Not thread-safe (quiverctl is single-threaded).
#ifndef QUIVER_CLIENT_OUTPUT_H_
#define QUIVER_CLIENT_OUTPUT_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "quiver/v1/types.pb.h"

namespace quiver::ctl {

// A text table: a header row, then rows, each column padded to its widest
// cell. Columns whose cells are all numbers are right-aligned so digits line
// up; everything else is left-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Rows shorter than the header are padded with empty cells; extra cells
  // are dropped.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  void Print(std::ostream& os) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "Key   value" lines with the values aligned.
void PrintKeyValues(std::ostream& os, const std::vector<std::pair<std::string, std::string>>& rows);

// A message in proto3's JSON mapping (lowerCamelCase names; 64-bit integers
// as strings, as the mapping requires), with fields at their default value
// printed too so scripts can rely on every key being present.
std::string ProtoToJsonString(const google::protobuf::Message& message);
// The same, parsed, for composing larger documents. Ordered, so keys keep
// the proto's field order rather than coming out sorted.
nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message);
// Writes `doc` indented, followed by a newline.
void PrintJson(std::ostream& os, const nlohmann::ordered_json& doc);

// Shortest text of a number that reads back to the same float (scores,
// vector components): "0", "1.5", "0.30000001".
std::string FormatFloat(float v);
std::string FormatDouble(double v);
// 1536 -> "1.5 KiB"; below 1 KiB plain bytes ("12 B").
std::string FormatBytes(uint64_t bytes);
// "[0.1, 0.2, 0.3]"; with more than `max_values` components, the first ones
// and a count of the rest: "[0.1, 0.2, … +126]".
std::string FormatVector(const v1::Vector& v, size_t max_values);
// An attribute value as a person would write it in a filter: 42, 1.5, true,
// "text" shown bare, tag lists as [a, b].
std::string FormatValue(const v1::Value& v);
// Unix milliseconds -> "2024-05-01 12:00:00 UTC".
std::string FormatUnixMillis(int64_t ms);

// Names as the CLI's flags spell them: metrics upper-case as in the proto
// ("L2", "COSINE"), attribute types and storage modes lower-case ("int64",
// "string_list", "memory").
std::string MetricName(v1::Metric m);
std::string AttributeTypeName(v1::AttributeType t);
std::string StorageModeName(v1::StorageMode m);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_OUTPUT_H_
