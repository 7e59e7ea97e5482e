// Wall-clock spans the benchmarks report beside their figures.
#ifndef SQUEEZE_BENCH_COMMON_TIMING_H_
#define SQUEEZE_BENCH_COMMON_TIMING_H_

#include <sys/resource.h>

#include <chrono>
#include <cstdint>

namespace squeeze::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `start`.
inline double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The most resident memory this process has held so far, in bytes (getrusage; Linux counts KiB).
inline int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace squeeze::bench

#endif  // SQUEEZE_BENCH_COMMON_TIMING_H_
