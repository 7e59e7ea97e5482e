#include "search/engine/objective.h"

namespace squeeze::search {

absl::string_view ObjectiveName(Objective objective) {
  switch (objective) {
    case Objective::kLatency:
      return "latency";
    case Objective::kSize:
      return "size";
    case Objective::kError:
      return "error";
    case Objective::kPeakMemory:
      return "peak_memory";
  }
  return "unknown";
}

std::optional<Objective> ParseObjective(absl::string_view name) {
  for (int i = 0; i < kNumObjectives; ++i) {
    const auto objective = static_cast<Objective>(i);
    if (ObjectiveName(objective) == name) return objective;
  }
  return std::nullopt;
}

double ObjectiveValues::Get(Objective objective) const {
  switch (objective) {
    case Objective::kLatency:
      return latency;
    case Objective::kSize:
      return size;
    case Objective::kError:
      return error;
    case Objective::kPeakMemory:
      return peak_memory;
  }
  return 0;
}

}  // namespace squeeze::search
