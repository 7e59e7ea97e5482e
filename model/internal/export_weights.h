// Export phases on the layers' weights: the plan's pruning masks (made on the weights the
// predictor saw), then each layer's weight rewritten — removed channels sliced away, integer
// weights quantized per output channel behind a DequantizeLinear, fp16 weights stored in half,
// the bias made int32 where the layer's integer kernel needs it.
#ifndef SQUEEZE_MODEL_INTERNAL_EXPORT_WEIGHTS_H_
#define SQUEEZE_MODEL_INTERNAL_EXPORT_WEIGHTS_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/export.h"
#include "model/internal/channel_flow.h"
#include "model/internal/graph_editor.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {

// A layer's weight as the export found it, and what the plan prunes of it.
struct LayerWeight {
  Site site;
  std::vector<float> original;  // storage order
  std::vector<int64_t> dims;
  int32_t elem_type = onnx::TensorProto::FLOAT;
  std::vector<uint8_t> mask;         // storage order, 1 = kept
  std::vector<uint8_t> pruned_rows;  // per output channel: the plan prunes the whole row
};

// Pruning phase: each layer's site, weight and mask (PruneMask of the plan's pattern and ratio).
// Where a BatchNormalization was folded into a layer (`folded_row_scales`, FoldBatchNorms), masks
// are made on the weights before folding, as the predictor made them. FailedPrecondition when a
// layer's node or constant weight is not what the analysis describes.
absl::StatusOr<std::vector<LayerWeight>> LayerWeightsOf(const GraphEditor& editor, const Analysis& analysis,
                                                        const std::vector<LayerPlan>& plan,
                                                        const std::map<size_t, std::vector<float>>& folded_row_scales);

// Main-graph node name -> layer index, for the channel flow.
std::map<std::string, size_t> LayerOfNode(const Analysis& analysis, const std::vector<LayerWeight>& weights);

// Channel phase: the per-channel constants of the nodes the removed channels pass through
// (BatchNormalization, Add/Mul/... partners) sliced, and depthwise Convs' group counts lowered.
// InternalError when such a constant cannot be sliced.
absl::Status SliceChannelConsumers(const ChannelFlow& flow, GraphEditor& editor);

// Weight phase for layer `index`: its weight (and bias) rewritten as `plan` says, and the layer's
// report appended to `report` (its packed bytes, kept channels, distortion, notes).
// `activation_quant` holds the parameters of every 8-bit activation (for the int32 bias of uint8 ones);
// `flavour` says how integer weights are stored (StoresInt4); `inputs`, the layer's calibration
// input rows or null, are what GPTQ rounds a MatMulNBits weight on (QuantizeBlocks); the names of
// the weight constants written go into `weight_constants`. FailedPrecondition when removed channels meet a bias that is
// no constant vector.
absl::Status ExportLayerWeights(const Layer& layer, size_t index, const LayerPlan& plan, const LayerWeight& weight,
                                const ChannelFlow& flow,
                                const std::map<std::string, ActivationQuantizer>& activation_quant,
                                ExportFlavour flavour, const LayerInputRows* inputs, GraphEditor& editor,
                                std::set<std::string>* weight_constants, ExportReport* report);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_EXPORT_WEIGHTS_H_
