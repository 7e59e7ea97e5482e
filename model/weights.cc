#include "model/weights.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "model/internal/layers.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model {

absl::StatusOr<std::vector<ChannelMatrix>> ReadLayerWeights(const LoadedModel& model) {
  absl::StatusOr<internal::GraphSurvey> survey = internal::SurveyGraph(model.proto);
  if (!survey.ok()) return survey.status();
  std::map<std::string, const onnx::TensorProto*> weights;
  for (const internal::LayerSite& site : survey->layers) weights[site.layer.name] = site.weight;
  std::vector<ChannelMatrix> out;
  out.reserve(model.analysis.layers.size());
  for (const Layer& layer : model.analysis.layers) {
    auto it = weights.find(layer.name);
    if (it == weights.end() || it->second == nullptr) {
      return absl::InternalError(absl::StrCat("layer '", layer.name, "' is not in the model any more"));
    }
    out.push_back(ToChannelMajor(internal::DecodeFloats(*it->second), layer.weight_layout));
  }
  return out;
}

absl::Status SetLayerWeights(onnx::ModelProto* model, const Layer& layer, const std::vector<float>& values) {
  onnx::GraphProto* graph = model->mutable_graph();
  onnx::TensorProto* tensor = nullptr;
  for (onnx::TensorProto& t : *graph->mutable_initializer()) {
    if (t.name() == layer.weight_name) tensor = &t;
  }
  for (onnx::NodeProto& n : *graph->mutable_node()) {
    if (n.op_type() != "Constant" || n.output_size() != 1 || n.output(0) != layer.weight_name) continue;
    for (onnx::AttributeProto& a : *n.mutable_attribute()) {
      if (a.name() == "value" && a.has_t()) tensor = a.mutable_t();
    }
  }
  if (tensor == nullptr || !layer.subgraph.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", layer.name, "': its weight '", layer.weight_name, "' is not a main-graph constant"));
  }
  if (internal::ElementCount(*tensor) != static_cast<int64_t>(values.size())) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': ", values.size(), " values for ",
                                                   internal::ElementCount(*tensor), " weights"));
  }
  const bool half = tensor->data_type() == onnx::TensorProto::FLOAT16;
  tensor->clear_float_data();
  tensor->clear_int32_data();
  tensor->clear_double_data();
  tensor->clear_uint64_data();
  tensor->clear_external_data();
  tensor->set_data_location(onnx::TensorProto::DEFAULT);
  std::string raw;
  if (half) {
    raw.resize(values.size() * 2);
    uint16_t* out = reinterpret_cast<uint16_t*>(raw.data());
    for (size_t i = 0; i < values.size(); ++i) out[i] = FloatToHalfBits(values[i]);
  } else {
    tensor->set_data_type(onnx::TensorProto::FLOAT);
    raw.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  tensor->set_raw_data(std::move(raw));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> DecodeFloatTensor(const onnx::TensorProto& tensor, absl::string_view name) {
  if (absl::Status s = internal::CheckTensorData(tensor, name); !s.ok()) return s;
  if (!internal::IsDecodableFloat(tensor.data_type())) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is ", internal::DataTypeName(tensor.data_type()),
                                                   ", not a float type"));
  }
  return internal::DecodeFloats(tensor);
}

}  // namespace squeeze::model
