// What one layer becomes: one vocabulary for the exporter (model::LayerPlan), the cost model and
// device profiles (device_profiles::CompressionOption) and the search (search/), below all of
// them (DESIGN.md §3). The wire has its own (squeeze.v1.LayerChoice, SparsityPattern; converted
// in server/proto_conversion), and names live with their stores: device_profiles::SparsityName
// for profiles.db, model's export metadata for the files.
#ifndef SQUEEZE_COMMON_COMPRESSION_H_
#define SQUEEZE_COMMON_COMPRESSION_H_

namespace squeeze {

// How a layer's weights are pruned.
// - kDense: nothing pruned.
// - kUnstructured: the smallest weights of the layer, a share of them (a mask the runtime may or
//   may not exploit).
// - kTwoFour: 2 of every 4 consecutive weights (what sparse tensor cores run).
// - kOutputChannel: whole output channels, removed from the exported graph.
enum class Sparsity { kDense, kUnstructured, kTwoFour, kOutputChannel };

// One layer's compression: its weights' and activations' precision and its pruning.
struct LayerCompression {
  int weight_bits = 32;      // 32 fp32, 16 fp16, 2..8 integer
  int activation_bits = 32;  // 32 (float), 16 (left to the runtime: float in the file), 8 (QDQ)
  Sparsity pattern = Sparsity::kDense;
  // The share of weights removed (unstructured) or of output channels (kOutputChannel); 2:4 means
  // 0.5, and the exporter ignores it there. 0 when dense.
  double prune_ratio = 0;
  // 2..4-bit weights quantized in runs of this many values along K, each with its own scale (ONNX
  // Runtime's MatMulNBits; model::WritesMatMulNBits says which layers), a power of two of at
  // least 16; 0: a scale per output channel (every other layer). Such an option runs the 4-bit
  // kernel (2-bit at 2 bits): its samples, not int8's.
  int block_size = 0;
};

}  // namespace squeeze

#endif  // SQUEEZE_COMMON_COMPRESSION_H_
