#include "bench/search/search_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/search/budget_milp.h"
#include "search/engine/pareto.h"
#include "search/engine/random_search.h"

namespace squeeze::search::bench {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Volume(const Front& front, const std::vector<double>& reference) {
  return Hypervolume(front.Points(), reference).value_or(0.0);
}

// Smallest error among the front's candidates within a latency budget (infinity when none).
double ErrorWithin(const Front& front, double max_latency) {
  double best = std::numeric_limits<double>::infinity();
  for (const Candidate& c : front.candidates) {
    if (c.values.latency <= max_latency) best = std::min(best, c.values.error);
  }
  return best;
}

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

}  // namespace

absl::StatusOr<BenchResult> RunCase(const BenchCase& c, const BenchConfig& config) {
  BenchResult r;
  r.name = c.name;
  r.layers = static_cast<int>(c.table.layers.size());
  size_t options = 0;
  for (const Layer& layer : c.table.layers) options += layer.options.size();
  r.options_per_layer = static_cast<double>(options) / r.layers;
  for (Objective o : c.spec.objectives) r.objectives.emplace_back(ObjectiveName(o));

  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Front> exact = SolveExact(c.table, c.spec, config.exact);
  r.exact_seconds = Seconds(start);
  if (!exact.ok()) return exact.status();
  if (exact->candidates.empty()) return absl::InvalidArgumentError("exact front is empty");
  r.exact_front_size = exact->candidates.size();

  // A strict reference: just outside the exact front, so only the front region counts.
  const PointSet points = exact->Points();
  const size_t dims = c.spec.objectives.size();
  std::vector<double> lo(dims, std::numeric_limits<double>::infinity());
  std::vector<double> hi(dims, -std::numeric_limits<double>::infinity());
  for (const auto& p : points) {
    for (size_t k = 0; k < dims; ++k) {
      lo[k] = std::min(lo[k], p[k]);
      hi[k] = std::max(hi[k], p[k]);
    }
  }
  for (size_t k = 0; k < dims; ++k) {
    const double range = hi[k] - lo[k];
    r.reference.push_back(hi[k] + (range > 0 ? 0.01 * range : 1e-9 * std::abs(hi[k]) + 1e-12));
    if (range > 0) {
      r.exact_epsilon_relative = std::max(r.exact_epsilon_relative, exact->epsilon[k] / range);
    }
  }
  const double exact_volume = Volume(*exact, r.reference);

  Nsga2Options seeds_only = config.nsga2;
  seeds_only.generations = 0;
  absl::StatusOr<Front> initial = SolveNsga2(c.table, c.spec, seeds_only);
  if (!initial.ok()) return initial.status();
  r.nsga2_seed_hv_ratio = Volume(*initial, r.reference) / exact_volume;

  start = std::chrono::steady_clock::now();
  absl::StatusOr<Front> nsga2 = SolveNsga2(c.table, c.spec, config.nsga2);
  r.nsga2_seconds = Seconds(start);
  if (!nsga2.ok()) return nsga2.status();
  r.nsga2_generations = nsga2->stats.generations;
  r.nsga2_front_size = nsga2->candidates.size();
  r.nsga2_hv_ratio = Volume(*nsga2, r.reference) / exact_volume;

  RandomSearchOptions random;
  random.samples = std::numeric_limits<int64_t>::max();
  random.time_budget = absl::Seconds(r.nsga2_seconds);
  random.seed = config.nsga2.seed;
  absl::StatusOr<Front> baseline = SolveRandom(c.table, c.spec, random);
  if (!baseline.ok()) return baseline.status();
  r.random_samples = baseline->stats.evaluations;
  r.random_front_size = baseline->candidates.size();
  r.random_hv_ratio = Volume(*baseline, r.reference) / exact_volume;

  // The single-budget integer program at budgets spread along the front's latency range.
  const auto latency_axis = std::find(c.spec.objectives.begin(), c.spec.objectives.end(), Objective::kLatency);
  const auto error_axis = std::find(c.spec.objectives.begin(), c.spec.objectives.end(), Objective::kError);
  if (latency_axis != c.spec.objectives.end() && error_axis != c.spec.objectives.end()) {
    const size_t k = latency_axis - c.spec.objectives.begin();
    const size_t e = error_axis - c.spec.objectives.begin();
    const double epsilon_latency = exact->epsilon[k];
    const double epsilon_error = exact->epsilon[e];
    r.glpk_within_epsilon = true;
    r.glpk_all_optimal = true;
    r.glpk_max_gap = -std::numeric_limits<double>::infinity();
    r.glpk_min_gap = std::numeric_limits<double>::infinity();
    for (int b = 0; b < config.budgets; ++b) {
      const double budget = lo[k] + (b + 0.5) / config.budgets * (hi[k] - lo[k]);
      absl::StatusOr<BudgetMilpResult> milp = SolveLatencyBudgetMilp(c.table, budget, config.glpk_time_limit_seconds);
      if (!milp.ok()) return milp.status();
      r.glpk_seconds += milp->seconds;
      r.glpk_all_optimal = r.glpk_all_optimal && milp->optimal;
      const double optimum = milp->values.error;
      const double front_error = ErrorWithin(*exact, budget);
      r.glpk_max_gap = std::max(r.glpk_max_gap, (front_error - optimum) / optimum);
      r.glpk_min_gap = std::min(r.glpk_min_gap, (front_error - optimum) / optimum);
      if (std::getenv("SQUEEZE_BENCH_DEBUG") != nullptr) {
        std::fprintf(stderr,
                     "  budget %.1f [%.3f]: glpk error %.5g (optimal %d), front %.5g, "
                     "front at +eps %.5g (eps %.3g)\n",
                     budget, (budget - lo[k]) / (hi[k] - lo[k]), optimum, milp->optimal, front_error,
                     ErrorWithin(*exact, budget + epsilon_latency), epsilon_latency);
      }
      // The ε promise: within ε more latency the front is at least as good as the optimum.
      const double slack = 1e-9 * std::abs(optimum) + epsilon_error;
      if (ErrorWithin(*exact, budget + epsilon_latency) > optimum + slack) {
        r.glpk_within_epsilon = false;
      }
    }
  }
  return r;
}

