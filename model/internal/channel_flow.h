// Channel flow: how the output channels of the main graph's Convs travel through the graph, so
// pruning knows which channels can leave it (DESIGN.md §6). Every value whose channel axis the
// flow can follow (through BatchNormalization, elementwise ops, depthwise Convs, Concat along the
// channels) gets one element per channel; elements that must stay the same channel (an Add's two
// inputs, a depthwise Conv's input and output) are joined in classes. A class is pinned when it
// reaches a graph output, a subgraph or an op the flow cannot follow.
//
// The exporter asks which channels a plan removes (a class goes only when it is unpinned and every
// Conv producing it prunes it); the search asks, per layer, whether pruning that layer alone
// removes anything and which layers read its channels (PerLayer).
#ifndef SQUEEZE_MODEL_INTERNAL_CHANNEL_FLOW_H_
#define SQUEEZE_MODEL_INTERNAL_CHANNEL_FLOW_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/analysis.h"
#include "model/channel_pruning.h"

namespace squeeze::model::internal {

// A slice to apply to a constant input of a node once removed channels are known.
struct ParamSlice {
  onnx::NodeProto* node = nullptr;
  int input = 0;
  int axis = 0;             // axis of the constant that runs along the channels
  std::string channels_of;  // the value whose removed channels apply
};

class ChannelFlow {
 public:
  // `pruned_rows[layer][c]`: the plan prunes output channel c of the layer. `layer_of_node` maps
  // main-graph node names to layers. The model, the analysis and the maps must outlive the flow.
  ChannelFlow(onnx::ModelProto* model, const Analysis& analysis, const std::map<std::string, size_t>& layer_of_node,
              const std::vector<std::vector<uint8_t>>& pruned_rows);

  // Follows the channels through the main graph and decides which elements go.
  void Run();

  // Removed channel indices of a main-graph value (empty for values the flow does not know).
  std::set<int64_t> Removed(const std::string& value) const;
  const std::vector<ParamSlice>& slices() const { return slices_; }
  const std::map<onnx::NodeProto*, std::string>& depthwise() const { return depthwise_; }
  // Why some pruned rows of a layer stay (as zeros).
  std::string WhyKept(size_t layer) const;

  // After Run: per Analysis::layers entry, what pruning that layer alone would do.
  std::vector<ChannelPruningReach> PerLayer() const;

 private:
  struct ChannelValue {
    int64_t base = 0;
    int64_t count = 0;
    int64_t rank = 0;
  };
  // What PerLayer reads of the classes (by root): each one's pin and producing layers, each layer's
  // output classes, each main-graph layer's input classes and each other main-graph node's output
  // classes (the last two per channel).
  struct ClassIndex {
    std::map<int64_t, std::string> pinned;
    std::map<int64_t, std::set<int64_t>> producers;
    std::map<size_t, std::set<int64_t>> classes;
    std::vector<std::pair<size_t, std::vector<int64_t>>> inputs;       // layer, class of each input channel
    std::vector<std::pair<std::string, std::vector<int64_t>>> others;  // node, class of each output channel
    std::map<std::string, int64_t> channel_constant_bytes;             // node -> the constants sliced with it
  };

  const ChannelValue* Known(const std::string& name) const;
  const ChannelValue& New(const std::string& name, int64_t count, int64_t rank);
  void Pin(const std::string& name, const std::string& reason);
  void Link(const ChannelValue& a, const ChannelValue& b, int64_t offset_b = 0);
  void PinInputs(const onnx::NodeProto& node, const std::string& why);
  void PinAll(const onnx::NodeProto& node);
  const onnx::TensorProto* Constant(const std::string& name) const;
  // The graph output a main-graph layer's output reaches through ops that are not layers, or "".
  std::string GraphOutputReached(const std::string& layer_node) const;
  std::string Feeds(const onnx::NodeProto& node) const;
  int64_t Find(int64_t element) const;
  void Union(int64_t a, int64_t b);

  // The class of each channel of `value`.
  std::vector<int64_t> Roots(const ChannelValue& value) const;
  // The classes as PerLayer reads them (after Run).
  ClassIndex IndexClasses() const;
  // Why pruning `layer`, which sources no channel of the flow, removes nothing.
  std::string WhyNoChannels(size_t layer) const;
  // Whether pruning `layer`, whose output channels are of the classes `own`, removes them: not when a
  // class is pinned or another layer produces it too (then why_not says so).
  void DecideRemovable(size_t layer, const std::set<int64_t>& own, const ClassIndex& index,
                       ChannelPruningReach* reach) const;
  // The layers (other than `layer`) and other nodes reading the classes `own`, with the share of
  // their channels that are.
  static void AddReaders(size_t layer, const std::set<int64_t>& own, const ClassIndex& index,
                         ChannelPruningReach* reach);

  // Follows the channels through one node, by its op type (below), or pins what it cannot follow.
  void Visit(onnx::NodeProto* node);
  // Conv: a source of its channels, or a link (depthwise); ConvTranspose: new channels.
  void VisitConv(onnx::NodeProto* node, bool transpose);
  // BatchNormalization: its input's channels, its per-channel parameters sliced along with them.
  void VisitBatchNorm(onnx::NodeProto* node);
  // An op whose output has its input's channels one for one (`op`, the node's op type).
  void VisitUnary(const onnx::NodeProto& node, const std::string& op);
  // An elementwise op of broadcast inputs: their channels linked, constants sliced along them.
  void VisitBinary(onnx::NodeProto* node);
  // Concat: along the channels, its inputs' channels in order.
  void VisitConcat(const onnx::NodeProto& node);

  onnx::ModelProto* model_;
  const Analysis& analysis_;
  const std::map<std::string, size_t>& layer_of_node_;
  const std::vector<std::vector<uint8_t>>& pruned_rows_;
  mutable std::vector<int64_t> parent_;              // union-find over elements
  std::vector<std::pair<int64_t, int64_t>> source_;  // per element: (layer, row) or (-1, 0)
  std::vector<std::string> pin_;
  std::vector<bool> removed_;
  std::map<std::string, ChannelValue> values_;
  std::vector<ParamSlice> slices_;
  std::map<onnx::NodeProto*, std::string> depthwise_;  // node -> its input value
  std::map<size_t, std::set<std::string>> why_kept_;
};

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_CHANNEL_FLOW_H_
