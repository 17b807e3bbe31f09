// How quiverctl shows a collection's segments (collection describe, stats)
// and when --wait-indexed may stop. Writes to the stream it is given; no
// errors. Not thread-safe.
#ifndef QUIVER_CLIENT_COMMANDS_SEGMENTS_H_
#define QUIVER_CLIENT_COMMANDS_SEGMENTS_H_

#include <ostream>
#include <string>

#include "quiver/v1/collections.pb.h"

namespace quiver::ctl {

// "3 segments (1 indexed, 1 building, 0 sealed waiting, 1 growing)".
std::string SegmentSummary(const v1::CollectionStats& st);

// True when every segment is INDEXED.
bool AllSegmentsIndexed(const v1::CollectionStats& st);

// The segments table, one row per segment; for each vector field (in schema
// order) its index, memory and disk. With several fields the field name
// prefixes those columns.
void PrintSegments(std::ostream& out, const v1::CollectionInfo& info);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_COMMANDS_SEGMENTS_H_
