// The model-level quantities a search minimizes or bounds (DESIGN.md §3), and one configuration's
// values for all of them.
#ifndef SQUEEZE_SEARCH_ENGINE_OBJECTIVE_H_
#define SQUEEZE_SEARCH_ENGINE_OBJECTIVE_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace squeeze::search {

// All minimized. Latency, size and error are sums over layers (plus a fixed part); peak memory is
// not additive (see OptionTable).
enum class Objective { kLatency = 0, kSize = 1, kError = 2, kPeakMemory = 3 };
inline constexpr int kNumObjectives = 4;

// "latency", "size", "error", "peak_memory".
absl::string_view ObjectiveName(Objective objective);
std::optional<Objective> ParseObjective(absl::string_view name);

// One configuration's values, recomputed exactly from its per-layer choices, never from a grid.
// Units are the table's: latency in whatever unit its options use, size and peak memory in bytes.
struct ObjectiveValues {
  double latency = 0;
  double size = 0;
  double error = 0;
  double peak_memory = 0;

  double Get(Objective objective) const;
};

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_OBJECTIVE_H_
