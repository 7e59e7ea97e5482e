#include "model/internal/channel_flow.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"

namespace squeeze::model::internal {

ChannelFlow::ChannelFlow(onnx::ModelProto* model, const Analysis& analysis,
                         const std::map<std::string, size_t>& layer_of_node,
                         const std::vector<std::vector<uint8_t>>& pruned_rows)
    : model_(model), analysis_(analysis), layer_of_node_(layer_of_node), pruned_rows_(pruned_rows) {}

int64_t ChannelFlow::Find(int64_t x) const {
  while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
  return x;
}

void ChannelFlow::Union(int64_t a, int64_t b) {
  a = Find(a);
  b = Find(b);
  if (a != b) parent_[b] = a;
}

void ChannelFlow::Run() {
  onnx::GraphProto* graph = model_->mutable_graph();
  for (onnx::NodeProto& node : *graph->mutable_node()) Visit(&node);
  for (const auto& out : graph->output()) Pin(out.name(), absl::StrCat("it is graph output '", out.name(), "'"));
  // Names read inside subgraphs.
  for (const onnx::NodeProto& node : graph->node()) {
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (!a.has_g() && a.graphs_size() == 0) continue;
      auto pin_reads = [&](const onnx::GraphProto& g, const std::string&, const std::string&) {
        for (const onnx::NodeProto& n : g.node()) {
          for (const std::string& in : n.input()) Pin(in, absl::StrCat("subgraph of '", node.name(), "' reads it"));
        }
      };
      if (a.has_g()) ForEachGraph(a.g(), "", "", pin_reads);
      for (const auto& g : a.graphs()) ForEachGraph(g, "", "", pin_reads);
    }
  }
  // Classes: removable when unpinned, with sources, all of them pruned.
  const int64_t n = static_cast<int64_t>(source_.size());
  std::map<int64_t, std::string> blocked;  // root -> why not removable
  std::set<int64_t> has_source;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t r = Find(e);
    if (!pin_[e].empty() && !blocked.count(r)) blocked[r] = pin_[e];
    if (source_[e].first < 0) continue;
    has_source.insert(r);
    const auto [layer, row] = source_[e];
    if (!pruned_rows_[layer][row] && !blocked.count(r)) {
      blocked[r] = absl::StrCat("layer '", analysis_.layers[layer].name, "' keeps it (Add/Mul/Concat partner)");
    }
  }
  removed_.assign(n, false);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t r = Find(e);
    removed_[e] = has_source.count(r) && !blocked.count(r);
    if (source_[e].first >= 0 && pruned_rows_[source_[e].first][source_[e].second] && !removed_[e]) {
      auto it = blocked.find(r);
      why_kept_[source_[e].first].insert(it == blocked.end() ? "no channel path" : it->second);
    }
  }
}

std::set<int64_t> ChannelFlow::Removed(const std::string& value) const {
  std::set<int64_t> out;
  auto it = values_.find(value);
  if (it == values_.end()) return out;
  for (int64_t c = 0; c < it->second.count; ++c) {
    if (removed_[it->second.base + c]) out.insert(c);
  }
  return out;
}

std::string ChannelFlow::WhyKept(size_t layer) const {
  auto it = why_kept_.find(layer);
  if (it == why_kept_.end()) return "";
  return absl::StrJoin(it->second, "; ");
}

std::string ChannelFlow::GraphOutputReached(const std::string& layer_node) const {
  const onnx::GraphProto& graph = model_->graph();
  std::set<std::string> outputs;
  for (const auto& out : graph.output()) outputs.insert(out.name());
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  std::vector<std::string> frontier;
  for (const onnx::NodeProto& node : graph.node()) {
    if (node.name() == layer_node) frontier.assign(node.output().begin(), node.output().end());
    if (layer_of_node_.count(node.name()) > 0) continue;  // another layer mixes the channels
    for (const std::string& in : node.input()) readers[in].push_back(&node);
  }
  std::set<std::string> seen(frontier.begin(), frontier.end());
  while (!frontier.empty()) {
    const std::string value = frontier.back();
    frontier.pop_back();
    if (outputs.count(value) > 0) return value;
    auto it = readers.find(value);
    if (it == readers.end()) continue;
    for (const onnx::NodeProto* node : it->second) {
      for (const std::string& out : node->output()) {
        if (seen.insert(out).second) frontier.push_back(out);
      }
    }
  }
  return "";
}

