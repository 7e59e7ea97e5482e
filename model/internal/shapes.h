// Shapes of a model's values: the concrete input shapes an analysis runs with, and what libonnx's
// shape inference derives from them, value by value and graph by graph.
#ifndef SQUEEZE_MODEL_INTERNAL_SHAPES_H_
#define SQUEEZE_MODEL_INTERNAL_SHAPES_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/analysis.h"

namespace squeeze::model::internal {

using Dims = std::vector<int64_t>;
using ShapeMap = std::map<std::string, Dims>;

std::string DimsString(const Dims& dims);  // "[1,3,224,224]"

struct ResolvedInputs {
  ShapeMap shapes;                     // every graph input that is not an initializer, concrete
  std::vector<std::string> defaulted;  // "x[0] = 1 (batch)"
};

// The concrete shape of every graph input: the one given, else the declared one, with a symbolic
// dim 0 defaulting to 1 (batch). InvalidArgument for a given name that is no input, a given shape
// of the wrong rank, with a non-positive dim or differing from a fixed dim, and for a symbolic dim
// that cannot be guessed (asking for --input-shape).
absl::StatusOr<ResolvedInputs> ResolveInputShapes(const onnx::GraphProto& graph, const ShapeMap& given);

struct ValueShape {
  int32_t elem_type = 0;  // onnx::TensorProto_DataType, 0 when unknown
  Dims dims;              // concrete when `known`
  bool known = false;
  ShapeSource source = ShapeSource::kUnknown;
};

// Value shapes by graph path ("" = main graph, see graph.h) and name. A lookup in a subgraph
// falls back to the enclosing graphs, as names from the outer scope are visible there. Not thread
// safe: one analysis fills and reads it.
class ShapeTable {
 public:
  void AddGraph(const std::string& path, const std::string& parent_path);
  // Records `shape` unless the value already has a known shape.
  void Set(const std::string& path, const std::string& name, const ValueShape& shape);
  const ValueShape* Find(const std::string& path, const std::string& name) const;

 private:
  struct Graph {
    std::string parent;
    std::map<std::string, ValueShape> values;
  };
  std::map<std::string, Graph> graphs_;
};

struct InferenceResult {
  ShapeTable shapes;
  std::vector<std::string> warnings;
  // The main graph's value_info as libonnx infers it from the declared (symbolic) inputs, for the
  // canonical model; value_info_inferred says whether it was.
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> value_info;
  bool value_info_inferred = false;
};

// Shapes of every value with the graph inputs at `inputs`: declared ones (inputs, and outputs,
// value_info and initializers stated with concrete dims), `seeds` (main-graph values measured
// otherwise, e.g. by ONNX Runtime, which inference then starts from) and libonnx's inferences.
// Inference runs on copies of `model` made compatible with libonnx (see validation.h), with large
// tensor data moved out of `model` meanwhile. Without seeds, and unless the model is newer than
// libonnx, it also infers the value_info to record in the canonical model. An inference error is
// InvalidArgument — the model, the given input shapes or the seeds are inconsistent — unless the
// model is newer than libonnx, where it is a warning.
absl::StatusOr<InferenceResult> InferShapes(onnx::ModelProto* model, const std::vector<int>& opaque_nodes,
                                            const ShapeMap& inputs, bool newer_than_libonnx,
                                            const std::map<std::string, ValueShape>& seeds = {});

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_SHAPES_H_
