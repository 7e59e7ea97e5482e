#include "search/engine/exact.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "search/engine/internal/evaluation.h"
#include "search/engine/internal/front_builder.h"
#include "search/engine/internal/grid_dp.h"
#include "search/engine/internal/pruned_table.h"
#include "search/engine/internal/run_monitor.h"
#include "search/engine/internal/weighted_sum.h"
#include "search/engine/pareto.h"

namespace squeeze::search {
namespace {

// The most grid steps an axis counts: far beyond any grid, and no sum of a few of them wraps
// round an int64.
constexpr int64_t kMostSteps = int64_t{1} << 60;

using internal::GridCell;
using internal::GridOption;
using internal::KeptOption;
using internal::PrunedTable;

constexpr int64_t kMaxGridCells = int64_t{1} << 26;
constexpr double kPi = 3.14159265358979323846;

// The additive per-option quantities.
enum class Quantity { kLatency, kBytes, kError };

double Get(const KeptOption& o, Quantity q) {
  switch (q) {
    case Quantity::kLatency:
      return o.planned_latency();
    case Quantity::kBytes:
      return o.planned_bytes();
    case Quantity::kError:
      return o.error;
  }
  return 0;
}

double FixedPart(const FixedCost& fixed, Quantity q) {
  switch (q) {
    case Quantity::kLatency:
      return fixed.latency;
    case Quantity::kBytes:
      return fixed.bytes;
    case Quantity::kError:
      return 0;
  }
  return 0;
}

std::optional<double> LimitOf(const Constraints& c, Quantity q) {
  switch (q) {
    case Quantity::kLatency:
      return c.max_latency;
    case Quantity::kBytes:
      return c.max_size;
    case Quantity::kError:
      return c.max_error;
  }
  return std::nullopt;
}

std::optional<Quantity> QuantityOf(Objective objective) {
  switch (objective) {
    case Objective::kLatency:
      return Quantity::kLatency;
    case Objective::kSize:
      return Quantity::kBytes;
    case Objective::kError:
      return Quantity::kError;
    case Objective::kPeakMemory:
      return std::nullopt;
  }
  return std::nullopt;
}

// Per layer, per kept option.
using OptionValues = std::vector<std::vector<double>>;

OptionValues ValuesOf(const PrunedTable& pruned, Quantity q) {
  OptionValues values(pruned.layers());
  for (size_t i = 0; i < pruned.layers(); ++i) {
    for (size_t k = 0; k < pruned.count(i); ++k) values[i].push_back(Get(pruned.option(i, k), q));
  }
  return values;
}

// One gridded quantity.
struct Axis {
  Quantity quantity = Quantity::kLatency;
  double delta = 1;
  double epsilon = 0;  // Σ over layers of the largest rounding up
  int64_t cap = 0;
  std::vector<std::vector<int64_t>> steps;  // per layer, per kept option
};

// A DP to run: the grid problem plus what is needed to state its ε.
struct Grid {
  internal::GridProblem problem;
  std::vector<Axis> axes;
  double value_span = 0;  // Σ over layers of the largest value excess
};

// Builds the grid for minimizing `value` over `axis_quantities` (at most two), under `limits`.
// `cells` spans the useful range of each axis. nullopt when the limits leave nothing.
absl::StatusOr<std::optional<Grid>> BuildGrid(const PrunedTable& pruned, const FixedCost& fixed,
                                              const OptionValues& value, std::optional<double> value_limit,
                                              const std::vector<Quantity>& axis_quantities, const Constraints& limits,
                                              int32_t cells, int64_t max_backpointer_bytes) {
  const size_t layers = pruned.layers();
  const int dims = static_cast<int>(axis_quantities.size());
  Grid grid;
  // Per layer: the option with the smallest value (ties: smallest first axis). With one axis no
  // cell beyond that configuration's cost can be on the front.
  std::vector<size_t> cheapest(layers, 0);
  std::vector<double> value_minimum(layers);
  for (size_t i = 0; i < layers; ++i) {
    for (size_t k = 1; k < pruned.count(i); ++k) {
      const double v = value[i][k], best = value[i][cheapest[i]];
      if (v < best ||
          (v == best && dims == 1 &&
           Get(pruned.option(i, k), axis_quantities[0]) < Get(pruned.option(i, cheapest[i]), axis_quantities[0]))) {
        cheapest[i] = k;
      }
    }
    value_minimum[i] = value[i][cheapest[i]];
  }
  for (Quantity q : axis_quantities) {
    Axis axis;
    axis.quantity = q;
    std::vector<double> minimum(layers);
    double base = FixedPart(fixed, q), largest = 0, along_cheapest = 0;
    for (size_t i = 0; i < layers; ++i) {
      double lo = std::numeric_limits<double>::infinity(), hi = 0;
      for (size_t k = 0; k < pruned.count(i); ++k) {
        lo = std::min(lo, Get(pruned.option(i, k), q));
        hi = std::max(hi, Get(pruned.option(i, k), q));
      }
      minimum[i] = lo;
      base += lo;
      largest += hi - lo;
      along_cheapest += Get(pruned.option(i, cheapest[i]), q) - lo;
    }
    double span = dims == 1 ? along_cheapest : largest;
    const std::optional<double> limit = LimitOf(limits, q);
    double limit_excess = std::numeric_limits<double>::infinity();
    if (limit) {
      if (!internal::WithinLimit(base, *limit)) return std::nullopt;
      limit_excess = std::max(0.0, *limit - base);
      span = std::min(span, limit_excess);
    }
    axis.delta = span > 0 ? span / cells : 1.0;
    int64_t sum_max = 0, sum_cheapest = 0;
    axis.steps.resize(layers);
    for (size_t i = 0; i < layers; ++i) {
      int64_t max_step = 0;
      for (size_t k = 0; k < pruned.count(i); ++k) {
        const double excess = Get(pruned.option(i, k), q) - minimum[i];
        // Round up; the tiny slack keeps exact multiples from spilling into the next cell.
        const double cells_up = std::ceil(excess / axis.delta - 1e-9);
        const int64_t step = static_cast<int64_t>(std::max(0.0, std::min(cells_up, static_cast<double>(kMostSteps))));
        axis.steps[i].push_back(step);
        max_step = std::max(max_step, step);
      }
      // Saturating: steps run to 4e18 each, and a sum of them must not wrap round.
      sum_max = std::min<int64_t>(kMostSteps, sum_max + std::min<int64_t>(max_step, kMostSteps));
      sum_cheapest =
          std::min<int64_t>(kMostSteps, sum_cheapest + std::min<int64_t>(axis.steps[i][cheapest[i]], kMostSteps));
    }
    axis.cap = sum_max;
    if (dims == 1 && !limit) axis.cap = std::min(axis.cap, sum_cheapest);
    if (limit) {
      // A limit far beyond the span is as many cells as int64 holds (a cast of more is undefined).
      const double cells_to_limit =
          std::min(std::floor(limit_excess / axis.delta + 1e-9), static_cast<double>(kMostSteps));
      axis.cap = std::min<int64_t>(axis.cap, static_cast<int64_t>(cells_to_limit));
    }
    // Rounding bound, over the options that fit.
    for (size_t i = 0; i < layers; ++i) {
      double worst = 0;
      for (size_t k = 0; k < pruned.count(i); ++k) {
        if (axis.steps[i][k] > axis.cap) continue;
        const double excess = Get(pruned.option(i, k), q) - minimum[i];
        worst = std::max(worst, static_cast<double>(axis.steps[i][k]) * axis.delta - excess);
      }
      axis.epsilon += worst;
    }
    grid.axes.push_back(std::move(axis));
  }

  internal::GridProblem& problem = grid.problem;
  if (value_limit) {
    double base = 0;
    for (double m : value_minimum) base += m;
    if (!internal::WithinLimit(base, *value_limit)) return std::nullopt;
    // Slightly generous: the float sums may round either way; exact values are checked later.
    problem.value_cap = static_cast<float>(std::max(0.0, *value_limit - base) * (1 + 1e-5));
  }
  const int64_t cap_a = dims == 2 ? grid.axes[0].cap : 0;
  const int64_t cap_b = dims >= 1 ? grid.axes[dims - 1].cap : 0;
  if (cap_a >= kMaxGridCells || cap_b >= kMaxGridCells || (cap_a + 1) * (cap_b + 1) > kMaxGridCells) {
    return absl::ResourceExhaustedError(absl::StrCat("exact: a grid of ", cap_a + 1, " x ", cap_b + 1,
                                                     " cells exceeds ", kMaxGridCells, "; lower ExactOptions cells"));
  }
  problem.cap_a = static_cast<int32_t>(cap_a);
  problem.cap_b = static_cast<int32_t>(cap_b);
  problem.max_backpointer_bytes = max_backpointer_bytes;
  problem.layers.resize(layers);
  for (size_t i = 0; i < layers; ++i) {
    std::vector<GridOption> options;
    double largest_value = 0;
    for (size_t k = 0; k < pruned.count(i); ++k) {
      GridOption g;
      g.kept = static_cast<uint16_t>(k);
      g.value = static_cast<float>(value[i][k] - value_minimum[i]);
      if (g.value > problem.value_cap) continue;
      bool fits = true;
      for (const Axis& axis : grid.axes) fits = fits && axis.steps[i][k] <= axis.cap;
      if (!fits) continue;
      if (dims == 2) g.wa = static_cast<int32_t>(grid.axes[0].steps[i][k]);
      if (dims >= 1) g.wb = static_cast<int32_t>(grid.axes[dims - 1].steps[i][k]);
      largest_value = std::max(largest_value, static_cast<double>(g.value));
      options.push_back(g);
    }
    // Options another one matches or beats on the grid change nothing; drop them.
    std::vector<GridOption>& kept = problem.layers[i];
    for (size_t a = 0; a < options.size(); ++a) {
      bool dominated = false;
      for (size_t b = 0; b < options.size() && !dominated; ++b) {
        if (b == a) continue;
        const GridOption& x = options[a];
        const GridOption& y = options[b];
        const bool no_worse = y.wa <= x.wa && y.wb <= x.wb && y.value <= x.value;
        const bool same = y.wa == x.wa && y.wb == x.wb && y.value == x.value;
        dominated = no_worse && (!same || b < a);
      }
      if (!dominated) kept.push_back(options[a]);
    }
    if (kept.empty()) return std::nullopt;
    grid.value_span += largest_value;
  }
  return grid;
}

// Keeps only the non-dominated candidates (in the spec's objectives), in place.
void KeepNonDominated(const SearchSpec& spec, std::vector<Candidate>& candidates) {
  PointSet points;
  points.reserve(candidates.size());
  for (const Candidate& c : candidates) points.push_back(internal::ObjectivePoint(c.values, spec));
  std::vector<size_t> kept = ParetoFilter(points);
  std::sort(kept.begin(), kept.end());
  std::vector<Candidate> survivors;
  survivors.reserve(kept.size());
  for (size_t k : kept) survivors.push_back(std::move(candidates[k]));
  candidates = std::move(survivors);
}

enum class RunEnd { kCompleted, kDeadline };

// Runs one grid DP and appends its feasible non-dominated configurations (exact values) to
// `out`. Returns kDeadline when the deadline stopped the forward pass (nothing appended).
absl::StatusOr<RunEnd> RunGrid(const OptionTable& table, const SearchSpec& spec, const PrunedTable& pruned, Grid grid,
                               internal::RunMonitor& monitor, const Front& fallback, double fraction_from,
                               double fraction_to, std::vector<Candidate>& out, bool& peak_filter_removed,
                               SearchStats& stats) {
  const size_t layers = table.layers.size();
  internal::GridDp dp(std::move(grid.problem));
  absl::Status run = dp.Run([&](size_t done) -> absl::Status {
    if (monitor.cancelled()) return absl::CancelledError("exact: cancelled");
    if (monitor.past_deadline()) return absl::DeadlineExceededError("exact: deadline");
    monitor.Report("dp", fraction_from + (fraction_to - fraction_from) * static_cast<double>(done) / layers, &fallback);
    return absl::OkStatus();
  });
  stats.grid_cells += dp.grid_cells();
  stats.checkpoints = std::max(stats.checkpoints, dp.segments());
  if (absl::IsDeadlineExceeded(run)) return RunEnd::kDeadline;
  if (!run.ok()) return run;

  // Pass 1: planned totals of every grid-front cell (exact but for boundary conversions, which are
  // at their bound, and narrowings, which the credits estimate), to keep only the feasible
  // non-dominated; answers get exact values below.
  const std::vector<GridCell> cells = dp.FrontCells();
  stats.grid_front_cells += static_cast<int64_t>(cells.size());
  auto check = [&]() -> absl::Status {
    if (monitor.cancelled()) return absl::CancelledError("exact: cancelled");
    return absl::OkStatus();
  };
  std::vector<double> latency(cells.size(), 0), bytes(cells.size(), 0), error(cells.size(), 0),
      activation(cells.size(), table.fixed.activation_bytes);
  absl::Status traced = dp.Trace(
      cells,
      [&](size_t t, size_t layer, uint16_t kept) {
        const KeptOption& o = pruned.option(layer, kept);
        latency[t] += o.planned_latency();
        bytes[t] += o.planned_bytes();
        error[t] += o.error;
        activation[t] = std::max(activation[t], o.activation);
      },
      check);
  if (!traced.ok()) return traced;
  std::vector<size_t> feasible;
  PointSet points;
  const Constraints without_peak{spec.constraints.max_latency, spec.constraints.max_size, spec.constraints.max_error,
                                 std::nullopt};
  for (size_t t = 0; t < cells.size(); ++t) {
    ObjectiveValues v;
    v.latency = table.fixed.latency + latency[t];
    v.size = table.fixed.bytes + bytes[t];
    v.error = error[t];
    v.peak_memory = v.size + activation[t];
    if (!internal::Feasible(v, spec.constraints)) {
      if (internal::Feasible(v, without_peak)) peak_filter_removed = true;
      continue;
    }
    feasible.push_back(t);
    points.push_back(internal::ObjectivePoint(v, spec));
  }
  std::vector<GridCell> survivors;
  for (size_t k : ParetoFilter(points)) survivors.push_back(cells[feasible[k]]);

  // Pass 2: the survivors' choices.
  std::vector<Choice> choices(survivors.size(), Choice(layers));
  traced = dp.Trace(
      survivors,
      [&](size_t t, size_t layer, uint16_t kept) { choices[t][layer] = pruned.option(layer, kept).original; }, check);
  if (!traced.ok()) return traced;
  for (Choice& choice : choices) {
    const ObjectiveValues v = internal::EvaluateUnchecked(table, choice.data());
    out.push_back({std::move(choice), v});
  }
  return RunEnd::kCompleted;
}

}  // namespace

absl::StatusOr<Front> SolveExact(const OptionTable& table, const SearchSpec& spec, const ExactOptions& options,
                                 const RunControl& control) {
  if (absl::Status s = ValidateOptionTable(table); !s.ok()) return s;
  if (absl::Status s = ValidateSearchSpec(spec); !s.ok()) return s;
  if (options.cells_1d < 2 || options.cells_per_axis_2d < 2 || options.slice_cells < 2 || options.size_slices < 0 ||
      options.max_backpointer_bytes < 0) {
    return absl::InvalidArgumentError("exact: grid cells must be >= 2, slices and memory >= 0");
  }
  for (Objective objective : spec.objectives) {
    if (objective == Objective::kPeakMemory) {
      return absl::InvalidArgumentError(
          "exact: peak memory is not additive and cannot be an objective of the DP; search it "
          "with nsga2 (exact accepts max_peak_memory as a limit)");
    }
  }
  internal::RunMonitor monitor(control);
  const PrunedTable pruned = PrunedTable::Build(table, spec);
  SearchStats stats;
  stats.options_total = pruned.options_total();
  stats.options_kept = pruned.options_kept();

  auto finish = [&](Front front, StopReason reason) {
    front.stop_reason = reason;
    front.stats = stats;
    front.stats.seconds = monitor.seconds();
    monitor.Report("done", 1, &front, /*force=*/true);
    return front;
  };
  auto empty = [&]() {
    Front front = internal::BuildFront(table, spec, Strategy::kExact, {});
    front.epsilon.assign(spec.objectives.size(), 0);
    front.epsilon_guaranteed = true;
    return finish(std::move(front), StopReason::kCompleted);
  };
  if (!pruned.feasible()) return empty();

  // What the deadline returns: the supported points, which cost next to nothing.
  std::vector<Candidate> supported;
  for (const auto& genes : internal::WeightedSumGenes(pruned, spec)) {
    supported.push_back({pruned.ToChoice(genes.data()), pruned.Evaluate(genes.data())});
  }
  const Front fallback = internal::BuildFront(table, spec, Strategy::kExact, std::move(supported));
  monitor.Report("prepare", 0.02, &fallback);

  // The minimized quantity: error when it is an objective, else size, else latency. The axes:
  // the other additive objectives, then additive quantities that are only limited.
  auto is_objective = [&](Quantity q) {
    for (Objective objective : spec.objectives) {
      if (QuantityOf(objective) == q) return true;
    }
    return false;
  };
  Quantity value_quantity = Quantity::kError;
  for (Quantity q : {Quantity::kError, Quantity::kBytes, Quantity::kLatency}) {
    if (is_objective(q)) {
      value_quantity = q;
      break;
    }
  }
  std::vector<Quantity> axis_quantities;
  for (Quantity q : {Quantity::kLatency, Quantity::kBytes, Quantity::kError}) {
    if (q != value_quantity && (is_objective(q) || LimitOf(spec.constraints, q))) {
      axis_quantities.push_back(q);
    }
  }
  const int dims = static_cast<int>(axis_quantities.size());
  const bool sliced =
      dims == 2 && is_objective(axis_quantities[0]) && is_objective(axis_quantities[1]) && options.size_slices > 0;
  const double grid_share = sliced ? 0.4 : 0.9;

  absl::StatusOr<std::optional<Grid>> grid = BuildGrid(
      pruned, table.fixed, ValuesOf(pruned, value_quantity), LimitOf(spec.constraints, value_quantity), axis_quantities,
      spec.constraints, dims == 1 ? options.cells_1d : options.cells_per_axis_2d, options.max_backpointer_bytes);
  if (!grid.ok()) return grid.status();
  if (!grid->has_value()) return empty();
  const std::vector<Axis> axes = (*grid)->axes;
  const double value_span = (*grid)->value_span;

  std::vector<Candidate> candidates;
  bool peak_filter_removed = false;
  absl::StatusOr<RunEnd> end = RunGrid(table, spec, pruned, std::move(**grid), monitor, fallback, 0.02,
                                       0.02 + grid_share, candidates, peak_filter_removed, stats);
  if (!end.ok()) return end.status();
  if (*end == RunEnd::kDeadline) return finish(fallback, StopReason::kDeadline);

  // Slices: with two objective axes, 1-D DPs along the first minimizing value + μ·second for a
  // sweep of μ. Their answers are real configurations, exact to the fine 1-D grid, which fill
  // the front between the 2-D grid's cells; they add candidates and never weaken its ε.
  StopReason reason = StopReason::kCompleted;
  if (sliced) {
    const OptionValues value = ValuesOf(pruned, value_quantity);
    const OptionValues second = ValuesOf(pruned, axis_quantities[1]);
    auto total_range = [&](const OptionValues& v) {
      double range = 0;
      for (const auto& layer : v) {
        range += *std::max_element(layer.begin(), layer.end()) - *std::min_element(layer.begin(), layer.end());
      }
      return range > 0 ? range : 1.0;
    };
    const double value_range = total_range(value), second_range = total_range(second);
    size_t compacted_size = candidates.size();
    const int slices = options.size_slices;
    for (int s = 0; s < slices; ++s) {
      // Angles from the value's own front (μ = 0) towards the second axis, never reaching it.
      const double angle = (kPi / 2) * s / slices;
      const double wv = std::cos(angle) / value_range, ws = std::sin(angle) / second_range;
      OptionValues combined = value;
      for (size_t i = 0; i < combined.size(); ++i) {
        for (size_t k = 0; k < combined[i].size(); ++k) {
          combined[i][k] = wv * value[i][k] + ws * second[i][k];
        }
      }
      absl::StatusOr<std::optional<Grid>> slice =
          BuildGrid(pruned, table.fixed, combined, std::nullopt, {axis_quantities[0]}, spec.constraints,
                    s == 0 ? options.cells_1d : options.slice_cells, options.max_backpointer_bytes);
      if (!slice.ok()) return slice.status();
      if (!slice->has_value()) continue;
      const double from = 0.02 + grid_share + (0.9 - grid_share) * s / slices;
      end = RunGrid(table, spec, pruned, std::move(**slice), monitor, fallback, from,
                    from + (0.9 - grid_share) / slices, candidates, peak_filter_removed, stats);
      if (!end.ok()) return end.status();
      // Choices are layers × 2 bytes each: drop the dominated whenever the union doubles.
      if (candidates.size() > 2 * compacted_size) {
        KeepNonDominated(spec, candidates);
        compacted_size = candidates.size();
      }
      if (*end == RunEnd::kDeadline) {
        reason = StopReason::kDeadline;
        break;
      }
    }
  }
  monitor.Report("reconstruct", 0.95, &fallback);

  Front front = internal::BuildFront(table, spec, Strategy::kExact, std::move(candidates));
  for (Objective objective : spec.objectives) {
    const Quantity q = *QuantityOf(objective);
    double epsilon = 0;
    if (q == value_quantity) {
      // Float sums of up to `layers` terms below value_span, compared pairwise.
      epsilon = 2.0 * static_cast<double>(table.layers.size()) * std::ldexp(1.0, -24) * value_span;
    }
    for (const Axis& axis : axes) {
      if (axis.quantity == q) epsilon = axis.epsilon;
    }
    front.epsilon.push_back(epsilon);
  }
  for (const Axis& axis : axes) {
    if (!LimitOf(spec.constraints, axis.quantity)) continue;
    switch (axis.quantity) {
      case Quantity::kLatency:
        front.limit_margins.latency = axis.epsilon;
        break;
      case Quantity::kBytes:
        front.limit_margins.size = axis.epsilon;
        break;
      case Quantity::kError:
        front.limit_margins.error = axis.epsilon;
        break;
    }
  }
  front.epsilon_guaranteed = !peak_filter_removed;
  return finish(std::move(front), reason);
}

}  // namespace squeeze::search
