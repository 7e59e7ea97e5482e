#include "search/problem/option_grid.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "search/problem/plan.h"

namespace squeeze::search {

namespace dp = device_profiles;

absl::Status ValidateOptionGrid(const OptionGrid& grid) {
  if (grid.weight_bits.empty()) return absl::InvalidArgumentError("the option space has no weight bit-width");
  if (grid.activation_bits.empty()) {
    return absl::InvalidArgumentError("the option space has no activation bit-width");
  }
  if (grid.prune_ratios.empty()) return absl::InvalidArgumentError("the option space has no prune ratio (0 = none)");
  for (int b : grid.weight_bits) {
    if (!(b == 32 || b == 16 || b == 8 || (b >= 2 && b <= 6))) {
      return absl::InvalidArgumentError(absl::StrCat("weight bits ", b, " not in {2, 3, 4, 5, 6, 8, 16, 32}"));
    }
  }
  for (int b : grid.activation_bits) {
    if (b != 32 && b != 16 && b != 8) {
      return absl::InvalidArgumentError(absl::StrCat("activation bits ", b, " not in {8, 16, 32}"));
    }
  }
  for (double r : grid.prune_ratios) {
    if (!(r >= 0 && r < 1)) return absl::InvalidArgumentError(absl::StrCat("prune ratio ", r, " not in [0, 1)"));
  }
  for (dp::Sparsity s : grid.patterns) {
    if (s == dp::Sparsity::kDense) {
      return absl::InvalidArgumentError("'dense' is not a pruning pattern: prune ratio 0 is the dense option");
    }
  }
  if (grid.block_sizes.empty()) {
    return absl::InvalidArgumentError("the option space has no block size (for block-wise 2..4-bit MatMul weights)");
  }
  for (int b : grid.block_sizes) {
    if (!model::IsMatMulNBitsBlockSize(b)) {
      return absl::InvalidArgumentError(absl::StrCat("block size ", b, " is not a power of two from 16 to 256"));
    }
  }
  return absl::OkStatus();
}

namespace {

// The prune ratios of output-channel pruning: each grid ratio moved to the nearest kept count that
// is a positive multiple of `alignment` and below `out` (model::AlignedChannelRatio), in grid
// order, once each.
std::vector<double> ChannelRatios(const std::vector<double>& grid_ratios, int64_t out, int alignment) {
  std::vector<double> ratios;
  for (double r : grid_ratios) {
    const std::optional<double> ratio = model::AlignedChannelRatio(out, r, alignment);
    if (ratio && std::find(ratios.begin(), ratios.end(), *ratio) == ratios.end()) ratios.push_back(*ratio);
  }
  return ratios;
}

}  // namespace

std::vector<dp::CompressionOption> LayerOptions(const OptionGrid& grid, const model::Layer& layer,
                                                const DeviceRealization& device) {
  std::vector<std::pair<int, int>> precisions;
  for (int w : grid.weight_bits) {
    for (int a : grid.activation_bits) {
      if (model::Realizes(device.flavour, w, a)) precisions.emplace_back(w, a);
    }
  }
  const std::vector<double> channel_ratios =
      ChannelRatios(grid.prune_ratios, layer.out_channels, device.channel_alignment);
  const int64_t per_channel = layer.out_channels > 0 ? layer.params / layer.out_channels : layer.params;
  std::vector<dp::CompressionOption> out;
  std::vector<std::tuple<int, int, int>> realizations;  // (weight bits, activation bits, block size)
  for (const auto& [w, a] : precisions) {
    if (!model::WritesMatMulNBits(layer, device.flavour, w, a)) {
      realizations.emplace_back(w, a, 0);
      continue;
    }
    for (int b : grid.block_sizes) {
      if (std::find(realizations.begin(), realizations.end(), std::make_tuple(w, a, b)) == realizations.end()) {
        realizations.emplace_back(w, a, b);
      }
    }
  }
  for (const auto& [w, a, block] : realizations) {
    dp::CompressionOption o;
    o.weight_bits = w;
    o.activation_bits = a;
    o.block_size = block;
    for (double r : grid.prune_ratios) {
      if (r == 0) {
        o.pattern = dp::Sparsity::kDense;
        o.prune_ratio = 0;
        out.push_back(o);
      }
    }
    for (dp::Sparsity pattern : grid.patterns) {
      o.pattern = pattern;
      if (pattern == dp::Sparsity::kTwoFour) {
        if (per_channel < 4) continue;
        o.prune_ratio = 0.5;
        out.push_back(o);
        continue;
      }
      if (pattern == dp::Sparsity::kOutputChannel) {
        if (layer.grouped) continue;
        for (double r : channel_ratios) {
          o.prune_ratio = r;
          out.push_back(o);
        }
        continue;
      }
      for (double r : grid.prune_ratios) {
        if (r <= 0) continue;
        o.prune_ratio = r;
        out.push_back(o);
      }
    }
  }
  return out;
}

std::string OptionLabel(const dp::CompressionOption& o) { return model::LayerPlanLabel(LayerPlanOf(o)); }

}  // namespace squeeze::search
