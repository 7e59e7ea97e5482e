// What output-channel pruning of each layer does in the exported file (DESIGN.md §3, §6), so the
// search offers it only where the exporter really removes channels and costs what it removes.
//
// The exporter removes a pruned channel of a Conv only when no graph output, subgraph or op it
// cannot follow reads it and every layer producing the same channel (an Add or Concat partner)
// prunes it too; otherwise the channel stays as zeros and the file is no faster. A removed
// channel also narrows the layers that read it: the next Conv's input channels, a depthwise
// Conv's channels.
#ifndef SQUEEZE_MODEL_CHANNEL_PRUNING_H_
#define SQUEEZE_MODEL_CHANNEL_PRUNING_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/export.h"

namespace squeeze::model {

struct LoadedModel;

// A main-graph node other than a layer (BatchNormalization, activation, elementwise op, pool,
// Concat...) whose output carries a layer's channels.
struct ReachedNode {
  std::string name;
  double share = 0;  // the share of the node's output channels that are the layer's
  // The bytes of the node's constants that run along its channels (a BatchNormalization's four
  // vectors, a per-channel operand of Add, Mul, ...), as the model stores them, all channels':
  // the exporter slices them with the channels it removes.
  int64_t channel_constant_bytes = 0;
};

// What pruning one layer's output channels does on its own.
struct ChannelPruningReach {
  // True for an ungrouped main-graph Conv whose channels nothing pins and no other layer produces:
  // pruning it alone removes channels from the file.
  bool removable = false;
  std::string why_not;  // when not, in words: "it is graph output 'logits'", a partner layer, ...
  // Layers that read its channels, each with the share of its input channels that are this
  // layer's; removing a share r of this layer's channels removes r × that share of theirs.
  std::vector<std::pair<size_t, double>> readers;
  // Other main-graph nodes whose output carries its channels: they too shrink by r × their share,
  // and so do their channel constants.
  std::vector<ReachedNode> nodes;
};

// One entry per Analysis::layers entry.
std::vector<ChannelPruningReach> AnalyzeChannelPruning(const LoadedModel& model);

// The channels pruning output channels `removed_rows` of layer `layer` alone (1: channel c goes)
// removes from the values of the main graph, as the exporter decides it: each value that loses some
// -> their indices along its channel axis (a Concat's output counts them at their offset). Empty
// when none goes (the rows stay as zeros: a pinned channel, a partner layer that keeps it).
std::map<std::string, std::set<int64_t>> ChannelsRemovedBy(const LoadedModel& model, size_t layer,
                                                           const std::vector<uint8_t>& removed_rows);

// The prune ratio that keeps the positive multiple of `alignment` channels nearest to what
// `ratio` keeps of `out_channels` and below all of them, as (out − kept) / out. nullopt when ratio
// <= 0 or no positive multiple of `alignment` is below out_channels. The search's channel options
// and the plans below use it alike, so the distortion, the cost model and the exporter remove the
// same count.
std::optional<double> AlignedChannelRatio(int64_t out_channels, double ratio, int alignment);

// A plan every layer of which is at `precision`, with about `ratio` of its output channels pruned
// (AlignedChannelRatio) where pruning it removes channels from the file (`reach[i].removable`),
// dense where not: the uniformly pruned export the profiler times to calibrate the predictor at
// that width, and that the predictor finds among its options again.
std::vector<LayerPlan> UniformChannelPlan(const std::vector<ChannelPruningReach>& reach, const LoadedModel& model,
                                          LayerPlan precision, double ratio, int alignment);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_CHANNEL_PRUNING_H_
