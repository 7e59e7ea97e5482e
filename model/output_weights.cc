#include "model/output_weights.h"

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace squeeze::model {
namespace {

std::string OutputList(const std::vector<GraphOutput>& outputs) {
  std::vector<std::string> names;
  for (const GraphOutput& o : outputs)
    names.push_back(absl::StrCat("'", o.name, "'", o.is_float ? "" : " (not float)"));
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::vector<GraphOutput> GraphOutputs(const onnx::ModelProto& model) {
  std::vector<GraphOutput> outputs;
  for (const onnx::ValueInfoProto& output : model.graph().output()) {
    GraphOutput o;
    o.name = output.name();
    if (output.type().has_tensor_type()) {
      switch (output.type().tensor_type().elem_type()) {
        case onnx::TensorProto::UNDEFINED:
        case onnx::TensorProto::FLOAT:
        case onnx::TensorProto::FLOAT16:
        case onnx::TensorProto::BFLOAT16:
        case onnx::TensorProto::DOUBLE:
          break;
        default:
          o.is_float = false;
      }
    }
    outputs.push_back(std::move(o));
  }
  return outputs;
}

absl::StatusOr<std::vector<double>> ResolveOutputWeights(const std::vector<GraphOutput>& outputs,
                                                         const std::map<std::string, double>& asked) {
  std::vector<double> weights(outputs.size(), 0.0);
  std::map<std::string, size_t> index;
  for (size_t o = 0; o < outputs.size(); ++o) index.emplace(outputs[o].name, o);
  for (const auto& [name, weight] : asked) {
    auto it = index.find(name);
    if (it == index.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the model has no output '", name, "'; its outputs: ", OutputList(outputs)));
    }
    if (!std::isfinite(weight) || weight < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", name, "': weight ", weight, " is not a finite number >= 0"));
    }
    if (weight > 0 && !outputs[it->second].is_float) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output '", name, "' is not float: its values are compared exactly, not weighed in the SQNR; its outputs: ",
          OutputList(outputs)));
    }
    weights[it->second] = weight;
  }
  if (asked.empty()) {
    for (size_t o = 0; o < outputs.size(); ++o) weights[o] = outputs[o].is_float ? 1 : 0;
  }
  double total = 0;
  for (double w : weights) total += w;
  if (!(total > 0)) {
    return absl::InvalidArgumentError(
        asked.empty()
            ? absl::StrCat("the model has no float output to measure an error on; its outputs: ", OutputList(outputs))
            : absl::StrCat("every output named weighs 0: give at least one a positive weight; its outputs: ",
                           OutputList(outputs)));
  }
  for (double& w : weights) w /= total;
  return weights;
}

std::string DescribeOutputWeights(const std::vector<GraphOutput>& outputs, const std::vector<double>& weights,
                                  bool asked_by_user) {
  int counted = 0;
  for (double w : weights) counted += w > 0;
  if (!asked_by_user) return counted == 1 ? "its one float output" : absl::StrCat("equal over ", counted, " outputs");
  std::vector<std::string> parts;
  for (size_t o = 0; o < weights.size() && o < outputs.size(); ++o) {
    if (weights[o] > 0) parts.push_back(absl::StrFormat("%s %.3g", outputs[o].name, weights[o]));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace squeeze::model
