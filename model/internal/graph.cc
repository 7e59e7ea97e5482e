#include "model/internal/graph.h"

#include <functional>
#include <map>
#include <queue>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace squeeze::model::internal {

std::string NormalizedDomain(const std::string& domain) { return domain == "ai.onnx" ? "" : domain; }

std::string QualifiedOpType(const onnx::NodeProto& node) {
  const std::string domain = NormalizedDomain(node.domain());
  return domain.empty() ? node.op_type() : absl::StrCat(domain, ":", node.op_type());
}

std::string SubgraphPath(const std::string& graph_path, const std::string& node_name, const std::string& attr) {
  return absl::StrCat(QualifiedNodeName(graph_path, node_name), "/", attr);
}

std::string QualifiedNodeName(const std::string& graph_path, const std::string& node_name) {
  return graph_path.empty() ? node_name : absl::StrCat(graph_path, "/", node_name);
}

int CanonicalizeNodeNames(onnx::ModelProto* model) {
  struct Entry {
    onnx::NodeProto* node;
    int index;
  };
  std::vector<Entry> nodes;
  ForEachGraph(*model->mutable_graph(), "", "",
               [&nodes](onnx::GraphProto& graph, const std::string&, const std::string&) {
                 for (int i = 0; i < graph.node_size(); ++i) nodes.push_back({graph.mutable_node(i), i});
               });
  // Names given by the model win over generated ones: collect them all first.
  std::set<std::string> taken;
  std::vector<Entry> rename;
  for (const Entry& e : nodes) {
    if (e.node->name().empty() || !taken.insert(e.node->name()).second) rename.push_back(e);
  }
  for (const Entry& e : rename) {
    const std::string base = absl::StrCat(e.node->op_type().empty() ? "node" : e.node->op_type(), "_", e.index);
    std::string name = base;
    for (int n = 1; taken.count(name); ++n) name = absl::StrCat(base, "_", n);
    taken.insert(name);
    e.node->set_name(name);
  }
  return static_cast<int>(rename.size());
}

void OuterNamesRead(const onnx::GraphProto& g, std::set<std::string>* out) {
  std::set<std::string> own;
  for (const auto& i : g.input()) own.insert(i.name());
  for (const auto& t : g.initializer()) own.insert(t.name());
  for (const auto& n : g.node()) own.insert(n.output().begin(), n.output().end());
  std::set<std::string> read;
  for (const auto& n : g.node()) {
    read.insert(n.input().begin(), n.input().end());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) OuterNamesRead(a.g(), &read);
      for (const auto& sub : a.graphs()) OuterNamesRead(sub, &read);
    }
  }
  for (const auto& o : g.output()) read.insert(o.name());
  for (const std::string& name : read) {
    if (!name.empty() && !own.count(name)) out->insert(name);
  }
}

namespace {

// Per node of a graph: the nodes that read its outputs, and how many nodes it waits for; whether
// every node already comes after the nodes it reads from.
struct Dependencies {
  std::vector<std::vector<int>> readers;
  std::vector<int> waiting;
  bool in_order = true;
};
Dependencies NodeDependencies(const onnx::GraphProto& graph) {
  const int n = graph.node_size();
  std::map<std::string, int> producer;
  for (int k = 0; k < n; ++k) {
    for (const std::string& out : graph.node(k).output()) {
      if (!out.empty()) producer.emplace(out, k);
    }
  }
  Dependencies deps;
  deps.readers.resize(n);
  deps.waiting.assign(n, 0);
  for (int k = 0; k < n; ++k) {
    const onnx::NodeProto& node = graph.node(k);
    std::set<std::string> reads(node.input().begin(), node.input().end());
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (a.has_g()) OuterNamesRead(a.g(), &reads);
      for (const onnx::GraphProto& sub : a.graphs()) OuterNamesRead(sub, &reads);
    }
    std::set<int> after;
    for (const std::string& name : reads) {
      auto p = producer.find(name);
      if (p != producer.end() && p->second != k) after.insert(p->second);
      if (p != producer.end() && p->second >= k) deps.in_order = false;
    }
    deps.waiting[k] = static_cast<int>(after.size());
    for (int p : after) deps.readers[p].push_back(k);
  }
  return deps;
}

