#include "model/surgery.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"
#include "model/weight_math.h"

namespace squeeze::model {
namespace {

using Nodes = google::protobuf::RepeatedPtrField<onnx::NodeProto>;

// Where a layer's node sits: its graph and the graphs enclosing it.
struct Site {
  onnx::NodeProto* node = nullptr;
  onnx::GraphProto* graph = nullptr;
  std::vector<onnx::GraphProto*> scopes;  // the node's graph first, the main graph last
};

// A constant tensor found by name from a site, mutable.
struct Constant {
  onnx::TensorProto* tensor = nullptr;
  onnx::GraphProto* graph = nullptr;
};

// The model's graphs and nodes by path and qualified name, and every name in use, for finding
// layers and making fresh names. Pointers into the model stay valid while nodes are only edited
// in place; node insertion happens last (Insertions).
class ModelIndex {
 public:
  explicit ModelIndex(onnx::ModelProto* model) {
    internal::ForEachGraph(*model->mutable_graph(), "", "",
                           [this](onnx::GraphProto& graph, const std::string& path, const std::string& parent) {
                             graphs_[path] = {&graph, parent};
                             for (int i = 0; i < graph.node_size(); ++i) {
                               onnx::NodeProto* node = graph.mutable_node(i);
                               nodes_[internal::QualifiedNodeName(path, node->name())] = {node, path};
                               names_.insert(node->name());
                               names_.insert(node->input().begin(), node->input().end());
                               names_.insert(node->output().begin(), node->output().end());
                             }
                             for (const onnx::TensorProto& t : graph.initializer()) names_.insert(t.name());
                             for (const auto& v : graph.input()) names_.insert(v.name());
                             for (const auto& v : graph.output()) names_.insert(v.name());
                             for (const auto& v : graph.value_info()) names_.insert(v.name());
                           });
  }

  absl::StatusOr<Site> Find(const Layer& layer) const {
    auto it = nodes_.find(layer.name);
    if (it == nodes_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the model holds no node '", layer.name, "' (", layer.op_type, "): not the analysed model"));
    }
    Site site;
    site.node = it->second.first;
    for (std::string path = it->second.second;;) {
      const auto& [graph, parent] = graphs_.at(path);
      site.scopes.push_back(graph);
      if (path.empty()) break;
      path = parent;
    }
    site.graph = site.scopes.front();
    return site;
  }

  // `base`, or `base_<n>` when that is taken; taken from then on.
  std::string FreshName(const std::string& base) {
    std::string name = base;
    for (int n = 1; names_.count(name); ++n) name = absl::StrCat(base, "_", n);
    names_.insert(name);
    return name;
  }

 private:
  std::map<std::string, std::pair<onnx::GraphProto*, std::string>> graphs_;  // path -> graph, parent path
  std::map<std::string, std::pair<onnx::NodeProto*, std::string>> nodes_;    // qualified name -> node, path
  std::set<std::string> names_;
};

// The constant `name` as the site's node sees it: an initializer or Constant node of its graph or
// an enclosing one, unless a graph in between computes or takes the name as an input.
Constant FindConstant(const Site& site, const std::string& name) {
  for (onnx::GraphProto* graph : site.scopes) {
    for (onnx::TensorProto& t : *graph->mutable_initializer()) {
      if (t.name() == name) return {&t, graph};
    }
    for (onnx::NodeProto& node : *graph->mutable_node()) {
      for (const std::string& output : node.output()) {
        if (output != name) continue;
        if (internal::ConstantNodeValue(node) == nullptr || node.output_size() != 1) return {};
        for (onnx::AttributeProto& attr : *node.mutable_attribute()) {
          if (attr.name() == "value" && attr.has_t()) return {attr.mutable_t(), graph};
        }
      }
    }
    for (const auto& input : graph->input()) {
      if (input.name() == name) return {};
    }
  }
  return {};
}

onnx::ValueInfoProto TensorValueInfo(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* type = v.mutable_type()->mutable_tensor_type();
  type->set_elem_type(elem_type);
  auto* shape = type->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  return v;
}

// Sets `tensor`'s data to `values`, stored as fp16 (FLOAT16) or fp32, in raw_data.
void WriteTensor(onnx::TensorProto* tensor, int32_t elem_type, const std::vector<float>& values) {
  tensor->clear_float_data();
  tensor->clear_int32_data();
  tensor->clear_double_data();
  tensor->clear_int64_data();
  tensor->clear_uint64_data();
  tensor->set_data_type(elem_type);
  std::string raw;
  if (elem_type == onnx::TensorProto::FLOAT16) {
    raw.resize(values.size() * sizeof(uint16_t));
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t bits = FloatToHalfBits(values[i]);
      std::memcpy(&raw[i * sizeof(uint16_t)], &bits, sizeof(bits));
    }
  } else {
    raw.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  tensor->set_raw_data(std::move(raw));
}

// Nodes to insert before given nodes, per graph, applied last. Rebuilding a graph swaps its nodes
// into new slots; the subgraphs they hold, and so pointers into them, stay where they are.
class Insertions {
 public:
  void Before(onnx::GraphProto* graph, const onnx::NodeProto* node, onnx::NodeProto inserted) {
    pending_[graph][node].push_back(std::move(inserted));
  }

