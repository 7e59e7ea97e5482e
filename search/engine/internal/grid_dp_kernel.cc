#include "search/engine/internal/grid_dp_kernel.h"

namespace squeeze::search::internal {

// An AVX2 clone is picked at load time where the CPU has it; the default clone runs elsewhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void RelaxRow(const float* __restrict src, float* __restrict dst, float* __restrict tag,
              int32_t n, float add, float option) {
  for (int32_t b = 0; b < n; ++b) {
    const float x = src[b] + add;
    const bool better = x < dst[b];
    dst[b] = better ? x : dst[b];
    tag[b] = better ? option : tag[b];
  }
}

}  // namespace squeeze::search::internal
