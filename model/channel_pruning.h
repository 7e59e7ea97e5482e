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
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace squeeze::model {

struct LoadedModel;

// What pruning one layer's output channels does on its own.
struct ChannelPruningReach {
  // True for an ungrouped main-graph Conv whose channels nothing pins and no other layer produces:
  // pruning it alone removes channels from the file.
  bool removable = false;
  std::string why_not;  // when not, in words: "it is graph output 'logits'", a partner layer, ...
  // Layers that read its channels, each with the share of its input channels that are this
  // layer's; removing a share r of this layer's channels removes r × that share of theirs.
  std::vector<std::pair<size_t, double>> readers;
  // Other main-graph nodes whose output carries its channels (BatchNormalization, activations,
  // elementwise ops, pools, Concat...), each with the share of that output's channels that are
  // this layer's: they too shrink by r × that share.
  std::vector<std::pair<std::string, double>> nodes;
};

// One entry per Analysis::layers entry.
std::vector<ChannelPruningReach> AnalyzeChannelPruning(const LoadedModel& model);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_CHANNEL_PRUNING_H_
