#include "model/quantized_region.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "model/activation_sites.h"

namespace squeeze::model {
namespace {

// Union-find over tensor names.
class Regions {
 public:
  const std::string& Find(const std::string& t) {
    auto it = parent_.find(t);
    if (it == parent_.end()) it = parent_.emplace(t, t).first;
    if (it->second == t) return it->first;
    const std::string root = Find(it->second);
    parent_[t] = root;
    return parent_.find(t)->second;
  }
  void Join(const std::string& a, const std::string& b) {
    const std::string ra = Find(a), rb = Find(b);
    if (ra != rb) parent_[ra] = rb;
  }

 private:
  std::map<std::string, std::string> parent_;
};

// Element types of the main graph's values as declared or inferred (value_info).
std::map<std::string, int32_t> ElemTypes(const onnx::GraphProto& g) {
  std::map<std::string, int32_t> types;
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (v.type().has_tensor_type()) types[v.name()] = v.type().tensor_type().elem_type();
  };
  for (const auto& v : g.input()) add(v);
  for (const auto& v : g.output()) add(v);
  for (const auto& v : g.value_info()) add(v);
  return types;
}

// The nodes of layer `node`'s folded chain after it, up to its quantized output (its
// BatchNormalization and the Relu folded into its output quantization; activation_sites.h).
std::vector<const onnx::NodeProto*> FoldedChain(const onnx::NodeProto& node, const std::string& output,
                                                const std::map<std::string, const onnx::NodeProto*>& sole_reader) {
  std::vector<const onnx::NodeProto*> chain;
  std::string t = node.output_size() > 0 ? node.output(0) : output;
  for (int steps = 0; steps < 3 && t != output; ++steps) {
    auto it = sole_reader.find(t);
    if (it == sole_reader.end() || it->second->output_size() == 0) break;
    chain.push_back(it->second);
    t = it->second->output(0);
  }
  return t == output ? chain : std::vector<const onnx::NodeProto*>{};
}

// The main graph's values `bits` gives a width (above 0), in graph order (inputs, then node
// outputs), once each.
std::vector<QuantizedTensor> InGraphOrder(const onnx::GraphProto& g,
                                          const std::function<int(const std::string&)>& bits) {
  std::vector<QuantizedTensor> out;
  std::set<std::string> listed;
  auto list = [&](const std::string& t) {
    const int b = bits(t);
    if (b > 0 && listed.insert(t).second) out.push_back({t, b});
  };
  for (const auto& v : g.input()) list(v.name());
  for (const onnx::NodeProto& n : g.node()) {
    for (const std::string& o : n.output()) list(o);
  }
  return out;
}

}  // namespace

bool RunsQuantizedOnHtp(const std::string& op_type) {
  static const std::set<std::string> kOps = {
      // elementwise arithmetic and activations
      "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Where", "PRelu", "Relu", "Clip", "Sigmoid", "Tanh",
      "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Gelu", "Softmax", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf",
      // normalization (its statistics and affine parameters stay float: the provider folds them
      // into the quantized op)
      "BatchNormalization",
      // pooling and reductions
      "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceMin",
      "ReduceSum",
      // moving data
      "Concat", "Split", "Slice", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Pad", "Tile", "Expand",
      "Gather", "DepthToSpace", "SpaceToDepth", "Resize"};
  return kOps.count(op_type) > 0;
}

bool IsDataInput(const std::string& op_type, int input) {
  static const std::set<std::string> kNary = {"Add", "Sub", "Mul",  "Div",    "Max",
                                              "Min", "Sum", "Mean", "Concat", "PRelu"};
  if (kNary.count(op_type)) return true;
  if (op_type == "Where") return input == 1 || input == 2;
  return input == 0;
}

