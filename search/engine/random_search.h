// The random-search baseline: configurations drawn uniformly (each layer uniformly among its kept
// options), the feasible non-dominated ones kept. What a smarter strategy must beat for the same
// time.
#ifndef SQUEEZE_SEARCH_ENGINE_RANDOM_SEARCH_H_
#define SQUEEZE_SEARCH_ENGINE_RANDOM_SEARCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/run_control.h"
#include "search/engine/search_spec.h"

namespace squeeze::search {

struct RandomSearchOptions {
  int64_t samples = 100000;  // upper bound
  absl::Duration time_budget = absl::InfiniteDuration();
  uint64_t seed = 1;
};

// Thread-safe; runs on the calling thread and the current oneTBB arena. Sample i draws from a
// generator seeded from (seed, i): reproducible for a sample count on any number of threads.
// Errors as SolveNsga2.
absl::StatusOr<Front> SolveRandom(const OptionTable& table, const SearchSpec& spec,
                                  const RandomSearchOptions& options = {}, const RunControl& control = {});

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_RANDOM_SEARCH_H_
