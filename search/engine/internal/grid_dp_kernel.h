// The DP's inner loop, kept in its own file so it can be compiled for vector units.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_KERNEL_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_KERNEL_H_

#include <cstdint>

namespace squeeze::search::internal {

// For b in [0, n): when src[b] + add < dst[b], set dst[b] to it and tag[b] to `option`. Strict,
// so on ties the option relaxed first keeps the cell. Pure IEEE float adds and compares: the same
// result on every machine and vector width.
void RelaxRow(const float* src, float* dst, float* tag, int32_t n, float add, float option);

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_GRID_DP_KERNEL_H_
