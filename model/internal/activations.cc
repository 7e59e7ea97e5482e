#include "model/internal/activations.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <set>

#include "absl/numeric/int128.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model::internal {
namespace {

// Bytes of one value are counted up to this (a crafted shape may claim any number); sums are
// taken in 128 bits and saturate at INT64_MAX.
constexpr int64_t kMaxValueBytes = int64_t{1} << 50;

// The names of the graph's constants: initializers and Constant nodes' outputs.
std::set<std::string> ConstantNames(const onnx::GraphProto& graph) {
  std::set<std::string> constants;
  for (const auto& t : graph.initializer()) constants.insert(t.name());
  for (const auto& n : graph.node()) {
    if (ConstantNodeValue(n) != nullptr) constants.insert(n.output().begin(), n.output().end());
  }
  return constants;
}

// The bytes of main-graph value `name` as far as its shape is known; 0 for a constant or "".
int64_t ValueBytes(const std::string& name, const std::set<std::string>& constants, const ShapeTable& shapes) {
  if (name.empty() || constants.count(name)) return 0;
  const ValueShape* shape = shapes.Find("", name);
  if (!shape || !shape->known) return 0;
  // Saturating: a crafted shape may claim more elements than int64 holds.
  absl::int128 count = 1;
  for (int64_t d : shape->dims) count = std::min<absl::int128>(count * std::max<int64_t>(d, 0), kMaxValueBytes);
  return static_cast<int64_t>(std::min<absl::int128>(count * ElementBits(shape->elem_type) / 8, kMaxValueBytes));
}

// What each node reads (its subgraphs' outer reads too), and the first and last node index at
// which each value that is not a constant is alive.
struct Lifetimes {
  std::vector<std::set<std::string>> reads;
  std::map<std::string, int> born, dies;
};
Lifetimes ValueLifetimes(const onnx::GraphProto& graph, const std::set<std::string>& constants) {
  const int n = graph.node_size();
  Lifetimes life;
  life.reads.resize(n);
  for (const auto& i : graph.input()) {
    if (!constants.count(i.name())) life.born[i.name()] = 0;
  }
  for (int k = 0; k < n; ++k) {
    const onnx::NodeProto& node = graph.node(k);
    life.reads[k].insert(node.input().begin(), node.input().end());
    for (const auto& a : node.attribute()) {
      if (a.has_g()) OuterNamesRead(a.g(), &life.reads[k]);
      for (const auto& sub : a.graphs()) OuterNamesRead(sub, &life.reads[k]);
    }
    for (const std::string& name : life.reads[k]) life.dies[name] = k;
    for (const std::string& out : node.output()) {
      if (!out.empty() && !constants.count(out)) life.born.emplace(out, k);
    }
  }
  for (const auto& o : graph.output()) life.dies[o.name()] = n - 1;
  return life;
}

// Per node index, the change in live bytes there: a value's bytes are added at its birth and
// removed after its last use (one entry more than nodes).
std::vector<absl::int128> LiveBytesDeltas(int node_count, const Lifetimes& life, const std::set<std::string>& constants,
                                          const ShapeTable& shapes) {
  std::vector<absl::int128> delta(static_cast<size_t>(node_count) + 1, 0);
  for (const auto& [name, first] : life.born) {
    auto last = life.dies.find(name);
    const int end = last == life.dies.end() ? first : std::max(first, last->second);
    const int64_t b = ValueBytes(name, constants, shapes);
    delta[first] += b;
    delta[end + 1] -= b;
  }
  return delta;
}

}  // namespace

std::vector<NodeActivations> ProfileActivations(const onnx::GraphProto& graph, const ShapeTable& shapes,
                                                const std::map<std::string, int>& layer_of_node) {
  const std::set<std::string> constants = ConstantNames(graph);
  const int n = graph.node_size();
  const Lifetimes life = ValueLifetimes(graph, constants);
  // A sweep: add a value's bytes at birth, remove them after its last use.
  const std::vector<absl::int128> delta = LiveBytesDeltas(n, life, constants, shapes);
  std::vector<NodeActivations> out;
  out.reserve(n);
  auto clamped = [](absl::int128 v) { return static_cast<int64_t>(std::min<absl::int128>(v, INT64_MAX)); };
  absl::int128 live = 0;
  for (int k = 0; k < n; ++k) {
    const onnx::NodeProto& node = graph.node(k);
    live += delta[k];
    NodeActivations a;
    a.name = node.name();
    a.op_type = QualifiedOpType(node);
    absl::int128 input = 0, output = 0;
    for (const std::string& in : life.reads[k]) input += ValueBytes(in, constants, shapes);
    for (const std::string& o : node.output()) output += ValueBytes(o, constants, shapes);
    a.input_bytes = clamped(input);
    a.output_bytes = clamped(output);
    a.live_bytes = clamped(live);
    auto layer = layer_of_node.find(node.name());
    if (layer != layer_of_node.end()) a.layer = layer->second;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace squeeze::model::internal
