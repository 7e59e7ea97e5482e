// Pareto utilities over objective vectors, all objectives minimized: dominance, the non-dominated
// filter, non-dominated sorting, crowding distance and hypervolume. Pure functions; thread-safe.
#ifndef SQUEEZE_SEARCH_ENGINE_PARETO_H_
#define SQUEEZE_SEARCH_ENGINE_PARETO_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace squeeze::search {

using PointSet = std::vector<std::vector<double>>;

// True when a ≤ b in every coordinate and a < b in at least one. Same lengths assumed.
bool Dominates(absl::Span<const double> a, absl::Span<const double> b);

// Indices of the non-dominated points, one per distinct point (the lowest index among equal
// ones), in ascending lexicographic order of the points. O(n log n) for up to 3 coordinates,
// O(n·k) beyond (k = survivors). All points must have the same length.
std::vector<size_t> ParetoFilter(const PointSet& points);

// Fast non-dominated sort (Deb et al. 2002): fronts[0] is the non-dominated set, fronts[1] is
// non-dominated once fronts[0] is removed, and so on; indices ascending within a front. O(m·n²).
std::vector<std::vector<size_t>> NonDominatedSort(const PointSet& points);

// NSGA-II crowding distance of each point of `front` (indices into `points`), in the same order:
// infinite at the extremes of each coordinate, otherwise the sum over coordinates of the
// normalized gap between its neighbours.
std::vector<double> CrowdingDistances(const PointSet& points, const std::vector<size_t>& front);

// Volume of the region dominated by `points` and bounded by `reference` (only points strictly
// better than the reference in every coordinate count). Exact: a sweep in 2-D, a sweep over a
// staircase in 3-D (O(n log n)), slicing into 3-D in 4-D (O(n² log n)). InvalidArgument when a
// point's length differs from the reference's or the dimension is not 1 to 4.
absl::StatusOr<double> Hypervolume(const PointSet& points, const std::vector<double>& reference);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_PARETO_H_