  void Apply() {
    for (auto& [graph, before] : pending_) {
      Nodes nodes;
      for (onnx::NodeProto& node : *graph->mutable_node()) {
        auto it = before.find(&node);
        if (it != before.end()) {
          for (onnx::NodeProto& n : it->second) nodes.Add()->Swap(&n);
        }
        nodes.Add()->Swap(&node);
      }
      graph->mutable_node()->Swap(&nodes);
    }
    pending_.clear();
  }

 private:
  std::map<onnx::GraphProto*, std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>>> pending_;
};

onnx::NodeProto MakeNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                         const std::string& output) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  for (std::string& input : inputs) node.add_input(std::move(input));
  node.add_output(output);
  return node;
}

onnx::NodeProto CastNode(const std::string& name, const std::string& input, const std::string& output, int32_t to) {
  onnx::NodeProto node = MakeNode("Cast", name, {input}, output);
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name("to");
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(to);
  return node;
}

onnx::NodeProto ConstantNode(const std::string& name, const std::string& output, onnx::TensorProto value) {
  onnx::NodeProto node = MakeNode("Constant", name, {}, output);
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = std::move(value);
  return node;
}

// The sites of `layers`, found before any change. InvalidArgument for a bad index.
absl::StatusOr<std::vector<Site>> FindSites(const ModelIndex& index, const Analysis& analysis,
                                            absl::Span<const size_t> layers) {
  std::vector<Site> sites;
  for (size_t i : layers) {
    if (i >= analysis.layers.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer index ", i, " is past the model's ", analysis.layers.size(), " layers"));
    }
    absl::StatusOr<Site> site = index.Find(analysis.layers[i]);
    if (!site.ok()) return site.status();
    sites.push_back(*site);
  }
  return sites;
}

int64_t OpsetOf(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import()) {
    if (internal::NormalizedDomain(opset.domain()).empty()) return opset.version();
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::vector<WeightInput>> WeightsToInputs(onnx::ModelProto* model, const Analysis& analysis,
                                                         absl::Span<const size_t> layers) {
  ModelIndex index(model);
  absl::StatusOr<std::vector<Site>> sites = FindSites(index, analysis, layers);
  if (!sites.ok()) return sites.status();
  std::vector<WeightInput> out(layers.size());
  std::set<std::string> orphaned;
  for (size_t k = 0; k < layers.size(); ++k) {
    const Layer& layer = analysis.layers[layers[k]];
    const Site& site = (*sites)[k];
    WeightInput& w = out[k];
    w.layer = layers[k];
    const std::string weight = site.node->input(1);
    const Constant constant = FindConstant(site, weight);
    if (constant.tensor == nullptr) {
      w.status = absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight '", weight, "' is not a constant here"));
      continue;
    }
    const int32_t type = constant.tensor->data_type();
    if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::FLOAT16) {
      w.status = absl::UnimplementedError(absl::StrCat("layer '", layer.name, "': its weight is ",
                                                       internal::DataTypeName(type),
                                                       "; only fp32 and fp16 weights can be graph inputs"));
      continue;
    }
    if (absl::Status s = internal::CheckTensorData(*constant.tensor, weight); !s.ok()) {
      w.status = s;
      continue;
    }
    w.elem_type = type;
    w.dims.assign(constant.tensor->dims().begin(), constant.tensor->dims().end());
    w.values = internal::DecodeFloats(*constant.tensor);
    w.name = index.FreshName(absl::StrCat("squeeze_weight_", layers[k]));
    site.node->set_input(1, w.name);
    *model->mutable_graph()->add_input() = TensorValueInfo(w.name, w.elem_type, w.dims);
    orphaned.insert(weight);
  }
  internal::RemoveUnreadConstants(model, orphaned);
  return out;
}

