#include "device_profiles/host.h"

#include <sched.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace squeeze::device_profiles {
namespace {

std::string Slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The value of the first "key : value" line whose key is `key`.
std::string CpuInfoField(const std::string& cpuinfo, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(cpuinfo, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (absl::StripAsciiWhitespace(kv.first) == key) {
      return std::string(absl::StripAsciiWhitespace(kv.second));
    }
  }
  return {};
}

// SIMD features that matter to inference kernels, in the kernel's spelling.
constexpr const char* kX86Features[] = {"sse4_2",      "avx",         "avx2",     "fma",         "f16c",
                                        "avx512f",     "avx512bw",    "avx512vl", "avx512_vnni", "avx_vnni",
                                        "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",    "amx_bf16"};
constexpr const char* kArmFeatures[] = {"asimd", "fphp", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme"};

std::string FormatRate(double ops) { return absl::StrFormat("%.1f Gops/s", ops / 1e9); }

}  // namespace

double MeasureMemoryBandwidth() {
  constexpr size_t kBytes = 64u << 20;
  std::vector<char> a(kBytes, 1), b(kBytes, 2);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    auto start = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), kBytes);
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > 0) best = std::max(best, 2.0 * kBytes / seconds);  // read + write
    std::swap(a, b);
  }
  return best;
}

namespace {

// The limits of this process's cgroup: v2 ("0::/path" in /proc/self/cgroup), else v1's cpu and
// memory controllers, written in v2's form. A container may see its own cgroup at the mount's
// root while /proc/self/cgroup names the host's path, so the root is tried too.
void ReadCgroupLimits(HostFacts* facts) {
  const std::string self = Slurp("/proc/self/cgroup");
  std::string v2, v1_cpu, v1_memory;
  for (absl::string_view line : absl::StrSplit(self, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) v2 = parts[2];
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "cpu") v1_cpu = parts[2];
      if (controller == "memory") v1_memory = parts[2];
    }
  }
  // The file in the process's cgroup directory under `mount`, or at the mount's root; "" if neither.
  std::vector<std::string> read_from;
  auto read = [&read_from](const std::string& mount, const std::string& path, const char* file) {
    for (const std::string& dir : {absl::StrCat(mount, path == "/" ? "" : path), mount}) {
      const std::string text(absl::StripAsciiWhitespace(Slurp(absl::StrCat(dir, "/", file).c_str())));
      if (!text.empty()) {
        read_from.push_back(dir);
        return text;
      }
    }
    return std::string();
  };
  facts->cgroup_cpu_max = read("/sys/fs/cgroup", v2, "cpu.max");
  facts->cgroup_memory_max = read("/sys/fs/cgroup", v2, "memory.max");
  if (facts->cgroup_cpu_max.empty() && !v1_cpu.empty()) {
    const std::string quota = read("/sys/fs/cgroup/cpu", v1_cpu, "cpu.cfs_quota_us");
    const std::string period = read("/sys/fs/cgroup/cpu", v1_cpu, "cpu.cfs_period_us");
    if (!quota.empty() && !period.empty())
      facts->cgroup_cpu_max = absl::StrCat(quota == "-1" ? "max" : quota, " ", period);
  }
  if (facts->cgroup_memory_max.empty() && !v1_memory.empty()) {
    facts->cgroup_memory_max = read("/sys/fs/cgroup/memory", v1_memory, "memory.limit_in_bytes");
  }
  std::sort(read_from.begin(), read_from.end());
  read_from.erase(std::unique(read_from.begin(), read_from.end()), read_from.end());
  facts->cgroup_path = absl::StrJoin(read_from, ", ");
}

}  // namespace

