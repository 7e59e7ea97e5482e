// Activation liveness over the main graph's execution order, for peak memory.
#ifndef SQUEEZE_MODEL_INTERNAL_ACTIVATIONS_H_
#define SQUEEZE_MODEL_INTERNAL_ACTIVATIONS_H_

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "model/analysis.h"
#include "model/internal/shapes.h"

namespace squeeze::model::internal {

// The main graph's nodes with the bytes they read, write and keep alive (see NodeActivations).
// A value lives from its producer (graph inputs: from the start) to its last consumer (graph
// outputs: to the end); values read by a subgraph count as read by the node holding it.
// `layer_of_node` maps main-graph node names to their index in Analysis::layers.
std::vector<NodeActivations> ProfileActivations(const onnx::GraphProto& graph, const ShapeTable& shapes,
                                                const std::map<std::string, int>& layer_of_node);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_ACTIVATIONS_H_
