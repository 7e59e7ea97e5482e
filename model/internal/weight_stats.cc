#include "model/internal/weight_stats.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>

namespace squeeze::model::internal {
namespace {

// Channels per task: enough values that scheduling costs little next to the sums.
int64_t ChannelGrain(const ChannelLayout& layout) {
  const int64_t per_channel = std::max<int64_t>(1, layout.outer / layout.groups * layout.inner);
  return std::max<int64_t>(1, 16384 / per_channel);
}

template <typename Fn>
void InArena(int threads, Fn&& fn) {
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  arena.execute(fn);
}

}  // namespace

ChannelLayout LayoutOf(const LayerSite& site) {
  const Layer& layer = site.layer;
  const std::vector<int64_t>& w = layer.weight_shape;
  const int64_t count = layer.params;
  ChannelLayout layout;
  if (count == 0) return layout;
  if (layer.op_type == "Conv") {
    layout.axis = w[0];
    layout.inner = count / w[0];
  } else if (layer.op_type == "ConvTranspose") {
    layout.outer = w[0];
    layout.axis = w[1];
    layout.inner = count / (w[0] * w[1]);
    layout.groups = layer.groups;
  } else if (layer.op_type == "Gemm") {
    layout.axis = layer.out_channels;
    (site.trans_b ? layout.inner : layout.outer) = layer.in_channels;
  } else if (w.size() >= 2) {  // MatMul [..., K, N]
    layout.axis = w.back();
    layout.outer = count / w.back();
  } else {  // MatMul with a vector B: one output channel
    layout.inner = count;
  }
  return layout;
}

ChannelStats ComputeChannelStats(const std::vector<float>& weights, const ChannelLayout& layout) {
  const int64_t channels = layout.channels();
  ChannelStats stats;
  stats.absmax.assign(static_cast<size_t>(channels), 0.0f);
  stats.l2_norm.assign(static_cast<size_t>(channels), 0.0f);
  if (weights.empty() || channels == 0) return stats;
  const int64_t rows_per_group = layout.outer / layout.groups;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, channels, ChannelGrain(layout)),
                    [&](const tbb::blocked_range<int64_t>& range) {
                      for (int64_t c = range.begin(); c != range.end(); ++c) {
                        const int64_t g = c / layout.axis;
                        const int64_t j = c % layout.axis;
                        float absmax = 0;
                        double sum_sq = 0;
                        for (int64_t o = g * rows_per_group; o < (g + 1) * rows_per_group; ++o) {
                          const float* row = weights.data() + (o * layout.axis + j) * layout.inner;
                          for (int64_t i = 0; i < layout.inner; ++i) {
                            absmax = std::max(absmax, std::fabs(row[i]));
                            sum_sq += static_cast<double>(row[i]) * row[i];
                          }
                        }
                        stats.absmax[c] = absmax;
                        stats.l2_norm[c] = static_cast<float>(std::sqrt(sum_sq));
                      }
                    });
  return stats;
}

void ComputeWeightStats(std::vector<LayerSite>* sites, int threads) {
  InArena(threads, [sites] {
    tbb::parallel_for(size_t{0}, sites->size(), [sites](size_t i) {
      LayerSite& site = (*sites)[i];
      site.layer.weight_layout = LayoutOf(site);
      site.layer.stats = ComputeChannelStats(DecodeFloats(*site.weight), site.layer.weight_layout);
    });
  });
}

std::vector<NonFiniteCount> CountNonFiniteAll(const std::vector<const onnx::TensorProto*>& tensors, int threads) {
  std::vector<NonFiniteCount> counts(tensors.size());
  InArena(threads, [&] {
    tbb::parallel_for(size_t{0}, tensors.size(), [&](size_t i) { counts[i] = CountNonFinite(*tensors[i]); });
  });
  return counts;
}

}  // namespace squeeze::model::internal
