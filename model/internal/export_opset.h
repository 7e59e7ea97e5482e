// Export phase: the opset the QDQ format needs. Per-channel DequantizeLinear (an `axis`) is
// ai.onnx opset 13; an older model is converted with libonnx's version converter first.
#ifndef SQUEEZE_MODEL_INTERNAL_EXPORT_OPSET_H_
#define SQUEEZE_MODEL_INTERNAL_EXPORT_OPSET_H_

#include <onnx/onnx_pb.h>

#include <vector>

#include "absl/status/status.h"
#include "model/export.h"

namespace squeeze::model::internal {

inline constexpr int64_t kQdqOpset = 13;  // DequantizeLinear with `axis` (per-channel scales)

// Converts `proto` (the analysed model, or a copy being exported) to kQdqOpset when `plan` gives
// any layer integer weights and the model is older, recording both opsets and a warning in
// `report`. The converter needs shapes (Softmax 12→13): they are inferred from the analysed input
// shapes, and where inference stops, measured by `shape_probe` when there is one. The declared
// inputs are put back afterwards. FailedPrecondition with the converter's reason when it fails.
absl::Status ConvertForQdq(const Analysis& analysis, const std::vector<LayerPlan>& plan, const ShapeProbe& shape_probe,
                           onnx::ModelProto* proto, ExportReport* report);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_EXPORT_OPSET_H_
