#include "model/activation_sites.h"

#include <map>
#include <set>

#include "model/batch_norm_folding.h"

namespace squeeze::model {
namespace {

int64_t Elements(const std::vector<int64_t>& shape) {
  if (shape.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return 0;
    n *= d;
  }
  return n;
}

// Ops whose result depends on the memory layout of a 4-D tensor: ONNX Runtime cannot move a
// layout transpose through them, so they read (and write) the float layout.
bool Reshaping(const std::string& op) {
  static const std::set<std::string> kOps = {
      "Reshape", "Flatten", "Squeeze", "Unsqueeze",    "Transpose",    "Gemm",   "MatMul", "Shape", "Gather", "Slice",
      "Split",   "Expand",  "Tile",    "DepthToSpace", "SpaceToDepth", "Einsum", "If",     "Loop",  "Scan"};
  return kOps.count(op) > 0;
}

// The main graph as TraceLayouts walks it: its layer nodes, who writes and who reads each value,
// its constants and its outputs.
struct LayoutGraph {
  std::map<std::string, int> layer_of;  // main-graph layer nodes by name
  std::map<std::string, const onnx::NodeProto*> producer;
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  std::set<std::string> constants, graph_outputs;
  int node_count = 0;
};
LayoutGraph IndexLayoutGraph(const LoadedModel& model) {
  const onnx::GraphProto& g = model.proto.graph();
  const Analysis& analysis = model.analysis;
  LayoutGraph graph;
  graph.node_count = g.node_size();
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (analysis.layers[i].subgraph.empty()) graph.layer_of[analysis.layers[i].name] = static_cast<int>(i);
  }
  for (const onnx::TensorProto& t : g.initializer()) graph.constants.insert(t.name());
  for (const onnx::ValueInfoProto& o : g.output()) graph.graph_outputs.insert(o.name());
  for (const onnx::NodeProto& n : g.node()) {
    for (const std::string& out : n.output()) {
      graph.producer[out] = &n;
      if (n.op_type() == "Constant") graph.constants.insert(out);
    }
    for (const std::string& in : n.input()) {
      if (!in.empty()) graph.readers[in].push_back(&n);
    }
  }
  return graph;
}

// The nodes of `graph` that read `value` (none for a value nothing reads).
const std::vector<const onnx::NodeProto*>& ReadersOf(const LayoutGraph& graph, const std::string& value) {
  static const std::vector<const onnx::NodeProto*> kNone;
  auto it = graph.readers.find(value);
  return it == graph.readers.end() ? kNone : it->second;
}

// The site's writer, and the MaxPool that writes it when that pool's input has no other use.
void TraceWriter(const LayoutGraph& graph, ActivationSite* site) {
  const auto written = graph.producer.find(site->tensor);
  if (written != graph.producer.end()) site->writer = written->second->name();
  if (written == graph.producer.end() || written->second->op_type() != "MaxPool") return;
  const onnx::NodeProto& pool = *written->second;
  const bool indices = pool.output_size() > 1 && !pool.output(1).empty();
  const std::string& input = pool.input_size() > 0 ? pool.input(0) : site->tensor;
  if (indices || ReadersOf(graph, input).size() != 1 || graph.graph_outputs.count(input) != 0) return;
  site->pool = pool.name();
  int64_t area = 1;
  for (const onnx::AttributeProto& a : pool.attribute()) {
    if (a.name() != "kernel_shape") continue;
    for (int64_t k : a.ints()) area = k > 0 ? area * k : 0;
  }
  site->pool_reads = site->elements * area;
}

// The layer whose output layout the site has: upstream through layout-neutral ops by their first
// activation input.
void TraceLayoutProducer(const LayoutGraph& graph, ActivationSite* site) {
  std::string tensor = site->tensor;
  for (size_t steps = 0; steps < static_cast<size_t>(graph.node_count); ++steps) {
    auto p = graph.producer.find(tensor);
    if (p == graph.producer.end()) break;  // a graph input
    const onnx::NodeProto& n = *p->second;
    if (auto layer = graph.layer_of.find(n.name()); layer != graph.layer_of.end()) {
      site->layout_producer = layer->second;
      break;
    }
    if (Reshaping(n.op_type())) break;
    std::string next;
    for (const std::string& in : n.input()) {
      if (!in.empty() && graph.constants.count(in) == 0) {
        next = in;
        break;
      }
    }
    if (next.empty()) break;
    tensor = next;
  }
}

// The layers reached downstream through layout-neutral ops, and whether anything reads the float
// layout (a graph output, a reshaping op) on the way.
void TraceLayoutReaders(const LayoutGraph& graph, ActivationSite* site) {
  std::set<std::string> seen = {site->tensor};
  std::vector<std::string> pending = {site->tensor};
  std::set<int> reached;
  while (!pending.empty()) {
    const std::string t = pending.back();
    pending.pop_back();
    if (graph.graph_outputs.count(t) > 0) site->float_layout_reader = true;
    for (const onnx::NodeProto* n : ReadersOf(graph, t)) {
      if (auto layer = graph.layer_of.find(n->name()); layer != graph.layer_of.end()) {
        reached.insert(layer->second);
        continue;
      }
      if (Reshaping(n->op_type())) {
        site->float_layout_reader = true;
        continue;
      }
      for (const std::string& out : n->output()) {
        if (!out.empty() && seen.insert(out).second) pending.push_back(out);
      }
    }
  }
  site->layout_readers.assign(reached.begin(), reached.end());
}

// Fills the layout fields of every site (see ActivationSite).
void TraceLayouts(const LoadedModel& model, std::vector<ActivationSite>* sites) {
  const LayoutGraph graph = IndexLayoutGraph(model);
  for (ActivationSite& site : *sites) {
    TraceWriter(graph, &site);
    TraceLayoutProducer(graph, &site);
    TraceLayoutReaders(graph, &site);
  }
}

}  // namespace

