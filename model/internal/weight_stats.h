// Per-output-channel weight statistics and NaN/Inf scans, in parallel with oneTBB. Every value is
// computed by one task in storage order into a preallocated slot, so results do not depend on the
// number of threads.
#ifndef SQUEEZE_MODEL_INTERNAL_WEIGHT_STATS_H_
#define SQUEEZE_MODEL_INTERNAL_WEIGHT_STATS_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <vector>

#include "model/analysis.h"
#include "model/internal/layers.h"
#include "model/internal/tensor_data.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {

// Output channels are axis 0 for Conv and Gemm with transB, axis 1 for ConvTranspose (per
// group) and Gemm without transB, the last axis for MatMul.
ChannelLayout LayoutOf(const LayerSite& site);

// Absmax and L2 norm of every output channel of `weights`.
ChannelStats ComputeChannelStats(const std::vector<float>& weights, const ChannelLayout& layout);

// Fills layer.stats of every site, in parallel over layers and their channels, on `threads`
// threads (0: oneTBB's default).
void ComputeWeightStats(std::vector<LayerSite>* sites, int threads);

// CountNonFinite of every tensor, in parallel.
std::vector<NonFiniteCount> CountNonFiniteAll(const std::vector<const onnx::TensorProto*>& tensors, int threads);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_WEIGHT_STATS_H_