std::string ResultJson(const BenchResult& r) {
  std::vector<std::string> objectives;
  for (const auto& o : r.objectives) objectives.push_back(absl::StrCat("\"", o, "\""));
  std::vector<std::string> reference;
  for (double v : r.reference) reference.push_back(Number(v));
  return absl::StrCat(
      "{\"case\": \"", r.name, "\", \"layers\": ", r.layers, ", \"options_per_layer\": ", Number(r.options_per_layer),
      ", \"objectives\": ", r.objectives.size(), ", \"objective_names\": [", absl::StrJoin(objectives, ", "),
      "], \"exact_seconds\": ", Number(r.exact_seconds), ", \"exact_front_size\": ", r.exact_front_size,
      ", \"exact_epsilon_relative\": ", Number(r.exact_epsilon_relative),
      ", \"nsga2_seconds\": ", Number(r.nsga2_seconds), ", \"nsga2_generations\": ", r.nsga2_generations,
      ", \"nsga2_front_size\": ", r.nsga2_front_size, ", \"nsga2_hv_ratio\": ", Number(r.nsga2_hv_ratio),
      ", \"nsga2_seed_hv_ratio\": ", Number(r.nsga2_seed_hv_ratio),
      ", \"random_hv_ratio\": ", Number(r.random_hv_ratio), ", \"random_samples\": ", r.random_samples,
      ", \"random_front_size\": ", r.random_front_size, ", \"glpk_seconds\": ", Number(r.glpk_seconds),
      ", \"glpk_max_gap\": ", Number(r.glpk_max_gap), ", \"glpk_min_gap\": ", Number(r.glpk_min_gap),
      ", \"glpk_within_epsilon\": ", r.glpk_within_epsilon ? "true" : "false",
      ", \"glpk_all_optimal\": ", r.glpk_all_optimal ? "true" : "false", ", \"hv_reference\": [",
      absl::StrJoin(reference, ", "), "]}");
}

std::string TableHeader() {
  return absl::StrFormat(
      "%-26s %6s %4s | %8s %7s %8s | %8s %5s %8s %8s | %8s | %8s %10s %5s\n"
      "%s\n",
      "case", "layers", "obj", "exact s", "front", "ε/range", "nsga2 s", "gens", "HV ratio", "seeds HV", "random HV",
      "glpk s", "glpk gap", "in ε", std::string(137, '-'));
}

std::string TableRow(const BenchResult& r) {
  return absl::StrFormat("%-26s %6d %4d | %8.3f %7d %8.2e | %8.3f %5d %8.4f %8.4f | %8.4f | %8.2f %10.2e %5s\n", r.name,
                         r.layers, static_cast<int>(r.objectives.size()), r.exact_seconds,
                         static_cast<int>(r.exact_front_size), r.exact_epsilon_relative, r.nsga2_seconds,
                         r.nsga2_generations, r.nsga2_hv_ratio, r.nsga2_seed_hv_ratio, r.random_hv_ratio,
                         r.glpk_seconds, r.glpk_max_gap, r.glpk_within_epsilon ? "yes" : "NO");
}

}  // namespace squeeze::search::bench
