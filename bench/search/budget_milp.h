// The HAWQ-V3-style single-budget problem as an integer program, solved with GLPK: one binary per
// (layer, option), one option per layer, total latency within the budget, minimum total error.
// One solve answers one budget with one configuration; the bench compares it with the exact
// front at the same budgets.
#ifndef SQUEEZE_BENCH_SEARCH_BUDGET_MILP_H_
#define SQUEEZE_BENCH_SEARCH_BUDGET_MILP_H_

#include "absl/status/statusor.h"
#include "search/engine/option_table.h"

namespace squeeze::search::bench {

struct BudgetMilpResult {
  Choice choice;
  ObjectiveValues values;  // exact, recomputed from `choice`
  bool optimal = false;    // GLPK proved optimality (within its tolerances)
  double seconds = 0;
};

// NotFound when no configuration meets the budget; DeadlineExceeded when GLPK found nothing
// within `time_limit_seconds`; Internal for other GLPK failures.
absl::StatusOr<BudgetMilpResult> SolveLatencyBudgetMilp(const OptionTable& table, double max_latency,
                                                        double time_limit_seconds);

}  // namespace squeeze::search::bench

#endif  // SQUEEZE_BENCH_SEARCH_BUDGET_MILP_H_
