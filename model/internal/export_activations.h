// Export phase: integer activations. Each tensor the export quantizes (model/quantized_region.h)
// gets one QuantizeLinear/DequantizeLinear pair right after its producer, with the parameters its
// calibrated range gives in the flavour's scheme at its bits (ActivationQuantizerOf: uint8 with a
// zero point, int8 symmetric, or uint16), and every main-graph reader takes the dequantized value.
// Graph outputs keep the float value, unless the flavour quantizes the whole graph: then the
// output is the dequantized value, so the op writing it stays quantized too.
#ifndef SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_
#define SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/export.h"
#include "model/internal/graph_editor.h"
#include "model/quantized_region.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {

// The parameters of each tensor (QuantizedRegionOf) from its calibrated range, in `flavour`'s
// scheme at its bits. InvalidArgument for a tensor without a range or with one that is not finite
// and ordered.
absl::StatusOr<std::map<std::string, ActivationQuantizer>> ActivationQuantizers(
    const std::vector<QuantizedTensor>& tensors, const std::map<std::string, TensorRange>& ranges,
    ExportFlavour flavour);

// Inserts the pairs (placed at the editor's Finish); returns how many tensors got one. With
// `quantize_outputs`, a graph output among them becomes its pair's dequantized value.
int InsertActivationQdq(const std::map<std::string, ActivationQuantizer>& quantizers, bool quantize_outputs,
                        GraphEditor& editor);

// Stores each float constant a region op reads as data (QuantizedRegion::constants) in uint8 behind
// a per-tensor DequantizeLinear over its own range; returns how many constants were stored so. A
// constant read by several such inputs is stored once.
int QuantizeRegionConstants(const std::vector<std::pair<std::string, int>>& inputs, GraphEditor& editor);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_
