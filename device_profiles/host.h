// The machine the server runs on, as a spec-provenance device profile (`host`).
//
// Figures come from the kernel (/proc/cpuinfo, /proc/meminfo, the CPU affinity mask); peak rates
// are derived from them with the rules written into each row's `derivation`. Memory bandwidth is
// not published by the kernel, so it is measured once with a short streaming copy and said so.
// `squeeze-profile` replaces all of this with measurements.
#ifndef SQUEEZE_DEVICE_PROFILES_HOST_H_
#define SQUEEZE_DEVICE_PROFILES_HOST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device_profiles/device.h"

namespace squeeze::device_profiles {

// The environment variable naming a file read in place of /proc/cpuinfo: a detection override, so
// behaviour that depends on the CPU's features can be tried on any machine.
inline constexpr char kCpuinfoOverrideVariable[] = "SQUEEZE_HOST_CPUINFO";

// What the detection reads, separated from reading it so it can be tested on fixed text.
struct HostFacts {
  std::string cpuinfo;          // contents of /proc/cpuinfo (or of the override)
  std::string cpuinfo_path;     // where they were read from
  std::string meminfo;          // contents of /proc/meminfo
  std::string cpufreq_max_khz;  // /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq, if any
  int online_cpus = 1;          // CPUs this process may run on
  // The process's cgroup limits (a container's CPUs and memory), as cgroup v2 writes them: CPU
  // "QUOTA PERIOD" or "max PERIOD" (cpu.max; v1's cfs_quota_us and cfs_period_us in that form),
  // memory bytes or "max" (memory.max; v1's memory.limit_in_bytes). Empty when there is none.
  std::string cgroup_cpu_max;
  std::string cgroup_memory_max;
  std::string cgroup_path;                  // where they were read, for the device's source
  std::string machine;                      // uname -m, e.g. x86_64 or aarch64
  std::string os;                           // e.g. "Linux 6.1 (Debian GNU/Linux 12)"
  double memory_bandwidth_bytes_per_s = 0;  // measured by MeasureMemoryBandwidth
  std::string runtime_version;              // ONNX Runtime version the server links
};

// Reads the facts of this machine (the CPU from SQUEEZE_HOST_CPUINFO's file when it is set), with
// the limits of the process's cgroup (v2, else v1); measures bandwidth (about 0.2 s).
HostFacts ReadHostFacts(const std::string& runtime_version);

// Streaming copy bandwidth (read + write bytes per second), best of a few passes over 64 MiB.
double MeasureMemoryBandwidth();

// The `host` device built from `facts`: cores are the affinity mask's CPUs, fewer when the cgroup's
// CPU quota allows fewer (rounded up); RAM is MemTotal, less when the cgroup's memory limit is
// lower. InvalidArgument when the CPU information cannot be parsed.
absl::StatusOr<Device> HostDevice(const HostFacts& facts);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_HOST_H_