absl::StatusOr<std::vector<ActivationDelta>> InsertActivationDeltas(onnx::ModelProto* model, const Analysis& analysis,
                                                                    absl::Span<const size_t> layers) {
  ModelIndex index(model);
  absl::StatusOr<std::vector<Site>> sites = FindSites(index, analysis, layers);
  if (!sites.ok()) return sites.status();
  std::vector<ActivationDelta> out(layers.size());
  Insertions insertions;
  for (size_t k = 0; k < layers.size(); ++k) {
    const Layer& layer = analysis.layers[layers[k]];
    const Site& site = (*sites)[k];
    ActivationDelta& d = out[k];
    d.layer = layers[k];
    if (!layer.subgraph.empty()) {
      d.status = absl::UnimplementedError(absl::StrCat("layer '", layer.name, "' sits in subgraph '", layer.subgraph,
                                                       "': its activation cannot be perturbed from outside"));
      continue;
    }
    d.activation = site.node->input(0);
    d.elem_type = layer.weight_elem_type;
    d.dims = layer.input_shape;
    d.name = index.FreshName(absl::StrCat("squeeze_delta_", layers[k]));
    const std::string perturbed = index.FreshName(absl::StrCat("squeeze_perturbed_", layers[k]));
    insertions.Before(
        site.graph, site.node,
        MakeNode("Add", index.FreshName(absl::StrCat("squeeze_add_", layers[k])), {d.activation, d.name}, perturbed));
    site.node->set_input(0, perturbed);
    onnx::ValueInfoProto input = TensorValueInfo(d.name, d.elem_type, {});
    if (d.dims.empty()) input.mutable_type()->mutable_tensor_type()->clear_shape();  // unknown: any shape
    auto* shape = d.dims.empty() ? nullptr : input.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (size_t j = 0; j < d.dims.size(); ++j) {
      if (d.dims[j] == 1) {
        shape->add_dim()->set_dim_value(1);
      } else {
        shape->add_dim()->set_dim_param(absl::StrCat(d.name, "_", j));
      }
    }
    *model->mutable_graph()->add_input() = std::move(input);
  }
  insertions.Apply();
  return out;
}

