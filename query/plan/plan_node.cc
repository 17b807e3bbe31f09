#include "query/plan/plan_node.h"

namespace quiver {

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kEmpty: return "Empty";
    case OpKind::kExactScan: return "ExactScan";
    case OpKind::kIndexSearch: return "IndexSearch";
    case OpKind::kFilteredIndexSearch: return "FilteredIndexSearch";
    case OpKind::kPostFilter: return "PostFilter";
    case OpKind::kWindowSearch: return "WindowSearch";
    case OpKind::kRerank: return "Rerank";
    case OpKind::kRowSet: return "RowSet";
    case OpKind::kCheckRows: return "CheckRows";
    case OpKind::kFilter: return "Filter";
    case OpKind::kWindow: return "Window";
  }
  return "?";
}

}  // namespace quiver
