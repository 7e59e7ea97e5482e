#include "device_profiles/device.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace squeeze::device_profiles {

absl::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kConv:
      return "conv";
    case OpKind::kDepthwiseConv:
      return "depthwise_conv";
    case OpKind::kConvTranspose:
      return "conv_transpose";
    case OpKind::kGemm:
      return "gemm";
    case OpKind::kQuantizeLinear:
      return "quantize_linear";
    case OpKind::kDequantizeLinear:
      return "dequantize_linear";
    case OpKind::kElementwise:
      return "elementwise";
    case OpKind::kTranspose:
      return "transpose";
    case OpKind::kMaxPool:
      return "max_pool";
  }
  return "conv";
}

std::string UniformVariantLabel(int weight_bits, int activation_bits, double channel_ratio) {
  std::string label = absl::StrCat("uniform w", weight_bits, "a", activation_bits);
  if (channel_ratio > 0) absl::StrAppend(&label, absl::StrFormat(" channel %.0f%%", 100 * channel_ratio));
  return label;
}

std::optional<UniformVariant> ParseUniformVariant(absl::string_view variant) {
  if (!absl::ConsumePrefix(&variant, "uniform w")) return std::nullopt;
  UniformVariant out;
  absl::string_view precision = variant;
  if (const size_t space = variant.find(' '); space != absl::string_view::npos) {
    precision = variant.substr(0, space);
    absl::string_view pruning = variant.substr(space + 1);
    int percent = 0;
    if (!absl::ConsumePrefix(&pruning, "channel ") || !absl::ConsumeSuffix(&pruning, "%") ||
        !absl::SimpleAtoi(pruning, &percent) || percent <= 0 || percent >= 100) {
      return std::nullopt;
    }
    out.channel_ratio = percent / 100.0;
  }
  const size_t a = precision.find('a');
  if (a == absl::string_view::npos || !absl::SimpleAtoi(precision.substr(0, a), &out.weight_bits) ||
      !absl::SimpleAtoi(precision.substr(a + 1), &out.activation_bits)) {
    return std::nullopt;
  }
  return out;
}

bool IsLayerKind(OpKind kind) {
  return kind == OpKind::kConv || kind == OpKind::kDepthwiseConv || kind == OpKind::kConvTranspose ||
         kind == OpKind::kGemm;
}

std::optional<OpKind> ParseOpKind(absl::string_view name) {
  for (OpKind kind :
       {OpKind::kConv, OpKind::kDepthwiseConv, OpKind::kConvTranspose, OpKind::kGemm, OpKind::kQuantizeLinear,
        OpKind::kDequantizeLinear, OpKind::kElementwise, OpKind::kTranspose, OpKind::kMaxPool}) {
    if (OpKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

absl::string_view SparsityName(Sparsity sparsity) {
  switch (sparsity) {
    case Sparsity::kDense:
      return "dense";
    case Sparsity::kUnstructured:
      return "unstructured";
    case Sparsity::kTwoFour:
      return "2:4";
    case Sparsity::kOutputChannel:
      return "channel";
  }
  return "dense";
}

std::optional<Sparsity> ParseSparsity(absl::string_view name) {
  for (Sparsity s : {Sparsity::kDense, Sparsity::kUnstructured, Sparsity::kTwoFour, Sparsity::kOutputChannel}) {
    if (SparsityName(s) == name) return s;
  }
  return std::nullopt;
}

absl::string_view ProvenanceName(Provenance provenance) {
  return provenance == Provenance::kMeasured ? "measured" : "spec";
}

std::optional<Provenance> ParseProvenance(absl::string_view name) {
  if (name == "spec") return Provenance::kSpec;
  if (name == "measured") return Provenance::kMeasured;
  return std::nullopt;
}

namespace {

bool IsWeightBits(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8 || bits == 16 || bits == 32;
}
bool IsActivationBits(int bits) { return bits == 8 || bits == 16 || bits == 32; }
bool Positive(double value) { return std::isfinite(value) && value > 0; }

}  // namespace

absl::Status ValidateDevice(const Device& device) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("device '", device.id, "': ", what));
  };
  if (device.id.empty() || device.id.size() > 64 ||
      device.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return bad("id must be 1-64 characters of a-z, 0-9 and '-'");
  }
  if (device.name.empty()) return bad("name is empty");
  if (device.runtime.empty()) return bad("runtime is empty (e.g. 'onnxruntime-cpu')");
  if (device.cpu_cores < 1) return bad("cpu_cores must be at least 1");
  if (device.threads < 1) return bad("threads must be at least 1");
  if (device.ram_bytes <= 0) return bad("ram_bytes must be positive");
  if (device.app_memory_budget_bytes <= 0) return bad("app_memory_budget_bytes must be positive");
  if (!Positive(device.memory_bandwidth_bytes_per_s)) {
    return bad("memory_bandwidth_bytes_per_s must be positive");
  }
  if (!std::isfinite(device.op_overhead_us) || device.op_overhead_us < 0) {
    return bad("op_overhead_us must be zero or positive");
  }
  if (device.source.empty()) return bad("source is empty: say where the figures come from");
  if (device.capabilities.empty()) return bad("no capabilities: list at least one native precision");
  for (const Capability& c : device.capabilities) {
    std::string where =
        absl::StrCat("capability w", c.weight_bits, "a", c.activation_bits, " ", SparsityName(c.sparsity), ": ");
    if (!IsWeightBits(c.weight_bits)) return bad(absl::StrCat(where, "weight_bits not in {2..6,8,16,32}"));
    if (!IsActivationBits(c.activation_bits)) return bad(absl::StrCat(where, "activation_bits not in {8,16,32}"));
    if (c.sparsity == Sparsity::kOutputChannel) {
      return bad(absl::StrCat(where, "output-channel pruning needs no capability row"));
    }
    if (!Positive(c.peak_ops_per_s)) return bad(absl::StrCat(where, "peak_ops_per_s must be positive"));
    if (!(c.efficiency > 0 && c.efficiency <= 1)) return bad(absl::StrCat(where, "efficiency must be in (0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSample(const LatencySample& s) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("latency sample (", OpKindName(s.op_kind), ", ", s.macs, " MACs): ", what));
  };
  if (IsLayerKind(s.op_kind) ? s.macs <= 0 : s.elements <= 0) {
    return bad(IsLayerKind(s.op_kind) ? "macs must be positive" : "elements must be positive");
  }
  if (!Positive(s.latency_median_us)) return bad("latency_median_us must be positive");
  if (!Positive(s.latency_mean_us)) return bad("latency_mean_us must be positive");
  if (!std::isfinite(s.latency_stddev_us) || s.latency_stddev_us < 0) {
    return bad("latency_stddev_us must be zero or positive");
  }
  if (s.weight_bytes < 0 || s.activation_bytes < 0) return bad("byte counts must not be negative");
  if (!IsWeightBits(s.weight_bits)) return bad("weight_bits not in {2..6,8,16,32}");
  if (!IsActivationBits(s.activation_bits)) return bad("activation_bits not in {8,16,32}");
  if (s.sparsity == Sparsity::kOutputChannel) return bad("sparsity must be dense, unstructured or 2:4");
  if (!(s.sparsity_ratio >= 0 && s.sparsity_ratio < 1)) return bad("sparsity_ratio must be in [0, 1)");
  if (s.repeats < 1 || s.threads < 1) return bad("repeats and threads must be at least 1");
  return absl::OkStatus();
}

}  // namespace squeeze::device_profiles