std::vector<ChannelPruningReach> ChannelFlow::PerLayer() const {
  std::vector<ChannelPruningReach> out(analysis_.layers.size());
  const int64_t n = static_cast<int64_t>(source_.size());
  // Per class: its pin, and the layers producing it.
  std::map<int64_t, std::string> pinned;
  std::map<int64_t, std::set<int64_t>> producers;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t r = Find(e);
    if (!pin_[e].empty() && !pinned.count(r)) pinned[r] = pin_[e];
    if (source_[e].first >= 0) producers[r].insert(source_[e].first);
  }
  // Per layer: the classes of its output channels.
  std::map<size_t, std::set<int64_t>> classes;
  for (int64_t e = 0; e < n; ++e) {
    if (source_[e].first >= 0) classes[static_cast<size_t>(source_[e].first)].insert(Find(e));
  }
  // Per main-graph layer: the classes of its input's channels (empty when the flow does not know it).
  std::vector<std::pair<size_t, std::vector<int64_t>>> inputs;  // layer, class of each input channel
  for (const onnx::NodeProto& node : model_->graph().node()) {
    auto layer = layer_of_node_.find(node.name());
    if (layer == layer_of_node_.end() || node.input_size() == 0) continue;
    const ChannelValue* x = Known(node.input(0));
    if (x == nullptr || x->count == 0) continue;
    std::vector<int64_t> roots;
    for (int64_t c = 0; c < x->count; ++c) roots.push_back(Find(x->base + c));
    inputs.emplace_back(layer->second, std::move(roots));
  }
  // Per other main-graph node: the classes of its output's channels.
  std::vector<std::pair<std::string, std::vector<int64_t>>> others;
  for (const onnx::NodeProto& node : model_->graph().node()) {
    if (layer_of_node_.count(node.name()) > 0 || node.output_size() == 0) continue;
    const ChannelValue* y = Known(node.output(0));
    if (y == nullptr || y->count == 0) continue;
    std::vector<int64_t> roots;
    for (int64_t c = 0; c < y->count; ++c) roots.push_back(Find(y->base + c));
    others.emplace_back(node.name(), std::move(roots));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    ChannelPruningReach& reach = out[i];
    auto own = classes.find(i);
    if (own == classes.end()) {
      if (!analysis_.layers[i].subgraph.empty()) {
        reach.why_not = "a layer inside a subgraph";
      } else if (const std::string output = GraphOutputReached(analysis_.layers[i].name); !output.empty()) {
        // The first reason a user needs: these channels are what the task reads (class logits).
        reach.why_not = absl::StrCat("its channels reach graph output '", output,
                                     "' (what the task reads); only an ungrouped Conv's channels can be removed");
      } else {
        reach.why_not = "only an ungrouped Conv's channels can be removed";
      }
      continue;
    }
    reach.removable = true;
    for (int64_t r : own->second) {
      if (auto p = pinned.find(r); p != pinned.end()) {
        reach.removable = false;
        reach.why_not = p->second;
        break;
      }
      if (producers[r].size() > 1) {
        reach.removable = false;
        for (int64_t other : producers[r]) {
          if (static_cast<size_t>(other) == i) continue;
          reach.why_not = absl::StrCat("layer '", analysis_.layers[other].name,
                                       "' produces the same channels (Add/Mul/Concat partner)");
          break;
        }
        break;
      }
    }
    if (!reach.removable) continue;
    // Readers: layers whose input value carries these channels.
    for (const auto& [j, roots] : inputs) {
      if (j == i) continue;
      int64_t shared = 0;
      for (int64_t r : roots) shared += own->second.count(r);
      if (shared > 0) reach.readers.emplace_back(j, static_cast<double>(shared) / static_cast<double>(roots.size()));
    }
    for (const auto& [name, roots] : others) {
      int64_t shared = 0;
      for (int64_t r : roots) shared += own->second.count(r);
      if (shared > 0) reach.nodes.emplace_back(name, static_cast<double>(shared) / static_cast<double>(roots.size()));
    }
  }
  return out;
}