absl::Status ExposeValues(onnx::ModelProto* model, const std::vector<std::string>& names) {
  onnx::GraphProto* graph = model->mutable_graph();
  std::set<std::string> computed, outputs;
  for (const onnx::NodeProto& node : graph->node()) computed.insert(node.output().begin(), node.output().end());
  for (const auto& output : graph->output()) outputs.insert(output.name());
  std::map<std::string, int32_t> types;
  for (const auto& v : graph->value_info()) {
    if (v.type().has_tensor_type()) types[v.name()] = v.type().tensor_type().elem_type();
  }
  for (const std::string& name : names) {
    if (!computed.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("no node of the main graph computes '", name, "'"));
    }
  }
  for (const std::string& name : names) {
    if (!outputs.insert(name).second) continue;
    onnx::ValueInfoProto* output = graph->add_output();
    output->set_name(name);
    if (auto t = types.find(name); t != types.end() && t->second != 0) {
      output->mutable_type()->mutable_tensor_type()->set_elem_type(t->second);
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> FidelityOutputs(const onnx::ModelProto& model) {
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const onnx::NodeProto& node : model.graph().node()) {
    for (const std::string& out : node.output()) producer[out] = &node;
  }
  std::vector<std::string> names;
  for (const auto& output : model.graph().output()) {
    auto it = producer.find(output.name());
    const onnx::NodeProto* node = it == producer.end() ? nullptr : it->second;
    const bool softmax = node != nullptr && (node->op_type() == "Softmax" || node->op_type() == "LogSoftmax") &&
                         (node->domain().empty() || node->domain() == "ai.onnx") && node->input_size() == 1 &&
                         producer.count(node->input(0)) > 0;
    names.push_back(softmax ? node->input(0) : output.name());
  }
  return names;
}

absl::Status ReplaceWeights(onnx::ModelProto* model, const Analysis& analysis,
                            const std::map<size_t, std::vector<float>>& values) {
  std::vector<size_t> layers;
  for (const auto& [i, v] : values) {
    if (i < analysis.layers.size() && static_cast<int64_t>(v.size()) != analysis.layers[i].params) {
      return absl::InvalidArgumentError(absl::StrCat("layer '", analysis.layers[i].name, "' has ",
                                                     analysis.layers[i].params, " weights, ", v.size(), " given"));
    }
    layers.push_back(i);
  }
  ModelIndex index(model);
  absl::StatusOr<std::vector<Site>> sites = FindSites(index, analysis, layers);
  if (!sites.ok()) return sites.status();
  // How many node inputs and graph outputs read each name: a weight read once is rewritten in
  // place, a shared one copied for the layer.
  std::map<std::string, int> reads;
  internal::ForEachGraph(model->graph(), "", "",
                         [&reads](const onnx::GraphProto& graph, const std::string&, const std::string&) {
                           for (const onnx::NodeProto& node : graph.node()) {
                             for (const std::string& input : node.input()) ++reads[input];
                           }
                           for (const auto& output : graph.output()) ++reads[output.name()];
                         });
  std::set<std::string> orphaned;
  for (size_t k = 0; k < layers.size(); ++k) {
    const Layer& layer = analysis.layers[layers[k]];
    const Site& site = (*sites)[k];
    const std::string weight = site.node->input(1);
    const Constant constant = FindConstant(site, weight);
    if (constant.tensor == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight '", weight, "' is not a constant here"));
    }
    const int32_t elem_type = constant.tensor->data_type() == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16
                                                                                         : onnx::TensorProto::FLOAT;
    if (reads[weight] <= 1) {
      WriteTensor(constant.tensor, elem_type, values.at(layers[k]));
      continue;
    }
    onnx::TensorProto* copy = site.graph->add_initializer();
    copy->set_name(index.FreshName(absl::StrCat(weight, "_", layers[k])));
    for (int64_t d : constant.tensor->dims()) copy->add_dims(d);
    WriteTensor(copy, elem_type, values.at(layers[k]));
    if (model->ir_version() < 4 && site.graph == model->mutable_graph()) {
      std::vector<int64_t> dims(copy->dims().begin(), copy->dims().end());
      *model->mutable_graph()->add_input() = TensorValueInfo(copy->name(), elem_type, dims);
    }
    --reads[weight];
    site.node->set_input(1, copy->name());
    orphaned.insert(weight);
  }
  internal::RemoveUnreadConstants(model, orphaned);
  return absl::OkStatus();
}

absl::Status InsertActivationFakeQuant(onnx::ModelProto* model, const Analysis& analysis,
                                       const std::map<size_t, ActivationFakeQuant>& layers) {
  std::vector<size_t> indices;
  for (const auto& [i, q] : layers) {
    if (q.bits != 8 && q.bits != 16 && q.bits != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("activation bits ", q.bits, " for layer ", i, ": fake quantization takes 8, 16 or 32"));
    }
    if (q.bits == 8 && !(q.scale > 0 && std::isfinite(q.scale))) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", i, ": scale ", q.scale, " is not positive and finite"));
    }
    if (q.bits == 8 && OpsetOf(*model) < 8) {
      return absl::FailedPreconditionError(absl::StrCat("the model's ai.onnx opset ", OpsetOf(*model),
                                                        " has neither QuantizeLinear nor broadcasting Min/Max"));
    }
    indices.push_back(i);
  }
  ModelIndex index(model);
  absl::StatusOr<std::vector<Site>> sites = FindSites(index, analysis, indices);
  if (!sites.ok()) return sites.status();
  Insertions insertions;
  for (size_t k = 0; k < indices.size(); ++k) {
    const ActivationFakeQuant& q = layers.at(indices[k]);
    const int32_t elem_type = analysis.layers[indices[k]].weight_elem_type;
    if (q.bits == 32 || (q.bits == 16 && elem_type == onnx::TensorProto::FLOAT16)) continue;
    const Site& site = (*sites)[k];
    const std::string prefix = absl::StrCat("squeeze_fq", indices[k], "_");
    auto fresh = [&](const char* what) { return index.FreshName(prefix + what); };
    auto add = [&](onnx::NodeProto node) { insertions.Before(site.graph, site.node, std::move(node)); };
    std::string x = site.node->input(0);
    if (q.bits == 16) {
      const std::string half = fresh("half");
      const std::string out = fresh("out");
      add(CastNode(fresh("cast_half"), x, half, onnx::TensorProto::FLOAT16));
      add(CastNode(fresh("cast_back"), half, out, elem_type));
      site.node->set_input(0, out);
      continue;
    }
    if (elem_type != onnx::TensorProto::FLOAT) {
      const std::string as_float = fresh("float");
      add(CastNode(fresh("cast_float"), x, as_float, onnx::TensorProto::FLOAT));
      x = as_float;
    }
    auto constant = [&](const char* what, int32_t type, float value) {
      onnx::TensorProto t;
      t.set_data_type(type);
      if (type == onnx::TensorProto::FLOAT) {
        t.add_float_data(value);
      } else {
        t.add_int32_data(static_cast<int32_t>(value));
      }
      const std::string name = fresh(what);
      add(ConstantNode(name + "_const", name, std::move(t)));
      return name;
    };
    std::string dequantized = fresh("dq");
    if (OpsetOf(*model) >= 10) {
      const std::string scale = constant("scale", onnx::TensorProto::FLOAT, q.scale);
      const std::string zero = constant("zero_point", onnx::TensorProto::UINT8, q.zero_point);
      const std::string quantized = fresh("q");
      add(MakeNode("QuantizeLinear", fresh("quantize"), {x, scale, zero}, quantized));
      add(MakeNode("DequantizeLinear", fresh("dequantize"), {quantized, scale, zero}, dequantized));
    } else {
      // The same arithmetic in ops older opsets have: floor(x / s + zp + 1/2) clamped to
      // [0, 255], minus zp, times s (ties round up here, to even in QuantizeLinear).
      const std::pair<const char*, std::string> steps[] = {
          {"Div", constant("scale", onnx::TensorProto::FLOAT, q.scale)},
          {"Add", constant("shift", onnx::TensorProto::FLOAT, q.zero_point + 0.5f)},
          {"Floor", ""},
          {"Max", constant("low", onnx::TensorProto::FLOAT, 0.f)},
          {"Min", constant("high", onnx::TensorProto::FLOAT, 255.f)},
          {"Sub", constant("zero", onnx::TensorProto::FLOAT, q.zero_point)},
          {"Mul", constant("scale_back", onnx::TensorProto::FLOAT, q.scale)}};
      std::string value = x;
      for (size_t s = 0; s < std::size(steps); ++s) {
        const auto& [op, operand] = steps[s];
        std::vector<std::string> inputs = {value};
        if (!operand.empty()) inputs.push_back(operand);
        value = s + 1 == std::size(steps) ? dequantized : fresh("step");
        add(MakeNode(op, fresh("fq_op"), std::move(inputs), value));
      }
    }
    std::string out = dequantized;
    if (elem_type != onnx::TensorProto::FLOAT) {
      out = fresh("out");
      add(CastNode(fresh("cast_back"), dequantized, out, elem_type));
    }
    site.node->set_input(0, out);
  }
  insertions.Apply();
  return absl::OkStatus();
}

}  // namespace squeeze::model
