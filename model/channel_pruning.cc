#include "model/channel_pruning.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "model/internal/channel_flow.h"
#include "model/loader.h"

namespace squeeze::model {

namespace {

// What the channel flow takes besides the model: its main-graph layers by node name, and a pruned
// row flag per output channel of each layer (none set).
struct FlowInputs {
  std::map<std::string, size_t> layer_of_node;
  std::vector<std::vector<uint8_t>> pruned_rows;
};

FlowInputs NothingPruned(const Analysis& analysis) {
  FlowInputs in;
  in.pruned_rows.resize(analysis.layers.size());
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (analysis.layers[i].subgraph.empty()) in.layer_of_node[analysis.layers[i].name] = i;
    in.pruned_rows[i].assign(static_cast<size_t>(std::max<int64_t>(0, analysis.layers[i].out_channels)), 0);
  }
  return in;
}

// `model` without its initializers' values (names, types and dims kept): all the flow reads of them
// when only which channels go is asked. The flow walks a mutable model, and a sensitivity
// measurement asks once or twice per Conv: a copy of every weight each time would cost as much as
// the model is large.
onnx::ModelProto StructureOf(const onnx::ModelProto& model) {
  onnx::ModelProto out;
  out.set_ir_version(model.ir_version());
  *out.mutable_opset_import() = model.opset_import();
  const onnx::GraphProto& g = model.graph();
  onnx::GraphProto* s = out.mutable_graph();
  s->set_name(g.name());
  *s->mutable_node() = g.node();
  *s->mutable_input() = g.input();
  *s->mutable_output() = g.output();
  *s->mutable_value_info() = g.value_info();
  for (const onnx::TensorProto& t : g.initializer()) {
    onnx::TensorProto* c = s->add_initializer();
    c->set_name(t.name());
    c->set_data_type(t.data_type());
    *c->mutable_dims() = t.dims();
  }
  return out;
}

}  // namespace

std::vector<ChannelPruningReach> AnalyzeChannelPruning(const LoadedModel& model) {
  onnx::ModelProto proto = model.proto;  // the flow walks a mutable model; this one stays as it is
  const FlowInputs in = NothingPruned(model.analysis);
  internal::ChannelFlow flow(&proto, model.analysis, in.layer_of_node, in.pruned_rows);
  flow.Run();
  return flow.PerLayer();
}

std::map<std::string, std::set<int64_t>> ChannelsRemovedBy(const LoadedModel& model, size_t layer,
                                                           const std::vector<uint8_t>& removed_rows) {
  const Analysis& analysis = model.analysis;
  std::map<std::string, std::set<int64_t>> out;
  if (layer >= analysis.layers.size() || !analysis.layers[layer].subgraph.empty()) return out;
  onnx::ModelProto proto = StructureOf(model.proto);
  FlowInputs in = NothingPruned(analysis);
  std::vector<uint8_t>& rows = in.pruned_rows[layer];
  for (size_t c = 0; c < rows.size() && c < removed_rows.size(); ++c) rows[c] = removed_rows[c];
  internal::ChannelFlow flow(&proto, analysis, in.layer_of_node, in.pruned_rows);
  flow.Run();
  for (const onnx::NodeProto& node : proto.graph().node()) {
    for (const auto* values : {&node.input(), &node.output()}) {
      for (const std::string& v : *values) {
        if (v.empty() || out.count(v) > 0) continue;
        std::set<int64_t> removed = flow.Removed(v);
        if (!removed.empty()) out.emplace(v, std::move(removed));
      }
    }
  }
  return out;
}

std::optional<double> AlignedChannelRatio(int64_t out_channels, double ratio, int alignment) {
  const int64_t a = std::max(1, alignment);
  const int64_t most = (out_channels - 1) / a * a;  // the largest aligned count below out
  if (ratio <= 0 || most < a) return std::nullopt;
  const double out = static_cast<double>(out_channels);
  const int64_t target = out_channels - std::llround(out * ratio);  // the unaligned count kept
  const int64_t kept =
      std::clamp<int64_t>(std::llround(static_cast<double>(target) / static_cast<double>(a)) * a, a, most);
  return static_cast<double>(out_channels - kept) / out;
}

std::vector<LayerPlan> UniformChannelPlan(const std::vector<ChannelPruningReach>& reach, const LoadedModel& model,
                                          LayerPlan precision, double ratio, int alignment) {
  const Analysis& analysis = model.analysis;
  precision.pattern = Sparsity::kDense;
  precision.prune_ratio = 0;
  std::vector<LayerPlan> plan(analysis.layers.size(), precision);
  for (size_t i = 0; i < plan.size() && i < reach.size(); ++i) {
    const Layer& layer = analysis.layers[i];
    if (!reach[i].removable || layer.grouped) continue;
    const std::optional<double> r = AlignedChannelRatio(layer.out_channels, ratio, alignment);
    if (!r) continue;
    plan[i].pattern = Sparsity::kOutputChannel;
    plan[i].prune_ratio = *r;
  }
  return plan;
}

}  // namespace squeeze::model
