// The option table a search would build for a model on a device, for the benchmarks that measure
// what comes of it (search::BuildProblem with measured sensitivities).
#ifndef SQUEEZE_BENCH_COMMON_PROBLEM_H_
#define SQUEEZE_BENCH_COMMON_PROBLEM_H_

#include "absl/status/statusor.h"
#include "device_profiles/cost_model.h"
#include "model/loader.h"
#include "runtime/sensitivity.h"
#include "search/problem/problem.h"

namespace squeeze::bench {

// The problem for `model` on `device`, priced by `cost_model`, with errors from `sensitivity` and,
// where given, block-wise options rounded by GPTQ on `layer_inputs` (as a search rounds them).
// The arguments must outlive the call only. Errors as search::BuildProblem.
inline absl::StatusOr<search::Problem> ProblemOn(const model::LoadedModel& model, const device_profiles::Device& device,
                                                 const device_profiles::CostModel& cost_model,
                                                 const runtime::SensitivityReport& sensitivity, int threads,
                                                 const model::LayerInputs* layer_inputs = nullptr) {
  search::ProblemInputs inputs;
  inputs.model = &model;
  inputs.device = &device;
  inputs.cost_model = &cost_model;
  inputs.sensitivity = &sensitivity;
  inputs.threads = threads;
  inputs.layer_inputs = layer_inputs;
  return search::BuildProblem(inputs);
}

}  // namespace squeeze::bench

#endif  // SQUEEZE_BENCH_COMMON_PROBLEM_H_
