// Weight math on real weights: magnitude pruning (unstructured, 2:4, output channel), symmetric
// per-output-channel quantization with an MSE-optimal clipping range, fp16 rounding, and the
// relative distortion ||W - Ŵ||² / ||W||² that the option table is built from (DESIGN.md §3).
//
// Weights are handled as a ChannelMatrix: row c holds every weight that feeds output channel c.
// Pure functions; thread safe.
#ifndef SQUEEZE_MODEL_WEIGHT_MATH_H_
#define SQUEEZE_MODEL_WEIGHT_MATH_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "common/compression.h"

namespace squeeze::model {

struct ChannelMatrix {
  int64_t channels = 0;
  int64_t per_channel = 0;
  std::vector<float> values;  // channels x per_channel, row-major

  absl::Span<const float> Row(int64_t c) const {
    return absl::MakeConstSpan(values).subspan(static_cast<size_t>(c * per_channel), static_cast<size_t>(per_channel));
  }
};

// Where each output channel's values lie in a weight stored row-major as [outer, axis, inner]:
// channel c = g·axis + j is position j on the axis, in the outer rows of group g only. Output
// channels are axis 0 for Conv and Gemm with transB, axis 1 for ConvTranspose (per group, groups
// > 1 for a grouped one, whose weight is [C_in, C_out/groups, k...]) and Gemm without transB, the
// last axis for MatMul. model::Layer::weight_layout holds a layer's.
struct ChannelLayout {
  int64_t outer = 1;
  int64_t axis = 1;
  int64_t inner = 1;
  int64_t groups = 1;
  int64_t channels() const { return axis * groups; }
  int64_t per_channel() const { return outer / groups * inner; }
};

// Gathers a weight tensor into rows by output channel.
ChannelMatrix ToChannelMajor(absl::Span<const float> weights, const ChannelLayout& layout);
// The inverse: scatters rows back into the tensor's storage order.
std::vector<float> FromChannelMajor(const ChannelMatrix& matrix, const ChannelLayout& layout);

using ::squeeze::Sparsity;  // common/compression.h

// Magnitude pruning: 1 keeps a weight, 0 removes it.
// - kUnstructured: the round(ratio · N) smallest |w| of the layer go (ties: the earlier goes).
// - kTwoFour: in every 4 consecutive weights of a row, the 2 smallest |w| go (ratio ignored;
//   a row's last partial group keeps its ceil(n/2) largest).
// - kOutputChannel: the round(ratio · channels) rows of smallest L2 norm go (at least one stays).
std::vector<uint8_t> PruneMask(const ChannelMatrix& w, Sparsity pattern, double ratio);

// Output channels kept by a kOutputChannel mask, in order.
std::vector<int64_t> KeptChannels(const ChannelMatrix& w, const std::vector<uint8_t>& mask);

// Symmetric quantization of one row to `bits` (2..8): q = clamp(round(x / s), -Q, Q) with
// Q = 2^(bits-1) - 1 and s = clip / Q. The clip (a fraction 0.3..1 of max|x|) is searched coarse
// to fine to minimize the squared error over the kept values. Writes the dequantized row to `out` (masked values
// stay 0) and returns the scale (0 for an all-zero row).
float QuantizeRow(absl::Span<const float> row, absl::Span<const uint8_t> mask, int bits, absl::Span<float> out);

// The same at a given scale (> 0): q = clamp(round(x / scale), -Q, Q); masked values 0.
void QuantizeRowAt(absl::Span<const float> row, absl::Span<const uint8_t> mask, int bits, double scale,
                   absl::Span<float> out);

// How a runtime takes integer activations:
// - kAsymmetricUint8 (ONNX Runtime's CPU provider, and most): the range [min, max], widened to hold
//   0 (zero padding stays exact), in uint8 levels: scale (hi − lo) / 255, zero point
//   round(−lo / scale).
// - kSymmetricInt8 (TensorRT): int8 with zero point 0, scale max(|min|, |max|) / 127 — a range of
//   one sign uses half the levels, so its error is up to 4× the asymmetric one's.
// - kAsymmetricUint16 (Qualcomm's HTP, 16-bit activations): as uint8 in 65535 levels.
enum class ActivationScheme { kAsymmetricUint8, kSymmetricInt8, kAsymmetricUint16 };

// The levels above the lowest of a scheme's type: 255, 254 (int8 -127..127 is symmetric), 65535.
int ActivationLevels(ActivationScheme scheme);

// The quantizer of an activation range, as ONNX's QuantizeLinear takes it. A range of zeros gives
// scale 1, zero point 0 (any scale is exact). The one formula: the exporter writes it, and the
// sensitivities measure it.
struct ActivationQuantizer {
  ActivationScheme scheme = ActivationScheme::kAsymmetricUint8;
  float scale = 1;
  int32_t zero_point = 0;  // in [0, 255] for uint8, [0, 65535] for uint16; 0 for int8
};
ActivationQuantizer ActivationQuantizerOf(ActivationScheme scheme, float min, float max);

// The integer level QuantizeLinear gives `x` at `q` (round half to even, saturating to the type's
// levels): [0, 255] for uint8, [0, 65535] for uint16, [-128, 127] for int8.
int32_t QuantizedLevel(float x, const ActivationQuantizer& q);

// `x` fake-quantized at `bits`: 8 (and 16 in uint16) through `q` as QuantizeLinear then
// DequantizeLinear compute it (float math, round half to even, saturating to the type's levels),
// other 16 rounded to fp16, anything else x itself.
float FakeQuantize(float x, int bits, const ActivationQuantizer& q);

// Rounds to the nearest fp16 value (round half to even; overflow to ±inf, as fp16 storage does).
float RoundToHalf(float x);
uint16_t FloatToHalfBits(float x);
float HalfBitsToFloat(uint16_t h);

// Ŵ for a pruning mask already chosen: masked weights zeroed, survivors quantized (bits 2..8
// integer, 16 fp16, 32 as is). Integer weights take one scale per row, or with `block_size` > 0
// one per run of `block_size` consecutive values of a row (the last run may be shorter): the
// block-wise quantization of ONNX Runtime's MatMulNBits, whose blocks run along K in each of the
// N output columns — a MatMul's rows here. With `run_scales`, integer weights' scales go there:
// channels x runs per row, 1 for a run of zeros.
ChannelMatrix QuantizeMasked(const ChannelMatrix& w, const std::vector<uint8_t>& mask, int weight_bits,
                             int64_t block_size = 0, std::vector<float>* run_scales = nullptr);

// Ŵ for an option: prune, then quantize the survivors (as QuantizeMasked).
ChannelMatrix Compress(const ChannelMatrix& w, int weight_bits, Sparsity pattern, double prune_ratio,
                       int64_t block_size = 0);

// ||w - w_hat||² / ||w||²; 0 for an all-zero w.
double RelativeDistortion(absl::Span<const float> w, absl::Span<const float> w_hat);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_WEIGHT_MATH_H_
