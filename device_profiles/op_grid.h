// What squeeze-profile measures: the single ops of mobile networks over a grid of shapes and
// precisions (DESIGN.md §4). The grid is chosen to cover the layer shapes of PP-OCRv4 det
// (640x640), PP-OCR mobile cls (48x192) and MobileNet-like networks: convs k1/k3/k5 at stride
// 1 and 2 with channels 8..512 at resolutions 7..320 where resolution x channels is what such
// networks use (and 640 for the 3-channel stem, 1 for squeeze-and-excitation), depthwise and
// grouped convs, ConvTranspose k2 s2 and k4 s2 (PP-OCR det's head), MatMul; then the ops around
// layers (QuantizeLinear, DequantizeLinear, Add, Mul, Relu, HardSigmoid, HardSwish) over 2^10..2^22
// elements. Every layer shape is measured at fp32 and w8a8; every 4th of a family (quick: 8th)
// also at fp16 weight storage, weight-only w8a32/w4a32, w4a8, and 50% unstructured and 2:4
// sparsity (fp32 and w8a8). Output-channel pruning is a smaller dense layer: in the full grid some
// shapes are also measured with 50% and 70% of their output channels (counts that are no longer
// multiples of 8). The full grid is within x1.5 of every conv of PP-OCRv4 det in input channels,
// output channels and resolution; the quick grid within x3.
//
// Pure functions; thread safe.
#ifndef SQUEEZE_DEVICE_PROFILES_OP_GRID_H_
#define SQUEEZE_DEVICE_PROFILES_OP_GRID_H_

#include <cstdint>
#include <string>
#include <vector>

#include "device_profiles/device.h"

namespace squeeze::device_profiles {

enum class ProfileMode { kQuick, kFull };
absl::string_view ProfileModeName(ProfileMode mode);  // "quick", "full"

// One single-op model to build and time.
struct OpSpec {
  OpKind kind = OpKind::kConv;
  // Conv kinds: input [1, in_channels, height, width]; padding "same" (output ceil(h / stride));
  // ConvTranspose: output h · stride. Depthwise: groups = in_channels = out_channels.
  int64_t in_channels = 0, out_channels = 0, height = 0, width = 0;
  int64_t kernel = 1, stride = 1, groups = 1;
  // kGemm: a MatMul of input [m, k] by a constant [k, n].
  int64_t gemm_m = 0, gemm_k = 0, gemm_n = 0;
  // Non-layer kinds: the op ("Add", "Mul", "Relu", "HardSigmoid", "HardSwish", "QuantizeLinear",
  // "DequantizeLinear") and the shape of its tensors.
  std::string op_type;
  std::vector<int64_t> shape;
  int weight_bits = 32;      // 32, 16 (fp16 storage), 8, 4
  int activation_bits = 32;  // 32 or 8 (uint8 QDQ)
  Sparsity sparsity = Sparsity::kDense;
  double sparsity_ratio = 0;  // 0.5 for unstructured and 2:4

  int64_t Elements() const;  // non-layer kinds: elements of `shape`
};

// "fp32", "w16a32", "w8a8", ...
std::string PrecisionLabel(int weight_bits, int activation_bits);

// The sample key, unique within a grid: "conv k3 s1 32>64 80x80 w8a8",
// "conv k3 s1 g4 64>64 40x40 fp32", "depthwise_conv k5 s2 192 40x40 w8a8",
// "conv_transpose k2 s2 24>24 160x160 fp32", "gemm 64x256>512 w8a32",
// "conv k1 s1 64>64 40x40 w8a8 2:4", "elementwise hardswish 1x32x64x64", "quantize_linear 1x32x16x32".
std::string OpSpecKey(const OpSpec& spec);

// The sample `spec` yields, before it is measured: kind, shape fields, bits and sparsity.
LatencySample SampleOf(const OpSpec& spec);

// The grid, shapes in an order that measures every precision of a shape one after the other (so
// their ratios see the same machine state).
std::vector<OpSpec> ProfileGrid(ProfileMode mode);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_OP_GRID_H_
