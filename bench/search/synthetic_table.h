// Synthetic option tables with the structure of real ones, for the search bench: layer costs
// spanning three orders of magnitude, a roofline latency model with int8 and sparse kernels,
// packed sizes with index and scale overhead, and errors convex in bits (quantization noise
// ∝ 4^-bits) plus magnitude-pruning loss, scaled by a per-layer sensitivity.
#ifndef SQUEEZE_BENCH_SEARCH_SYNTHETIC_TABLE_H_
#define SQUEEZE_BENCH_SEARCH_SYNTHETIC_TABLE_H_

#include <cstdint>

#include "search/engine/option_table.h"

namespace squeeze::search::bench {

// 96 options per layer: 12 (weight bits, activation bits) pairs × 8 sparsity patterns
// (dense; unstructured 25/50/75%; 2:4; output channels 12.5/25/50%). Latency in microseconds.
// Error units: relative output noise energy; the whole model at int8 is ≈ 1e-3 (30 dB SQNR).
OptionTable SyntheticTable(int layers, uint64_t seed);

}  // namespace squeeze::search::bench

#endif  // SQUEEZE_BENCH_SEARCH_SYNTHETIC_TABLE_H_
