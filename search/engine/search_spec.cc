#include "search/engine/search_spec.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "search/engine/internal/evaluation.h"

namespace squeeze::search {
namespace {

absl::Status CheckLimit(const std::optional<double>& limit, absl::string_view name) {
  if (limit && (!std::isfinite(*limit) || *limit < 0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be finite and >= 0"));
  }
  return absl::OkStatus();
}

std::optional<double> Limit(const Constraints& c, Objective objective) {
  switch (objective) {
    case Objective::kLatency:
      return c.max_latency;
    case Objective::kSize:
      return c.max_size;
    case Objective::kError:
      return c.max_error;
    case Objective::kPeakMemory:
      return c.max_peak_memory;
  }
  return std::nullopt;
}

// The table's extreme value in one objective: worst = every layer at its largest value,
// best = every layer at its smallest.
double Extreme(const OptionTable& table, Objective objective, bool worst) {
  auto pick = [worst](double a, double b) { return worst ? std::max(a, b) : std::min(a, b); };
  // Narrowed inputs take off at most MostNarrowedLatency and MostNarrowedBytes, quantized regions
  // at most MostRegionSaving, and nothing in the worst plan.
  double latency = table.fixed.latency - (worst ? 0 : internal::MostNarrowedLatency(table));
  double bytes =
      table.fixed.bytes - (worst ? 0 : internal::MostNarrowedBytes(table) + internal::MostRegionSaving(table));
  double error = 0;
  double activation = table.fixed.activation_bytes;
  for (const Layer& layer : table.layers) {
    const LayerOption& first = layer.options.front();
    double l = worst ? first.latency + first.boundary_latency : first.least_latency(), b = first.bytes, e = first.error,
           a = first.activation_bytes;
    for (const LayerOption& o : layer.options) {
      l = pick(l, worst ? o.latency + o.boundary_latency : o.least_latency());
      b = pick(b, o.bytes);
      e = pick(e, o.error);
      a = pick(a, o.activation_bytes);
    }
    latency += l;
    bytes += b;
    error += e;
    activation = std::max(activation, a);
  }
  switch (objective) {
    case Objective::kLatency:
      return latency;
    case Objective::kSize:
      return bytes;
    case Objective::kError:
      return error;
    case Objective::kPeakMemory:
      return bytes + activation;
  }
  return 0;
}

}  // namespace

absl::Status ValidateSearchSpec(const SearchSpec& spec) {
  if (spec.objectives.empty()) return absl::InvalidArgumentError("search: no objectives");
  if (spec.objectives.size() > kNumObjectives) {
    return absl::InvalidArgumentError("search: more than 4 objectives");
  }
  bool seen[kNumObjectives] = {};
  for (Objective objective : spec.objectives) {
    const int index = static_cast<int>(objective);
    if (index < 0 || index >= kNumObjectives) {
      return absl::InvalidArgumentError("search: unknown objective");
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(absl::StrCat("search: objective ", ObjectiveName(objective), " given twice"));
    }
    seen[index] = true;
  }
  const Constraints& c = spec.constraints;
  for (auto status : {CheckLimit(c.max_latency, "max_latency"), CheckLimit(c.max_size, "max_size"),
                      CheckLimit(c.max_error, "max_error"), CheckLimit(c.max_peak_memory, "max_peak_memory")}) {
    if (!status.ok()) return status;
  }
  if (!spec.reference.empty()) {
    if (spec.reference.size() != spec.objectives.size()) {
      return absl::InvalidArgumentError(absl::StrCat("search: reference has ", spec.reference.size(), " values for ",
                                                     spec.objectives.size(), " objectives"));
    }
    for (double r : spec.reference) {
      if (!std::isfinite(r)) return absl::InvalidArgumentError("search: reference not finite");
    }
  }
  return absl::OkStatus();
}

std::vector<double> DefaultReference(const OptionTable& table, const SearchSpec& spec) {
  std::vector<double> reference;
  for (Objective objective : spec.objectives) {
    const std::optional<double> limit = Limit(spec.constraints, objective);
    reference.push_back(limit ? *limit : Extreme(table, objective, /*worst=*/true));
  }
  return reference;
}

std::vector<double> IdealPoint(const OptionTable& table, const SearchSpec& spec) {
  std::vector<double> ideal;
  for (Objective objective : spec.objectives) {
    ideal.push_back(Extreme(table, objective, /*worst=*/false));
  }
  return ideal;
}

}  // namespace squeeze::search
