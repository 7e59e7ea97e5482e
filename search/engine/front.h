// The search's answer: the non-dominated configurations found, with their exact values, and how
// good the set is (hypervolume) and how it was obtained. Plain values, copyable.
#ifndef SQUEEZE_SEARCH_ENGINE_FRONT_H_
#define SQUEEZE_SEARCH_ENGINE_FRONT_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "search/engine/objective.h"
#include "search/engine/option_table.h"

namespace squeeze::search {

enum class Strategy { kExact, kNsga2, kRandom };
absl::string_view StrategyName(Strategy strategy);  // "exact", "nsga2", "random"

enum class StopReason {
  kCompleted,  // ran to the end (for nsga2 and random: all generations or the time budget)
  kDeadline,   // the RunControl deadline passed; the front is the best found until then
};

struct Candidate {
  Choice choice;           // original option index per layer
  ObjectiveValues values;  // exact, recomputed from `choice`
};

struct SearchStats {
  double seconds = 0;
  int64_t options_total = 0;     // options in the table
  int64_t options_kept = 0;      // after removing dominated and alone-infeasible options
  int64_t evaluations = 0;       // nsga2, random: configurations evaluated
  int generations = 0;           // nsga2
  int64_t grid_cells = 0;        // exact: cells of the DP grids (the 2-D grid plus slices)
  int64_t grid_front_cells = 0;  // exact: non-dominated grid cells traced back
  int checkpoints = 0;           // exact: >1 when back-pointers were recomputed to save memory
};

struct Front {
  Strategy strategy = Strategy::kExact;
  std::vector<Objective> objectives;
  // Feasible, mutually non-dominated in `objectives`, one per distinct objective vector, in
  // ascending lexicographic order of the objective vector.
  std::vector<Candidate> candidates;
  std::vector<double> reference;  // hypervolume reference point, per objective
  std::vector<double> ideal;      // IdealPoint of the table, per objective
  // Volume dominated by the candidates inside the reference box, in objective units, and as a
  // fraction of the box between `ideal` and `reference`.
  double hypervolume = 0;
  double hypervolume_fraction = 0;
  // exact only, per objective: every feasible configuration P at least `limit_margins` inside
  // the limits has a candidate Q with Q ≤ P + ε in every objective. For the objective minimized
  // per grid cell, a tiny bound on float rounding. Empty for other strategies and when a deadline
  // stopped exact before its grid DP finished.
  std::vector<double> epsilon;
  // exact only: how far inside each limit a configuration must be for that promise to cover it
  // (the grid's rounding on that quantity, whether or not it is an objective; 0 where the quantity
  // is minimized per cell or has no limit).
  struct LimitMargins {
    double latency = 0, size = 0, error = 0;
  } limit_margins;
  // exact only: false when a peak-memory limit, applied as a post filter, removed grid-front
  // points, so the ε promise may not hold near that limit.
  bool epsilon_guaranteed = false;
  StopReason stop_reason = StopReason::kCompleted;
  SearchStats stats;

  // The i-th candidate's objective vector, in `objectives` order.
  std::vector<double> Point(size_t i) const;
  std::vector<std::vector<double>> Points() const;
};

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_FRONT_H_
