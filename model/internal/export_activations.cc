#include "model/internal/export_activations.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model::internal {

absl::StatusOr<std::map<std::string, ActivationQuantizer>> ActivationQuantizers(
    const std::vector<QuantizedTensor>& tensors, const std::map<std::string, TensorRange>& ranges,
    ExportFlavour flavour) {
  std::map<std::string, ActivationQuantizer> quantizers;
  for (const QuantizedTensor& tensor : tensors) {
    auto it = ranges.find(tensor.name);
    if (it == ranges.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no calibrated range for '", tensor.name, "'"));
    }
    if (!std::isfinite(it->second.min) || !std::isfinite(it->second.max) || it->second.min > it->second.max) {
      return absl::InvalidArgumentError(absl::StrCat("the range of '", tensor.name, "' is not finite and ordered"));
    }
    quantizers[tensor.name] =
        ActivationQuantizerOf(ActivationSchemeOf(flavour, tensor.bits), it->second.min, it->second.max);
  }
  return quantizers;
}

int InsertActivationQdq(const std::map<std::string, ActivationQuantizer>& quantizers, bool quantize_outputs,
                        GraphEditor& editor) {
  onnx::GraphProto* g = editor.main_graph();
  std::map<std::string, onnx::NodeProto*> producer;
  for (onnx::NodeProto& n : *g->mutable_node()) {
    for (const std::string& o : n.output()) producer[o] = &n;
  }
  std::set<std::string> outputs;
  for (const onnx::ValueInfoProto& o : g->output()) outputs.insert(o.name());
  int inserted = 0;
  for (const auto& [tensor, q] : quantizers) {
    auto it = producer.find(tensor);
    // A graph output written by a node: the node writes a fresh name, the pair the output's.
    const bool as_output = quantize_outputs && outputs.count(tensor) > 0 && it != producer.end();
    std::string input = tensor;
    if (as_output) {
      input = editor.Fresh(absl::StrCat(tensor, "_squeeze_float"));
      for (int k = 0; k < it->second->output_size(); ++k) {
        if (it->second->output(k) == tensor) it->second->set_output(k, input);
      }
    }
    std::string dequantized;
    std::vector<onnx::NodeProto> pair = QdqNodes(editor, g, input, editor.Fresh(absl::StrCat(tensor, "_squeeze")), q,
                                                 QdqParams::kInitializers, &dequantized);
    if (as_output) {
      pair.back().set_output(0, tensor);
    } else {
      for (onnx::NodeProto& n : *g->mutable_node()) {
        for (int k = 0; k < n.input_size(); ++k) {
          if (n.input(k) == tensor) n.set_input(k, dequantized);
        }
      }
    }
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

int QuantizeRegionConstants(const std::vector<std::pair<std::string, int>>& inputs, GraphEditor& editor) {
  onnx::GraphProto* g = editor.main_graph();
  std::map<std::string, onnx::NodeProto*> by_name;
  for (onnx::NodeProto& n : *g->mutable_node()) by_name[n.name()] = &n;
  std::map<std::string, std::string> stored;  // constant -> its DequantizeLinear's output
  for (const auto& [node_name, input] : inputs) {
    auto node = by_name.find(node_name);
    if (node == by_name.end() || input >= node->second->input_size()) continue;
    onnx::NodeProto* n = node->second;
    const std::string name = n->input(input);
    if (auto done = stored.find(name); done != stored.end()) {
      n->set_input(input, done->second);
      continue;
    }
    const onnx::TensorProto* t = FindConstant({g}, name);
    if (t == nullptr || t->data_type() != onnx::TensorProto::FLOAT) continue;
    const std::vector<float> values = DecodeFloats(*t);
    if (values.empty()) continue;
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    const ActivationQuantizer q = ActivationQuantizerOf(ActivationScheme::kAsymmetricUint8, *lo, *hi);
    std::vector<uint8_t> levels(values.size());
    for (size_t k = 0; k < values.size(); ++k) levels[k] = static_cast<uint8_t>(QuantizedLevel(values[k], q));
    const std::string base = editor.Fresh(absl::StrCat(name, "_squeeze_u8"));
    const std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
    const std::string data = editor.AddInitializer(g, RawTensorOf(base, onnx::TensorProto::UINT8, dims, levels));
    const std::string scale = editor.AddInitializer(
        g, RawTensorOf(editor.Fresh(base + "_scale"), onnx::TensorProto::FLOAT, {}, std::vector<float>{q.scale}));
    const std::string zero_point =
        editor.AddInitializer(g, RawTensorOf(editor.Fresh(base + "_zero_point"), onnx::TensorProto::UINT8, {},
                                             std::vector<uint8_t>{static_cast<uint8_t>(q.zero_point)}));
    const std::string value = editor.Fresh(base + "_dq");
    editor.InsertAtFront(
        g, MakeNode("DequantizeLinear", editor.Fresh(base + "_dequantize"), {data, scale, zero_point}, {value}));
    n->set_input(input, value);
    editor.Orphan(name);
    stored[name] = value;
  }
  return static_cast<int>(stored.size());
}

}  // namespace squeeze::model::internal
