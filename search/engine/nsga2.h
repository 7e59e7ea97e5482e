// The NSGA-II strategy (Deb et al. 2002): fast non-dominated sorting, crowding distance and
// constraint domination (feasible beats infeasible; among infeasible, the smaller total relative
// violation wins). For peak memory, which the exact DP cannot grid, and for spaces too large for
// its grid. Every feasible non-dominated configuration met is kept in an archive, which is the
// answer; half of the second parents are drawn from it, so offspring explore along the whole
// front found so far rather than only the population.
//
// Reproducible: offspring i of generation g draws from its own generator seeded from (seed, g, i)
// and is written to its own slot, so the same seed and generation count give the same front on
// any number of threads. A time budget makes the generation count, and so the front, depend on
// the machine.
#ifndef SQUEEZE_SEARCH_ENGINE_NSGA2_H_
#define SQUEEZE_SEARCH_ENGINE_NSGA2_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/run_control.h"
#include "search/engine/search_spec.h"

namespace squeeze::search {

struct Nsga2Options {
  int population = 200;  // ≥ 4
  int generations = 400;
  // Stop after this long even if generations remain (counted as completion, not a deadline).
  absl::Duration time_budget = absl::InfiniteDuration();
  uint64_t seed = 1;
  double crossover_probability = 0.9;  // uniform crossover
  double mutation_rate = 0;            // per layer; 0 means 2 / layers
  // Configurations of the full table to start from, e.g. the exact front's choices; options the
  // pruning removed are replaced by their nearest kept option. The population also starts with
  // uniform configurations (the same label in every layer, the same rank in every layer) and the
  // weighted-sum configurations; random ones fill the rest.
  std::vector<Choice> initial;
  // Archive size above which it is thinned by ε-boxes (0: unbounded). Bounds the cost of
  // hypervolume, which is O(n² log n) with four objectives.
  size_t archive_limit = 5000;
};

// Thread-safe: concurrent calls share nothing. Runs on the calling thread and the current oneTBB
// arena. Returns the archive's front (empty when
// no feasible configuration was met), or: InvalidArgument for an invalid table, spec, options or
// initial configuration; Cancelled when control.cancel was set. Past control.deadline it returns
// the archive so far, marked StopReason::kDeadline.
absl::StatusOr<Front> SolveNsga2(const OptionTable& table, const SearchSpec& spec, const Nsga2Options& options = {},
                                 const RunControl& control = {});

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_NSGA2_H_
