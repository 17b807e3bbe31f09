// Columns of the tables that list points or hits (get, search): which
// attributes and vector fields to show, and how much of each vector.
// Header-only templates over the proto maps; no state, no errors.
#ifndef QUIVER_CLIENT_COMMANDS_COLUMNS_H_
#define QUIVER_CLIENT_COMMANDS_COLUMNS_H_

#include <cstddef>
#include <set>
#include <string>
#include <vector>

namespace quiver::ctl {
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

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_COMMANDS_COLUMNS_H_
