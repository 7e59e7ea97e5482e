// Wall-clock spans the benchmarks report beside their figures.
#ifndef SQUEEZE_BENCH_COMMON_TIMING_H_
#define SQUEEZE_BENCH_COMMON_TIMING_H_

#include <chrono>

namespace squeeze::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `start`.
inline double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace squeeze::bench

#endif  // SQUEEZE_BENCH_COMMON_TIMING_H_