// Kahn's algorithm, always taking the earliest ready node: the model's order where it can.
// InvalidArgument naming a node of graph `path` that depends on its own output.
absl::StatusOr<std::vector<int>> EarliestReadyOrder(const onnx::GraphProto& graph, const std::string& path,
                                                    Dependencies* deps) {
  const int n = graph.node_size();
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int k = 0; k < n; ++k) {
    if (deps->waiting[k] == 0) ready.push(k);
  }
  std::vector<int> order;
  while (!ready.empty()) {
    const int k = ready.top();
    ready.pop();
    order.push_back(k);
    for (int r : deps->readers[k]) {
      if (--deps->waiting[r] == 0) ready.push(r);
    }
  }
  if (static_cast<int>(order.size()) < n) {
    int stuck = 0;
    while (deps->waiting[stuck] == 0) ++stuck;
    return absl::InvalidArgumentError(absl::StrCat(
        "the graph has a cycle: node '", QualifiedNodeName(path, graph.node(stuck).name()), "' (",
        graph.node(stuck).op_type(), ") depends, through other nodes, on its own output; no order runs it"));
  }
  return order;
}

// Puts `graph`'s nodes in `order` (old indices, in their new order).
void PermuteNodes(const std::vector<int>& order, onnx::GraphProto* graph) {
  const int n = graph->node_size();
  std::vector<onnx::NodeProto> nodes(n);
  for (int k = 0; k < n; ++k) nodes[k].Swap(graph->mutable_node(k));
  for (int i = 0; i < n; ++i) graph->mutable_node(i)->Swap(&nodes[order[i]]);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SortNodesTopologically(onnx::ModelProto* model) {
  std::vector<std::string> reordered;
  absl::Status status;
  ForEachGraph(*model->mutable_graph(), "", "",
               [&](onnx::GraphProto& graph, const std::string& path, const std::string&) {
                 if (!status.ok()) return;
                 Dependencies deps = NodeDependencies(graph);
                 if (deps.in_order) return;
                 absl::StatusOr<std::vector<int>> order = EarliestReadyOrder(graph, path, &deps);
                 if (!order.ok()) {
                   status = order.status();
                   return;
                 }
                 PermuteNodes(*order, &graph);
                 reordered.push_back(path);
               });
  if (!status.ok()) return status;
  return reordered;
}

const onnx::TensorProto* ConstantNodeValue(const onnx::NodeProto& node) {
  if (node.op_type() != "Constant" || !NormalizedDomain(node.domain()).empty()) return nullptr;
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == "value" && attr.has_t()) return &attr.t();
  }
  return nullptr;
}

std::vector<NamedTensor> AllConstants(const onnx::ModelProto& model) {
  std::vector<NamedTensor> constants;
  ForEachGraph(model.graph(), "", "",
               [&constants](const onnx::GraphProto& graph, const std::string&, const std::string&) {
                 for (const onnx::TensorProto& t : graph.initializer()) constants.push_back({t.name(), &t});
                 for (const onnx::NodeProto& node : graph.node()) {
                   const onnx::TensorProto* value = ConstantNodeValue(node);
                   if (value) constants.push_back({node.output_size() > 0 ? node.output(0) : value->name(), value});
                 }
               });
  return constants;
}

std::vector<NamedTensor> AttributeTensors(const onnx::ModelProto& model) {
  std::vector<NamedTensor> tensors;
  ForEachGraph(model.graph(), "", "",
               [&tensors](const onnx::GraphProto& graph, const std::string&, const std::string&) {
                 for (const onnx::NodeProto& node : graph.node()) {
                   const onnx::TensorProto* constant = ConstantNodeValue(node);
                   for (const onnx::AttributeProto& attr : node.attribute()) {
                     const std::string name = absl::StrCat(node.name(), ".", attr.name());
                     if (attr.has_t() && &attr.t() != constant) tensors.push_back({name, &attr.t()});
                     for (int i = 0; i < attr.tensors_size(); ++i)
                       tensors.push_back({absl::StrCat(name, "[", i, "]"), &attr.tensors(i)});
                   }
                 }
               });
  return tensors;
}

