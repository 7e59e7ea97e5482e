// Every feasible non-dominated configuration a population-based search has met. Points are added
// in a deterministic order and compacted with a sort-based Pareto filter, so the archive does not
// depend on thread count.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_ARCHIVE_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_ARCHIVE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "search/engine/front.h"
#include "search/engine/internal/pruned_table.h"
#include "search/engine/objective.h"

namespace squeeze::search::internal {

class Archive {
 public:
  // `limit` > 0 thins the archive by ε-boxes whenever compaction leaves more than that.
  Archive(size_t layers, size_t limit) : layers_(layers), limit_(limit) {}

  void Add(const uint16_t* genes, const std::vector<double>& point, const ObjectiveValues& values);
  // Drops dominated and repeated points (the first added of equal points stays).
  void Compact();
  size_t size() const { return points_.size(); }
  const uint16_t* Genes(size_t k) const { return genes_.data() + k * layers_; }
  // Call after Compact.
  std::vector<Candidate> Candidates(const PrunedTable& table) const;
  // The candidates a Compact would leave, without changing the archive (so reports at
  // timing-dependent moments do not change what the search returns).
  std::vector<Candidate> CompactedCandidates(const PrunedTable& table) const;

 private:
  size_t layers_;
  size_t limit_;
  std::vector<uint16_t> genes_;
  std::vector<std::vector<double>> points_;
  std::vector<ObjectiveValues> values_;
};

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_ARCHIVE_H_
