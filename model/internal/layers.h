// Finding a model's compressible layers and what each one costs.
#ifndef SQUEEZE_MODEL_INTERNAL_LAYERS_H_
#define SQUEEZE_MODEL_INTERNAL_LAYERS_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/analysis.h"
#include "model/internal/shapes.h"

namespace squeeze::model::internal {

// A compressible layer where it sits in the model, with what later steps need beside the Layer.
struct LayerSite {
  Layer layer;              // everything the graph alone tells; shapes and MACs come later
  std::string graph_path;   // "" for the main graph
  std::string input_name;   // the activation (input 0)
  std::string output_name;  // output 0
  const onnx::TensorProto* weight = nullptr;
  const onnx::TensorProto* bias = nullptr;  // Conv/ConvTranspose/Gemm input 2 when constant
  bool trans_a = false;                     // Gemm
  bool trans_b = false;
};

struct GraphSurvey {
  std::vector<LayerSite> layers;  // in graph order, a node's subgraph layers right after it
  std::map<std::string, int64_t> op_histogram;
  std::map<std::string, int64_t> uncompressed_ops;  // every node but layers and Constants
  std::vector<std::string> warnings;
};

// Finds the compressible layers: Conv, ConvTranspose, Gemm and MatMul of the default domain whose
// input 1 is a constant float tensor — an initializer or a Constant node's output, of the node's
// graph or an enclosing one. InvalidArgument when a layer's weight cannot be what its op needs
// (a Conv weight of rank below 3, groups that do not divide its channels, ...).
absl::StatusOr<GraphSurvey> SurveyGraph(const onnx::ModelProto& model);

// Sets a layer's activation shapes and bytes, MACs and shape source from the shapes of its input
// and output, both known. InvalidArgument when they contradict the weight.
absl::Status SetLayerShapes(LayerSite* site, const ValueShape& input, const ValueShape& output);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_LAYERS_H_
