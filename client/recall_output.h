// How quiverctl shows a collection's recall audit (quiverd
// --recall-audit-rate): per vector field, the mean recall@k of the last
// audited ANN searches against an exact re-run, and how many were audited.
// Writes to the stream it is given; never fails. Not thread-safe
// (quiverctl is single-threaded).
#ifndef QUIVER_CLIENT_RECALL_OUTPUT_H_
#define QUIVER_CLIENT_RECALL_OUTPUT_H_

#include <ostream>

#include "quiver/v1/collections.pb.h"

namespace quiver::ctl {

// A table of the fields' audit figures ("-" for a field with no audited
// search yet). Prints nothing when no field of `st` has been audited.
void PrintRecallAudit(std::ostream& out, const v1::CollectionStats& st);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_RECALL_OUTPUT_H_
