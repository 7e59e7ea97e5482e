#include "model/export_flavour.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace squeeze::model {

absl::string_view FlavourName(ExportFlavour flavour) {
  switch (flavour) {
    case ExportFlavour::kOrtCpu:
      return "ort-cpu";
    case ExportFlavour::kRuntimePrecision:
      return "runtime-precision";
    case ExportFlavour::kTensorRt:
      return "tensorrt";
    case ExportFlavour::kQnn:
      return "qnn";
  }
  return "ort-cpu";
}

std::optional<ExportFlavour> ParseFlavour(absl::string_view name) {
  for (ExportFlavour f :
       {ExportFlavour::kOrtCpu, ExportFlavour::kRuntimePrecision, ExportFlavour::kTensorRt, ExportFlavour::kQnn}) {
    if (FlavourName(f) == name) return f;
  }
  return std::nullopt;
}

ActivationScheme ActivationSchemeOf(ExportFlavour flavour, int bits) {
  if (flavour == ExportFlavour::kTensorRt) return ActivationScheme::kSymmetricInt8;
  if (flavour == ExportFlavour::kQnn && bits == 16) return ActivationScheme::kAsymmetricUint16;
  return ActivationScheme::kAsymmetricUint8;
}

bool QuantizesActivations(ExportFlavour flavour, int weight_bits, int activation_bits) {
  if (weight_bits < 2 || weight_bits > 8) return false;
  return activation_bits == 8 || (activation_bits == 16 && flavour == ExportFlavour::kQnn);
}

bool QuantizesWholeGraph(ExportFlavour flavour) { return flavour == ExportFlavour::kQnn; }

ExportFlavour FlavourForRuntime(absl::string_view runtime) {
  const std::string r = absl::AsciiStrToLower(runtime);
  if (absl::StartsWith(r, "tensorrt")) return ExportFlavour::kTensorRt;
  if (absl::StrContains(r, "coreml")) return ExportFlavour::kRuntimePrecision;
  if (absl::StartsWith(r, "onnxruntime-qnn") || absl::StartsWith(r, "qnn")) return ExportFlavour::kQnn;
  return ExportFlavour::kOrtCpu;
}

bool Realizes(ExportFlavour flavour, int weight_bits, int activation_bits) {
  const bool float_weights = weight_bits == 32 || weight_bits == 16;
  const bool int_weights = weight_bits >= 2 && weight_bits <= 8;
  if (!float_weights && !int_weights) return false;
  if (weight_bits == 32 && activation_bits != 32) return false;
  if (float_weights && activation_bits == 8) return false;
  switch (flavour) {
    case ExportFlavour::kOrtCpu:
      return activation_bits == 32 || activation_bits == 8;
    case ExportFlavour::kRuntimePrecision:
      return float_weights && weight_bits == activation_bits;  // fp32 or fp16: nothing integer
    case ExportFlavour::kTensorRt:
      return activation_bits == 32 || activation_bits == 16 || activation_bits == 8;
    case ExportFlavour::kQnn:
      return (int_weights && (activation_bits == 8 || activation_bits == 16)) ||
             (weight_bits == 16 && activation_bits == 16);
  }
  return false;
}

bool FusesQdq(ExportFlavour flavour) { return flavour == ExportFlavour::kTensorRt || flavour == ExportFlavour::kQnn; }

bool StoresInt4(ExportFlavour flavour, int weight_bits, int activation_bits) {
  return flavour == ExportFlavour::kOrtCpu && weight_bits >= 2 && weight_bits <= 4 && activation_bits != 8;
}

std::string RealizationNote(ExportFlavour flavour, int weight_bits, int activation_bits) {
  if (!Realizes(flavour, weight_bits, activation_bits)) return "not realized by this flavour";
  std::string weights;
  if (weight_bits == 32) {
    weights = "fp32 weights";
  } else if (weight_bits == 16) {
    weights = flavour == ExportFlavour::kOrtCpu ? "fp16 weights cast to float at load" : "fp16 weights";
  } else {
    weights =
        StoresInt4(flavour, weight_bits, activation_bits)
            ? absl::StrCat(weight_bits, "-bit weights stored in int4 with a per-channel com.microsoft.DequantizeLinear")
            : absl::StrCat(weight_bits, "-bit weights stored in int8 with a per-channel DequantizeLinear",
                           flavour == ExportFlavour::kTensorRt ? " (zero point 0)" : "");
  }
  if (flavour == ExportFlavour::kQnn) {
    if (weight_bits == 16) return absl::StrCat(weights, "; float activations in the file: fp16 on the HTP");
    return absl::StrCat(weights, "; ", activation_bits == 16 ? "uint16 (com.microsoft)" : "uint8",
                        " QuantizeLinear/DequantizeLinear activations, the whole graph around it quantized: computes "
                        "in int",
                        activation_bits, " on the HTP");
  }
  switch (activation_bits) {
    case 8:
      return absl::StrCat(weights,
                          flavour == ExportFlavour::kTensorRt
                              ? "; int8 symmetric QuantizeLinear/DequantizeLinear activations (zero point 0)"
                              : "; uint8 QuantizeLinear/DequantizeLinear activations",
                          ": computes in int8");
    case 16:
      return absl::StrCat(weights, "; float activations in the file: fp16 when the runtime is built for fp16");
    default:
      return absl::StrCat(weights, "; float activations: computes in fp32");
  }
}

bool WritesBlockWiseMatMuls(ExportFlavour flavour) { return flavour == ExportFlavour::kOrtCpu; }

int ChannelAlignment(ExportFlavour flavour, const std::vector<std::string>& simd_features) {
  const bool avx512 = std::find(simd_features.begin(), simd_features.end(), "avx512f") != simd_features.end();
  return flavour == ExportFlavour::kOrtCpu && avx512 ? 16 : 8;
}

}  // namespace squeeze::model
