#include "search/engine/polish.h"

#include <utility>
#include <vector>

#include "search/engine/internal/front_builder.h"
#include "search/engine/nsga2.h"

namespace squeeze::search {

bool NeedsPolish(const OptionTable& table) {
  // What a pruning option saves the layers it narrows depends on their options.
  for (const Narrowing& x : table.narrowings) {
    for (const LayerOption& o : table.layers[static_cast<size_t>(x.pruner)].options) {
      if (o.removed_channels > 0) return true;
    }
  }
  // What a quantized region saves is earned once, whichever of its layers runs integer: the credits
  // only estimate it.
  for (const RegionSaving& r : table.region_savings) {
    if (r.saving <= 0) continue;
    for (int32_t l : r.layers) {
      for (const LayerOption& o : table.layers[static_cast<size_t>(l)].options) {
        if (o.integer_activations || o.fused_latency >= 0) return true;
      }
    }
  }
  bool costly = false;
  for (const ActivationBoundary& b : table.boundaries) {
    costly |= b.quantize_latency > 0 || b.dequantize_latency > 0 || b.transpose_latency > 0 || b.pool_latency > 0;
  }
  if (!costly) return false;
  for (const Layer& layer : table.layers) {
    for (const LayerOption& o : layer.options) {
      if (o.integer_activations) return true;
    }
  }
  return false;
}

absl::StatusOr<Front> Polish(const OptionTable& table, const SearchSpec& spec, Front front,
                             const PolishOptions& options, const RunControl& control) {
  if (!NeedsPolish(table)) return front;
  Nsga2Options nsga2;
  nsga2.population = options.population;
  nsga2.generations = options.generations;
  nsga2.time_budget = options.time_budget;
  nsga2.seed = options.seed;
  for (const Candidate& c : front.candidates) nsga2.initial.push_back(c.choice);
  RunControl quiet = control;
  quiet.on_progress = nullptr;  // the exact run's progress has already reached its end
  absl::StatusOr<Front> polished = SolveNsga2(table, spec, nsga2, quiet);
  if (!polished.ok()) return polished.status();
  std::vector<Candidate> merged = std::move(front.candidates);
  merged.insert(merged.end(), polished->candidates.begin(), polished->candidates.end());
  Front out = internal::BuildFront(table, spec, front.strategy, std::move(merged));
  out.epsilon = std::move(front.epsilon);
  out.limit_margins = front.limit_margins;
  out.epsilon_guaranteed = front.epsilon_guaranteed;
  out.stop_reason = front.stop_reason;
  out.stats = front.stats;
  out.stats.evaluations += polished->stats.evaluations;
  out.stats.generations = polished->stats.generations;
  out.stats.seconds += polished->stats.seconds;
  return out;
}

}  // namespace squeeze::search
