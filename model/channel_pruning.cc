#include "model/channel_pruning.h"

#include <map>

#include "model/internal/channel_flow.h"
#include "model/loader.h"

namespace squeeze::model {

std::vector<ChannelPruningReach> AnalyzeChannelPruning(const LoadedModel& model) {
  const Analysis& analysis = model.analysis;
  onnx::ModelProto proto = model.proto;  // the flow walks a mutable model; this one stays as it is
  std::map<std::string, size_t> layer_of_node;
  std::vector<std::vector<uint8_t>> pruned_rows(analysis.layers.size());
  for (size_t i = 0; i < analysis.layers.size(); ++i) {
    if (analysis.layers[i].subgraph.empty()) layer_of_node[analysis.layers[i].name] = i;
    pruned_rows[i].assign(static_cast<size_t>(std::max<int64_t>(0, analysis.layers[i].out_channels)), 0);
  }
  internal::ChannelFlow flow(&proto, analysis, layer_of_node, pruned_rows);
  flow.Run();
  return flow.PerLayer();
}

}  // namespace squeeze::model
