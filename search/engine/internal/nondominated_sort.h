// Fast non-dominated sorting over any dominance relation (plain Pareto dominance for the public
// utility, constraint domination for NSGA-II).
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_NONDOMINATED_SORT_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_NONDOMINATED_SORT_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace squeeze::search::internal {

// `dominates(i, j)` says whether item i dominates item j. Returns the fronts, indices ascending
// within each. Deterministic: depends only on the relation. O(n²) calls.
template <typename DominatesFn>
std::vector<std::vector<size_t>> SortByDominance(size_t n, DominatesFn dominates) {
  std::vector<std::vector<size_t>> beaten(n);
  std::vector<size_t> beaten_by_count(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (dominates(i, j)) {
        beaten[i].push_back(j);
        ++beaten_by_count[j];
      } else if (dominates(j, i)) {
        beaten[j].push_back(i);
        ++beaten_by_count[i];
      }
    }
  }
  std::vector<std::vector<size_t>> fronts;
  std::vector<size_t> current;
  for (size_t i = 0; i < n; ++i) {
    if (beaten_by_count[i] == 0) current.push_back(i);
  }
  while (!current.empty()) {
    std::vector<size_t> next;
    for (size_t i : current) {
      for (size_t j : beaten[i]) {
        if (--beaten_by_count[j] == 0) next.push_back(j);
      }
    }
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(current));
    current = std::move(next);
  }
  return fronts;
}

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_NONDOMINATED_SORT_H_
