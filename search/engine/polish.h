// After an additive strategy: a short NSGA-II run on the exact values, seeded with its answers,
// for what additivity cannot see. Boundary conversions (OptionTable::boundaries) make a chain of
// integer layers cheaper than its layers planned alone: the exact DP plans every integer option at
// its conversions' bound, so the polish is what finds the plans whose layers share a domain; and
// a pruning option saves the layers it narrows what their chosen options take and store, which the
// DP only estimates (OptionTable::narrowings); and a quantized region's saving is earned once,
// whichever of its layers runs integer, which the DP spreads over them (OptionTable::region_savings).
#ifndef SQUEEZE_SEARCH_ENGINE_POLISH_H_
#define SQUEEZE_SEARCH_ENGINE_POLISH_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/run_control.h"
#include "search/engine/search_spec.h"

namespace squeeze::search {

struct PolishOptions {
  int population = 100;
  int generations = 150;
  absl::Duration time_budget = absl::Seconds(10);
  uint64_t seed = 1;
};

// Whether `table` has anything a polish could find: a boundary with a positive cost next to an
// option that runs integer, or a narrowing whose pruner has an option that removes channels.
bool NeedsPolish(const OptionTable& table);

// `front` (from SolveExact on `table` and `spec`) merged with what the polish finds: every
// candidate feasible with exact values, none dominated. The front keeps its strategy, ε, margins
// and stop reason (adding candidates only tightens what ε promises); its stats count the
// polish's evaluations. Returns `front` unchanged when NeedsPolish is false. Errors as SolveNsga2.
absl::StatusOr<Front> Polish(const OptionTable& table, const SearchSpec& spec, Front front,
                             const PolishOptions& options = {}, const RunControl& control = {});

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_POLISH_H_
