// Turns candidate configurations (with exact values) into a Front: drops infeasible ones, keeps
// the non-dominated, one per distinct objective vector, sorts, thins when asked, and measures the
// hypervolume. Every strategy ends here, so fronts are comparable.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_FRONT_BUILDER_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_FRONT_BUILDER_H_

#include <cstddef>
#include <vector>

#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/pareto.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::internal {

// The objective vector of `values` in `spec` order.
std::vector<double> ObjectivePoint(const ObjectiveValues& values, const SearchSpec& spec);

// Among equal objective vectors the lexicographically smallest choice is kept, so the result
// does not depend on the order of `candidates`. Strategy-specific fields (epsilon, stats,
// stop_reason) are left for the caller.
Front BuildFront(const OptionTable& table, const SearchSpec& spec, Strategy strategy,
                 std::vector<Candidate> candidates);

// Indices of at most `max_count` points of a non-dominated set given in ascending lexicographic
// order: the per-coordinate minima, plus the first point of each box of the finest uniform box
// grid over the set's range that fits. Ascending.
std::vector<size_t> ThinByBoxes(const PointSet& points, size_t max_count);

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_FRONT_BUILDER_H_