QuantizedRegion QuantizedRegionOf(const LoadedModel& model, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  const Analysis& analysis = model.analysis;
  const onnx::GraphProto& g = model.proto.graph();
  const ActivationTensors layer_tensors = ActivationTensorsOf(model);

  // The layers' own tensors: the seeds of every region.
  std::map<std::string, int> seed_bits;
  for (size_t i = 0; i < plan.size() && i < analysis.layers.size(); ++i) {
    if (!QuantizesActivations(flavour, plan[i].weight_bits, plan[i].activation_bits) || layer_tensors.input[i].empty())
      continue;
    for (const std::string& t : {layer_tensors.input[i], layer_tensors.output[i]}) {
      int& bits = seed_bits[t];
      bits = std::max(bits, plan[i].activation_bits);
    }
  }
  QuantizedRegion region;
  if (!QuantizesWholeGraph(flavour)) {
    region.tensors = InGraphOrder(g, [&](const std::string& t) {
      auto it = seed_bits.find(t);
      return it == seed_bits.end() ? 0 : it->second;
    });
    return region;
  }

  std::set<std::string> constants;
  for (const auto& t : g.initializer()) constants.insert(t.name());
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  for (const onnx::NodeProto& n : g.node()) {
    if (n.op_type() == "Constant") constants.insert(n.output().begin(), n.output().end());
    for (const std::string& in : n.input()) readers[in].push_back(&n);
  }
  std::map<std::string, const onnx::NodeProto*> sole_reader;
  for (const auto& [t, r] : readers) {
    if (r.size() == 1) sole_reader[t] = r[0];
  }
  const std::map<std::string, int32_t> types = ElemTypes(g);
  auto is_float = [&](const std::string& t) {
    auto it = types.find(t);
    return !t.empty() && !constants.count(t) && it != types.end() && it->second == onnx::TensorProto::FLOAT;
  };

  // Layer nodes and their folded chains are no region ops; a float layer's tensors stay float.
  std::set<std::string> owned_nodes, float_tensors;
  std::map<std::string, const onnx::NodeProto*> by_name;
  for (const onnx::NodeProto& n : g.node()) by_name[n.name()] = &n;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    auto it = by_name.find(analysis.layers[i].name);
    if (it == by_name.end()) continue;
    const onnx::NodeProto& node = *it->second;
    owned_nodes.insert(node.name());
    const bool quantized = i < plan.size() &&
                           QuantizesActivations(flavour, plan[i].weight_bits, plan[i].activation_bits) &&
                           !layer_tensors.input[i].empty();
    if (!quantized) {
      // What a float layer writes stays float; what it reads may be quantized for other readers
      // (the layer then computes from the dequantized value).
      float_tensors.insert(node.output().begin(), node.output().end());
      continue;
    }
    for (const onnx::NodeProto* c : FoldedChain(node, layer_tensors.output[i], sole_reader)) {
      owned_nodes.insert(c->name());
      if (c->input_size() > 0) float_tensors.insert(c->input(0));
    }
  }
  for (const auto& [t, bits] : seed_bits) float_tensors.erase(t);

  Regions regions;
  for (const onnx::NodeProto& n : g.node()) {
    if (owned_nodes.count(n.name()) || !RunsQuantizedOnHtp(n.op_type())) continue;
    std::string first;
    auto join = [&](const std::string& t) {
      if (!is_float(t) || float_tensors.count(t)) return;
      if (first.empty()) {
        first = t;
      } else {
        regions.Join(first, t);
      }
    };
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k)) join(n.input(k));
    }
    for (const std::string& o : n.output()) join(o);
  }
  std::map<std::string, int> region_bits;  // root -> widest seed bits
  for (const auto& [t, bits] : seed_bits) {
    int& b = region_bits[regions.Find(t)];
    b = std::max(b, bits);
  }
  auto bits_of = [&](const std::string& t) -> int {
    if (!is_float(t) && !seed_bits.count(t)) return 0;
    if (float_tensors.count(t)) return 0;
    auto it = region_bits.find(regions.Find(t));
    return it == region_bits.end() ? 0 : it->second;
  };
  region.tensors = InGraphOrder(g, bits_of);
  std::set<std::string> listed;
  for (const QuantizedTensor& t : region.tensors) listed.insert(t.name);
  // The float constants the region's ops read as data.
  for (const onnx::NodeProto& n : g.node()) {
    if (owned_nodes.count(n.name()) || !RunsQuantizedOnHtp(n.op_type())) continue;
    bool in_region = false;
    for (const std::string& o : n.output()) in_region = in_region || listed.count(o);
    for (int k = 0; k < n.input_size(); ++k) in_region = in_region || listed.count(n.input(k));
    if (!in_region) continue;
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k) && constants.count(n.input(k))) region.constants.emplace_back(n.name(), k);
    }
  }
  return region;
}

}  // namespace squeeze::model
