// A small hand-made device whose figures make cost-model expectations easy to compute by hand.
#ifndef SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_
#define SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_

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

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_TESTS_DEVICE_PROFILES_TEST_DEVICE_H_
