#include "runtime/shape_probe.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/session.h"

namespace squeeze::runtime {
namespace {

ElementType FromOnnx(int32_t type) {
  switch (type) {
    case onnx::TensorProto::FLOAT: return ElementType::kFloat32;
    case onnx::TensorProto::FLOAT16: return ElementType::kFloat16;
    case onnx::TensorProto::INT64: return ElementType::kInt64;
    case onnx::TensorProto::INT32: return ElementType::kInt32;
    case onnx::TensorProto::INT8: return ElementType::kInt8;
    case onnx::TensorProto::UINT8: return ElementType::kUint8;
    case onnx::TensorProto::BOOL: return ElementType::kBool;
    default: return ElementType::kUnsupported;
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ProbeShapes(
    const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const std::vector<std::string>& value_names, const ShapeProbeOptions& options) {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : model.graph().initializer()) initializers.insert(t.name());

  // Zero-filled inputs; a graph input asked for is answered from its given shape.
  std::vector<Tensor> inputs;
  for (const onnx::ValueInfoProto& input : model.graph().input()) {
    if (initializers.count(input.name())) continue;
    auto shape = input_shapes.find(input.name());
    if (shape == input_shapes.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no shape given for input '", input.name(), "'"));
    }
    Tensor t;
    t.name = input.name();
    t.type = FromOnnx(input.type().tensor_type().elem_type());
    if (t.type == ElementType::kUnsupported) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", input.name(), "' has an element type the shape ", "probe cannot feed"));
    }
    t.shape = shape->second;
    t.bytes.assign(static_cast<size_t>(t.ElementCount()) * ElementSize(t.type), '\0');
    inputs.push_back(std::move(t));
  }

  // The values to expose, as extra graph outputs. Serialized messages concatenate as a merge, so
  // appending a ModelProto that holds only those outputs adds them without copying the model.
  std::set<std::string> outputs;
  for (const onnx::ValueInfoProto& output : model.graph().output()) outputs.insert(output.name());
  std::set<std::string> computed;
  for (const onnx::NodeProto& node : model.graph().node()) computed.insert(node.output().begin(), node.output().end());
  onnx::ModelProto extra;
  std::vector<std::string> fetch;
  for (const std::string& name : value_names) {
    if (auto given = input_shapes.find(name); given != input_shapes.end()) {
      shapes[name] = given->second;
      continue;
    }
    if (!computed.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("no node of the main graph computes '", name, "'"));
    }
    if (!outputs.count(name)) extra.mutable_graph()->add_output()->set_name(name);
    outputs.insert(name);
    fetch.push_back(name);
  }
  if (fetch.empty()) return shapes;
  const std::string bytes = model.SerializeAsString() + extra.SerializeAsString();

  SessionOptions session_options;
  session_options.intra_op_threads = options.intra_op_threads;
  session_options.optimize = false;  // every node as written; nothing fused away
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(bytes, session_options);
  if (!session.ok()) return session.status();
  absl::StatusOr<std::vector<Tensor>> values = (*session)->Run(inputs, fetch);
  if (!values.ok()) return values.status();
  for (Tensor& value : *values) shapes[value.name] = std::move(value.shape);
  return shapes;
}

model::ShapeProbe OnnxRuntimeShapeProbe(const ShapeProbeOptions& options) {
  return [options](const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
                   const std::vector<std::string>& value_names) {
    return ProbeShapes(model, input_shapes, value_names, options);
  };
}

}  // namespace squeeze::runtime
