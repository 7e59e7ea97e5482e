// Reading a configuration of a Problem the way people talk about it: uniform baselines, a
// compact per-layer plan summary, and SQNR.
#ifndef SQUEEZE_SEARCH_PROBLEM_PLAN_H_
#define SQUEEZE_SEARCH_PROBLEM_PLAN_H_

#include <optional>
#include <string>

#include "model/export.h"
#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/search_spec.h"
#include "search/problem/problem.h"

namespace squeeze::search {

// Every layer dense at (weight_bits, activation_bits); nullopt when some layer has no such option
// on the device (e.g. fp32 on an int8-only NPU).
std::optional<Choice> UniformChoice(const Problem& problem, int weight_bits, int activation_bits);

// "18×int8, 40×int4, 6×fp16; 30% pruned": layers per weight precision, most common first, and the
// share of all weights pruned.
std::string PlanSummary(const Problem& problem, const Choice& choice);

// How many layers of a configuration have a latency from measured samples and how many from the
// spec roofline (LatencyPrediction::basis; "reported" counts as measured).
struct BasisCount {
  int samples = 0;
  int spec = 0;
};
BasisCount LatencyBasisOf(const Problem& problem, const Choice& choice);
// "samples", or "spec-roofline for 3 of 54 layers".
std::string BasisLabel(const BasisCount& count);

// The `count` candidates of `front` that come closest to meeting `limits`: least total violation,
// each limit's overshoot measured relative to the limit.
Front ClosestCandidates(const Front& front, const Constraints& limits, size_t count);

// The export plan of a configuration: what model::ExportModel applies to each layer.
std::vector<model::LayerPlan> ExportPlanOf(const Problem& problem, const Choice& choice);
model::LayerPlan LayerPlanOf(const device_profiles::CompressionOption& option);

// The configuration whose options are `plan`'s, layer by layer; nullopt when some layer has no
// such option in the problem (the device cannot run it, or the grid does not hold it).
std::optional<Choice> ChoiceOfPlan(const Problem& problem, const std::vector<model::LayerPlan>& plan);

// Output SQNR in dB for a relative output error (noise energy / signal energy); +inf for 0.
double SqnrDb(double relative_error);
// The relative error of an SQNR in dB.
double ErrorOfSqnrDb(double sqnr_db);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_PROBLEM_PLAN_H_
