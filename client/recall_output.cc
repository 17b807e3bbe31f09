#include "client/recall_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output.h"

namespace quiver::ctl {

void PrintRecallAudit(std::ostream& out, const v1::CollectionStats& st) {
  bool any = false;
  for (const auto& v : st.vectors()) any = any || v.recall_audit_searches() > 0;
  if (!any) return;
  out << "\n";
  Table t({"VECTOR FIELD", "RECALL AUDIT", "AUDITED SEARCHES", "TARGET RECALL",
           "ACHIEVED", "AUDITED WITH TARGET"});
  for (const auto& v : st.vectors()) {
    const bool targets = v.recall_audit_target_searches() > 0;
    t.AddRow({v.name(),
              v.recall_audit_searches() > 0 ? absl::StrFormat("%.4f", v.recall_audit()) : "-",
              absl::StrCat(v.recall_audit_searches()),
              targets ? absl::StrFormat("%.4f", v.recall_audit_target()) : "-",
              targets ? absl::StrFormat("%.4f", v.recall_audit_target_achieved()) : "-",
              absl::StrCat(v.recall_audit_target_searches())});
  }
  t.Print(out);
}

}  // namespace quiver::ctl
