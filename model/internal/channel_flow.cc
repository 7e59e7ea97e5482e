#include "model/internal/channel_flow.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model::internal {

namespace {

// Ops whose output has their first input's channels, one for one.
const std::set<std::string>& ChannelwiseUnaryOps() {
  static const std::set<std::string> kOps = {"Relu",
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
  return kOps;
}

// Elementwise ops of several inputs, which broadcast them to one another.
const std::set<std::string>& ElementwiseBinaryOps() {
  static const std::set<std::string> kOps = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"};
  return kOps;
}

// How many of `roots` are among `own`.
int64_t SharedCount(const std::vector<int64_t>& roots, const std::set<int64_t>& own) {
  int64_t shared = 0;
  for (int64_t r : roots) shared += own.count(r);
  return shared;
}

}  // namespace

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

std::vector<int64_t> ChannelFlow::Roots(const ChannelValue& value) const {
  std::vector<int64_t> roots;
  for (int64_t c = 0; c < value.count; ++c) roots.push_back(Find(value.base + c));
  return roots;
}

ChannelFlow::ClassIndex ChannelFlow::IndexClasses() const {
  ClassIndex index;
  const int64_t n = static_cast<int64_t>(source_.size());
  for (int64_t e = 0; e < n; ++e) {
    const int64_t r = Find(e);
    if (!pin_[e].empty() && !index.pinned.count(r)) index.pinned[r] = pin_[e];
    if (source_[e].first >= 0) index.producers[r].insert(source_[e].first);
  }
  for (int64_t e = 0; e < n; ++e) {
    if (source_[e].first >= 0) index.classes[static_cast<size_t>(source_[e].first)].insert(Find(e));
  }
  for (const onnx::NodeProto& node : model_->graph().node()) {
    auto layer = layer_of_node_.find(node.name());
    if (layer == layer_of_node_.end() || node.input_size() == 0) continue;
    const ChannelValue* x = Known(node.input(0));
    if (x == nullptr || x->count == 0) continue;
    index.inputs.emplace_back(layer->second, Roots(*x));
  }
  for (const onnx::NodeProto& node : model_->graph().node()) {
    if (layer_of_node_.count(node.name()) > 0 || node.output_size() == 0) continue;
    const ChannelValue* y = Known(node.output(0));
    if (y == nullptr || y->count == 0) continue;
    index.others.emplace_back(node.name(), Roots(*y));
  }
  for (const ParamSlice& s : slices_) {
    if (const onnx::TensorProto* t = Constant(s.node->input(s.input)); t != nullptr) {
      index.channel_constant_bytes[s.node->name()] += StoredBytes(*t);
    }
  }
  return index;
}

std::string ChannelFlow::WhyNoChannels(size_t layer) const {
  if (!analysis_.layers[layer].subgraph.empty()) return "a layer inside a subgraph";
  if (const std::string output = GraphOutputReached(analysis_.layers[layer].name); !output.empty()) {
    // The first reason a user needs: these channels are what the task reads (class logits).
    return absl::StrCat("its channels reach graph output '", output,
                        "' (what the task reads); only an ungrouped Conv's channels can be removed");
  }
  return "only an ungrouped Conv's channels can be removed";
}

void ChannelFlow::DecideRemovable(size_t layer, const std::set<int64_t>& own, const ClassIndex& index,
                                  ChannelPruningReach* reach) const {
  reach->removable = true;
  for (int64_t r : own) {
    if (auto p = index.pinned.find(r); p != index.pinned.end()) {
      reach->removable = false;
      reach->why_not = p->second;
      return;
    }
    auto producers = index.producers.find(r);
    if (producers != index.producers.end() && producers->second.size() > 1) {
      reach->removable = false;
      for (int64_t other : producers->second) {
        if (static_cast<size_t>(other) == layer) continue;
        reach->why_not = absl::StrCat("layer '", analysis_.layers[other].name,
                                      "' produces the same channels (Add/Mul/Concat partner)");
        break;
      }
      return;
    }
  }
}

void ChannelFlow::AddReaders(size_t layer, const std::set<int64_t>& own, const ClassIndex& index,
                             ChannelPruningReach* reach) {
  for (const auto& [j, roots] : index.inputs) {
    if (j == layer) continue;
    const int64_t shared = SharedCount(roots, own);
    if (shared > 0) reach->readers.emplace_back(j, static_cast<double>(shared) / static_cast<double>(roots.size()));
  }
  for (const auto& [name, roots] : index.others) {
    const int64_t shared = SharedCount(roots, own);
    if (shared == 0) continue;
    auto constants = index.channel_constant_bytes.find(name);
    reach->nodes.push_back({name, static_cast<double>(shared) / static_cast<double>(roots.size()),
                            constants == index.channel_constant_bytes.end() ? 0 : constants->second});
  }
}

std::vector<ChannelPruningReach> ChannelFlow::PerLayer() const {
  std::vector<ChannelPruningReach> out(analysis_.layers.size());
  const ClassIndex index = IndexClasses();
  for (size_t i = 0; i < out.size(); ++i) {
    ChannelPruningReach& reach = out[i];
    auto own = index.classes.find(i);
    if (own == index.classes.end()) {
      reach.why_not = WhyNoChannels(i);
      continue;
    }
    DecideRemovable(i, own->second, index, &reach);
    if (!reach.removable) continue;
    // Readers: layers whose input value carries these channels.
    AddReaders(i, own->second, index, &reach);
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
  if (op == "Conv" || op == "ConvTranspose") {
    VisitConv(node_ptr, op == "ConvTranspose");
  } else if (op == "BatchNormalization") {
    VisitBatchNorm(node_ptr);
  } else if (ChannelwiseUnaryOps().count(op)) {
    VisitUnary(node, op);
  } else if (ElementwiseBinaryOps().count(op)) {
    VisitBinary(node_ptr);
  } else if (op == "Concat") {
    VisitConcat(node);
  } else {
    PinAll(node);
  }
}

void ChannelFlow::VisitBatchNorm(onnx::NodeProto* node_ptr) {
  const onnx::NodeProto& node = *node_ptr;
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
}

void ChannelFlow::VisitUnary(const onnx::NodeProto& node, const std::string& op) {
  const ChannelValue* x = node.input_size() > 0 ? Known(node.input(0)) : nullptr;
  const bool sizes = op == "Resize" && node.input_size() > 3 && !node.input(3).empty();
  if (x == nullptr || sizes || node.output_size() < 1) return PinAll(node);
  const ChannelValue x_copy = *x;
  Link(x_copy, New(node.output(0), x_copy.count, x_copy.rank));
}

void ChannelFlow::VisitConcat(const onnx::NodeProto& node) {
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
