#include "model/internal/export_activations.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace squeeze::model::internal {

absl::StatusOr<std::map<std::string, ActivationQuantizer>> ActivationQuantizers(
    const std::vector<std::string>& names, const std::map<std::string, TensorRange>& ranges, ActivationScheme scheme) {
  std::map<std::string, ActivationQuantizer> quantizers;
  for (const std::string& name : names) {
    auto it = ranges.find(name);
    if (it == ranges.end()) return absl::InvalidArgumentError(absl::StrCat("no calibrated range for '", name, "'"));
    if (!std::isfinite(it->second.min) || !std::isfinite(it->second.max) || it->second.min > it->second.max) {
      return absl::InvalidArgumentError(absl::StrCat("the range of '", name, "' is not finite and ordered"));
    }
    quantizers[name] = ActivationQuantizerOf(scheme, it->second.min, it->second.max);
  }
  return quantizers;
}

int InsertActivationQdq(const std::map<std::string, ActivationQuantizer>& quantizers, GraphEditor& editor) {
  onnx::GraphProto* g = editor.main_graph();
  std::map<std::string, onnx::NodeProto*> producer;
  for (onnx::NodeProto& n : *g->mutable_node()) {
    for (const std::string& o : n.output()) producer[o] = &n;
  }
  int inserted = 0;
  for (const auto& [tensor, q] : quantizers) {
    std::string dequantized;
    std::vector<onnx::NodeProto> pair = QdqNodes(editor, g, tensor, editor.Fresh(absl::StrCat(tensor, "_squeeze")), q,
                                                 QdqParams::kInitializers, &dequantized);
    for (onnx::NodeProto& n : *g->mutable_node()) {
      for (int k = 0; k < n.input_size(); ++k) {
        if (n.input(k) == tensor) n.set_input(k, dequantized);
      }
    }
    auto it = producer.find(tensor);
    for (onnx::NodeProto& node : pair) {
      if (it == producer.end()) {
        editor.InsertAtFront(g, std::move(node));
      } else {
        editor.InsertAfter(g, it->second, std::move(node));
      }
    }
    ++inserted;
  }
  return inserted;
}

}  // namespace squeeze::model::internal
