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

namespace squeeze::device_profiles {

enum class OpKind { kConv, kDepthwiseConv, kConvTranspose, kGemm };
enum class Sparsity { kDense, kUnstructured, kTwoFour, kOutputChannel };
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

// One measured single-op latency. Conv shapes use batch..groups, gemm shapes gemm_m/k/n.
struct LatencySample {
  OpKind op_kind = OpKind::kConv;
  int64_t batch = 1, in_channels = 0, out_channels = 0, height = 0, width = 0;
  int64_t kernel = 0, stride = 1, groups = 1;
  int64_t gemm_m = 0, gemm_k = 0, gemm_n = 0;
  int weight_bits = 32;
  int activation_bits = 32;
  Sparsity sparsity = Sparsity::kDense;
  double sparsity_ratio = 0;
  int64_t macs = 0;
  int64_t weight_bytes = 0;
  int64_t activation_bytes = 0;
  double latency_mean_us = 0;
  double latency_stddev_us = 0;
  int repeats = 1;
  int threads = 1;
  std::string runtime_version;
  std::string measured_at;
  std::string source;
  Provenance provenance = Provenance::kMeasured;
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
};

// InvalidArgument naming the first bad field: an id that is not a lowercase slug, missing names,
// non-positive sizes or rates, bit-widths outside the option grid, efficiencies outside (0, 1].
absl::Status ValidateDevice(const Device& device);
// InvalidArgument for a sample with non-positive latency or MACs, a negative spread or byte
// count, or bit-widths outside the grid.
absl::Status ValidateSample(const LatencySample& sample);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_DEVICE_H_
