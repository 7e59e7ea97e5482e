#include "model/quantized_region.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "model/activation_sites.h"
#include "model/internal/export_activations.h"
#include "model/internal/graph_editor.h"

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

namespace {

// The main graph grouped into regions for `seed_bits_of` (per layer, the bits of its integer
// activations; 0 where it keeps them float): the grouping QuantizedRegionOf and
// QuantizableRegionsOf share.
struct Grouping {
  Regions regions;
  std::map<std::string, int> seed_bits;  // the quantized layers' own tensors
  std::set<std::string> constants;       // initializers and Constant outputs
  std::set<std::string> owned_nodes;     // layer nodes and their folded chains: no region ops
  std::set<std::string> float_tensors;   // what float layers write, and their chains' insides
  std::map<std::string, int32_t> types;
  bool IsFloat(const std::string& t) const {
    auto it = types.find(t);
    return !t.empty() && !constants.count(t) && it != types.end() && it->second == onnx::TensorProto::FLOAT;
  }
  // Whether a region op joins `t` to its region.
  bool Joins(const std::string& t) const { return IsFloat(t) && !float_tensors.count(t); }
  bool IsRegionOp(const onnx::NodeProto& n) const {
    return !owned_nodes.count(n.name()) && RunsQuantizedOnHtp(n.op_type());
  }
};

Grouping Group(const LoadedModel& model, const ActivationTensors& layer_tensors,
               const std::function<int(size_t)>& seed_bits_of) {
  const Analysis& analysis = model.analysis;
  const onnx::GraphProto& g = model.proto.graph();
  Grouping out;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (seed_bits_of(i) <= 0 || layer_tensors.input[i].empty()) continue;
    for (const std::string& t : {layer_tensors.input[i], layer_tensors.output[i]}) {
      int& bits = out.seed_bits[t];
      bits = std::max(bits, seed_bits_of(i));
    }
  }
  for (const auto& t : g.initializer()) out.constants.insert(t.name());
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  for (const onnx::NodeProto& n : g.node()) {
    if (n.op_type() == "Constant") out.constants.insert(n.output().begin(), n.output().end());
    for (const std::string& in : n.input()) readers[in].push_back(&n);
  }
  std::map<std::string, const onnx::NodeProto*> sole_reader;
  for (const auto& [t, r] : readers) {
    if (r.size() == 1) sole_reader[t] = r[0];
  }
  out.types = ElemTypes(g);

  // Layer nodes and their folded chains are no region ops; a float layer's tensors stay float.
  std::map<std::string, const onnx::NodeProto*> by_name;
  for (const onnx::NodeProto& n : g.node()) by_name[n.name()] = &n;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    auto it = by_name.find(analysis.layers[i].name);
    if (it == by_name.end()) continue;
    const onnx::NodeProto& node = *it->second;
    out.owned_nodes.insert(node.name());
    if (seed_bits_of(i) <= 0 || layer_tensors.input[i].empty()) {
      // What a float layer writes stays float; what it reads may be quantized for other readers
      // (the layer then computes from the dequantized value).
      out.float_tensors.insert(node.output().begin(), node.output().end());
      continue;
    }
    for (const onnx::NodeProto* c : FoldedChain(node, layer_tensors.output[i], sole_reader)) {
      out.owned_nodes.insert(c->name());
      if (c->input_size() > 0) out.float_tensors.insert(c->input(0));
    }
  }
  for (const auto& [t, bits] : out.seed_bits) out.float_tensors.erase(t);

  for (const onnx::NodeProto& n : g.node()) {
    if (!out.IsRegionOp(n)) continue;
    std::string first;
    auto join = [&](const std::string& t) {
      if (!out.Joins(t)) return;
      if (first.empty()) {
        first = t;
      } else {
        out.regions.Join(first, t);
      }
    };
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k)) join(n.input(k));
    }
    for (const std::string& o : n.output()) join(o);
  }
  return out;
}

// What the file stores less when the exporter quantizes `constants` (QuantizeRegionConstants):
// the exporter's own rewrite, run on a graph of those constants and the nodes that read them.
int64_t SavedBytes(const onnx::GraphProto& g, const std::vector<std::pair<std::string, int>>& constants) {
  std::set<std::string> names;
  std::map<std::string, const onnx::NodeProto*> by_name;
  for (const onnx::NodeProto& n : g.node()) by_name[n.name()] = &n;
  for (const auto& [node, input] : constants) names.insert(by_name.at(node)->input(input));
  onnx::ModelProto scratch;
  onnx::GraphProto* s = scratch.mutable_graph();
  for (const onnx::TensorProto& t : g.initializer()) {
    if (names.count(t.name())) *s->add_initializer() = t;
  }
  for (const onnx::NodeProto& n : g.node()) {
    bool keep = n.op_type() == "Constant" && n.output_size() > 0 && names.count(n.output(0));
    for (const std::string& in : n.input()) keep = keep || names.count(in);
    if (keep) *s->add_node() = n;
  }
  const int64_t before = static_cast<int64_t>(scratch.ByteSizeLong());
  internal::GraphEditor editor(&scratch);
  internal::QuantizeRegionConstants(constants, editor);
  editor.Finish();
  return before - static_cast<int64_t>(scratch.ByteSizeLong());
}

}  // namespace

