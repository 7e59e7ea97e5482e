// The exact strategy: an ε-Pareto front from dynamic programming over a grid of the additive
// objectives (a multiple-choice knapsack solved for every budget at once), then a Pareto filter
// on exact values. The reference the other strategies are measured against.
//
// The minimized quantity is error when it is an objective (else size, else latency); the other
// additive objectives, and additive quantities that are only limited, are the grid's axes (at
// most two). Each option's excess over its layer's cheapest is rounded up to whole cells of
// width δ, so a configuration's grid cost never undercounts and every answer meets the limits.
//
// ε, per axis, is what the rounding can overcount: Σ over layers of the largest rounding among
// that layer's options, at most layers·δ. It is a worst case and it is attained on adversarial
// tables (see the tests). Rounding the running sum instead of each step does not remove the
// per-layer term: the DP still merges configurations per cell at every layer, and each merge
// can move the kept one up to a cell. With one axis (two objectives) δ is tiny and ε is too.
// With two axes (three objectives) the grid is only cells_per_axis_2d wide, so ε is a sizeable
// share of the range at hundreds of layers; `slices` then add, at little cost, points from 1-D
// DPs that are exact to a fine grid (see ExactOptions). They only add candidates, so ε still
// holds, and they make the answer far better than ε says (bench/search measures how much).
//
// Boundary conversions between activation domains are not additive either (OptionTable): the DP
// plans with each option's bound on them, so every answer meets a latency limit, and the answers
// carry exact values; ε is then relative to the planned values. Nor are narrowings (a pruning
// option saves the layers it narrows time and bytes at their chosen options): the DP plans each
// pruning option with its credits (LayerOption::narrowing_credit, bytes_credit), and only the
// answers' exact values are held against the limits (polish.h finds what the estimates miss).
//
// Peak memory is not additive: as an objective it is refused (use nsga2); as a limit it removes
// options that break it alone, then filters the DP's answers, and `epsilon_guaranteed` is false
// when that filter removed any.
#ifndef SQUEEZE_SEARCH_ENGINE_EXACT_H_
#define SQUEEZE_SEARCH_ENGINE_EXACT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/run_control.h"
#include "search/engine/search_spec.h"

namespace squeeze::search {

struct ExactOptions {
  // Cells spanning the useful range of the axis with one gridded quantity (two objectives).
  int32_t cells_1d = 1 << 17;
  // Cells per axis with two gridded quantities (three objectives, or two plus a limit).
  int32_t cells_per_axis_2d = 1024;
  // With three objectives: 1-D DPs on the first axis minimizing error plus μ times the second,
  // for this many μ from 0 (the latency–error front, on cells_1d cells) towards size (on
  // slice_cells cells). They add near-exact points between the 2-D grid's cells; 0 turns them off.
  int size_slices = 32;
  int32_t slice_cells = 1 << 15;
  // Back-pointer memory; above it, segments are recomputed during reconstruction (≈ 2–3× time).
  int64_t max_backpointer_bytes = int64_t{256} << 20;
};

// Thread-safe: concurrent calls share nothing. Runs on the calling thread and the current oneTBB
// arena; the result does not depend on the arena's concurrency. Returns the front (empty when
// nothing meets the limits), or:
// InvalidArgument for an invalid table, spec or options, or peak memory as an objective;
// ResourceExhausted when the grid would exceed 2^26 cells; Cancelled when control.cancel was set.
// Past control.deadline it returns, marked StopReason::kDeadline: during the grid DP, the
// weighted-sum front built before it (without ε); during the slices, the grid's front and the
// slices done so far (with ε).
absl::StatusOr<Front> SolveExact(const OptionTable& table, const SearchSpec& spec, const ExactOptions& options = {},
                                 const RunControl& control = {});

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_EXACT_H_
