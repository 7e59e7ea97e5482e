#include "search/problem/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace squeeze::search {

namespace dp = device_profiles;

std::optional<Choice> UniformChoice(const Problem& problem, int weight_bits, int activation_bits) {
  Choice choice;
  for (const std::vector<OptionDetail>& details : problem.details) {
    std::optional<uint16_t> found;
    for (size_t k = 0; k < details.size(); ++k) {
      const dp::CompressionOption& o = details[k].option;
      if (o.weight_bits == weight_bits && o.activation_bits == activation_bits && o.pattern == dp::Sparsity::kDense) {
        found = static_cast<uint16_t>(k);
        break;
      }
    }
    if (!found) return std::nullopt;
    choice.push_back(*found);
  }
  return choice;
}

model::LayerPlan LayerPlanOf(const dp::CompressionOption& o) {
  model::LayerPlan p;
  p.weight_bits = o.weight_bits;
  p.activation_bits = o.activation_bits;
  p.pattern = o.pattern;
  p.prune_ratio = o.pattern == Sparsity::kDense ? 0 : o.prune_ratio;
  p.block_size = o.block_size;
  return p;
}

std::vector<model::LayerPlan> ExportPlanOf(const Problem& problem, const Choice& choice) {
  std::vector<model::LayerPlan> plan;
  for (size_t i = 0; i < choice.size() && i < problem.details.size(); ++i) {
    plan.push_back(LayerPlanOf(problem.details[i][choice[i]].option));
  }
  return plan;
}

std::optional<Choice> ChoiceOfPlan(const Problem& problem, const std::vector<model::LayerPlan>& plan) {
  if (plan.size() != problem.details.size()) return std::nullopt;
  Choice choice;
  for (size_t i = 0; i < plan.size(); ++i) {
    std::optional<uint16_t> found;
    for (size_t k = 0; k < problem.details[i].size() && !found; ++k) {
      const model::LayerPlan p = LayerPlanOf(problem.details[i][k].option);
      if (p.weight_bits == plan[i].weight_bits && p.activation_bits == plan[i].activation_bits &&
          p.pattern == plan[i].pattern && p.block_size == plan[i].block_size &&
          (p.pattern == model::Sparsity::kDense || p.pattern == model::Sparsity::kTwoFour ||
           std::fabs(p.prune_ratio - plan[i].prune_ratio) < 1e-9)) {
        found = static_cast<uint16_t>(k);
      }
    }
    if (!found) return std::nullopt;
    choice.push_back(*found);
  }
  return choice;
}

std::string PlanSummary(const Problem& problem, const Choice& choice) {
  std::map<std::string, int> per_precision;
  double params = 0, pruned = 0;
  for (size_t i = 0; i < choice.size() && i < problem.details.size(); ++i) {
    const dp::CompressionOption& o = problem.details[i][choice[i]].option;
    const std::string name = o.weight_bits == 32   ? "fp32"
                             : o.weight_bits == 16 ? "fp16"
                                                   : absl::StrCat("int", o.weight_bits);
    ++per_precision[name];
    const double layer_params = problem.details[i][choice[i]].params;
    params += layer_params;
    if (o.pattern != dp::Sparsity::kDense) pruned += layer_params * o.prune_ratio;
  }
  std::vector<std::pair<std::string, int>> counts(per_precision.begin(), per_precision.end());
  std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) parts.push_back(absl::StrCat(count, "×", name));
  std::string summary = absl::StrJoin(parts, ", ");
  if (pruned > 0 && params > 0) absl::StrAppend(&summary, absl::StrFormat("; %.0f%% pruned", 100 * pruned / params));
  return summary;
}

Front ClosestCandidates(const Front& front, const Constraints& limits, size_t count) {
  auto overshoot = [](double value, const std::optional<double>& limit) {
    return limit && *limit > 0 && value > *limit ? (value - *limit) / *limit : 0.0;
  };
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < front.candidates.size(); ++i) {
    const ObjectiveValues& v = front.candidates[i].values;
    order.emplace_back(overshoot(v.latency, limits.max_latency) + overshoot(v.size, limits.max_size) +
                           overshoot(v.error, limits.max_error) + overshoot(v.peak_memory, limits.max_peak_memory),
                       i);
  }
  std::stable_sort(order.begin(), order.end());
  Front out = front;
  out.candidates.clear();
  for (size_t k = 0; k < order.size() && k < count; ++k) out.candidates.push_back(front.candidates[order[k].second]);
  return out;
}

double SqnrDb(double relative_error) {
  if (relative_error <= 0) return std::numeric_limits<double>::infinity();
  return -10 * std::log10(relative_error);
}

double ErrorOfSqnrDb(double sqnr_db) { return std::pow(10.0, -sqnr_db / 10); }

BasisCount LatencyBasisOf(const Problem& problem, const Choice& choice) {
  BasisCount count;
  for (size_t i = 0; i < choice.size() && i < problem.details.size(); ++i) {
    const device_profiles::Basis basis = problem.details[i][choice[i]].latency.basis;
    (basis == device_profiles::Basis::kSpecRoofline ? count.spec : count.samples) += 1;
  }
  return count;
}

std::string BasisLabel(const BasisCount& count) {
  if (count.spec == 0) return "samples";
  return absl::StrCat("spec-roofline for ", count.spec, " of ", count.samples + count.spec, " layers");
}

}  // namespace squeeze::search
