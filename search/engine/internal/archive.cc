#include "search/engine/internal/archive.h"

#include <algorithm>
#include <numeric>

#include "search/engine/internal/front_builder.h"
#include "search/engine/pareto.h"

namespace squeeze::search::internal {

void Archive::Add(const uint16_t* genes, const std::vector<double>& point, const ObjectiveValues& values) {
  genes_.insert(genes_.end(), genes, genes + layers_);
  points_.push_back(point);
  values_.push_back(values);
}

void Archive::Compact() {
  std::vector<size_t> kept = ParetoFilter(points_);  // lexicographic order
  if (limit_ > 0 && kept.size() > limit_) {
    PointSet front;
    for (size_t k : kept) front.push_back(points_[k]);
    std::vector<size_t> thinned = ThinByBoxes(front, limit_);
    std::vector<size_t> subset;
    for (size_t t : thinned) subset.push_back(kept[t]);
    kept = std::move(subset);
  }
  // Keep insertion order among survivors so later ties resolve the same way.
  std::sort(kept.begin(), kept.end());
  std::vector<uint16_t> genes;
  genes.reserve(kept.size() * layers_);
  std::vector<std::vector<double>> points;
  std::vector<ObjectiveValues> values;
  for (size_t k : kept) {
    genes.insert(genes.end(), genes_.begin() + k * layers_, genes_.begin() + (k + 1) * layers_);
    points.push_back(std::move(points_[k]));
    values.push_back(values_[k]);
  }
  genes_ = std::move(genes);
  points_ = std::move(points);
  values_ = std::move(values);
}

std::vector<Candidate> Archive::Candidates(const PrunedTable& table) const {
  std::vector<Candidate> candidates;
  candidates.reserve(points_.size());
  for (size_t k = 0; k < points_.size(); ++k) {
    candidates.push_back({table.ToChoice(genes_.data() + k * layers_), values_[k]});
  }
  return candidates;
}

std::vector<Candidate> Archive::CompactedCandidates(const PrunedTable& table) const {
  Archive copy = *this;
  copy.Compact();
  return copy.Candidates(table);
}

}  // namespace squeeze::search::internal
