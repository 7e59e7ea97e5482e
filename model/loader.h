// Loading and analysing uploaded ONNX models with libonnx (protobuf classes, checker, shape
// inference). No exception leaves this library: libonnx's throws become InvalidArgument with the
// reason. Thread safe: LoadModel and ParseInputShape share no mutable state; any number of calls
// may run at once.
#ifndef SQUEEZE_MODEL_LOADER_H_
#define SQUEEZE_MODEL_LOADER_H_

#include <onnx/onnx_pb.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/analysis.h"

namespace squeeze::model {

// Runs the model once with `input_shapes` and returns the shapes of the requested intermediate
// values (of the main graph) by name; a value it cannot report is left out of the map. Implemented
// with ONNX Runtime by runtime/shape_probe.h (model/ does not depend on it). Called on the thread
// that calls LoadModel.
using ShapeProbe = std::function<absl::StatusOr<std::map<std::string, std::vector<int64_t>>>(
    const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const std::vector<std::string>& value_names)>;

struct AnalyzeOptions {
  // Concrete shapes for graph inputs, by name; symbolic dims of other inputs get defaults
  // (batch = 1) and anything that cannot be guessed is an InvalidArgument asking for them.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Used when libonnx's shape inference leaves a main-graph layer's input or output shape unknown
  // (an op libonnx does not know, a shape computation it cannot follow). Without one, or where it
  // fails, such a layer keeps ShapeSource::kUnknown and 0 MACs, with a warning.
  ShapeProbe shape_probe;
  // Worker threads for weight statistics and scans (oneTBB); 0 = oneTBB's default. Results do
  // not depend on it.
  int threads = 0;
  // The newest IR version the runtime that will run the model loads (runtime::MaxLoadableIrVersion);
  // a newer model is InvalidArgument. 0: not checked.
  int64_t max_ir_version = 0;
  // The most bytes of activations (graph inputs and values computed from them) the model may hold
  // at once at the analysed input shapes; a model that needs more is ResourceExhausted, checked
  // from the shapes before ONNX Runtime runs anything (the shape probe) and again after. 0: not
  // checked.
  int64_t max_activation_bytes = 0;
};

// A parsed model with its analysis.
struct LoadedModel {
  // Canonical: every node of every graph named uniquely ("<op>_<index>" for unnamed and duplicate
  // names), and the main graph's value_info as libonnx infers it from the declared (symbolic)
  // inputs (for models libonnx fully knows). Otherwise as uploaded, IR version and opsets included.
  onnx::ModelProto proto;
  Analysis analysis;
};

// Parses and validates `bytes` and analyses the model. InvalidArgument, with a precise reason,
// for: empty or truncated bytes, bytes that are not ONNX, a graph that fails validation, weights
// with NaN/Inf (NaN in any float constant), a tensor whose data size does not match its shape or
// that lives in an external file, an input shape that is missing or does not fit, input shapes
// the graph's shapes do not add up with, and a model with no compressible layer;
// ResourceExhausted when memory runs out. A model newer than libonnx knows is accepted with
// fully_validated = false and warnings saying what could not be checked.
absl::StatusOr<LoadedModel> LoadModel(absl::string_view bytes, const AnalyzeOptions& options);

// The largest tensor dimension accepted, declared or given. Larger ones describe no tensor a
// device holds, and libonnx's shape inference overflows (and crashes) on them, so they are
// refused first.
inline constexpr int64_t kMaxDimension = (int64_t{1} << 31) - 1;

// A memory size as budgets and their errors write it: "3.73 GiB" ("over 1 PiB" past that).
std::string Gibibytes(int64_t bytes);

// Parses "NAME=1,3,224,224" (the CLI's --input-shape) into a name and dims; the name is what
// precedes the last '='. InvalidArgument when there is no name, no dims, or a dim that is not a
// positive integer.
absl::StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShape(absl::string_view text);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_LOADER_H_
