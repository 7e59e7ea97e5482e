#include "model/export.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/activation_sites.h"
#include "model/batch_norm_folding.h"
#include "model/internal/channel_flow.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"
#include "model/internal/validation.h"

namespace squeeze::model {
namespace {

constexpr int64_t kQdqOpset = 13;  // DequantizeLinear with `axis` (per-channel scales)
constexpr double kInt32Max = 2147483647.0;

int64_t OpsetOf(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import()) {
    if (internal::NormalizedDomain(opset.domain()).empty()) return opset.version();
  }
  return 0;
}

int64_t Product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

const char* PatternName(PrunePattern p) {
  switch (p) {
    case PrunePattern::kNone:
      return "dense";
    case PrunePattern::kUnstructured:
      return "unstructured";
    case PrunePattern::kTwoFour:
      return "2:4";
    case PrunePattern::kOutputChannel:
      return "output_channel";
  }
  return "dense";
}

// Every name used anywhere in the model, for making fresh ones.
class Names {
 public:
  explicit Names(const onnx::ModelProto& model) {
    internal::ForEachGraph(model.graph(), "", "",
                           [this](const onnx::GraphProto& g, const std::string&, const std::string&) {
                             for (const onnx::NodeProto& n : g.node()) {
                               used_.insert(n.name());
                               used_.insert(n.input().begin(), n.input().end());
                               used_.insert(n.output().begin(), n.output().end());
                             }
                             for (const auto& t : g.initializer()) used_.insert(t.name());
                             for (const auto& v : g.input()) used_.insert(v.name());
                             for (const auto& v : g.output()) used_.insert(v.name());
                             for (const auto& v : g.value_info()) used_.insert(v.name());
                           });
  }
  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int n = 1; used_.count(name); ++n) name = absl::StrCat(base, "_", n);
    used_.insert(name);
    return name;
  }

 private:
  std::set<std::string> used_;
};

struct Site {
  onnx::NodeProto* node = nullptr;
  std::vector<onnx::GraphProto*> scopes;  // the node's graph first, the main graph last
  onnx::GraphProto* graph() const { return scopes.front(); }
};

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

onnx::TensorProto FloatTensorOf(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                                const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(elem_type);
  for (int64_t d : dims) t.add_dims(d);
  std::string raw;
  if (elem_type == onnx::TensorProto::FLOAT16) {
    raw.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t bits = FloatToHalfBits(values[i]);
      std::memcpy(&raw[i * 2], &bits, 2);
    }
  } else {
    raw.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  t.set_raw_data(std::move(raw));
  return t;
}

template <typename T>
onnx::TensorProto RawTensorOf(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                              const std::vector<T>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(elem_type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return t;
}

// Keeps, along `axis` of a row-major tensor with `dims`, the positions `keep` lists (ascending).
template <typename T>
std::vector<T> SliceAxis(const std::vector<T>& values, std::vector<int64_t>* dims, size_t axis,
                         const std::vector<int64_t>& keep) {
  const int64_t outer = Product(*dims, 0, axis), n = (*dims)[axis], inner = Product(*dims, axis + 1, dims->size());
  std::vector<T> out;
  out.reserve(static_cast<size_t>(outer * static_cast<int64_t>(keep.size()) * inner));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k : keep) {
      const T* begin = values.data() + (o * n + k) * inner;
      out.insert(out.end(), begin, begin + inner);
    }
  }
  (*dims)[axis] = static_cast<int64_t>(keep.size());
  return out;
}

std::vector<int64_t> Complement(int64_t n, const std::set<int64_t>& removed) {
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (!removed.count(i)) keep.push_back(i);
  }
  return keep;
}

// The axis of `dims` that holds the output channels of a groups == 1 layout, or -1.
int ChannelAxis(const std::vector<int64_t>& dims, const ChannelLayout& layout) {
  if (layout.groups != 1) return -1;
  for (size_t a = 0; a < dims.size(); ++a) {
    if (Product(dims, 0, a) == layout.outer && dims[a] == layout.axis &&
        Product(dims, a + 1, dims.size()) == layout.inner) {
      return static_cast<int>(a);
    }
  }
  return -1;
}

// Nodes to insert before or after nodes of a graph, applied last.
class Insertions {
 public:
  void Before(onnx::GraphProto* g, const onnx::NodeProto* n, onnx::NodeProto node) {
    before_[g][n].push_back(std::move(node));
  }
  void After(onnx::GraphProto* g, const onnx::NodeProto* n, onnx::NodeProto node) {
    after_[g][n].push_back(std::move(node));
  }
  void Front(onnx::GraphProto* g, onnx::NodeProto node) { front_[g].push_back(std::move(node)); }
  void Apply() {
    std::set<onnx::GraphProto*> graphs;
    for (auto& [g, m] : before_) graphs.insert(g);
    for (auto& [g, m] : after_) graphs.insert(g);
    for (auto& [g, v] : front_) graphs.insert(g);
    for (onnx::GraphProto* g : graphs) {
      google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
      for (onnx::NodeProto& n : front_[g]) nodes.Add()->Swap(&n);
      for (onnx::NodeProto& node : *g->mutable_node()) {
        auto b = before_[g].find(&node);
        if (b != before_[g].end()) {
          for (onnx::NodeProto& n : b->second) nodes.Add()->Swap(&n);
        }
        auto a = after_[g].find(&node);
        std::vector<onnx::NodeProto> after;
        if (a != after_[g].end()) after.swap(a->second);
        nodes.Add()->Swap(&node);
        for (onnx::NodeProto& n : after) nodes.Add()->Swap(&n);
      }
      g->mutable_node()->Swap(&nodes);
    }
  }

