// Export flavours: what the exporter writes for a layer at a (weight bits, activation bits) pair
// for a device's runtime, and what that runtime then executes (DESIGN.md §3 "an option is a
// realization", §6).
//
// The search offers an option only where the flavour realizes it, so what a front costs is what
// the exported file does:
// - ort-cpu (ONNX Runtime's CPU provider): fp32; fp16 weights (an fp16 initializer and a Cast,
//   which ONNX Runtime folds at load: stored in half the bytes, computed in fp32); 2..8-bit
//   weights in int8 with a per-channel DequantizeLinear, computed in fp32 (w*a32); 2..8-bit
//   weights with uint8 QuantizeLinear/DequantizeLinear activations (w*a8, QLinearConv and
//   friends). The file has no 16-bit activations, so no w*a16 option exists for it.
// - tensorrt (TensorRT, explicit quantization): what TensorRT accepts of Q/DQ — int8 activations
//   with zero point 0 (symmetric: scale = max |range| / 127) and 2..8-bit weights in int8 with a
//   per-channel DequantizeLinear of zero point 0 on the output-channel axis (0 for Conv); 16-bit
//   activations are float in the file, computed in fp16 when TensorRT builds with fp16. Every
//   export is checked against these rules (model/conformance.h).
// - runtime-precision (ONNX Runtime's CoreML provider, ML Program): a float file, fp32 or fp16
//   weights (an fp16 initializer and a Cast), computed in the precision the Core ML compute unit
//   runs (fp16 on the Neural Engine). The provider converts no QuantizeLinear, DequantizeLinear or
//   quantized op and takes float tensors only, so there are no integer weights or activations:
//   in a QDQ file the Q/DQ would run on the CPU and take their layers off the Neural Engine.
// - qnn (ONNX Runtime's QNN provider on a Qualcomm HTP, the Hexagon NPU): whole-graph QDQ, as
//   the HTP runs only quantized node units and anything float leaves it. Integer-weight layers
//   take uint8 (a8) or uint16 (a16, com.microsoft QuantizeLinear/DequantizeLinear) activations,
//   int8 per-channel weights of zero point 0 and int32 biases; every float tensor joined to them
//   through the ops the HTP runs quantized (elementwise arithmetic, activations, batch norms,
//   pooling, concatenation, resizing, reshaping: model/quantized_region.h) is quantized too, its float
//   constants and the graph outputs it reaches included. fp16 layers (w16a16) are float in the file,
//   computed in fp16 by the HTP (the provider's enable_htp_fp16_precision). There is no fp32 and
//   no weight-only (float-activation) option: the HTP computes neither.
#ifndef SQUEEZE_MODEL_EXPORT_FLAVOUR_H_
#define SQUEEZE_MODEL_EXPORT_FLAVOUR_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "model/weight_math.h"

namespace squeeze::model {

enum class ExportFlavour { kOrtCpu, kRuntimePrecision, kTensorRt, kQnn };

// "ort-cpu", "runtime-precision", "tensorrt", "qnn".
absl::string_view FlavourName(ExportFlavour flavour);
// FlavourName's inverse; nullopt for any other name.
std::optional<ExportFlavour> ParseFlavour(absl::string_view name);

// The flavour a device's runtime (devices.runtime: "onnxruntime-cpu", "coreml", "tensorrt",
// "onnxruntime-qnn", ...) is exported in. Unknown runtimes get ort-cpu, the file every ONNX
// runtime loads as written.
ExportFlavour FlavourForRuntime(absl::string_view runtime);

// How the flavour's runtime takes integer activations of `bits` (8, or 16 for qnn): int8
// symmetric for tensorrt, uint16 for qnn's 16 bits, else uint8 with a zero point.
ActivationScheme ActivationSchemeOf(ExportFlavour flavour, int bits);

// Whether `flavour` writes a layer at (weight_bits, activation_bits) with integer activations
// (QuantizeLinear/DequantizeLinear in the file): integer weights with 8-bit activations for every
// flavour, and with 16-bit ones for qnn.
bool QuantizesActivations(ExportFlavour flavour, int weight_bits, int activation_bits);

// Whether the flavour quantizes the whole graph around its integer layers (qnn), not only their
// inputs and outputs.
bool QuantizesWholeGraph(ExportFlavour flavour);

// Whether `flavour` writes a layer at (weight_bits, activation_bits) as a file that does it.
// Float weights (32, 16) never take 8-bit activations; fp32 weights take only fp32.
bool Realizes(ExportFlavour flavour, int weight_bits, int activation_bits);

// Whether the flavour's runtime fuses Q/DQ, scales, biases and pointwise activations into its integer
// kernels, so none of them runs as an op of its own: TensorRT (its documented layer fusions) and
// the QNN HTP (a QDQ node unit runs as one quantized op; whole-graph QDQ leaves no standalone
// conversion between them). ONNX
// Runtime's CPU provider runs a standalone QuantizeLinear/DequantizeLinear where float and integer
// layers meet, and fuses into QLinearConv only a Relu it quantizes after.
bool FusesQdq(ExportFlavour flavour);

// Whether `flavour` stores a layer's integer weights in INT4, two to a byte (ONNX Runtime's
// com.microsoft DequantizeLinear): ort-cpu, for 2..4-bit weights of a layer whose activations stay
// float (weight-only). An 8-bit-activation layer keeps int8 storage, which ONNX Runtime fuses into
// its integer kernels (QLinearConv) as it does not fuse INT4; the other flavours' runtimes take
// no com.microsoft ops.
bool StoresInt4(ExportFlavour flavour, int weight_bits, int activation_bits);

// Whether `flavour` writes a MatMul's 2..4-bit weight-only layers as ONNX Runtime's MatMulNBits,
// block-wise (ort-cpu; which layers: model::WritesMatMulNBits).
bool WritesBlockWiseMatMuls(ExportFlavour flavour);

// The ONNX domain of ONNX Runtime's own operators.
inline constexpr absl::string_view kMicrosoftDomain = "com.microsoft";

// What the file holds for such a layer and what the runtime computes, in a few words (the
// exported plan's "file" field), e.g. "fp16 weights cast to float at load: computes in fp32".
std::string RealizationNote(ExportFlavour flavour, int weight_bits, int activation_bits);

// The multiple of output channels a device's kernels run well, which output-channel pruning keeps
// (vector kernels and blocked layouts run ragged counts slower): 16 for ONNX Runtime's CPU
// provider on a CPU with `avx512f` among `simd_features` (its blocked layout is 16 channels
// wide), else 8.
int ChannelAlignment(ExportFlavour flavour, const std::vector<std::string>& simd_features);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_EXPORT_FLAVOUR_H_
