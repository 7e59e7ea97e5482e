// Configurations that minimize a weighted sum of the objectives, each layer on its own: for every
// weight vector of a simplex lattice, every layer takes the kept option with the smallest
// weighted, normalized cost. These are supported points of the front (exactly so for additive
// objectives), found in O(weights · options): NSGA-II's seeds and exact's answer when a deadline
// stops the DP.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_WEIGHTED_SUM_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_WEIGHTED_SUM_H_

#include <cstdint>
#include <vector>

#include "search/engine/internal/pruned_table.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::internal {

// Genes (kept indices), distinct, in lattice order. Peak memory is costed per layer as bytes plus
// activation bytes, a surrogate.
std::vector<std::vector<uint16_t>> WeightedSumGenes(const PrunedTable& table, const SearchSpec& spec);

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_WEIGHTED_SUM_H_