bool ActivationsQuantizable(const Analysis& analysis, size_t i) {
  const Layer& layer = analysis.layers[i];
  return layer.subgraph.empty() && layer.weight_elem_type == onnx::TensorProto::FLOAT;
}

ActivationTensors ActivationTensorsOf(const LoadedModel& model) {
  const onnx::GraphProto& g = model.proto.graph();
  std::map<std::string, const onnx::NodeProto*> by_name;
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  std::set<std::string> graph_outputs;
  for (const onnx::NodeProto& n : g.node()) {
    by_name[n.name()] = &n;
    for (const std::string& in : n.input()) readers[in].push_back(&n);
  }
  for (const onnx::ValueInfoProto& o : g.output()) graph_outputs.insert(o.name());
  const Analysis& analysis = model.analysis;
  ActivationTensors out;
  out.input.resize(analysis.layers.size());
  out.output.resize(analysis.layers.size());
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (!ActivationsQuantizable(analysis, i)) continue;
    auto it = by_name.find(analysis.layers[i].name);
    if (it == by_name.end() || it->second->input_size() == 0 || it->second->output_size() == 0) continue;
    const onnx::NodeProto& node = *it->second;
    out.input[i] = node.input(0);
    std::string output = node.output(0);
    // The exporter folds this BatchNormalization into integer weights: its output is the layer's.
    if (const onnx::NodeProto* bn = FoldableBatchNorm(g, node); bn != nullptr) output = bn->output(0);
    const auto& r = readers[output];
    if (r.size() == 1 && r[0]->op_type() == "Relu" && r[0]->output_size() == 1 && graph_outputs.count(output) == 0) {
      output = r[0]->output(0);
    }
    out.output[i] = output;
  }
  return out;
}

std::vector<ActivationSite> ActivationSites(const LoadedModel& model) {
  const Analysis& analysis = model.analysis;
  const ActivationTensors tensors = ActivationTensorsOf(model);
  std::map<std::string, size_t> index;
  std::vector<ActivationSite> sites;
  auto site = [&](const std::string& name, int64_t elements) -> ActivationSite& {
    auto [it, added] = index.emplace(name, sites.size());
    if (added) {
      sites.emplace_back();
      sites.back().tensor = name;
    }
    ActivationSite& s = sites[it->second];
    if (s.elements == 0) s.elements = elements;
    return s;
  };
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (!tensors.output[i].empty())
      site(tensors.output[i], Elements(analysis.layers[i].output_shape)).producer = static_cast<int>(i);
  }
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (!tensors.input[i].empty())
      site(tensors.input[i], Elements(analysis.layers[i].input_shape)).readers.push_back(static_cast<int>(i));
  }
  // Every other read of a site's tensor takes the dequantized float value.
  const onnx::GraphProto& g = model.proto.graph();
  std::map<std::string, int> layer_of;
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (!tensors.input[i].empty()) layer_of[analysis.layers[i].name] = static_cast<int>(i);
  }
  for (const onnx::NodeProto& n : g.node()) {
    auto layer = layer_of.find(n.name());
    for (int k = 0; k < n.input_size(); ++k) {
      auto it = index.find(n.input(k));
      if (it == index.end()) continue;
      const bool quantized_read = layer != layer_of.end() && k == 0;
      // The Relu folded into a layer's output quantization reads the layer's raw output, not a site.
      if (!quantized_read) sites[it->second].float_readers = true;
    }
  }
  for (const onnx::ValueInfoProto& o : g.output()) {
    if (auto it = index.find(o.name()); it != index.end()) sites[it->second].float_readers = true;
  }
  TraceLayouts(model, &sites);
  return sites;
}

}  // namespace squeeze::model
