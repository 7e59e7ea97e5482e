// The device-profile domain types: a device, what it runs natively, and measured op latencies.
// Plain values, copyable; the proto mapping lives in server/proto_conversion.
#ifndef SQUEEZE_DEVICE_PROFILES_DEVICE_H_
#define SQUEEZE_DEVICE_PROFILES_DEVICE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/compression.h"

namespace squeeze::device_profiles {

// The first four are layers; the rest are ops a compressed model runs around its layers, which
// have latency samples but never capabilities.
enum class OpKind {
  kConv,
  kDepthwiseConv,
  kConvTranspose,
  kGemm,
  kQuantizeLinear,
  kDequantizeLinear,
  kElementwise,
  kTranspose,  // uint8 activations between NCHW and NHWC (integer kernels run NHWC)
  kMaxPool,    // uint8 MaxPool in NCHW (where ONNX Runtime moves a QuantizeLinear above a float pool)
};
bool IsLayerKind(OpKind kind);
using ::squeeze::Sparsity;  // common/compression.h
enum class Provenance { kSpec, kMeasured };

// Names as stored in profiles.db ('conv', 'depthwise_conv', ...; 'dense', '2:4', ...).
absl::string_view OpKindName(OpKind kind);
std::optional<OpKind> ParseOpKind(absl::string_view name);
absl::string_view SparsityName(Sparsity sparsity);
std::optional<Sparsity> ParseSparsity(absl::string_view name);
absl::string_view ProvenanceName(Provenance provenance);
std::optional<Provenance> ParseProvenance(absl::string_view name);

// A natively supported (or explicitly characterised emulated) combination.
struct Capability {
  std::optional<OpKind> op_kind;  // nullopt: every kind without a row of its own
  int weight_bits = 32;
  int activation_bits = 32;
  Sparsity sparsity = Sparsity::kDense;
  bool native = true;
  double peak_ops_per_s = 0;  // 1 MAC = 2 ops; sparse rows count ops on kept weights only
  double efficiency = 1;      // share of the peak real kernels reach
  std::string source;
  std::string derivation;
  Provenance provenance = Provenance::kSpec;
};

// One measured single-op latency. Conv shapes use batch..groups, gemm shapes gemm_m/k/n, the
// non-layer kinds `elements`. The predictor reads latency_median_us.
struct LatencySample {
  std::string key;  // unique within a device version, e.g. "conv k3 s1 32>64 80x80 w8a8"
  OpKind op_kind = OpKind::kConv;
  int64_t batch = 1, in_channels = 0, out_channels = 0, height = 0, width = 0;
  int64_t kernel = 0, stride = 1, groups = 1;
  int64_t gemm_m = 0, gemm_k = 0, gemm_n = 0;
  int64_t elements = 0;
  int weight_bits = 32;
  int activation_bits = 32;
  Sparsity sparsity = Sparsity::kDense;
  double sparsity_ratio = 0;
  int64_t macs = 0;  // 0 for the non-layer kinds
  int64_t weight_bytes = 0;
  int64_t activation_bytes = 0;
  double latency_median_us = 0;
  double latency_mean_us = 0;
  double latency_stddev_us = 0;
  double latency_p10_us = 0;
  double latency_p90_us = 0;
  int repeats = 1;
  int threads = 1;
  std::string runtime_version;
  std::string measured_at;
  std::string source;
  Provenance provenance = Provenance::kMeasured;
};

// A whole model's measured latency on a device version (squeeze-profile --model, or reported).
struct ModelLatency {
  std::string key;           // unique within a device version
  std::string model_sha256;  // hex SHA-256 of the ONNX file as uploaded
  std::string model_name;
  std::string variant;  // "" = the model as it is, else the exported plan's label
  double latency_median_us = 0;
  double latency_p10_us = 0;
  double latency_p90_us = 0;
  int repeats = 1;
  int threads = 1;
  std::string measured_at;
  std::string source;
};

// A uniform export of a model: every layer at (weight bits, activation bits), dense, or with about
// `channel_ratio` of its output channels pruned where the exporter can remove them (at the
// device's channel alignment: model::UniformChannelPlan).
struct UniformVariant {
  int weight_bits = 32;
  int activation_bits = 32;
  double channel_ratio = 0;
};

// ModelLatency.variant of a uniform export, e.g. "uniform w8a8", "uniform w32a32 channel 50%".
// squeeze-profile --model measures these beside the model as it is; the predictor calibrates
// each precision's layers of that model to the dense ones, and its pruned float options to the
// channel-pruned one.
std::string UniformVariantLabel(int weight_bits, int activation_bits, double channel_ratio = 0);
// What such a label names; nullopt for any other variant.
std::optional<UniformVariant> ParseUniformVariant(absl::string_view variant);

// How a measured version was measured (DeviceProfile.conditions).
struct ProfileConditions {
  std::string tool, mode, measured_at;
  double duration_seconds = 0;
  int threads = 0, warmup_runs = 0, repeats = 0;
  std::string cpu_governor;
  int64_t cpu_frequency_khz = 0, cpu_max_frequency_khz = 0;
  std::string runtime_version, host;
};

struct Device {
  std::string id;
  int64_t version = 1;
  std::string name, vendor, soc, os, cpu;
  int cpu_cores = 1;
  std::vector<std::string> simd_features;
  std::string accelerator;  // empty: CPU
  int64_t ram_bytes = 0;
  int64_t app_memory_budget_bytes = 0;
  double memory_bandwidth_bytes_per_s = 0;
  std::string runtime, runtime_version;
  int threads = 1;
  double op_overhead_us = 0;
  std::string source, derivation;
  Provenance provenance = Provenance::kSpec;
  std::string created_at;
  std::vector<Capability> capabilities;
  int64_t latency_sample_count = 0;
  int64_t model_latency_count = 0;
  std::optional<ProfileConditions> conditions;  // measured versions only
};

// InvalidArgument naming the first bad field: an id that is not a lowercase slug, missing names,
// non-positive sizes or rates, bit-widths outside the option grid, efficiencies outside (0, 1].
absl::Status ValidateDevice(const Device& device);
// InvalidArgument for a sample with non-positive latency (or MACs, for a layer kind), a negative
// spread or byte count, or bit-widths outside the grid.
absl::Status ValidateSample(const LatencySample& sample);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_DEVICE_H_
