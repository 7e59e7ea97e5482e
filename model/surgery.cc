#include "model/surgery.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/internal/graph.h"
#include "model/internal/graph_editor.h"
#include "model/internal/tensor_data.h"
#include "model/weight_math.h"

namespace squeeze::model {

using internal::GraphEditor;
using internal::Site;

absl::StatusOr<std::vector<WeightInput>> WeightsToInputs(onnx::ModelProto* model, const Analysis& analysis,
                                                         absl::Span<const size_t> layers) {
  GraphEditor editor(model);
  absl::StatusOr<std::vector<Site>> sites = editor.FindAll(analysis, {layers.begin(), layers.end()});
  if (!sites.ok()) return sites.status();
  std::vector<WeightInput> out(layers.size());
  for (size_t k = 0; k < layers.size(); ++k) {
    const Layer& layer = analysis.layers[layers[k]];
    const Site& site = (*sites)[k];
    WeightInput& w = out[k];
    w.layer = layers[k];
    const std::string weight = site.node->input(1);
    onnx::TensorProto* constant = internal::MutableConstant(site, weight);
    if (constant == nullptr) {
      w.status = absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight '", weight, "' is not a constant here"));
      continue;
    }
    const int32_t type = constant->data_type();
    if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::FLOAT16) {
      w.status = absl::UnimplementedError(absl::StrCat("layer '", layer.name, "': its weight is ",
                                                       internal::DataTypeName(type),
                                                       "; only fp32 and fp16 weights can be graph inputs"));
      continue;
    }
    if (absl::Status s = internal::CheckTensorData(*constant, weight); !s.ok()) {
      w.status = s;
      continue;
    }
    w.elem_type = type;
    w.dims.assign(constant->dims().begin(), constant->dims().end());
    w.values = internal::DecodeFloats(*constant);
    w.name = editor.Fresh(absl::StrCat("squeeze_weight_", layers[k]));
    site.node->set_input(1, w.name);
    *model->mutable_graph()->add_input() = internal::TensorValueInfo(w.name, w.elem_type, w.dims);
    editor.Orphan(weight);
  }
  editor.Finish();
  return out;
}

std::vector<ValueDelta> InsertValueDeltas(onnx::ModelProto* model,
                                          const std::vector<std::pair<std::string, int32_t>>& values) {
  GraphEditor editor(model);
  onnx::GraphProto* graph = model->mutable_graph();
  std::map<std::string, onnx::NodeProto*> producer;
  for (onnx::NodeProto& node : *graph->mutable_node()) {
    for (const std::string& out : node.output()) producer[out] = &node;
  }
  std::set<std::string> graph_inputs;
  for (const auto& input : graph->input()) graph_inputs.insert(input.name());
  std::vector<ValueDelta> out(values.size());
  std::map<std::string, size_t> done;
  // Graph inputs whose readers move to the Add's output, applied once every Add is placed.
  std::map<std::string, std::string> reroute;
  for (size_t k = 0; k < values.size(); ++k) {
    const auto& [value, elem_type] = values[k];
    ValueDelta& d = out[k];
    d.value = value;
    d.elem_type = elem_type;
    if (auto seen = done.find(value); seen != done.end()) {
      d = out[seen->second];
      continue;
    }
    done[value] = k;
    auto p = producer.find(value);
    if (p == producer.end() && !graph_inputs.count(value)) {
      d.status = absl::FailedPreconditionError(
          absl::StrCat("no node of the main graph computes '", value, "' and it is not a graph input"));
      continue;
    }
    d.name = editor.Fresh(absl::StrCat("squeeze_delta_", k));
    const std::string add = editor.Fresh(absl::StrCat("squeeze_add_", k));
    if (p != producer.end()) {
      const std::string unperturbed = editor.Fresh(absl::StrCat("squeeze_unperturbed_", k));
      for (int j = 0; j < p->second->output_size(); ++j) {
        if (p->second->output(j) == value) p->second->set_output(j, unperturbed);
      }
      editor.InsertAfter(graph, p->second, internal::MakeNode("Add", add, {unperturbed, d.name}, {value}));
    } else {
      const std::string perturbed = editor.Fresh(absl::StrCat("squeeze_perturbed_", k));
      reroute[value] = perturbed;
      editor.InsertAtFront(graph, internal::MakeNode("Add", add, {value, d.name}, {perturbed}));
    }
    onnx::ValueInfoProto input = internal::TensorValueInfo(d.name, elem_type, {});
    input.mutable_type()->mutable_tensor_type()->clear_shape();
    *graph->add_input() = std::move(input);
  }
  for (onnx::NodeProto& node : *graph->mutable_node()) {
    for (int j = 0; j < node.input_size(); ++j) {
      if (auto r = reroute.find(node.input(j)); r != reroute.end()) node.set_input(j, r->second);
    }
  }
  editor.Finish();
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
  GraphEditor editor(model);
  absl::StatusOr<std::vector<Site>> sites = editor.FindAll(analysis, {layers.begin(), layers.end()});
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
  for (size_t k = 0; k < layers.size(); ++k) {
    const Layer& layer = analysis.layers[layers[k]];
    const Site& site = (*sites)[k];
    const std::string weight = site.node->input(1);
    onnx::TensorProto* constant = internal::MutableConstant(site, weight);
    if (constant == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight '", weight, "' is not a constant here"));
    }
    const int32_t elem_type =
        constant->data_type() == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT;
    if (reads[weight] <= 1) {
      internal::WriteFloats(constant, elem_type, values.at(layers[k]));
      continue;
    }
    onnx::TensorProto* copy = site.graph()->add_initializer();
    copy->set_name(editor.Fresh(absl::StrCat(weight, "_", layers[k])));
    for (int64_t d : constant->dims()) copy->add_dims(d);
    internal::WriteFloats(copy, elem_type, values.at(layers[k]));
    if (model->ir_version() < 4 && site.graph() == model->mutable_graph()) {
      std::vector<int64_t> dims(copy->dims().begin(), copy->dims().end());
      *model->mutable_graph()->add_input() = internal::TensorValueInfo(copy->name(), elem_type, dims);
    }
    --reads[weight];
    site.node->set_input(1, copy->name());
    editor.Orphan(weight);
  }
  editor.Finish();
  return absl::OkStatus();
}

