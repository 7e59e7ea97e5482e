#include "device_profiles/host.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace squeeze::device_profiles {
namespace {

using Catch::Matchers::Contains;

HostFacts X86Facts(const std::string& vendor, int family, const std::string& flags) {
  HostFacts f;
  f.cpuinfo = "processor\t: 0\nvendor_id\t: " + vendor + "\ncpu family\t: " + std::to_string(family) +
              "\nmodel name\t: Test CPU\ncpu MHz\t\t: 2500.000\nflags\t\t: " + flags + "\n\n";
  f.meminfo = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n";
  f.online_cpus = 4;
  f.machine = "x86_64";
  f.os = "Linux";
  f.memory_bandwidth_bytes_per_s = 20e9;
  f.runtime_version = "1.29.0";
  return f;
}

const Capability* Find(const Device& d, int w, int a) {
  for (const Capability& c : d.capabilities) {
    if (!c.op_kind && c.weight_bits == w && c.activation_bits == a) return &c;
  }
  return nullptr;
}

TEST_CASE("An AVX-512 VNNI Intel host has 512-bit FMA and 4x int8", "[host]") {
  absl::StatusOr<Device> d = HostDevice(X86Facts("GenuineIntel", 6, "fpu sse4_2 avx avx2 fma avx512f avx512_vnni"));
  REQUIRE(d.ok());
  CHECK(d->id == "host");
  CHECK(d->cpu_cores == 4);
  CHECK(d->ram_bytes == int64_t{16384000} * 1024);
  CHECK(d->simd_features == std::vector<std::string>{"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni"});
  // 4 cores x 2.5 GHz x 2 pipes x 16 lanes x 2 ops.
  const Capability* fp32 = Find(*d, 32, 32);
  REQUIRE(fp32 != nullptr);
  CHECK(fp32->peak_ops_per_s == Approx(4 * 2.5e9 * 2 * 16 * 2));
  CHECK_THAT(fp32->derivation, Contains("512-bit"));
  const Capability* int8 = Find(*d, 8, 8);
  REQUIRE(int8 != nullptr);
  CHECK(int8->peak_ops_per_s == Approx(fp32->peak_ops_per_s * 4));
  CHECK(Find(*d, 16, 16) == nullptr);  // no fp16 arithmetic
  CHECK(ValidateDevice(*d).ok());
}

TEST_CASE("AMD Zen 3/4 runs AVX-512 as two 256-bit halves", "[host]") {
  absl::StatusOr<Device> d = HostDevice(X86Facts("AuthenticAMD", 25, "avx avx2 fma avx512f avx512_vnni"));
  REQUIRE(d.ok());
  CHECK(Find(*d, 32, 32)->peak_ops_per_s == Approx(4 * 2.5e9 * 2 * 8 * 2));
}

TEST_CASE("An AVX2 host without VNNI gets 2x int8", "[host]") {
  absl::StatusOr<Device> d = HostDevice(X86Facts("GenuineIntel", 6, "avx avx2 fma"));
  REQUIRE(d.ok());
  CHECK(Find(*d, 8, 8)->peak_ops_per_s == Approx(Find(*d, 32, 32)->peak_ops_per_s * 2));
}

TEST_CASE("An ARM host reads its clock from cpufreq, its fp16 arithmetic runs no exported file", "[host]") {
  HostFacts f;
  f.cpuinfo =
      "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes fphp asimdhp asimddp\n"
      "CPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n";
  f.cpufreq_max_khz = "2400000\n";
  f.meminfo = "MemTotal:        8000000 kB\n";
  f.online_cpus = 4;
  f.machine = "aarch64";
  f.memory_bandwidth_bytes_per_s = 10e9;
  absl::StatusOr<Device> d = HostDevice(f);
  REQUIRE(d.ok());
  CHECK(Find(*d, 32, 32)->peak_ops_per_s == Approx(4 * 2.4e9 * 2 * 4 * 2));
  // ONNX Runtime's CPU provider computes the exported float layers in fp32: no fp16 row.
  CHECK(Find(*d, 16, 16) == nullptr);
  CHECK_THAT(d->derivation, Contains("asimdhp present, but no fp16 row"));
  CHECK(Find(*d, 8, 8)->peak_ops_per_s == Approx(Find(*d, 32, 32)->peak_ops_per_s * 4));
  CHECK(std::count(d->simd_features.begin(), d->simd_features.end(), "asimddp") == 1);
}

TEST_CASE("A Sapphire Rapids host (AVX-512-FP16, AMX) gets no fp16 row for ONNX Runtime's CPU provider", "[host]") {
  absl::StatusOr<Device> d = HostDevice(X86Facts(
      "GenuineIntel", 6,
      "avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_int8 amx_bf16"));
  REQUIRE(d.ok());
  CHECK(std::count(d->simd_features.begin(), d->simd_features.end(), "avx512_fp16") == 1);
  CHECK(std::count(d->simd_features.begin(), d->simd_features.end(), "amx_int8") == 1);
  for (const Capability& c : d->capabilities) CHECK(c.activation_bits != 16);
  CHECK_THAT(d->derivation, Contains("avx512_fp16 present, but no fp16 row"));
}

TEST_CASE("SQUEEZE_HOST_CPUINFO makes detection read another machine's /proc/cpuinfo", "[host]") {
  const std::string path =
      std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/squeeze-cpuinfo-test";
  {
    std::ofstream out(path);
    out << "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+"
           "\ncpu MHz\t\t: 2000.000\nflags\t\t: avx avx2 fma avx512f avx512_fp16 amx_tile amx_int8\n\n";
  }
  ::setenv("SQUEEZE_HOST_CPUINFO", path.c_str(), 1);
  const HostFacts facts = ReadHostFacts("test");
  ::unsetenv("SQUEEZE_HOST_CPUINFO");
  std::remove(path.c_str());
  absl::StatusOr<Device> d = HostDevice(facts);
  REQUIRE(d.ok());
  CHECK_THAT(d->name, Contains("Xeon(R) Platinum 8480+"));
  CHECK(std::count(d->simd_features.begin(), d->simd_features.end(), "avx512_fp16") == 1);
  CHECK_THAT(d->source, Contains("SQUEEZE_HOST_CPUINFO"));
}

TEST_CASE("Unreadable CPU information is InvalidArgument", "[host]") {
  HostFacts f;
  f.cpuinfo = "garbage";
  CHECK(HostDevice(f).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A container's cgroup limits are the host's cores and RAM", "[host]") {
  HostFacts facts = X86Facts("GenuineIntel", 6, "avx2 fma");
  facts.online_cpus = 16;
  facts.cgroup_path = "/sys/fs/cgroup/kubepods/pod";
  SECTION("cgroup v2: a 1.5-CPU quota and 4 GiB") {
    facts.cgroup_cpu_max = "150000 100000";
    facts.cgroup_memory_max = "4294967296";
    const Device d = *HostDevice(facts);
    CHECK(d.cpu_cores == 2);  // rounded up
    CHECK(d.threads == 2);
    CHECK(d.ram_bytes == int64_t{4} << 30);
    CHECK(d.app_memory_budget_bytes == int64_t{2} << 30);
    CHECK_THAT(d.derivation,
               Contains("cgroup's CPU quota 150000 100000 (of 16 CPUs") && Contains("cgroup's memory limit"));
    CHECK_THAT(d.source, Contains("cgroup limits from /sys/fs/cgroup/kubepods/pod"));
    // The peak follows the cores the container may use.
    const Device whole = *HostDevice(X86Facts("GenuineIntel", 6, "avx2 fma"));
    CHECK(d.capabilities.front().peak_ops_per_s == Approx(whole.capabilities.front().peak_ops_per_s / 2));
  }
  SECTION("no limits: the affinity mask and MemTotal") {
    facts.cgroup_cpu_max = "max 100000";
    facts.cgroup_memory_max = "max";
    const Device d = *HostDevice(facts);
    CHECK(d.cpu_cores == 16);
    CHECK(d.ram_bytes == int64_t{16384000} * 1024);
    CHECK_THAT(d.derivation, !Contains("cgroup's"));
  }
  SECTION("a limit above what the machine has changes nothing") {
    facts.cgroup_cpu_max = "3200000 100000";
    facts.cgroup_memory_max = std::to_string(int64_t{1} << 40);
    const Device d = *HostDevice(facts);
    CHECK(d.cpu_cores == 16);
    CHECK(d.ram_bytes == int64_t{16384000} * 1024);
  }
}

TEST_CASE("This machine can be described", "[host]") {
  absl::StatusOr<Device> d = HostDevice(ReadHostFacts("test"));
  REQUIRE(d.ok());
  CHECK(d->cpu_cores >= 1);
  CHECK(d->memory_bandwidth_bytes_per_s > 0);
  CHECK(ValidateDevice(*d).ok());
}

}  // namespace
}  // namespace squeeze::device_profiles
