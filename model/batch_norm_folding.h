// The BatchNormalization after a Conv that the exporter folds into the Conv's weights and bias
// before quantizing them. ONNX Runtime folds it itself into constant float weights, but not into
// weights that come out of a DequantizeLinear: left in the file, it would run on its own after
// every integer-weight Conv and keep a uint8 Conv from fusing with what follows. Folding scales
// each output channel's row, which per-channel weight scales absorb exactly, so the predictor's
// masks and distortions (made on the unfolded weights) stay what the file holds.
#ifndef SQUEEZE_MODEL_BATCH_NORM_FOLDING_H_
#define SQUEEZE_MODEL_BATCH_NORM_FOLDING_H_

#include <onnx/onnx_pb.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/analysis.h"
#include "model/loader.h"

namespace squeeze::model {

// The BatchNormalization that alone reads `conv`'s output (a main-graph Conv whose output is no
// graph output, with a float constant weight only it reads and a float constant bias or none), in inference form (one
// output) with constant scale, bias, mean and variance of one value per output channel; nullptr when there is none.
const onnx::NodeProto* FoldableBatchNorm(const onnx::GraphProto& graph, const onnx::NodeProto& conv);

// A constant of the graph by name: an initializer or a Constant node's `value`; nullptr when none.
const onnx::TensorProto* GraphConstant(const onnx::GraphProto& graph, const std::string& name);

// Per output channel: the factor the weights' row is multiplied by, and the bias after folding
// `bias` (one per channel; zeros when the Conv has none). InvalidArgument when the BatchNormalization's
// constants do not have `channels` values or are not finite.
struct FoldedBatchNorm {
  std::vector<float> row_scale;
  std::vector<float> bias;
};
absl::StatusOr<FoldedBatchNorm> FoldBatchNorm(const onnx::GraphProto& graph, const onnx::NodeProto& batch_norm,
                                              const std::vector<float>& bias, int64_t channels);

// Folds the foldable BatchNormalization after each main-graph fp32 Conv among `layers` (indices
// into analysis.layers: those the plan gives integer weights) into its weight and a new bias
// initializer, and removes it with the constants nothing else reads then (its scale, bias, mean
// and variance, the Conv's old bias). Returns, per folded layer, the factor each output channel's
// row was multiplied by, so masks are still made on the weights the predictor saw, and the bytes
// of constants the fold added and removed. Nodes move: indices and pointers into the graph taken
// before do not hold after it.
struct FoldedLayers {
  std::map<size_t, std::vector<float>> row_scales;
  std::map<size_t, int64_t> added_bytes;    // the new bias
  std::map<size_t, int64_t> removed_bytes;  // the constants removed with it
};
absl::StatusOr<FoldedLayers> FoldBatchNorms(onnx::ModelProto* proto, const Analysis& analysis,
                                            const std::set<size_t>& layers);

// What FoldBatchNorms does to each layer of `model` (by Analysis::layers index) when the plan
// gives it integer weights: whether it folds a BatchNormalization into it, and the structure
// (node, tensor names and headers) that takes out of the file — the BatchNormalization and its
// constants' headers, less the new bias's.
struct BatchNormFold {
  bool folds = false;
  std::string batch_norm;  // the BatchNormalization node it folds, when it folds one
  int64_t structure_bytes = 0;
};
std::vector<BatchNormFold> BatchNormFolds(const LoadedModel& model);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_BATCH_NORM_FOLDING_H_