ConstantScope::ConstantScope(const onnx::GraphProto& graph, const ConstantScope* parent) : parent_(parent) {
  for (const onnx::TensorProto& t : graph.initializer()) {
    constants_[t.name()] = {&t, WeightStorage::kInitializer};
  }
  // An input named like an initializer (IR < 4 lists initializers as inputs) stays a constant.
  for (const onnx::ValueInfoProto& input : graph.input()) {
    if (!constants_.count(input.name())) computed_.insert(input.name());
  }
  for (const onnx::NodeProto& node : graph.node()) {
    const onnx::TensorProto* value = ConstantNodeValue(node);
    for (const std::string& output : node.output()) {
      if (value && node.output_size() == 1) {
        constants_[output] = {value, WeightStorage::kConstantNode};
      } else if (!output.empty()) {
        computed_.insert(output);
      }
    }
  }
}

const ConstantRef* ConstantScope::Find(const std::string& name) const {
  auto it = constants_.find(name);
  if (it != constants_.end()) return &it->second;
  if (computed_.count(name)) return nullptr;
  return parent_ ? parent_->Find(name) : nullptr;
}

namespace {

// Keeps the elements of `field` for which keep(element) holds, in order.
template <typename T, typename Keep>
void Filter(google::protobuf::RepeatedPtrField<T>* field, Keep keep) {
  int kept = 0;
  for (int i = 0; i < field->size(); ++i) {
    if (!keep(field->Get(i))) continue;
    if (kept != i) field->SwapElements(kept, i);
    ++kept;
  }
  field->DeleteSubrange(kept, field->size() - kept);
}

// Every name read anywhere in the model: node inputs of every graph, and every graph's outputs.
std::set<std::string> ReadNames(onnx::ModelProto* model) {
  std::set<std::string> read;
  internal::ForEachGraph(model->graph(), "", "",
                         [&read](const onnx::GraphProto& graph, const std::string&, const std::string&) {
                           for (const onnx::NodeProto& node : graph.node()) {
                             read.insert(node.input().begin(), node.input().end());
                           }
                           for (const auto& output : graph.output()) read.insert(output.name());
                         });
  return read;
}

// Removes the constants among `candidates` that nothing reads any more (initializers, their IR < 4
// graph inputs, Constant nodes, value_info).
}  // namespace

void RemoveUnreadConstants(onnx::ModelProto* model, const std::set<std::string>& candidates) {
  const std::set<std::string> read = ReadNames(model);
  auto dead = [&](const std::string& name) { return candidates.count(name) && !read.count(name); };
  internal::ForEachGraph(*model->mutable_graph(), "", "",
                         [&](onnx::GraphProto& graph, const std::string&, const std::string&) {
                           std::set<std::string> removed;
                           Filter(graph.mutable_initializer(), [&](const onnx::TensorProto& t) {
                             if (!dead(t.name())) return true;
                             removed.insert(t.name());
                             return false;
                           });
                           Filter(graph.mutable_node(), [&](const onnx::NodeProto& n) {
                             if (internal::ConstantNodeValue(n) == nullptr || n.output_size() != 1) return true;
                             if (!dead(n.output(0))) return true;
                             removed.insert(n.output(0));
                             return false;
                           });
                           auto keep = [&](const onnx::ValueInfoProto& v) { return !removed.count(v.name()); };
                           Filter(graph.mutable_input(), keep);
                           Filter(graph.mutable_value_info(), keep);
                         });
}

const onnx::TensorProto* FindConstant(const std::vector<onnx::GraphProto*>& scopes, const std::string& name) {
  for (onnx::GraphProto* graph : scopes) {
    for (const onnx::TensorProto& t : graph->initializer()) {
      if (t.name() == name) return &t;
    }
    for (const onnx::NodeProto& node : graph->node()) {
      for (const std::string& output : node.output()) {
        if (output != name) continue;
        if (node.output_size() != 1) return nullptr;
        return ConstantNodeValue(node);
      }
    }
    for (const auto& input : graph->input()) {
      if (input.name() == name) return nullptr;
    }
  }
  return nullptr;
}

int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return a.i();
  }
  return fallback;
}

}  // namespace squeeze::model::internal
