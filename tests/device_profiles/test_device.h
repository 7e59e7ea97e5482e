// A small hand-made device whose figures make cost-model expectations easy to compute by hand.
#ifndef SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_
#define SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_

#include <string>

#include "device_profiles/device.h"

namespace squeeze::device_profiles {

// fp32 100 Gops/s and int8 400 Gops/s at efficiency 0.5, 10 GB/s, 10 us per op.
inline Device TestDevice(const std::string& id = "test-phone") {
  Device d;
  d.id = id;
  d.name = "Test phone";
  d.vendor = "Acme";
  d.soc = "Acme 1";
  d.os = "Android 15";
  d.cpu = "4x Test core @ 2 GHz";
  d.cpu_cores = 4;
  d.simd_features = {"neon", "dotprod"};
  d.ram_bytes = int64_t{8} << 30;
  d.app_memory_budget_bytes = int64_t{2} << 30;
  d.memory_bandwidth_bytes_per_s = 10e9;
  d.runtime = "onnxruntime-cpu";
  d.runtime_version = "1.29";
  d.threads = 4;
  d.op_overhead_us = 10;
  d.source = "hand-made for tests";
  d.derivation = "round numbers";
  Capability fp32;
  fp32.weight_bits = 32;
  fp32.activation_bits = 32;
  fp32.peak_ops_per_s = 100e9;
  fp32.efficiency = 0.5;
  fp32.source = "test";
  fp32.derivation = "round numbers for hand computation";
  Capability int8 = fp32;
  int8.weight_bits = 8;
  int8.activation_bits = 8;
  int8.peak_ops_per_s = 400e9;
  d.capabilities = {fp32, int8};
  return d;
}

// A measured 3x3 conv sample (16 -> 32 channels at 20x20, 1,843,200 MACs) whose figures pass
// every profile check: 50 us is 74 Gops/s.
inline LatencySample TestSample(const std::string& key, double median_us = 50) {
  LatencySample s;
  s.key = key;
  s.op_kind = OpKind::kConv;
  s.in_channels = 16;
  s.out_channels = 32;
  s.height = 20;
  s.width = 20;
  s.kernel = 3;
  s.stride = 1;
  s.groups = 1;
  s.weight_bits = 8;
  s.activation_bits = 8;
  s.macs = 32 * 20 * 20 * 16 * 9;
  s.weight_bytes = 32 * 16 * 9;
  s.activation_bytes = 16 * 20 * 20 + 32 * 20 * 20;
  s.latency_median_us = median_us;
  s.latency_mean_us = median_us * 1.02;
  s.latency_stddev_us = median_us * 0.05;
  s.latency_p10_us = median_us * 0.95;
  s.latency_p90_us = median_us * 1.1;
  s.repeats = 20;
  s.threads = 1;
  s.measured_at = "2026-12-03T19:00:00Z";
  s.source = "test";
  return s;
}

inline ModelLatency TestModelLatency(const std::string& key, double median_us = 45000) {
  ModelLatency m;
  m.key = key;
  m.model_sha256 = std::string(64, 'a');
  m.model_name = "det.onnx";
  m.latency_median_us = median_us;
  m.latency_p10_us = median_us * 0.97;
  m.latency_p90_us = median_us * 1.05;
  m.repeats = 10;
  m.threads = 1;
  m.measured_at = "2026-12-03T19:00:00Z";
  m.source = "test";
  return m;
}

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_
