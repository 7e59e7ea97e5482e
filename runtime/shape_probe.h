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
#include "absl/time/time.h"
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

// The probe in a helper process with a memory and a time budget: an uploaded model may need any
// amount of memory once ONNX Runtime runs it (a value-dependent NonZero, a computed
// ConstantOfShape), which shapes cannot foresee; the child is bounded and killed instead of the
// server. `helper_argv` starts the helper (e.g. {squeezed, "probe-shapes"}); its arguments are
// appended, and it runs ShapeProbeHelperMain.
struct IsolatedProbeOptions {
  std::vector<std::string> helper_argv;
  // Where the model is written for the child (a directory per call, removed after it); empty:
  // $TMPDIR or /tmp. A server gives its data dir, so large models do not fill a RAM-backed /tmp.
  std::string temp_dir;
  // The child's data memory: this much for the model's values, plus three times the model's
  // size (its bytes, ONNX Runtime's copy of the weights) and a fixed allowance for the runtime.
  int64_t activation_bytes = int64_t{1} << 30;
  absl::Duration time_limit = absl::Seconds(120);
  int intra_op_threads = 1;
  // Named in errors: the server flags that set the two budgets.
  std::string memory_flag = "--max-activation-bytes", time_flag = "--analysis-timeout";
};

// ResourceExhausted, naming the budget and its flag, when the child runs out of memory or time;
// otherwise ProbeShapes' answer.
model::ShapeProbe IsolatedShapeProbe(IsolatedProbeOptions options);

// The helper's side: `args` are the arguments IsolatedShapeProbe appends. Limits its own memory,
// probes, writes the answer; returns the process exit code.
int ShapeProbeHelperMain(const std::vector<std::string>& args);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_SHAPE_PROBE_H_
