// What Squeeze understood of an uploaded model: its compressible layers with shapes, parameters
// and MACs, totals, the op histogram and warnings. Plain values; the proto mapping lives in
// server/proto_conversion.
#ifndef SQUEEZE_MODEL_ANALYSIS_H_
#define SQUEEZE_MODEL_ANALYSIS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/weight_math.h"

namespace squeeze::model {

// How a tensor shape was found.
enum class ShapeSource {
  kDeclared,     // stated in the graph (inputs, outputs, value_info) or given by the user
  kInferred,     // libonnx shape inference
  kOnnxRuntime,  // a run of the model in ONNX Runtime with intermediate values exposed
  kUnknown,
};

// Where a layer's weight tensor lives in the graph.
enum class WeightStorage { kInitializer, kConstantNode };

// Per-output-channel statistics of a weight tensor, one entry per Layer::out_channels (channel =
// axis 0 for Conv and Gemm with transB=1; axis 1 for Gemm with transB=0; the last axis for MatMul;
// for ConvTranspose, whose weight is [C_in, C_out/groups, k...], output channel g·(C_out/groups)+j
// is position j on axis 1 within the input channels of group g).
struct ChannelStats {
  std::vector<float> absmax;
  std::vector<float> l2_norm;
};

struct Layer {
  std::string name;         // unique node name; subgraph layers are "parent_node/attr/node"
  std::string op_type;      // Conv, ConvTranspose, Gemm, MatMul
  std::string subgraph;     // "" for the main graph, else "parent_node/attr"
  std::string weight_name;  // the weight tensor (initializer or Constant output)
  WeightStorage weight_storage = WeightStorage::kInitializer;
  int weight_elem_type = 1;  // onnx::TensorProto_DataType: 1 float, 10 float16
  std::vector<int64_t> weight_shape;
  int64_t params = 0;  // weight elements
  int64_t bias_params = 0;
  int64_t out_channels = 0;  // the channel axis length of ChannelStats
  int64_t in_channels = 0;
  int64_t groups = 1;
  bool depthwise = false;             // groups > 1 with one input channel per group
  bool grouped = false;               // groups > 1
  std::vector<int64_t> kernel;        // spatial kernel dims (conv)
  std::vector<int64_t> strides;       // conv strides
  std::vector<int64_t> input_shape;   // activation input (input 0), concrete
  std::vector<int64_t> output_shape;  // activation output, concrete
  int64_t input_bytes = 0;            // at the activation's element size
  int64_t output_bytes = 0;
  int64_t macs = 0;                                  // 0 when the shapes are unknown (with a warning)
  ShapeSource shape_source = ShapeSource::kUnknown;  // the least certain of input and output
  ChannelLayout weight_layout;                       // where each output channel's weights lie in weight storage
  ChannelStats stats;
};

// One node of the main graph in execution order, with the activation bytes it reads and writes
// and the bytes of every activation alive while it runs (its own included), at stored precision.
// Constants are weights, not activations, and are not counted. Bytes of values whose shape is
// unknown count 0.
struct NodeActivations {
  std::string name;
  std::string op_type;
  int64_t input_bytes = 0;
  int64_t output_bytes = 0;
  int64_t live_bytes = 0;
  int layer = -1;  // index into Analysis::layers when the node is a compressible layer
};

struct Analysis {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;                     // domain ("" = ai.onnx) -> version
  std::string producer;                                      // producer_name producer_version
  std::map<std::string, std::vector<int64_t>> input_shapes;  // the concrete shapes analysed with
  std::vector<std::string> defaulted_dims;                   // e.g. "x[0] = 1 (batch)": dims chosen by default
  std::vector<Layer> layers;                                 // in graph order, subgraph layers after their parent
  int64_t total_params = 0;                                  // sum of Layer::params (biases excluded)
  int64_t total_macs = 0;
  int64_t compressible_weight_bytes = 0;  // layer weights as stored, each tensor once
  int64_t other_initializer_bytes = 0;    // every other constant (biases, BN, ...)
  // Op type ('domain:op' outside ai.onnx) -> node count, subgraphs included.
  std::map<std::string, int64_t> op_histogram;
  // The same for nodes no compression applies to: all but the layers and Constant nodes.
  std::map<std::string, int64_t> uncompressed_ops;
  // Integer graph inputs read only as the indices of Gathers from constant tables (token ids): how
  // many rows the smallest of those tables has along its gathered axis. Synthetic calibration
  // draws such an input's ids from [0, bound) (runtime::SyntheticCalibration): all zeros would be
  // one token repeated, no text at all.
  std::map<std::string, int64_t> index_input_bounds;
  std::vector<NodeActivations> nodes;  // the main graph in execution order
  int64_t peak_activation_bytes = 0;   // max of NodeActivations::live_bytes
  std::vector<std::string> warnings;
  bool fully_validated = true;  // false when the IR/opset is newer than libonnx's checker knows
};

const char* ShapeSourceName(ShapeSource source);       // "declared", "inferred", "onnxruntime", "unknown"
const char* WeightStorageName(WeightStorage storage);  // "initializer", "constant_node"

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_ANALYSIS_H_
