// Export phase: 8-bit activations. Each tensor a layer quantizes gets one
// QuantizeLinear/DequantizeLinear pair right after its producer, with the parameters its
// calibrated range gives in the flavour's scheme (ActivationQuantizerOf: uint8 with a zero point,
// or int8 symmetric), and every main-graph reader takes the dequantized value; graph outputs keep
// the float value.
#ifndef SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_
#define SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/export.h"
#include "model/internal/graph_editor.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {

// The parameters of each tensor in `names` (ActivationsToCalibrate) from its calibrated range, in
// `scheme`. InvalidArgument for a tensor without a range or with one that is not finite and
// ordered.
absl::StatusOr<std::map<std::string, ActivationQuantizer>> ActivationQuantizers(
    const std::vector<std::string>& names, const std::map<std::string, TensorRange>& ranges, ActivationScheme scheme);

// Inserts the pairs (placed at the editor's Finish); returns how many tensors got one.
int InsertActivationQdq(const std::map<std::string, ActivationQuantizer>& quantizers, GraphEditor& editor);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_EXPORT_ACTIVATIONS_H_
