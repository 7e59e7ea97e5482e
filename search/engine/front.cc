#include "search/engine/front.h"

namespace squeeze::search {

absl::string_view StrategyName(Strategy strategy) {
  switch (strategy) {
    case Strategy::kExact:
      return "exact";
    case Strategy::kNsga2:
      return "nsga2";
    case Strategy::kRandom:
      return "random";
  }
  return "unknown";
}

std::vector<double> Front::Point(size_t i) const {
  std::vector<double> point;
  point.reserve(objectives.size());
  for (Objective objective : objectives) point.push_back(candidates[i].values.Get(objective));
  return point;
}

std::vector<std::vector<double>> Front::Points() const {
  std::vector<std::vector<double>> points;
  points.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) points.push_back(Point(i));
  return points;
}

}  // namespace squeeze::search
