#include "model/batch_norm_folding.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/internal/graph.h"
#include "model/internal/graph_editor.h"
#include "model/internal/tensor_data.h"
#include "model/weight_math.h"

namespace squeeze::model {

const onnx::TensorProto* GraphConstant(const onnx::GraphProto& graph, const std::string& name) {
  for (const onnx::TensorProto& t : graph.initializer()) {
    if (t.name() == name) return &t;
  }
  for (const onnx::NodeProto& n : graph.node()) {
    if (n.op_type() == "Constant" && n.output_size() == 1 && n.output(0) == name) return internal::ConstantNodeValue(n);
  }
  return nullptr;
}

namespace {

bool ChannelVector(const onnx::TensorProto* t, int64_t channels) {
  return t != nullptr && internal::IsDecodableFloat(t->data_type()) && t->dims_size() == 1 && t->dims(0) == channels;
}

}  // namespace

const onnx::NodeProto* FoldableBatchNorm(const onnx::GraphProto& graph, const onnx::NodeProto& conv) {
  if (conv.op_type() != "Conv" || conv.output_size() != 1 || conv.input_size() < 2) return nullptr;
  const std::string& y = conv.output(0);
  for (const onnx::ValueInfoProto& o : graph.output()) {
    if (o.name() == y) return nullptr;
  }
  const onnx::NodeProto* reader = nullptr;
  for (const onnx::NodeProto& n : graph.node()) {
    for (const std::string& in : n.input()) {
      if (in != y) continue;
      if (reader != nullptr && reader != &n) return nullptr;
      reader = &n;
    }
  }
  if (reader == nullptr || reader->op_type() != "BatchNormalization" || reader->input_size() != 5 ||
      reader->output_size() != 1 || reader->input(0) != y) {
    return nullptr;
  }
  // The weight and the bias: float constants this Conv alone reads.
  const onnx::TensorProto* w = GraphConstant(graph, conv.input(1));
  const bool has_bias = conv.input_size() > 2 && !conv.input(2).empty();
  const onnx::TensorProto* b = has_bias ? GraphConstant(graph, conv.input(2)) : nullptr;
  if (w == nullptr || w->data_type() != onnx::TensorProto::FLOAT || w->dims_size() < 1) return nullptr;
  if (has_bias && !ChannelVector(b, w->dims(0))) return nullptr;
  int weight_reads = 0;
  for (const onnx::NodeProto& n : graph.node()) {
    for (const std::string& in : n.input()) weight_reads += in == conv.input(1);
  }
  if (weight_reads != 1) return nullptr;
  for (int k = 1; k < 5; ++k) {
    if (!ChannelVector(GraphConstant(graph, reader->input(k)), w->dims(0))) return nullptr;
  }
  return reader;
}

absl::StatusOr<FoldedBatchNorm> FoldBatchNorm(const onnx::GraphProto& graph, const onnx::NodeProto& batch_norm,
                                              const std::vector<float>& bias, int64_t channels) {
  std::vector<std::vector<float>> p;  // scale, B, mean, var
  for (int k = 1; k < 5; ++k) {
    const onnx::TensorProto* t = GraphConstant(graph, batch_norm.input(k));
    if (!ChannelVector(t, channels)) {
      return absl::InvalidArgumentError(
          absl::StrCat("BatchNormalization '", batch_norm.name(), "': input ", k, " is not ", channels, " constants"));
    }
    p.push_back(internal::DecodeFloats(*t));
  }
  const double epsilon = [&] {
    for (const onnx::AttributeProto& a : batch_norm.attribute()) {
      if (a.name() == "epsilon") return static_cast<double>(a.f());
    }
    return 1e-5;
  }();
  FoldedBatchNorm out;
  out.row_scale.resize(static_cast<size_t>(channels));
  out.bias.resize(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double s = p[0][c] / std::sqrt(static_cast<double>(p[3][c]) + epsilon);
    const double b = (c < static_cast<int64_t>(bias.size()) ? bias[c] : 0.0);
    const double folded = (b - p[2][c]) * s + p[1][c];
    if (!std::isfinite(s) || !std::isfinite(folded)) {
      return absl::InvalidArgumentError(
          absl::StrCat("BatchNormalization '", batch_norm.name(), "': channel ", c, " does not fold to finite values"));
    }
    out.row_scale[c] = static_cast<float>(s);
    out.bias[c] = static_cast<float>(folded);
  }
  return out;
}

namespace {

// A layer FoldBatchNorms may fold into: a main-graph Conv of float weights.
bool FoldableLayer(const Layer& layer) {
  return layer.subgraph.empty() && layer.op_type == "Conv" && layer.weight_elem_type == onnx::TensorProto::FLOAT;
}

// A tensor's header: what it holds besides its values.
int64_t HeaderBytes(const onnx::TensorProto& t) {
  return static_cast<int64_t>(t.ByteSizeLong()) + 2 - internal::StoredBytes(t);
}

}  // namespace

std::vector<BatchNormFold> BatchNormFolds(const LoadedModel& model) {
  const onnx::GraphProto& g = model.proto.graph();
  std::map<std::string, const onnx::NodeProto*> by_name;
  for (const onnx::NodeProto& n : g.node()) by_name[n.name()] = &n;
  std::vector<BatchNormFold> folds(model.analysis.layers.size());
  for (size_t i = 0; i < folds.size(); ++i) {
    const Layer& layer = model.analysis.layers[i];
    auto node = by_name.find(layer.name);
    if (!FoldableLayer(layer) || node == by_name.end()) continue;
    const onnx::NodeProto* bn = FoldableBatchNorm(g, *node->second);
    if (bn == nullptr) continue;
    folds[i].folds = true;
    folds[i].batch_norm = bn->name();
    int64_t bytes = static_cast<int64_t>(bn->ByteSizeLong()) + 2;
    for (int k = 1; k < bn->input_size(); ++k) {
      if (const onnx::TensorProto* t = GraphConstant(g, bn->input(k)); t != nullptr) bytes += HeaderBytes(*t);
    }
    const onnx::TensorProto bias =
        internal::FloatTensorOf(layer.name + "_folded_bias", onnx::TensorProto::FLOAT, {layer.out_channels},
                                std::vector<float>(layer.out_channels));
    folds[i].structure_bytes = bytes - HeaderBytes(bias);
  }
  return folds;
}

absl::StatusOr<FoldedLayers> FoldBatchNorms(onnx::ModelProto* proto, const Analysis& analysis,
                                            const std::set<size_t>& layers) {
  onnx::GraphProto* g = proto->mutable_graph();
  internal::GraphEditor editor(proto);
  FoldedLayers out;
  std::map<size_t, std::vector<float>>& row_scales = out.row_scales;
  std::set<std::string> removed;
  std::map<size_t, std::set<std::string>> left;  // per layer: constants the fold may leave unread
  for (size_t i : layers) {
    if (i >= analysis.layers.size()) break;
    const Layer& layer = analysis.layers[i];
    if (!FoldableLayer(layer)) continue;
    absl::StatusOr<internal::Site> site = editor.Find(layer);
    if (!site.ok()) continue;
    onnx::NodeProto* conv = site->node;
    const onnx::NodeProto* bn = FoldableBatchNorm(*g, *conv);
    if (bn == nullptr) continue;
    onnx::TensorProto* weight = internal::MutableConstant(*site, conv->input(1));
    if (weight == nullptr) return absl::InternalError("a foldable Conv's weight is no constant");
    std::vector<float> bias;
    if (conv->input_size() > 2 && !conv->input(2).empty()) {
      bias = internal::DecodeFloats(*GraphConstant(*g, conv->input(2)));
    }
    absl::StatusOr<FoldedBatchNorm> folded = FoldBatchNorm(*g, *bn, bias, layer.out_channels);
    if (!folded.ok()) return folded.status();
    ChannelMatrix rows = ToChannelMajor(internal::DecodeFloats(*weight), layer.weight_layout);
    for (int64_t c = 0; c < rows.channels; ++c) {
      for (int64_t k = 0; k < rows.per_channel; ++k) rows.values[c * rows.per_channel + k] *= folded->row_scale[c];
    }
    const std::vector<int64_t> dims(weight->dims().begin(), weight->dims().end());
    *weight = internal::FloatTensorOf(weight->name(), onnx::TensorProto::FLOAT, dims,
                                      FromChannelMajor(rows, layer.weight_layout));
    const std::string bias_name = editor.Fresh(layer.name + "_folded_bias");
    onnx::TensorProto folded_bias =
        internal::FloatTensorOf(bias_name, onnx::TensorProto::FLOAT, {layer.out_channels}, folded->bias);
    out.added_bytes[i] = internal::StoredBytes(folded_bias);
    editor.AddInitializer(g, std::move(folded_bias));
    for (int k = 1; k < bn->input_size(); ++k) left[i].insert(bn->input(k));
    if (conv->input_size() > 2 && !conv->input(2).empty()) left[i].insert(conv->input(2));
    while (conv->input_size() < 3) conv->add_input("");
    conv->set_input(2, bias_name);
    conv->set_output(0, bn->output(0));
    removed.insert(bn->name());
    row_scales[i] = std::move(folded->row_scale);
  }
  if (!removed.empty()) {
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (onnx::NodeProto& n : *g->mutable_node()) {
      if (!removed.count(n.name())) *kept.Add() = std::move(n);
    }
    g->mutable_node()->Swap(&kept);
  }
  // The folded constants nothing reads any more leave the file (a constant another node still
  // reads stays).
  std::set<std::string> read, candidates;
  for (const onnx::NodeProto& n : g->node()) read.insert(n.input().begin(), n.input().end());
  for (const auto& [i, names] : left) {
    for (const std::string& name : names) {
      const onnx::TensorProto* t = GraphConstant(*g, name);
      if (t == nullptr || read.count(name) || !candidates.insert(name).second) continue;
      out.removed_bytes[i] += internal::StoredBytes(*t);
    }
  }
  internal::RemoveUnreadConstants(proto, candidates);
  return out;
}

}  // namespace squeeze::model