HostFacts ReadHostFacts(const std::string& runtime_version) {
  HostFacts facts;
  // A detection override, for tests and for describing another machine's CPU: the file
  // SQUEEZE_HOST_CPUINFO names is read instead of /proc/cpuinfo.
  const char* cpuinfo_override = std::getenv(kCpuinfoOverrideVariable);
  facts.cpuinfo_path = cpuinfo_override != nullptr && *cpuinfo_override != '\0' ? cpuinfo_override : "/proc/cpuinfo";
  facts.cpuinfo = Slurp(facts.cpuinfo_path.c_str());
  facts.meminfo = Slurp("/proc/meminfo");
  facts.cpufreq_max_khz = Slurp("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  cpu_set_t set;
  CPU_ZERO(&set);
  facts.online_cpus = sched_getaffinity(0, sizeof(set), &set) == 0
                          ? CPU_COUNT(&set)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  struct utsname uts {};
  if (uname(&uts) == 0) {
    facts.machine = uts.machine;
    facts.os = absl::StrCat(uts.sysname, " ", uts.release);
  }
  std::string os_release = Slurp("/etc/os-release");
  for (absl::string_view line : absl::StrSplit(os_release, '\n')) {
    if (absl::ConsumePrefix(&line, "PRETTY_NAME=")) {
      facts.os = absl::StrCat(facts.os, " (", absl::StripSuffix(absl::StripPrefix(line, "\""), "\""), ")");
    }
  }
  ReadCgroupLimits(&facts);
  facts.memory_bandwidth_bytes_per_s = MeasureMemoryBandwidth();
  facts.runtime_version = runtime_version;
  return facts;
}

absl::StatusOr<Device> HostDevice(const HostFacts& facts) {
  const bool arm = facts.machine == "aarch64" || !CpuInfoField(facts.cpuinfo, "CPU implementer").empty();
  std::string flag_text = CpuInfoField(facts.cpuinfo, arm ? "Features" : "flags");
  if (flag_text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read CPU features from ", facts.cpuinfo_path.empty() ? "/proc/cpuinfo" : facts.cpuinfo_path,
        facts.cpuinfo_path.empty() || facts.cpuinfo_path == "/proc/cpuinfo"
            ? ""
            : absl::StrCat(" (", kCpuinfoOverrideVariable,
                           "): point it at a readable copy of /proc/cpuinfo or unset it")));
  }
  absl::flat_hash_set<std::string> flags = absl::StrSplit(flag_text, ' ', absl::SkipEmpty());
  std::vector<std::string> simd;
  for (const char* f : arm ? std::vector<const char*>(std::begin(kArmFeatures), std::end(kArmFeatures))
                           : std::vector<const char*>(std::begin(kX86Features), std::end(kX86Features))) {
    if (flags.contains(f)) simd.push_back(f);
  }

  std::string model = CpuInfoField(facts.cpuinfo, "model name");
  if (model.empty()) model = CpuInfoField(facts.cpuinfo, "Hardware");
  if (model.empty()) model = arm ? "ARM CPU" : "x86-64 CPU";
  std::string vendor = CpuInfoField(facts.cpuinfo, "vendor_id");
  int family = 0;
  (void)absl::SimpleAtoi(CpuInfoField(facts.cpuinfo, "cpu family"), &family);
  double mhz = 0;
  std::string clock_source = "cpu MHz in /proc/cpuinfo";
  (void)absl::SimpleAtod(CpuInfoField(facts.cpuinfo, "cpu MHz"), &mhz);
  double max_khz = 0;
  if (mhz <= 0 && absl::SimpleAtod(absl::StripAsciiWhitespace(facts.cpufreq_max_khz), &max_khz)) {
    mhz = max_khz / 1000;
    clock_source = "cpuinfo_max_freq";
  }
  if (mhz <= 0) {
    return absl::InvalidArgumentError(
        "cannot read the CPU clock from /proc/cpuinfo or cpufreq; measure this machine with "
        "squeeze-profile instead");
  }

  int64_t mem_kb = 0;
  for (absl::string_view line : absl::StrSplit(facts.meminfo, '\n')) {
    if (absl::ConsumePrefix(&line, "MemTotal:")) {
      (void)absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &mem_kb);
    }
  }
  if (mem_kb <= 0) return absl::InvalidArgumentError("cannot read MemTotal from /proc/meminfo");
  int64_t ram_bytes = mem_kb * 1024;
  // A container's limits: its CPU quota (rounded up to whole cores) and its memory limit.
  int cores = std::max(1, facts.online_cpus);
  std::vector<std::string> limited;
  {
    std::vector<std::string> cpu = absl::StrSplit(facts.cgroup_cpu_max, ' ', absl::SkipEmpty());
    double quota = 0, period = 0;
    if (cpu.size() == 2 && absl::SimpleAtod(cpu[0], &quota) && absl::SimpleAtod(cpu[1], &period) && quota > 0 &&
        period > 0) {
      const int allowed = std::max(1, static_cast<int>(std::ceil(quota / period - 1e-9)));
      if (allowed < cores) {
        limited.push_back(absl::StrFormat("cores = %d by the cgroup's CPU quota %s (of %d CPUs in the affinity mask)",
                                          allowed, facts.cgroup_cpu_max, cores));
        cores = allowed;
      }
    }
    int64_t memory_max = 0;
    if (absl::SimpleAtoi(facts.cgroup_memory_max, &memory_max) && memory_max > 0 && memory_max < ram_bytes) {
      limited.push_back(
          absl::StrFormat("RAM = the cgroup's memory limit, %d bytes (MemTotal is %d)", memory_max, ram_bytes));
      ram_bytes = memory_max;
    }
  }

  // FMA vector width: the widest SIMD the core executes at full rate. AMD family 0x19 (Zen 3/4)
  // executes 512-bit AVX-512 as two 256-bit halves.
  int vector_bits = 128;
  std::string width_rule = arm ? "NEON: 128-bit" : "SSE: 128-bit";
  if (!arm && flags.contains("avx512f") && !(vendor == "AuthenticAMD" && family == 0x19)) {
    vector_bits = 512;
    width_rule = "avx512f: 512-bit";
  } else if (!arm && flags.contains("avx2") && flags.contains("fma")) {
    vector_bits = 256;
    width_rule = flags.contains("avx512f") ? "avx512f on AMD family 0x19 (Zen 3/4) runs as 2x256-bit: 256-bit"
                                           : "avx2+fma: 256-bit";
  }
  constexpr int kFmaPipes = 2;
  const double lanes = vector_bits / 32.0;
  const double fp32_peak = cores * mhz * 1e6 * kFmaPipes * lanes * 2;
  const std::string fp32_derivation = absl::StrFormat(
      "%d cores x %.0f MHz (%s) x %d FMA pipes (assumed, as in x86 cores since Haswell/Zen 2 "
      "and Cortex-A76+) x %.0f fp32 lanes (%s) x 2 ops = %s",
      cores, mhz, clock_source, kFmaPipes, lanes, width_rule, FormatRate(fp32_peak));

  const bool int8_dot = arm ? flags.contains("asimddp") : flags.contains("avx512_vnni") || flags.contains("avx_vnni");
  const double int8_factor = int8_dot ? 4 : 2;
  const std::string int8_rule =
      int8_dot
          ? (arm ? "SDOT/UDOT (asimddp): 4 int8 MACs per 32-bit lane" : "VNNI VPDPBUSD: 4 int8 MACs per 32-bit lane")
          : "no dot-product instruction: 16-bit multiply-add pairs, 2 int8 MACs per 32-bit lane";
  const bool fp16_arith = arm ? flags.contains("asimdhp") : flags.contains("avx512_fp16");

  Device d;
  d.id = "host";
  d.name = absl::StrCat("This server (", model, ")");
  d.vendor = vendor.empty() ? (arm ? "ARM" : "unknown") : vendor;
  d.soc = model;
  d.os = facts.os;
  d.cpu = absl::StrFormat("%d x %s @ %.0f MHz", cores, model, mhz);
  d.cpu_cores = cores;
  d.simd_features = simd;
  d.ram_bytes = ram_bytes;
  d.app_memory_budget_bytes = d.ram_bytes / 2;
  d.memory_bandwidth_bytes_per_s = facts.memory_bandwidth_bytes_per_s;
  d.runtime = "onnxruntime-cpu";
  d.runtime_version = facts.runtime_version;
  d.threads = cores;
  d.op_overhead_us = 5;
  d.source = facts.cpuinfo_path.empty() || facts.cpuinfo_path == "/proc/cpuinfo"
                 ? "/proc/cpuinfo, /proc/meminfo and the CPU affinity mask of the squeezed process"
                 : absl::StrCat(facts.cpuinfo_path, " (", kCpuinfoOverrideVariable,
                                ", in place of /proc/cpuinfo), /proc/meminfo and the CPU affinity mask");
  if (!facts.cgroup_path.empty()) absl::StrAppend(&d.source, "; cgroup limits from ", facts.cgroup_path);
  d.derivation = absl::StrFormat(
      "cores = CPUs in the affinity mask; RAM = MemTotal; app memory budget = RAM / 2 (assumed: "
      "a server shares its RAM); memory bandwidth = measured at first start, best of 4 memcpy "
      "passes over 64 MiB, read + write bytes = %.1f GB/s; op overhead 5 us (assumed ONNX Runtime "
      "CPU dispatch cost, replaced by squeeze-profile)",
      d.memory_bandwidth_bytes_per_s / 1e9);
  if (!limited.empty()) absl::StrAppend(&d.derivation, "; ", absl::StrJoin(limited, "; "));
  d.provenance = Provenance::kSpec;

  auto add = [&](std::optional<OpKind> kind, int w, int a, double peak, double efficiency, std::string derivation) {
    Capability c;
    c.op_kind = kind;
    c.weight_bits = w;
    c.activation_bits = a;
    c.peak_ops_per_s = peak;
    c.efficiency = efficiency;
    c.source = d.source;
    c.derivation = std::move(derivation);
    d.capabilities.push_back(std::move(c));
  };
  const char* kEff = "efficiency 0.5 for dense conv/gemm kernels (assumed)";
  const char* kDwEff =
      "efficiency 0.15 for depthwise conv, which has too little reuse to fill the "
      "FMA pipes (assumed)";
  add(std::nullopt, 32, 32, fp32_peak, 0.5, absl::StrCat("fp32: ", fp32_derivation, "; ", kEff));
  add(OpKind::kDepthwiseConv, 32, 32, fp32_peak, 0.15, absl::StrCat("fp32: ", fp32_derivation, "; ", kDwEff));
  const double int8_peak = fp32_peak * int8_factor;
  const std::string int8_derivation =
      absl::StrFormat("int8: fp32 peak x %.0f (%s) = %s", int8_factor, int8_rule, FormatRate(int8_peak));
  add(std::nullopt, 8, 8, int8_peak, 0.5, absl::StrCat(int8_derivation, "; ", kEff));
  add(OpKind::kDepthwiseConv, 8, 8, int8_peak, 0.15, absl::StrCat(int8_derivation, "; ", kDwEff));
  if (fp16_arith) {
    // No fp16 row: the export for ONNX Runtime's CPU provider computes every float layer in fp32
    // (fp16 weights are cast to float at load), so half-precision arithmetic runs no exported file.
    absl::StrAppend(&d.derivation, "; ", arm ? "asimdhp" : "avx512_fp16",
                    " present, but no fp16 row: ONNX Runtime's CPU provider runs the exported float layers in fp32");
  }
  return d;
}

}  // namespace squeeze::device_profiles
