// Single-op ONNX models for squeeze-profile, built with the project's own machinery: a one-layer
// fp32 model written with libonnx, loaded and analysed by model/loader.h, then exported by
// model/export.h at the spec's precision and sparsity — so a sample measures the very graph a
// compressed model carries (fp16 weights with a Cast; integer weights with a per-channel
// DequantizeLinear; 8-bit activations as uint8 QDQ). A w?a8 layer takes and gives uint8 tensors
// (the exporter's QuantizeLinear on the input and DequantizeLinear on the output are cut off):
// inside a quantized network those belong to the neighbours, and QuantizeLinear/DequantizeLinear
// are measured as samples of their own. The ops around layers are written directly.
//
// Pure functions of their arguments (OptimizedOpTypes writes a temporary file); thread safe.
#ifndef SQUEEZE_DEVICE_PROFILES_SINGLE_OP_H_
#define SQUEEZE_DEVICE_PROFILES_SINGLE_OP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device_profiles/op_grid.h"
#include "runtime/session.h"

namespace squeeze::device_profiles {

struct SingleOpModel {
  std::string bytes;                    // the serialized ONNX model
  std::vector<runtime::Tensor> inputs;  // one per graph input, values drawn from the seed
  std::vector<int64_t> output_shape;    // of the one output
  int64_t macs = 0;                     // the layer's MACs as model/'s analysis counts them; 0 for other kinds
  int64_t weight_bytes = 0;             // every constant stored in the file
  int64_t activation_bytes = 0;         // the graph's inputs and output at their element types
  std::vector<std::string> op_types;    // the file's nodes, in order
};

// The block size of the MatMulNBits a gemm sample of 2..4-bit weights and float activations is
// measured with (model::WritesMatMulNBits).
inline constexpr int kSampleBlockSize = 32;

// Builds the model for `spec`. InvalidArgument for a spec that is not a valid op (zero or
// mismatched channels, groups that do not divide them, bits the exporter does not write, an
// unknown non-layer op); otherwise the loader's or exporter's status.
absl::StatusOr<SingleOpModel> BuildSingleOpModel(const OpSpec& spec, uint64_t seed);

// The nodes ONNX Runtime runs `model_bytes` as after its graph optimizations (e.g. "QLinearConv",
// "Transpose"), from the optimized model it writes to a temporary file. The session's status on
// failure.
absl::StatusOr<std::vector<std::string>> OptimizedOpTypes(const std::string& model_bytes,
                                                          const runtime::SessionOptions& options);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_SINGLE_OP_H_