 private:
  std::map<onnx::GraphProto*, std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>>> before_, after_;
  std::map<onnx::GraphProto*, std::vector<onnx::NodeProto>> front_;
};

struct Uint8Quant {
  float scale = 1;
  uint8_t zero_point = 0;
};

absl::StatusOr<Uint8Quant> QuantOf(const std::map<std::string, TensorRange>& ranges, const std::string& name) {
  auto it = ranges.find(name);
  if (it == ranges.end()) return absl::InvalidArgumentError(absl::StrCat("no calibrated range for '", name, "'"));
  if (!std::isfinite(it->second.min) || !std::isfinite(it->second.max) || it->second.min > it->second.max) {
    return absl::InvalidArgumentError(absl::StrCat("the range of '", name, "' is not finite and ordered"));
  }
  const float lo = std::min(it->second.min, 0.f), hi = std::max(it->second.max, 0.f);
  Uint8Quant q;
  const float scale = (hi - lo) / 255.f;
  if (!(scale > 0) || !std::isfinite(scale)) return q;  // an all-zero tensor: any scale is exact
  q.scale = scale;
  q.zero_point = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / scale), 0.f, 255.f));
  return q;
}

absl::Status ValidatePlan(const Analysis& analysis, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  if (plan.size() != analysis.layers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the plan has ", plan.size(), " layers; the model has ", analysis.layers.size()));
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    const LayerPlan& p = plan[i];
    const std::string& name = analysis.layers[i].name;
    const bool int_bits = p.weight_bits >= 2 && p.weight_bits <= 8;
    if (!int_bits && p.weight_bits != 16 && p.weight_bits != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': weight bits ", p.weight_bits, " (2..8, 16 or 32)"));
    }
    if (p.activation_bits != 8 && p.activation_bits != 16 && p.activation_bits != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': activation bits ", p.activation_bits, " (8, 16 or 32)"));
    }
    if (p.activation_bits == 8 && !int_bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': 8-bit activations need integer weights, not ", p.weight_bits, " bits"));
    }
    if (!Realizes(flavour, p.weight_bits, p.activation_bits)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': w", p.weight_bits, "a", p.activation_bits, " is not written by the ",
                       FlavourName(flavour), " export (",
                       flavour == ExportFlavour::kOrtCpu ? "ONNX Runtime's CPU provider computes float layers in fp32"
                                                         : "no such file",
                       "): search again for this device, whose options are what its export writes"));
    }
    if (!(p.prune_ratio >= 0 && p.prune_ratio < 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "': prune ratio ", p.prune_ratio, " not in [0, 1)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string LayerPlanLabel(const LayerPlan& p) {
  std::string precision = p.weight_bits == 32 && p.activation_bits == 32 ? "fp32"
                          : p.weight_bits == 16 && p.activation_bits == 16
                              ? "fp16"
                              : absl::StrCat("w", p.weight_bits, "a", p.activation_bits);
  switch (p.pattern) {
    case PrunePattern::kNone:
      return precision;
    case PrunePattern::kTwoFour:
      return absl::StrCat(precision, " 2:4");
    case PrunePattern::kUnstructured:
      return absl::StrFormat("%s unstructured %.0f%%", precision, p.prune_ratio * 100);
    case PrunePattern::kOutputChannel:
      return absl::StrFormat("%s channel %.0f%%", precision, p.prune_ratio * 100);
  }
  return precision;
}

std::string PlanJson(const Analysis& analysis, const std::vector<LayerPlan>& plan, ExportFlavour flavour) {
  std::vector<std::string> items;
  for (size_t i = 0; i < plan.size() && i < analysis.layers.size(); ++i) {
    const LayerPlan& p = plan[i];
    items.push_back(absl::StrFormat(
        "{\"layer\":\"%s\",\"option\":\"%s\",\"weight_bits\":%d,\"activation_bits\":%d,\"pattern\":\"%s\","
        "\"prune_ratio\":%g,\"file\":\"%s\"}",
        JsonEscape(analysis.layers[i].name), LayerPlanLabel(p), p.weight_bits, p.activation_bits,
        PatternName(p.pattern), p.prune_ratio, JsonEscape(RealizationNote(flavour, p.weight_bits, p.activation_bits))));
  }
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

namespace {

// Folds the BatchNormalization after each main-graph float Conv the plan gives integer weights
// (model/batch_norm_folding.h) into its weight and bias initializers, and removes it. Returns, per
// folded layer, the factor each output channel's row was multiplied by, so masks are still made
// on the weights the predictor saw.
absl::StatusOr<std::map<size_t, std::vector<float>>> FoldBatchNorms(onnx::ModelProto* proto, const Analysis& analysis,
                                                                    const std::vector<LayerPlan>& plan) {
  onnx::GraphProto* g = proto->mutable_graph();
  std::map<std::string, int> node_index;
  for (int k = 0; k < g->node_size(); ++k) node_index[g->node(k).name()] = k;
  Names names(*proto);
  std::map<size_t, std::vector<float>> row_scales;
  std::set<std::string> removed;
  for (size_t i = 0; i < analysis.layers.size() && i < plan.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    if (plan[i].weight_bits > 8 || !layer.subgraph.empty() || layer.op_type != "Conv" ||
        layer.weight_elem_type != onnx::TensorProto::FLOAT) {
      continue;
    }
    auto at = node_index.find(layer.name);
    if (at == node_index.end()) continue;
    onnx::NodeProto* conv = g->mutable_node(at->second);
    const onnx::NodeProto* bn = FoldableBatchNorm(*g, *conv);
    if (bn == nullptr) continue;
    onnx::TensorProto* weight = MutableGraphConstant(g, conv->input(1));
    if (weight == nullptr) return absl::InternalError("a foldable Conv's weight is no constant");
    std::vector<float> bias;
    if (conv->input_size() > 2 && !conv->input(2).empty())
      bias = internal::DecodeFloats(*GraphConstant(*g, conv->input(2)));
    absl::StatusOr<FoldedBatchNorm> folded = FoldBatchNorm(*g, *bn, bias, layer.out_channels);
    if (!folded.ok()) return folded.status();
    ChannelMatrix rows = ToChannelMajor(internal::DecodeFloats(*weight), layer.weight_layout);
    for (int64_t c = 0; c < rows.channels; ++c) {
      for (int64_t k = 0; k < rows.per_channel; ++k) rows.values[c * rows.per_channel + k] *= folded->row_scale[c];
    }
    std::vector<int64_t> dims(weight->dims().begin(), weight->dims().end());
    *weight =
        FloatTensorOf(weight->name(), onnx::TensorProto::FLOAT, dims, FromChannelMajor(rows, layer.weight_layout));
    const std::string bias_name = names.Fresh(layer.name + "_folded_bias");
    *g->add_initializer() = FloatTensorOf(bias_name, onnx::TensorProto::FLOAT, {layer.out_channels}, folded->bias);
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
  return row_scales;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ActivationsToCalibrate(const LoadedModel& model,
                                                                const std::vector<LayerPlan>& plan) {
  // Which tensors need ranges does not depend on the flavour: the most permissive one checks.
  if (absl::Status s = ValidatePlan(model.analysis, plan, ExportFlavour::kRuntimePrecision); !s.ok()) return s;
  const ActivationTensors tensors = ActivationTensorsOf(model);
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].activation_bits != 8 || tensors.input[i].empty()) continue;
    for (const std::string& name : {tensors.input[i], tensors.output[i]}) {
      if (seen.insert(name).second) names.push_back(name);
    }
  }
  return names;
}

absl::StatusOr<ExportedModel> ExportModel(const LoadedModel& model, const std::vector<LayerPlan>& plan,
                                          const std::map<std::string, TensorRange>& ranges,
                                          const ExportOptions& options) {
  const Analysis& analysis = model.analysis;
  if (absl::Status s = ValidatePlan(analysis, plan, options.flavour); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> to_calibrate = ActivationsToCalibrate(model, plan);
  if (!to_calibrate.ok()) return to_calibrate.status();
  std::map<std::string, Uint8Quant> act_quant;
  for (const std::string& name : *to_calibrate) {
    absl::StatusOr<Uint8Quant> q = QuantOf(ranges, name);
    if (!q.ok()) return q.status();
    act_quant[name] = *q;
  }

  ExportedModel result;
  ExportReport& report = result.report;
  onnx::ModelProto proto = model.proto;
  report.original_opset = OpsetOf(proto);
  bool needs_qdq = false;
  for (const LayerPlan& p : plan) needs_qdq |= p.weight_bits <= 8;
  if (needs_qdq && report.original_opset < kQdqOpset) {
    try {
      // The converter needs shapes (Softmax 12→13): inferred from the analysed input shapes, with
      // the declared inputs put back afterwards.
      onnx::ModelProto shaped = proto;
      for (auto& input : *shaped.mutable_graph()->mutable_input()) {
        auto it = analysis.input_shapes.find(input.name());
        if (it == analysis.input_shapes.end() || !input.type().has_tensor_type()) continue;
        auto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
        shape->clear_dim();
        for (int64_t d : it->second) shape->add_dim()->set_dim_value(d);
      }
      try {
        onnx::shape_inference::InferShapes(shaped);
      } catch (const std::exception&) {
        // What inference could not follow, the converter names below if it matters.
      }
      if (options.shape_probe) {
        // Values inference typed but could not shape (after a computed Reshape, ...): measured.
        std::vector<std::string> unshaped;
        for (const auto& v : shaped.graph().value_info()) {
          const auto& type = v.type().tensor_type();
          bool known = type.has_shape();
          for (const auto& d : type.shape().dim()) known &= d.has_dim_value();
          if (!known && type.elem_type() != 0) unshaped.push_back(v.name());
        }
        if (!unshaped.empty()) {
          absl::StatusOr<std::map<std::string, std::vector<int64_t>>> probed =
              options.shape_probe(proto, analysis.input_shapes, unshaped);
          if (probed.ok()) {
            for (auto& v : *shaped.mutable_graph()->mutable_value_info()) {
              auto it = probed->find(v.name());
              if (it == probed->end()) continue;
              auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
              shape->clear_dim();
              for (int64_t d : it->second) shape->add_dim()->set_dim_value(d);
            }
          }
        }
      }
      onnx::ModelProto converted = onnx::version_conversion::ConvertVersion(shaped, static_cast<int>(kQdqOpset));
      std::map<std::string, onnx::ValueInfoProto> declared;
      for (const auto& input : proto.graph().input()) declared[input.name()] = input;
      for (auto& input : *converted.mutable_graph()->mutable_input()) {
        auto it = declared.find(input.name());
        if (it != declared.end()) input = it->second;
      }
      proto = std::move(converted);
    } catch (const std::exception& e) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the model is at ai.onnx opset ", report.original_opset, "; per-channel DequantizeLinear needs opset ",
          kQdqOpset, " and libonnx's version converter failed: ", internal::OneLine(e.what())));
    }
    if (proto.ir_version() < 7) proto.set_ir_version(7);
    report.warnings.push_back(absl::StrCat("converted from ai.onnx opset ", report.original_opset, " to ", kQdqOpset,
                                           " for per-channel DequantizeLinear"));
  }
  report.opset = OpsetOf(proto);
  absl::StatusOr<std::map<size_t, std::vector<float>>> folded = FoldBatchNorms(&proto, analysis, plan);
  if (!folded.ok()) return folded.status();

  // Sites of the layers, found by qualified name.
  std::map<std::string, std::pair<onnx::NodeProto*, std::string>> nodes;    // qualified -> node, graph path
  std::map<std::string, std::pair<onnx::GraphProto*, std::string>> graphs;  // path -> graph, parent
  internal::ForEachGraph(*proto.mutable_graph(), "", "",
                         [&](onnx::GraphProto& g, const std::string& path, const std::string& parent) {
                           graphs[path] = {&g, parent};
                           for (onnx::NodeProto& n : *g.mutable_node()) {
                             nodes[internal::QualifiedNodeName(path, n.name())] = {&n, path};
                           }
                         });
  std::vector<Site> sites(analysis.layers.size());
  std::map<std::string, size_t> layer_of_node;  // main-graph node name -> layer
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    auto it = nodes.find(layer.name);
    if (it == nodes.end() || it->second.first->input_size() < 2) {
      return absl::FailedPreconditionError(
          absl::StrCat("the model holds no node '", layer.name, "' (", layer.op_type, "): not the analysed model"));
    }
    sites[i].node = it->second.first;
    for (std::string path = it->second.second;;) {
      const auto& [g, parent] = graphs.at(path);
      sites[i].scopes.push_back(g);
      if (path.empty()) break;
      path = parent;
    }
    if (layer.subgraph.empty()) layer_of_node[sites[i].node->name()] = i;
  }

  // Original weights and the plan's masks.
  struct Work {
    std::vector<float> original;  // storage order
    std::vector<int64_t> dims;
    int32_t elem_type = onnx::TensorProto::FLOAT;
    std::vector<uint8_t> mask;  // storage order, 1 = kept
  };
  std::vector<Work> work(analysis.layers.size());
  std::vector<std::vector<uint8_t>> pruned_rows(analysis.layers.size());
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    const onnx::TensorProto* t = internal::FindConstant(sites[i].scopes, sites[i].node->input(1));
    if (t == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name, "': its weight is not a constant"));
    }
    if (absl::Status s = internal::CheckTensorData(*t, t->name()); !s.ok()) return s;
    Work& w = work[i];
    w.original = internal::DecodeFloats(*t);
    w.dims.assign(t->dims().begin(), t->dims().end());
    w.elem_type = t->data_type();
    if (static_cast<int64_t>(w.original.size()) != layer.params ||
        layer.weight_layout.channels() != layer.out_channels) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer '", layer.name, "': its weight does not match the analysis"));
    }
    ChannelMatrix cm = ToChannelMajor(w.original, layer.weight_layout);
    if (auto f = folded->find(i); f != folded->end()) {
      // Masks from the weights before folding, as the predictor made them.
      for (int64_t c = 0; c < cm.channels; ++c) {
        const float s = f->second[c] != 0 ? f->second[c] : 1.f;
        for (int64_t k = 0; k < cm.per_channel; ++k) cm.values[c * cm.per_channel + k] /= s;
      }
    }
    const std::vector<uint8_t> mask = PruneMask(cm, plan[i].pattern, plan[i].prune_ratio);
    ChannelMatrix mask_cm = cm;
    for (size_t k = 0; k < mask.size(); ++k) mask_cm.values[k] = mask[k];
    const std::vector<float> mask_storage = FromChannelMajor(mask_cm, layer.weight_layout);
    w.mask.resize(mask_storage.size());
    for (size_t k = 0; k < mask_storage.size(); ++k) w.mask[k] = mask_storage[k] != 0;
    pruned_rows[i].assign(static_cast<size_t>(layer.out_channels), 0);
    if (plan[i].pattern == PrunePattern::kOutputChannel) {
      for (int64_t c = 0; c < cm.channels; ++c) {
        bool any = false;
        for (int64_t k = 0; k < cm.per_channel; ++k) any |= mask[c * cm.per_channel + k] != 0;
        pruned_rows[i][c] = !any;
      }
    }
  }

  // Which pruned channels leave the graph.
  internal::ChannelFlow flow(&proto, analysis, layer_of_node, pruned_rows);
  flow.Run();

  Names names(proto);
  Insertions insertions;
  std::set<std::string> orphaned;
  std::set<std::string> weight_constants;  // what the packed figure covers
  auto add_initializer = [&](onnx::GraphProto* g, onnx::TensorProto t) {
    const std::string name = t.name();
    *g->add_initializer() = std::move(t);
    return name;
  };
  auto add_weight = [&](onnx::GraphProto* g, onnx::TensorProto t) {
    weight_constants.insert(t.name());
    return add_initializer(g, std::move(t));
  };

  // Per-channel constants of BatchNormalization and binary ops, sliced.
  for (const internal::ParamSlice& s : flow.slices()) {
    const std::set<int64_t> removed = flow.Removed(s.channels_of);
    if (removed.empty()) continue;
    const std::string old = s.node->input(s.input);
    const onnx::TensorProto* t = internal::FindConstant({proto.mutable_graph()}, old);
    if (t == nullptr || !internal::IsDecodableFloat(t->data_type())) {
      return absl::InternalError(absl::StrCat("constant '", old, "' of '", s.node->name(), "' cannot be sliced"));
    }
    std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
    std::vector<float> values = internal::DecodeFloats(*t);
    const int32_t type =
        t->data_type() == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT;
    values = SliceAxis(values, &dims, static_cast<size_t>(s.axis), Complement(dims[s.axis], removed));
    const std::string name = names.Fresh(absl::StrCat(old, "_pruned"));
    add_initializer(proto.mutable_graph(), FloatTensorOf(name, type, dims, values));
    s.node->set_input(s.input, name);
    orphaned.insert(old);
  }
  for (const auto& [node, input] : flow.depthwise()) {
    const int64_t removed = static_cast<int64_t>(flow.Removed(input).size());
    if (removed > 0) SetIntAttribute(node, "group", internal::IntAttribute(*node, "group", 1) - removed);
  }

  // The layers.
  std::map<std::string, std::vector<float>> bias_scales;  // layer node name -> per-channel weight scales
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    const LayerPlan& p = plan[i];
    Work& w = work[i];
    const Site& site = sites[i];
    onnx::NodeProto* node = site.node;
    LayerExport& le = report.layers.emplace_back();
    le.layer = layer.name;
    le.op_type = layer.op_type;
    le.plan = p;
    le.option = LayerPlanLabel(p);
    le.params = layer.params;
    le.out_channels = layer.out_channels;
    std::vector<std::string> notes;

    int channel_axis = ChannelAxis(w.dims, layer.weight_layout);
    const bool main = layer.subgraph.empty();
    const bool depthwise = main && flow.depthwise().count(node);
    // Output rows removed (pruned Conv sources, depthwise Convs) and input channels removed.
    std::set<int64_t> rows_removed, inputs_removed;
    if (main && layer.op_type == "Conv") {
      rows_removed = flow.Removed(node->output(0));
      if (!depthwise) inputs_removed = flow.Removed(node->input(0));
    } else if (main && layer.op_type == "ConvTranspose" && internal::IntAttribute(*node, "group", 1) == 1) {
      inputs_removed = flow.Removed(node->input(0));
    }
    int64_t zeroed = 0;
    for (int64_t c = 0; c < layer.out_channels; ++c) zeroed += pruned_rows[i][c] && !rows_removed.count(c);
    le.zeroed_out_channels = zeroed;
    if (zeroed > 0) {
      const std::string why = flow.WhyKept(i);
      notes.push_back(absl::StrCat(zeroed, " pruned output channels kept as zeros: ",
                                   !main                     ? "the layer sits in a subgraph"
                                   : layer.op_type != "Conv" ? "only Conv output channels are removed"
                                   : !why.empty()            ? why
                                                             : "they cannot be followed"));
    }
    if (!depthwise) report.removed_channels += static_cast<int>(rows_removed.size());
    le.removed_in_channels = static_cast<int64_t>(inputs_removed.size());

    // Ŵ before quantization: masked weights zeroed.
    std::vector<float> zeroed_w = w.original;
    double energy = 0;
    for (size_t k = 0; k < zeroed_w.size(); ++k) {
      energy += static_cast<double>(w.original[k]) * w.original[k];
      if (!w.mask[k]) zeroed_w[k] = 0;
    }
    std::vector<float> orig = w.original;
    std::vector<uint8_t> mask = w.mask;
    std::vector<int64_t> dims = w.dims;
    if (!rows_removed.empty()) {
      const std::vector<int64_t> keep = Complement(dims[0], rows_removed);
      std::vector<int64_t> d0 = dims, d1 = dims;
      orig = SliceAxis(orig, &d0, 0, keep);
      mask = SliceAxis(mask, &d1, 0, keep);
      zeroed_w = SliceAxis(zeroed_w, &dims, 0, keep);
    }
    if (!inputs_removed.empty()) {
      const size_t axis = layer.op_type == "ConvTranspose" ? 0 : 1;
      const std::vector<int64_t> keep = Complement(dims[axis], inputs_removed);
      std::vector<int64_t> d0 = dims, d1 = dims;
      orig = SliceAxis(orig, &d0, axis, keep);
      mask = SliceAxis(mask, &d1, axis, keep);
      zeroed_w = SliceAxis(zeroed_w, &dims, axis, keep);
    }
    const bool sliced = !rows_removed.empty() || !inputs_removed.empty();
    ChannelLayout layout = layer.weight_layout;
    if (sliced && channel_axis >= 0) {
      layout = ChannelLayout{Product(dims, 0, channel_axis), dims[channel_axis],
                             Product(dims, channel_axis + 1, dims.size()), 1};
    }
    le.kept_out_channels = layout.channels();
    int64_t kept = 0;
    for (uint8_t m : mask) kept += m;
    le.kept_params = kept;

    int weight_bits = p.weight_bits;
    if (weight_bits <= 8 && channel_axis < 0) {
      notes.push_back("a grouped layout has no single channel axis for per-channel scales: weights kept float");
      weight_bits = 32;
    }
    // An 8-bit-activation Conv fuses into ONNX Runtime's integer kernel only with an int32 bias at
    // scale input x weight. A channel whose bias would overflow int32 there (weights far smaller
    // than its bias) gets the least weight scale at which it fits, as ONNX Runtime's own quantizer
    // does, rather than leaving the layer float.
    const bool quantize_bias = p.activation_bits == 8 && weight_bits <= 8 && main && layer.op_type == "Conv" &&
                               act_quant.count(node->input(0)) && layer.weight_elem_type == onnx::TensorProto::FLOAT;
    // The bias, where it is rewritten (removed rows, int32): the constant vector, sliced with the
    // removed rows; `bias_constant` null when it is no constant vector.
    const bool rewrite_bias =
        node->input_size() > 2 && !node->input(2).empty() && (!rows_removed.empty() || quantize_bias);
    const onnx::TensorProto* bias_constant = nullptr;
    std::vector<int64_t> bdims;
    std::vector<float> bias;
    if (rewrite_bias) {
      const onnx::TensorProto* b = internal::FindConstant(site.scopes, node->input(2));
      if (b != nullptr && b->dims_size() == 1 && internal::IsDecodableFloat(b->data_type())) {
        bias_constant = b;
        bdims = {b->dims(0)};
        bias = internal::DecodeFloats(*b);
        if (!rows_removed.empty()) bias = SliceAxis(bias, &bdims, 0, Complement(bdims[0], rows_removed));
      }
    }
    std::vector<float> scale_floor;
    if (quantize_bias && bias_constant != nullptr) {
      const double sx = act_quant.at(node->input(0)).scale;
      // A little below the limit, for the float roundings of the scales.
      for (float v : bias) scale_floor.push_back(static_cast<float>(std::fabs(v) / (sx * kInt32Max * (1 - 1e-5))));
    }
    const std::string base = absl::StrCat("squeeze_w", i);
    std::string weight_value;  // what the layer reads
    std::vector<float> w_hat;
    std::vector<float> scales;
    if (weight_bits <= 8) {
      const ChannelMatrix cm = ToChannelMajor(zeroed_w, layout);
      ChannelMatrix mask_cm = cm;
      {
        std::vector<float> mf(mask.begin(), mask.end());
        mask_cm = ToChannelMajor(mf, layout);
      }
      ChannelMatrix out = cm;
      std::vector<int8_t> q_cm(cm.values.size());
      scales.resize(static_cast<size_t>(cm.channels));
      int64_t raised_scales = 0;
      for (int64_t c = 0; c < cm.channels; ++c) {
        const size_t begin = static_cast<size_t>(c * cm.per_channel);
        std::vector<uint8_t> row_mask(static_cast<size_t>(cm.per_channel));
        for (int64_t k = 0; k < cm.per_channel; ++k) row_mask[k] = mask_cm.values[begin + k] != 0;
        float s = QuantizeRow(cm.Row(c), row_mask, weight_bits,
                              absl::MakeSpan(out.values).subspan(begin, static_cast<size_t>(cm.per_channel)));
        if (!(s > 0)) s = 1;  // an all-zero row
        if (static_cast<size_t>(c) < scale_floor.size() && s < scale_floor[c]) {
          s = scale_floor[c];
          QuantizeRowAt(cm.Row(c), row_mask, weight_bits, s,
                        absl::MakeSpan(out.values).subspan(begin, static_cast<size_t>(cm.per_channel)));
          ++raised_scales;
        }
        scales[c] = s;
        for (int64_t k = 0; k < cm.per_channel; ++k) {
          q_cm[begin + k] = static_cast<int8_t>(std::nearbyint(out.values[begin + k] / s));
        }
      }
      if (raised_scales > 0) {
        notes.push_back(absl::StrCat("weight scale raised on ", raised_scales,
                                     raised_scales == 1 ? " channel" : " channels", " so its bias fits int32"));
      }
      w_hat = FromChannelMajor(out, layout);
      ChannelMatrix qf = cm;
      for (size_t k = 0; k < q_cm.size(); ++k) qf.values[k] = q_cm[k];
      const std::vector<float> q_storage = FromChannelMajor(qf, layout);
      std::vector<int8_t> q(q_storage.size());
      for (size_t k = 0; k < q.size(); ++k) q[k] = static_cast<int8_t>(q_storage[k]);
      onnx::GraphProto* g = site.graph();
      const std::string q_name = add_weight(g, RawTensorOf(names.Fresh(base + "_q"), onnx::TensorProto::INT8, dims, q));
      const std::string s_name = add_weight(
          g, RawTensorOf(names.Fresh(base + "_scale"), onnx::TensorProto::FLOAT, {layout.channels()}, scales));
      const std::string z_name =
          add_weight(g, RawTensorOf(names.Fresh(base + "_zero_point"), onnx::TensorProto::INT8, {layout.channels()},
                                    std::vector<int8_t>(static_cast<size_t>(layout.channels()), 0)));
      weight_value = names.Fresh(base + "_dq");
      onnx::NodeProto dq =
          MakeNode("DequantizeLinear", names.Fresh(base + "_dequantize"), {q_name, s_name, z_name}, {weight_value});
      SetIntAttribute(&dq, "axis", channel_axis);
      insertions.Before(g, node, std::move(dq));
      if (w.elem_type == onnx::TensorProto::FLOAT16) {
        const std::string cast = names.Fresh(base + "_half");
        onnx::NodeProto c = MakeNode("Cast", names.Fresh(base + "_cast"), {weight_value}, {cast});
        SetIntAttribute(&c, "to", onnx::TensorProto::FLOAT16);
        insertions.Before(g, node, std::move(c));
        weight_value = cast;
      }
      const int64_t packed_bits = kept * weight_bits;
      le.packed_bytes = (packed_bits + 7) / 8 + 4 * layout.channels();
    } else {
      w_hat = zeroed_w;
      const int32_t store = weight_bits == 16 ? onnx::TensorProto::FLOAT16 : w.elem_type;
      if (store == onnx::TensorProto::FLOAT16) {
        for (float& x : w_hat) x = RoundToHalf(x);
      }
      onnx::GraphProto* g = site.graph();
      weight_value = add_weight(g, FloatTensorOf(names.Fresh(base), store, dims, w_hat));
      if (store != w.elem_type) {
        const std::string cast = names.Fresh(base + "_float");
        onnx::NodeProto c = MakeNode("Cast", names.Fresh(base + "_cast"), {weight_value}, {cast});
        SetIntAttribute(&c, "to", w.elem_type);
        insertions.Before(g, node, std::move(c));
        weight_value = cast;
      }
      le.packed_bytes = (kept * weight_bits + 7) / 8;
    }
    if (p.pattern == PrunePattern::kUnstructured) le.packed_bytes += (static_cast<int64_t>(mask.size()) + 7) / 8;
    if (p.pattern == PrunePattern::kTwoFour) le.packed_bytes += (kept * 2 + 7) / 8;
    orphaned.insert(node->input(1));
    node->set_input(1, weight_value);

    // Distortion over the original weight: removed weights count in full.
    double kept_energy = 0, err = 0;
    for (size_t k = 0; k < orig.size(); ++k) {
      kept_energy += static_cast<double>(orig[k]) * orig[k];
      const double d = static_cast<double>(orig[k]) - w_hat[k];
      err += d * d;
    }
    le.weight_distortion = energy > 0 ? (energy - kept_energy + err) / energy : 0;

    // Bias: sliced with removed rows; int32 for an 8-bit-activation Conv so it fuses.
    if (rewrite_bias) {
      if (bias_constant == nullptr) {
        if (!rows_removed.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "layer '", layer.name, "': its bias is not a constant vector, so its channels cannot be removed"));
        }
      } else {
        const std::string old = node->input(2);
        bool done = false;
        if (quantize_bias && static_cast<int64_t>(scales.size()) == bdims[0]) {
          const float sx = act_quant.at(node->input(0)).scale;
          std::vector<int32_t> qb(bias.size());
          std::vector<float> bs(bias.size());
          bool fits = true;
          for (size_t c = 0; c < bias.size(); ++c) {
            bs[c] = sx * scales[c];
            const double v = std::nearbyint(static_cast<double>(bias[c]) / bs[c]);
            fits &= std::fabs(v) <= kInt32Max && bs[c] > 0;
            qb[c] = fits ? static_cast<int32_t>(v) : 0;
          }
          if (fits) {
            onnx::GraphProto* g = site.graph();
            const std::string qn =
                add_initializer(g, RawTensorOf(names.Fresh(base + "_bias_q"), onnx::TensorProto::INT32, bdims, qb));
            const std::string sn =
                add_initializer(g, RawTensorOf(names.Fresh(base + "_bias_scale"), onnx::TensorProto::FLOAT, bdims, bs));
            const std::string zn =
                add_initializer(g, RawTensorOf(names.Fresh(base + "_bias_zero_point"), onnx::TensorProto::INT32, bdims,
                                               std::vector<int32_t>(bias.size(), 0)));
            const std::string out = names.Fresh(base + "_bias_dq");
            onnx::NodeProto dq =
                MakeNode("DequantizeLinear", names.Fresh(base + "_bias_dequantize"), {qn, sn, zn}, {out});
            SetIntAttribute(&dq, "axis", 0);
            insertions.Before(g, node, std::move(dq));
            node->set_input(2, out);
            done = true;
          } else {
            notes.push_back("bias too large for int32 at the input and weight scales: kept float");
          }
        }
        if (!done) {
          const int32_t type = bias_constant->data_type() == onnx::TensorProto::FLOAT16 ? onnx::TensorProto::FLOAT16
                                                                                        : onnx::TensorProto::FLOAT;
          node->set_input(2,
                          add_initializer(site.graph(), FloatTensorOf(names.Fresh(base + "_bias"), type, bdims, bias)));
        }
        orphaned.insert(old);
      }
    }
    if (p.activation_bits == 8) {
      if (!main) {
        notes.push_back("activations inside a subgraph stay float");
      } else if (layer.weight_elem_type != onnx::TensorProto::FLOAT) {
        notes.push_back("fp16 activations stay float16");
      } else {
        le.activation_quantized = true;
      }
    } else if (p.activation_bits == 16) {
      notes.push_back("16-bit activations are the runtime's choice: float in the file");
    }
    le.note = absl::StrJoin(notes, "; ");
    report.packed_weight_bytes += le.packed_bytes;
  }

  // Activation QDQ pairs, once per tensor, right after its producer; every main-graph reader
  // (graph outputs excepted) takes the dequantized value.
  {
    onnx::GraphProto* g = proto.mutable_graph();
    std::map<std::string, onnx::NodeProto*> producer;
    for (onnx::NodeProto& n : *g->mutable_node()) {
      for (const std::string& o : n.output()) producer[o] = &n;
    }
    for (const auto& [tensor, q] : act_quant) {
      const std::string base = names.Fresh(absl::StrCat(tensor, "_squeeze"));
      const std::string s_name = add_initializer(
          g, RawTensorOf(names.Fresh(base + "_scale"), onnx::TensorProto::FLOAT, {}, std::vector<float>{q.scale}));
      const std::string z_name =
          add_initializer(g, RawTensorOf(names.Fresh(base + "_zero_point"), onnx::TensorProto::UINT8, {},
                                         std::vector<uint8_t>{q.zero_point}));
      const std::string quantized = names.Fresh(base + "_q");
      const std::string dequantized = names.Fresh(base + "_dq");
      for (onnx::NodeProto& n : *g->mutable_node()) {
        for (int k = 0; k < n.input_size(); ++k) {
          if (n.input(k) == tensor) n.set_input(k, dequantized);
        }
      }
      onnx::NodeProto qn =
          MakeNode("QuantizeLinear", names.Fresh(base + "_quantize"), {tensor, s_name, z_name}, {quantized});
      onnx::NodeProto dqn =
          MakeNode("DequantizeLinear", names.Fresh(base + "_dequantize"), {quantized, s_name, z_name}, {dequantized});
      auto it = producer.find(tensor);
      if (it == producer.end()) {
        insertions.Front(g, std::move(qn));
        insertions.Front(g, std::move(dqn));
      } else {
        insertions.After(g, it->second, std::move(qn));
        insertions.After(g, it->second, std::move(dqn));
      }
      ++report.quantized_activations;
    }
  }
  insertions.Apply();
  internal::RemoveUnreadConstants(&proto, orphaned);
  proto.mutable_graph()->clear_value_info();

  // The plan in metadata_props.
  auto set_meta = [&proto](const std::string& key, const std::string& value) {
    for (auto& prop : *proto.mutable_metadata_props()) {
      if (prop.key() == key) {
        prop.set_value(value);
        return;
      }
    }
    auto* prop = proto.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  };
  set_meta("squeeze.plan", PlanJson(analysis, plan, options.flavour));
  set_meta("squeeze.flavour", std::string(FlavourName(options.flavour)));
  for (const auto& [k, v] : options.metadata) set_meta(k, v);

  // Checked: libonnx's checker, then its type and shape inference in strict mode.
  absl::StatusOr<internal::ValidationResult> valid = internal::ValidateModel(&proto);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("the exported model: ", valid.status().message()));
  try {
    onnx::ModelProto copy = proto;
    onnx::ShapeInferenceOptions strict{true, 1, false};
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the exported model fails ONNX type checking: ", internal::OneLine(e.what())));
  }

  int64_t other = 0;
  for (const internal::NamedTensor& t : internal::AllConstants(proto)) {
    if (!weight_constants.count(t.name)) other += internal::StoredBytes(*t.tensor);
  }
  report.other_constant_bytes = other;
  report.packed_model_bytes = report.packed_weight_bytes + report.other_constant_bytes;
  result.bytes = proto.SerializeAsString();
  report.file_bytes = static_cast<int64_t>(result.bytes.size());
  return result;
}

}  // namespace squeeze::model
