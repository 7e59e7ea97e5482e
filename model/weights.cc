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

}  // namespace squeeze::model
