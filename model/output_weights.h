// Which graph outputs a fidelity figure stands on, and how much each weighs (DESIGN.md §5).
//
// A model's error is the weighted mean of its outputs' relative errors, Σ_o w_o·‖y'_o − y_o‖²/‖y_o‖²
// with Σ_o w_o = 1, not one ratio pooled over every value: pooled, the largest tensor decides
// (M-LSD's 16×160×160 line map hides its 1×160×160 mask; ISNet's 64×512×512 feature maps hide
// its mask). By default every float output weighs the same; a user names the outputs that matter
// and their weights (`--output scores=3 --output offsets=1`), and the outputs left unnamed then
// weigh nothing. The sensitivities, the predicted error built on them and the measured SQNR of
// exports all use the same weights, so predicted and measured figures compare like for like.
//
// Pure functions of the model proto; thread safe.
#ifndef SQUEEZE_MODEL_OUTPUT_WEIGHTS_H_
#define SQUEEZE_MODEL_OUTPUT_WEIGHTS_H_

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace squeeze::model {

struct GraphOutput {
  std::string name;
  bool is_float = true;  // fp32, fp16, bf16 or fp64 values, or a type not declared
};

// The main graph's outputs, in order.
std::vector<GraphOutput> GraphOutputs(const onnx::ModelProto& model);

// One weight per output, in the order given, summing to 1. Outputs that are not float (integers,
// bools) weigh 0: their values are compared exactly, not by SQNR.
//
// `asked` empty: every float output weighs the same. Otherwise the named outputs take their
// weights (normalized to sum 1) and the others 0. InvalidArgument, naming the output and listing
// the model's outputs, for a name the model has no output of, a weight that is negative or not
// finite, a positive weight on an output that is not float, or weights that are all 0; and when
// the model has no float output at all.
absl::StatusOr<std::vector<double>> ResolveOutputWeights(const std::vector<GraphOutput>& outputs,
                                                         const std::map<std::string, double>& asked);

// "equal over 3 outputs" for default weights, else "scores 0.75, offsets 0.25" (outputs of
// weight 0 left out): what a figure taken with these weights stands on, for reports.
std::string DescribeOutputWeights(const std::vector<GraphOutput>& outputs, const std::vector<double>& weights,
                                  bool asked_by_user);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_OUTPUT_WEIGHTS_H_
