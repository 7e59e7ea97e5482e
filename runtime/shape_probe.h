// A model::ShapeProbe backed by ONNX Runtime: for the values libonnx's shape inference cannot
// follow (ops newer than libonnx, shape computations it does not propagate), run the model once
// and read their shapes off the real tensors. Thread safe: the probe keeps no state between
// calls; each call creates and runs its own session.
#ifndef SQUEEZE_RUNTIME_SHAPE_PROBE_H_
#define SQUEEZE_RUNTIME_SHAPE_PROBE_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/loader.h"

namespace squeeze::runtime {

struct ShapeProbeOptions {
  int intra_op_threads = 1;
};

// Runs `model` once in ONNX Runtime, without graph optimizations, on zero-filled inputs of
// `input_shapes`, with `value_names` (values of the main graph) exposed as extra outputs, and
// returns their shapes by name. Shapes that depend on input values are those of zero inputs.
// InvalidArgument when an input has no shape in `input_shapes` or an element type ONNX Runtime
// sessions here do not feed; otherwise the Session's status (InvalidArgument when ONNX Runtime
// rejects the model or a name, Unimplemented for an op it has no kernel for).
absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ProbeShapes(
    const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const std::vector<std::string>& value_names, const ShapeProbeOptions& options = {});

// ProbeShapes as the model::ShapeProbe that AnalyzeOptions takes.
model::ShapeProbe OnnxRuntimeShapeProbe(const ShapeProbeOptions& options = {});

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_SHAPE_PROBE_H_