QuantizedRegion QuantizedRegionOf(const LoadedModel& model, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  const onnx::GraphProto& g = model.proto.graph();
  const ActivationTensors layer_tensors = ActivationTensorsOf(model);
  Grouping grouping = Group(model, layer_tensors, [&](size_t i) {
    return i < plan.size() && QuantizesActivations(flavour, plan[i].weight_bits, plan[i].activation_bits)
               ? plan[i].activation_bits
               : 0;
  });
  const std::map<std::string, int>& seed_bits = grouping.seed_bits;
  QuantizedRegion region;
  if (!QuantizesWholeGraph(flavour)) {
    region.tensors = InGraphOrder(g, [&](const std::string& t) {
      auto it = seed_bits.find(t);
      return it == seed_bits.end() ? 0 : it->second;
    });
    return region;
  }
  Regions& regions = grouping.regions;
  std::map<std::string, int> region_bits;  // root -> widest seed bits
  for (const auto& [t, bits] : seed_bits) {
    int& b = region_bits[regions.Find(t)];
    b = std::max(b, bits);
  }
  auto bits_of = [&](const std::string& t) -> int {
    if (!grouping.IsFloat(t) && !seed_bits.count(t)) return 0;
    if (grouping.float_tensors.count(t)) return 0;
    auto it = region_bits.find(regions.Find(t));
    return it == region_bits.end() ? 0 : it->second;
  };
  region.tensors = InGraphOrder(g, bits_of);
  std::set<std::string> listed;
  for (const QuantizedTensor& t : region.tensors) listed.insert(t.name);
  // The float constants the region's ops read as data.
  for (const onnx::NodeProto& n : g.node()) {
    if (!grouping.IsRegionOp(n)) continue;
    bool in_region = false;
    for (const std::string& o : n.output()) in_region = in_region || listed.count(o);
    for (int k = 0; k < n.input_size(); ++k) in_region = in_region || listed.count(n.input(k));
    if (!in_region) continue;
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k) && grouping.constants.count(n.input(k)))
        region.constants.emplace_back(n.name(), k);
    }
  }
  return region;
}

std::vector<QuantizableRegion> QuantizableRegionsOf(const LoadedModel& model, ExportFlavour flavour) {
  if (!QuantizesWholeGraph(flavour)) return {};
  const onnx::GraphProto& g = model.proto.graph();
  const ActivationTensors layer_tensors = ActivationTensorsOf(model);
  // With every layer float, regions join only through the ops between layers: a plan's regions
  // are these joined where a layer it quantizes touches several, and one of these is quantized
  // exactly when a layer it touches is.
  Grouping grouping = Group(model, layer_tensors, [](size_t) { return 0; });
  std::map<std::string, std::vector<int>> touching;  // tensor -> the layers that quantize it
  for (size_t i = 0; i < layer_tensors.input.size(); ++i) {
    if (layer_tensors.input[i].empty()) continue;
    touching[layer_tensors.input[i]].push_back(static_cast<int>(i));
    touching[layer_tensors.output[i]].push_back(static_cast<int>(i));
  }
  std::map<std::string, size_t> index;  // region root -> position in `out`
  std::vector<QuantizableRegion> out;
  std::set<std::string> stored;  // the exporter stores a constant once
  for (const onnx::NodeProto& n : g.node()) {
    if (!grouping.IsRegionOp(n)) continue;
    // Its data tensors: those it joins to its region, and any a layer quantizes (a float layer's
    // output joins no region, but quantized it joins this one).
    std::vector<std::string> tensors;
    std::string joined;
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k)) tensors.push_back(n.input(k));
    }
    tensors.insert(tensors.end(), n.output().begin(), n.output().end());
    for (const std::string& t : tensors) {
      if (joined.empty() && grouping.Joins(t)) joined = t;
    }
    if (joined.empty()) continue;
    auto [it, added] = index.emplace(grouping.regions.Find(joined), out.size());
    if (added) out.emplace_back();
    QuantizableRegion& r = out[it->second];
    for (const std::string& t : tensors) {
      if (auto layers = touching.find(t); layers != touching.end()) {
        r.layers.insert(r.layers.end(), layers->second.begin(), layers->second.end());
      }
    }
    for (int k = 0; k < n.input_size(); ++k) {
      if (IsDataInput(n.op_type(), k) && grouping.constants.count(n.input(k)) && stored.insert(n.input(k)).second) {
        r.constants.emplace_back(n.name(), k);
      }
    }
  }
  std::vector<QuantizableRegion> kept;
  for (QuantizableRegion& r : out) {
    std::sort(r.layers.begin(), r.layers.end());
    r.layers.erase(std::unique(r.layers.begin(), r.layers.end()), r.layers.end());
    if (r.layers.empty() || r.constants.empty()) continue;
    r.saved_bytes = SavedBytes(g, r.constants);
    kept.push_back(std::move(r));
  }
  return kept;
}

}  // namespace squeeze::model