namespace {

// 8-bit fake quantization of `x` in the ops opsets below 10 have: floor(x / s + zp + 1/2) clamped
// to [0, 255], minus zp, times s (ties round up here, to even in QuantizeLinear). Adds the nodes
// through `add`; returns the output, named `out`.
std::string FakeQuantBeforeOpset10(GraphEditor& editor, const std::string& prefix, const std::string& x,
                                   const ActivationFakeQuant& q, const std::string& out,
                                   const std::function<void(onnx::NodeProto)>& add) {
  auto constant = [&](const char* what, float value) {
    onnx::TensorProto t;
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_float_data(value);
    const std::string name = editor.Fresh(prefix + what);
    add(internal::ConstantNode(name + "_const", name, std::move(t)));
    return name;
  };
  const std::pair<const char*, std::string> steps[] = {{"Div", constant("scale", q.scale)},
                                                       {"Add", constant("shift", q.zero_point + 0.5f)},
                                                       {"Floor", ""},
                                                       {"Max", constant("low", 0.f)},
                                                       {"Min", constant("high", 255.f)},
                                                       {"Sub", constant("zero", q.zero_point)},
                                                       {"Mul", constant("scale_back", q.scale)}};
  std::string value = x;
  for (size_t s = 0; s < std::size(steps); ++s) {
    const auto& [op, operand] = steps[s];
    std::vector<std::string> inputs = {value};
    if (!operand.empty()) inputs.push_back(operand);
    value = s + 1 == std::size(steps) ? out : editor.Fresh(prefix + "step");
    add(internal::MakeNode(op, editor.Fresh(prefix + "fq_op"), std::move(inputs), {value}));
  }
  return out;
}

absl::Status CheckFakeQuant(const onnx::ModelProto& model, size_t layer, const ActivationFakeQuant& q) {
  if (q.bits != 8 && q.bits != 16 && q.bits != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation bits ", q.bits, " for layer ", layer, ": fake quantization takes 8, 16 or 32"));
  }
  if (q.bits == 8 && !(q.scale > 0 && std::isfinite(q.scale))) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, ": scale ", q.scale, " is not positive and finite"));
  }
  if (q.bits == 8 && internal::OpsetOf(model) < 8) {
    return absl::FailedPreconditionError(absl::StrCat("the model's ai.onnx opset ", internal::OpsetOf(model),
                                                      " has neither QuantizeLinear nor broadcasting Min/Max"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InsertActivationFakeQuant(onnx::ModelProto* model, const Analysis& analysis,
                                       const std::map<size_t, ActivationFakeQuant>& layers) {
  std::vector<size_t> indices;
  for (const auto& [i, q] : layers) {
    if (absl::Status s = CheckFakeQuant(*model, i, q); !s.ok()) return s;
    indices.push_back(i);
  }
  GraphEditor editor(model);
  absl::StatusOr<std::vector<Site>> sites = editor.FindAll(analysis, indices);
  if (!sites.ok()) return sites.status();
  const bool has_qdq = internal::OpsetOf(*model) >= 10;
  for (size_t k = 0; k < indices.size(); ++k) {
    const ActivationFakeQuant& q = layers.at(indices[k]);
    const int32_t elem_type = analysis.layers[indices[k]].weight_elem_type;
    if (q.bits == 32 || (q.bits == 16 && elem_type == onnx::TensorProto::FLOAT16)) continue;
    const Site& site = (*sites)[k];
    const std::string prefix = absl::StrCat("squeeze_fq", indices[k], "_");
    auto fresh = [&](const char* what) { return editor.Fresh(prefix + what); };
    auto add = [&](onnx::NodeProto node) { editor.InsertBefore(site.graph(), site.node, std::move(node)); };
    std::string x = site.node->input(0);
    if (q.bits == 16) {
      const std::string half = fresh("half");
      const std::string out = fresh("out");
      add(internal::CastNode(fresh("cast_half"), x, half, onnx::TensorProto::FLOAT16));
      add(internal::CastNode(fresh("cast_back"), half, out, elem_type));
      site.node->set_input(0, out);
      continue;
    }
    if (elem_type != onnx::TensorProto::FLOAT) {
      const std::string as_float = fresh("float");
      add(internal::CastNode(fresh("cast_float"), x, as_float, onnx::TensorProto::FLOAT));
      x = as_float;
    }
    std::string out;
    if (has_qdq) {
      // The pair the exported file holds, its parameters as Constant nodes beside it.
      for (onnx::NodeProto& node : internal::QdqNodes(editor, site.graph(), x, prefix + "qdq",
                                                      {ActivationScheme::kAsymmetricUint8, q.scale, q.zero_point},
                                                      internal::QdqParams::kConstantNodes, &out)) {
        add(std::move(node));
      }
    } else {
      out = FakeQuantBeforeOpset10(editor, prefix, x, q, fresh("dq"), add);
    }
    if (elem_type != onnx::TensorProto::FLOAT) {
      const std::string back = fresh("out");
      add(internal::CastNode(fresh("cast_back"), out, back, elem_type));
      out = back;
    }
    site.node->set_input(0, out);
  }
  editor.Finish();
  return absl::OkStatus();
}

}  // namespace squeeze::model
