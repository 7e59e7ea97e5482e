// Validating a model with libonnx's checker, models newer than the linked libonnx included.
//
// libonnx 1.12 knows IR 8 and ai.onnx opset 17. A newer model is checked as IR 8, its ops against
// the newest definitions libonnx has; a node that then fails because its op is newer, or changed
// after that opset, is reported as a warning and kept out of libonnx's shape inference ("opaque"),
// so that its shapes come from ONNX Runtime instead of an outdated definition.
#ifndef SQUEEZE_MODEL_INTERNAL_VALIDATION_H_
#define SQUEEZE_MODEL_INTERNAL_VALIDATION_H_

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/loader.h"

namespace squeeze::model::internal {

struct ValidationResult {
  bool newer_than_libonnx = false;  // IR version or an opset beyond what libonnx knows
  std::vector<std::string> warnings;
  std::vector<int> opaque_nodes;  // main-graph node indices libonnx could not check
};

// Runs libonnx's checker on `model`. InvalidArgument with libonnx's reason when the model fails
// a check, unless the model is newer than libonnx and the failing node's opset is one of the newer
// ones. `model` is changed while checking (IR version, opaque nodes) and restored before return.
absl::StatusOr<ValidationResult> ValidateModel(onnx::ModelProto* model);

// InvalidArgument naming the value and the dimension when a declared shape (inputs, outputs,
// value_info, of any graph) has a dimension over kMaxDimension.
absl::Status CheckDeclaredDimensions(const onnx::ModelProto& model);

// Prepares a copy of a model for libonnx's shape inference: the IR version clamped to the one
// libonnx knows, and `opaque_nodes` moved to a private domain libonnx has no schemas for.
void MakeLibOnnxCompatible(onnx::ModelProto* copy, const std::vector<int>& opaque_nodes);

// libonnx's message on one line: its "\n\n==> Context: " becomes "; ".
std::string OneLine(const std::string& message);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_VALIDATION_H_