const ChannelFlow::ChannelValue* ChannelFlow::Known(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

const ChannelFlow::ChannelValue& ChannelFlow::New(const std::string& name, int64_t count, int64_t rank) {
  ChannelValue v{static_cast<int64_t>(source_.size()), count, rank};
  for (int64_t c = 0; c < count; ++c) {
    parent_.push_back(static_cast<int64_t>(parent_.size()));
    source_.push_back({-1, 0});
    pin_.push_back("");
  }
  return values_[name] = v;
}

void ChannelFlow::Pin(const std::string& name, const std::string& reason) {
  const ChannelValue* v = Known(name);
  if (v == nullptr) return;
  for (int64_t c = 0; c < v->count; ++c) {
    if (pin_[v->base + c].empty()) pin_[v->base + c] = reason;
  }
}

void ChannelFlow::Link(const ChannelValue& a, const ChannelValue& b, int64_t offset_b) {
  for (int64_t c = 0; c < a.count; ++c) Union(a.base + c, b.base + offset_b + c);
}

void ChannelFlow::PinInputs(const onnx::NodeProto& node, const std::string& why) {
  for (const std::string& in : node.input()) Pin(in, why);
}

void ChannelFlow::PinAll(const onnx::NodeProto& node) { PinInputs(node, Feeds(node)); }

const onnx::TensorProto* ChannelFlow::Constant(const std::string& name) const {
  return FindConstant({model_->mutable_graph()}, name);
}

std::string ChannelFlow::Feeds(const onnx::NodeProto& node) const {
  return absl::StrCat("it feeds ", node.op_type(), " '", node.name(), "'");
}

void ChannelFlow::Visit(onnx::NodeProto* node_ptr) {
  const onnx::NodeProto& node = *node_ptr;
  const std::string op = NormalizedDomain(node.domain()).empty() ? node.op_type() : "";
  if (op == "Constant") return;
  static const std::set<std::string> kUnary = {"Relu",
                                               "Sigmoid",
                                               "HardSigmoid",
                                               "HardSwish",
                                               "Clip",
                                               "LeakyRelu",
                                               "Tanh",
                                               "Identity",
                                               "Exp",
                                               "Neg",
                                               "Abs",
                                               "Sqrt",
                                               "Softplus",
                                               "Elu",
                                               "Selu",
                                               "Cast",
                                               "Floor",
                                               "Ceil",
                                               "Round",
                                               "Reciprocal",
                                               "Erf",
                                               "Dropout",
                                               "MaxPool",
                                               "AveragePool",
                                               "GlobalAveragePool",
                                               "GlobalMaxPool",
                                               "Resize",
                                               "Upsample",
                                               "Mish",
                                               "Sign",
                                               "ThresholdedRelu"};
  static const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"};
  if (op == "Conv" || op == "ConvTranspose") {
    VisitConv(node_ptr, op == "ConvTranspose");
  } else if (op == "BatchNormalization") {
    const ChannelValue* x = Known(node.input(0));
    bool ok = x != nullptr && node.output_size() >= 1;
    for (int i = 1; ok && i < 5 && i < node.input_size(); ++i) {
      const onnx::TensorProto* t = Constant(node.input(i));
      ok = t != nullptr && t->dims_size() == 1 && t->dims(0) == x->count;
    }
    if (!ok) return PinAll(node);
    const ChannelValue x_copy = *x;
    Link(x_copy, New(node.output(0), x_copy.count, x_copy.rank));
    for (int i = 1; i < 5 && i < node.input_size(); ++i) slices_.push_back({node_ptr, i, 0, node.input(0)});
  } else if (kUnary.count(op)) {
    const ChannelValue* x = node.input_size() > 0 ? Known(node.input(0)) : nullptr;
    const bool sizes = op == "Resize" && node.input_size() > 3 && !node.input(3).empty();
    if (x == nullptr || sizes || node.output_size() < 1) return PinAll(node);
    const ChannelValue x_copy = *x;
    Link(x_copy, New(node.output(0), x_copy.count, x_copy.rank));
  } else if (kBinary.count(op)) {
    VisitBinary(node_ptr);
  } else if (op == "Concat") {
    int64_t rank = 0, total = 0;
    std::vector<ChannelValue> inputs;
    for (const std::string& in : node.input()) {
      const ChannelValue* v = Known(in);
      if (v == nullptr || (rank != 0 && v->rank != rank)) return PinAll(node);
      rank = v->rank;
      inputs.push_back(*v);
      total += v->count;
    }
    int64_t axis = IntAttribute(node, "axis", 0);
    if (axis < 0) axis += rank;
    if (inputs.empty() || axis != 1) return PinAll(node);
    const ChannelValue out = New(node.output(0), total, rank);
    int64_t offset = 0;
    for (const ChannelValue& v : inputs) {
      Link(v, out, offset);
      offset += v.count;
    }
  } else {
    PinAll(node);
  }
}

void ChannelFlow::VisitConv(onnx::NodeProto* node_ptr, bool transpose) {
  const onnx::NodeProto& node = *node_ptr;
  const onnx::TensorProto* w = node.input_size() > 1 ? Constant(node.input(1)) : nullptr;
  auto layer = layer_of_node_.find(node.name());
  if (w == nullptr || w->dims_size() < 3 || layer == layer_of_node_.end()) return PinAll(node);
  const int64_t groups = IntAttribute(node, "group", 1);
  const ChannelValue* x = Known(node.input(0));
  const int64_t rank = w->dims_size();
  if (transpose) {
    if (groups != 1 || (x != nullptr && x->count != w->dims(0))) return PinAll(node);
    New(node.output(0), w->dims(1), rank);  // no source: ConvTranspose outputs are not pruned away
    return;
  }
  const int64_t out_channels = w->dims(0);
  if (groups == 1) {
    if (x != nullptr && x->count != w->dims(1)) Pin(node.input(0), Feeds(node));
    const ChannelValue y = New(node.output(0), out_channels, rank);
    // Every Conv is a source of its channels: a pruned row may go, a kept one blocks its class.
    const size_t i = layer->second;
    for (int64_t c = 0; c < out_channels; ++c) source_[y.base + c] = {static_cast<int64_t>(i), c};
    return;
  }
  if (x != nullptr && groups == x->count && groups == out_channels && w->dims(1) == 1) {
    const ChannelValue x_copy = *x;
    Link(x_copy, New(node.output(0), out_channels, rank));
    depthwise_[node_ptr] = node.input(0);
    return;
  }
  PinAll(node);
  const ChannelValue y = New(node.output(0), out_channels, rank);
  for (int64_t c = 0; c < y.count; ++c) pin_[y.base + c] = absl::StrCat("grouped Conv '", node.name(), "'");
}

void ChannelFlow::VisitBinary(onnx::NodeProto* node_ptr) {
  const onnx::NodeProto& node = *node_ptr;
  int64_t rank = 0, count = 0;
  for (const std::string& in : node.input()) {
    if (const ChannelValue* v = Known(in)) {
      rank = std::max(rank, v->rank);
    } else if (const onnx::TensorProto* t = Constant(in)) {
      rank = std::max<int64_t>(rank, t->dims_size());
    } else {
      return PinAll(node);  // computed outside the flow: cannot say how it broadcasts
    }
  }
  if (rank < 2) return PinAll(node);
  std::vector<ChannelValue> linked;
  std::vector<std::pair<int, int>> constants;  // input index, axis
  for (int i = 0; i < node.input_size(); ++i) {
    if (const ChannelValue* v = Known(node.input(i))) {
      if (v->rank != rank) return PinAll(node);
      count = std::max(count, v->count);
      if (v->count != 1) linked.push_back(*v);
      continue;
    }
    const onnx::TensorProto* t = Constant(node.input(i));
    const int64_t axis = t->dims_size() - (rank - 1);
    if (axis < 0 || t->dims(static_cast<int>(axis)) == 1) continue;
    count = std::max<int64_t>(count, t->dims(static_cast<int>(axis)));
    constants.push_back({i, static_cast<int>(axis)});
  }
  for (const ChannelValue& v : linked) {
    if (v.count != count) return PinAll(node);
  }
  for (const auto& [i, axis] : constants) {
    if (Constant(node.input(i))->dims(axis) != count) return PinAll(node);
  }
  if (linked.empty()) return PinAll(node);
  const ChannelValue out = New(node.output(0), count, rank);
  for (const ChannelValue& v : linked) Link(v, out);
  for (const auto& [i, axis] : constants) slices_.push_back({node_ptr, i, axis, node.output(0)});
}

}  // namespace squeeze::model::internal
