// Walking a model's graphs — the main graph and every subgraph held in a node attribute (If
// branches, Loop and Scan bodies) — and the names things get on the way.
#ifndef SQUEEZE_MODEL_INTERNAL_GRAPH_H_
#define SQUEEZE_MODEL_INTERNAL_GRAPH_H_

#include <onnx/onnx_pb.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "model/analysis.h"

namespace squeeze::model::internal {

// A node's domain with the default domain's two spellings ("" and "ai.onnx") made "".
std::string NormalizedDomain(const std::string& domain);

// "Conv" for the default domain, "com.microsoft:FusedConv" otherwise.
std::string QualifiedOpType(const onnx::NodeProto& node);

// The path of the subgraph in attribute `attr` of `node` of the graph at `graph_path`:
// "node/attr" under the main graph (path ""), "outer/body/node/attr" when nested.
std::string SubgraphPath(const std::string& graph_path, const std::string& node_name, const std::string& attr);

// A node's name qualified by its graph's path: "node", or "parent/attr/node" in a subgraph.
std::string QualifiedNodeName(const std::string& graph_path, const std::string& node_name);

// Mutable and const access alike, for ForEachGraph.
inline onnx::NodeProto& NodeAt(onnx::GraphProto& g, int i) { return *g.mutable_node(i); }
inline const onnx::NodeProto& NodeAt(const onnx::GraphProto& g, int i) { return g.node(i); }
inline onnx::AttributeProto& AttrAt(onnx::NodeProto& n, int i) { return *n.mutable_attribute(i); }
inline const onnx::AttributeProto& AttrAt(const onnx::NodeProto& n, int i) { return n.attribute(i); }
inline onnx::GraphProto& GraphOf(onnx::AttributeProto& a) { return *a.mutable_g(); }
inline const onnx::GraphProto& GraphOf(const onnx::AttributeProto& a) { return a.g(); }
inline onnx::GraphProto& GraphOf(onnx::AttributeProto& a, int i) { return *a.mutable_graphs(i); }
inline const onnx::GraphProto& GraphOf(const onnx::AttributeProto& a, int i) { return a.graphs(i); }

// Calls fn(graph, path, parent_path) for `graph` and, in pre-order, for every subgraph below it:
// a node's subgraphs are visited right after the node's graph, in node order. Start with path
// "" and parent_path "" for the main graph. `Graph` is onnx::GraphProto or its const.
template <typename Graph, typename Fn>
void ForEachGraph(Graph& graph, const std::string& path, const std::string& parent_path, Fn&& fn) {
  fn(graph, path, parent_path);
  for (int i = 0; i < graph.node_size(); ++i) {
    auto& node = NodeAt(graph, i);
    for (int a = 0; a < node.attribute_size(); ++a) {
      auto& attr = AttrAt(node, a);
      if (!attr.has_g() && attr.graphs_size() == 0) continue;
      const std::string sub = SubgraphPath(path, node.name(), attr.name());
      if (attr.has_g()) ForEachGraph(GraphOf(attr), sub, path, fn);
      for (int g = 0; g < attr.graphs_size(); ++g) {
        ForEachGraph(GraphOf(attr, g), absl::StrCat(sub, "[", g, "]"), path, fn);
      }
    }
  }
}

// Gives every node of every graph a name unique in the whole model: an unnamed node, or one
// whose name an earlier node already has, becomes "<op>_<index>" (its position in its graph),
// with "_<n>" appended when that is taken too. Returns how many nodes were renamed.
int CanonicalizeNodeNames(onnx::ModelProto* model);

// Every name a subgraph reads from its enclosing scopes (its own values excluded), recursively.
void OuterNamesRead(const onnx::GraphProto& g, std::set<std::string>* out);

// Reorders the nodes of every graph so that each comes after the nodes whose outputs it reads
// (through its subgraphs too), keeping the model's order wherever that already allows, as ONNX
// Runtime sorts them. Returns the paths of the graphs it reordered ("" = the main graph);
// InvalidArgument naming a node on a cycle when no order can run the graph.
absl::StatusOr<std::vector<std::string>> SortNodesTopologically(onnx::ModelProto* model);

// A constant tensor as the graph sees it.
struct ConstantRef {
  const onnx::TensorProto* tensor = nullptr;
  WeightStorage storage = WeightStorage::kInitializer;
};

// The constants visible in one graph: its initializers and the outputs of its Constant nodes
// (those with a tensor `value`), and through `parent` the constants of the enclosing graphs,
// which subgraphs may use by name — unless this graph redefines the name (as an input or a
// computed value). Holds pointers into the graph and the parent scope, which must outlive it.
// Immutable once built, so safe to read from several threads.
class ConstantScope {
 public:
  ConstantScope(const onnx::GraphProto& graph, const ConstantScope* parent);

  // The constant named `name`, or nullptr when the name is computed or not known here.
  const ConstantRef* Find(const std::string& name) const;

 private:
  const ConstantScope* parent_;
  std::map<std::string, ConstantRef> constants_;
  std::set<std::string> computed_;
};

// The dense tensor a Constant node produces (its `value` attribute), or nullptr.
const onnx::TensorProto* ConstantNodeValue(const onnx::NodeProto& node);

// The constant `name` as seen from `scopes` (innermost first): an initializer or a Constant
// node's value; nullptr when a graph input or a computed value shadows it, or nothing names it.
const onnx::TensorProto* FindConstant(const std::vector<onnx::GraphProto*>& scopes, const std::string& name);

// The INT attribute `name` of `node`, or `fallback` when it has none.
int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback);

// A constant tensor and the name the graph knows it by (a Constant node's output name).
struct NamedTensor {
  std::string name;
  const onnx::TensorProto* tensor;
};

// Every dense constant of the model, initializers and Constant values, in every graph.
std::vector<NamedTensor> AllConstants(const onnx::ModelProto& model);

// The other tensors held in node attributes (ConstantOfShape's value, ...), named
// "<node>.<attribute>": checked like constants, never weights.
std::vector<NamedTensor> AttributeTensors(const onnx::ModelProto& model);

// Removes the constants among `candidates` that nothing reads any more (initializers, their IR < 4
// graph inputs, Constant nodes, value_info), in every graph of the model.
void RemoveUnreadConstants(onnx::ModelProto* model, const std::set<std::string>& candidates);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_GRAPH_H_
