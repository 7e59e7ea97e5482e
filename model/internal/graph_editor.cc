#include "model/internal/graph_editor.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "model/export_flavour.h"
#include "model/internal/graph.h"

namespace squeeze::model::internal {

GraphEditor::GraphEditor(onnx::ModelProto* model) : model_(model) {
  ForEachGraph(*model->mutable_graph(), "", "",
               [this](onnx::GraphProto& graph, const std::string& path, const std::string& parent) {
                 graphs_[path] = {&graph, parent};
                 for (int i = 0; i < graph.node_size(); ++i) {
                   onnx::NodeProto* node = graph.mutable_node(i);
                   nodes_[QualifiedNodeName(path, node->name())] = {node, path};
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

absl::StatusOr<Site> GraphEditor::Find(const Layer& layer) const {
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
  return site;
}

absl::StatusOr<std::vector<Site>> GraphEditor::FindAll(const Analysis& analysis,
                                                       const std::vector<size_t>& layers) const {
  std::vector<Site> sites;
  for (size_t i : layers) {
    if (i >= analysis.layers.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer index ", i, " is past the model's ", analysis.layers.size(), " layers"));
    }
    absl::StatusOr<Site> site = Find(analysis.layers[i]);
    if (!site.ok()) return site.status();
    sites.push_back(*std::move(site));
  }
  return sites;
}

std::string GraphEditor::Fresh(const std::string& base) {
  std::string name = base;
  for (int n = 1; names_.count(name); ++n) name = absl::StrCat(base, "_", n);
  names_.insert(name);
  return name;
}

std::string GraphEditor::AddInitializer(onnx::GraphProto* graph, onnx::TensorProto tensor) {
  std::string name = tensor.name();
  *graph->add_initializer() = std::move(tensor);
  return name;
}

void GraphEditor::InsertBefore(onnx::GraphProto* graph, const onnx::NodeProto* node, onnx::NodeProto inserted) {
  before_[graph][node].push_back(std::move(inserted));
}

void GraphEditor::InsertAfter(onnx::GraphProto* graph, const onnx::NodeProto* node, onnx::NodeProto inserted) {
  after_[graph][node].push_back(std::move(inserted));
}

void GraphEditor::InsertAtFront(onnx::GraphProto* graph, onnx::NodeProto inserted) {
  front_[graph].push_back(std::move(inserted));
}

void GraphEditor::Finish() {
  // Rebuilding a graph swaps its nodes into new slots; the subgraphs they hold, and so pointers
  // into them, stay where they are.
  std::set<onnx::GraphProto*> graphs;
  for (const auto& [g, m] : before_) graphs.insert(g);
  for (const auto& [g, m] : after_) graphs.insert(g);
  for (const auto& [g, v] : front_) graphs.insert(g);
  for (onnx::GraphProto* g : graphs) {
    google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
    for (onnx::NodeProto& n : front_[g]) nodes.Add()->Swap(&n);
    for (onnx::NodeProto& node : *g->mutable_node()) {
      if (auto b = before_[g].find(&node); b != before_[g].end()) {
        for (onnx::NodeProto& n : b->second) nodes.Add()->Swap(&n);
      }
      std::vector<onnx::NodeProto> after;
      if (auto a = after_[g].find(&node); a != after_[g].end()) after.swap(a->second);
      nodes.Add()->Swap(&node);
      for (onnx::NodeProto& n : after) nodes.Add()->Swap(&n);
    }
    g->mutable_node()->Swap(&nodes);
  }
  before_.clear();
  after_.clear();
  front_.clear();
  nodes_.clear();  // the nodes moved: a finished editor finds no more layers
  RemoveUnreadConstants(model_, orphaned_);
  orphaned_.clear();
}

int64_t OpsetOf(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import()) {
    if (NormalizedDomain(opset.domain()).empty()) return opset.version();
  }
  return 0;
}

void ImportDomainsUsed(onnx::ModelProto* model) {
  std::set<std::string> imported, used;
  for (const auto& opset : model->opset_import()) imported.insert(NormalizedDomain(opset.domain()));
  ForEachGraph(model->graph(), "", "", [&](const onnx::GraphProto& g, const std::string&, const std::string&) {
    for (const onnx::NodeProto& n : g.node()) used.insert(NormalizedDomain(n.domain()));
  });
  for (const std::string& domain : used) {
    if (imported.count(domain)) continue;
    onnx::OperatorSetIdProto* opset = model->add_opset_import();
    opset->set_domain(domain);
    opset->set_version(1);
  }
}

onnx::NodeProto MakeNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                         std::vector<std::string> outputs) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  for (std::string& i : inputs) node.add_input(std::move(i));
  for (std::string& o : outputs) node.add_output(std::move(o));
  return node;
}

void SetIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
  for (onnx::AttributeProto& a : *node->mutable_attribute()) {
    if (a.name() == name) {
      a.set_i(value);
      return;
    }
  }
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

onnx::NodeProto CastNode(const std::string& name, const std::string& input, const std::string& output, int32_t to) {
  onnx::NodeProto node = MakeNode("Cast", name, {input}, {output});
  SetIntAttribute(&node, "to", to);
  return node;
}

onnx::NodeProto ConstantNode(const std::string& name, const std::string& output, onnx::TensorProto value) {
  onnx::NodeProto node = MakeNode("Constant", name, {}, {output});
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = std::move(value);
  return node;
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

void WriteFloats(onnx::TensorProto* tensor, int32_t elem_type, const std::vector<float>& values) {
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

onnx::TensorProto FloatTensorOf(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                                const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  for (int64_t d : dims) t.add_dims(d);
  WriteFloats(&t, elem_type == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT,
              values);
  return t;
}

onnx::TensorProto* MutableConstant(const Site& site, const std::string& name) {
  for (onnx::GraphProto* graph : site.scopes) {
    for (onnx::TensorProto& t : *graph->mutable_initializer()) {
      if (t.name() == name) return &t;
    }
    for (onnx::NodeProto& node : *graph->mutable_node()) {
      for (const std::string& output : node.output()) {
        if (output != name) continue;
        if (ConstantNodeValue(node) == nullptr || node.output_size() != 1) return nullptr;
        for (onnx::AttributeProto& attr : *node.mutable_attribute()) {
          if (attr.name() == "value" && attr.has_t()) return attr.mutable_t();
        }
      }
    }
    for (const auto& input : graph->input()) {
      if (input.name() == name) return nullptr;
    }
  }
  return nullptr;
}

std::vector<onnx::NodeProto> QdqNodes(GraphEditor& editor, onnx::GraphProto* graph, const std::string& input,
                                      const std::string& base, const ActivationQuantizer& q, QdqParams params,
                                      std::string* dequantized) {
  std::vector<onnx::NodeProto> nodes;
  auto add_param = [&](onnx::TensorProto t) {
    if (params == QdqParams::kInitializers) return editor.AddInitializer(graph, std::move(t));
    const std::string name = t.name();
    t.clear_name();
    nodes.push_back(ConstantNode(editor.Fresh(name + "_const"), name, std::move(t)));
    return name;
  };
  const std::string scale =
      add_param(RawTensorOf(editor.Fresh(base + "_scale"), onnx::TensorProto::FLOAT, {}, std::vector<float>{q.scale}));
  std::string zero_point;
  switch (q.scheme) {
    case ActivationScheme::kSymmetricInt8:
      zero_point = add_param(
          RawTensorOf(editor.Fresh(base + "_zero_point"), onnx::TensorProto::INT8, {}, std::vector<int8_t>{0}));
      break;
    case ActivationScheme::kAsymmetricUint16:
      zero_point = add_param(RawTensorOf(editor.Fresh(base + "_zero_point"), onnx::TensorProto::UINT16, {},
                                         std::vector<uint16_t>{static_cast<uint16_t>(q.zero_point)}));
      break;
    case ActivationScheme::kAsymmetricUint8:
      zero_point = add_param(RawTensorOf(editor.Fresh(base + "_zero_point"), onnx::TensorProto::UINT8, {},
                                         std::vector<uint8_t>{static_cast<uint8_t>(q.zero_point)}));
      break;
  }
  const std::string quantized = editor.Fresh(base + "_q");
  *dequantized = editor.Fresh(base + "_dq");
  nodes.push_back(
      MakeNode("QuantizeLinear", editor.Fresh(base + "_quantize"), {input, scale, zero_point}, {quantized}));
  nodes.push_back(
      MakeNode("DequantizeLinear", editor.Fresh(base + "_dequantize"), {quantized, scale, zero_point}, {*dequantized}));
  // uint16 Q/DQ are ONNX's from opset 21 only; below that ONNX Runtime's own (com.microsoft) take them.
  if (q.scheme == ActivationScheme::kAsymmetricUint16) {
    for (size_t k = nodes.size() - 2; k < nodes.size(); ++k) nodes[k].set_domain(std::string(kMicrosoftDomain));
  }
  return nodes;
}

}  // namespace squeeze::model::internal
