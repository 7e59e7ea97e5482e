#include "device_profiles/cost_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace squeeze::device_profiles {
namespace {

int64_t CeilDiv8(int64_t bits) { return (bits + 7) / 8; }

// The layer as it is after output-channel pruning: a smaller dense layer.
LayerShape ChannelPruned(const LayerShape& layer, double ratio) {
  if (ratio <= 0) return layer;
  LayerShape pruned = layer;
  const int64_t removed = static_cast<int64_t>(std::llround(layer.out_channels * ratio));
  const int64_t kept = std::max<int64_t>(1, layer.out_channels - removed);
  const double keep = layer.out_channels > 0 ? static_cast<double>(kept) / layer.out_channels : 1 - ratio;
  pruned.out_channels = kept;
  pruned.macs = static_cast<int64_t>(std::llround(layer.macs * keep));
  pruned.weight_params = static_cast<int64_t>(std::llround(layer.weight_params * keep));
  pruned.output_elements = static_cast<int64_t>(std::llround(layer.output_elements * keep));
  return pruned;
}

std::string PrecisionName(int weight_bits, int activation_bits) {
  return absl::StrFormat("w%da%d", weight_bits, activation_bits);
}

}  // namespace

absl::string_view SupportName(Support support) {
  switch (support) {
    case Support::kNative: return "native";
    case Support::kEmulated: return "emulated";
    case Support::kUnsupported: return "unsupported";
  }
  return "unsupported";
}

absl::string_view BasisName(Basis basis) {
  return basis == Basis::kSamples ? "samples" : "spec-roofline";
}

int64_t WeightStorageBytes(const LayerShape& layer, const CompressionOption& option) {
  int64_t kept = layer.weight_params;
  int64_t channels = layer.out_channels;
  int64_t index_bits = 0;
  switch (option.pattern) {
    case Sparsity::kDense:
      break;
    case Sparsity::kOutputChannel: {
      LayerShape pruned = ChannelPruned(layer, option.prune_ratio);
      kept = pruned.weight_params;
      channels = pruned.out_channels;
      break;
    }
    case Sparsity::kUnstructured:
      kept = static_cast<int64_t>(std::llround(layer.weight_params * (1 - option.prune_ratio)));
      index_bits = layer.weight_params;  // one mask bit per weight
      break;
    case Sparsity::kTwoFour:
      kept = (layer.weight_params + 1) / 2;
      index_bits = kept * 2;  // a 2-bit position per kept weight
      break;
  }
  const int64_t scale_bytes = option.weight_bits <= 8 ? 4 * std::max<int64_t>(channels, 1) : 0;
  return CeilDiv8(kept * option.weight_bits) + CeilDiv8(index_bits) + scale_bytes;
}

LatencyPrediction ProportionalCostModel::Predict(const LayerShape& layer,
                                                 const CompressionOption& option) const {
  LatencyPrediction p;
  const double keep = option.pattern == Sparsity::kDense ? 1.0 : 1.0 - option.prune_ratio;
  const double bits = std::max(option.weight_bits, option.activation_bits);
  p.seconds = layer.macs * keep * seconds_per_mac_ * bits / 32.0;
  p.support = Support::kNative;
  p.basis = Basis::kSpecRoofline;
  p.executed_weight_bits = option.weight_bits;
  p.executed_activation_bits = option.activation_bits;
  p.executed_sparsity = option.pattern == Sparsity::kOutputChannel ? Sparsity::kDense : option.pattern;
  p.explanation = "proportional test model";
  return p;
}

absl::StatusOr<std::unique_ptr<DeviceCostModel>> DeviceCostModel::Create(
    Device device, std::vector<LatencySample> samples) {
  absl::Status status = ValidateDevice(device);
  if (!status.ok()) return status;
  for (const LatencySample& sample : samples) {
    status = ValidateSample(sample);
    if (!status.ok()) return status;
  }
  return std::unique_ptr<DeviceCostModel>(new DeviceCostModel(std::move(device), std::move(samples)));
}

double DeviceCostModel::Roofline(const LayerShape& layer, const CompressionOption& option,
                                 const Capability& capability, bool sparse_kernel) const {
  const double keep = sparse_kernel ? 1.0 - option.prune_ratio : 1.0;
  const double ops = 2.0 * layer.macs * keep;
  const double compute_s = ops / (capability.peak_ops_per_s * capability.efficiency);
  // Weights move at the precision the kernel reads them in; without a sparse kernel the zeros
  // are stored and read like any other value.
  CompressionOption stored = option;
  stored.weight_bits = capability.weight_bits;
  if (!sparse_kernel) {
    stored.pattern = Sparsity::kDense;
    stored.prune_ratio = 0;
  }
  const double bytes = WeightStorageBytes(layer, stored) +
                       (layer.input_elements + layer.output_elements) * capability.activation_bits / 8.0;
  const double memory_s = bytes / device_.memory_bandwidth_bytes_per_s;
  return std::max(compute_s, memory_s) + device_.op_overhead_us * 1e-6;
}

LatencyPrediction DeviceCostModel::Predict(const LayerShape& original,
                                           const CompressionOption& requested) const {
  // Output-channel pruning is a smaller dense layer; 2:4 always removes half.
  LayerShape layer = original;
  CompressionOption option = requested;
  if (option.pattern == Sparsity::kOutputChannel) {
    layer = ChannelPruned(original, option.prune_ratio);
    option.pattern = Sparsity::kDense;
    option.prune_ratio = 0;
  } else if (option.pattern == Sparsity::kTwoFour) {
    option.prune_ratio = 0.5;
  } else if (option.pattern == Sparsity::kDense) {
    option.prune_ratio = 0;
  }

  // The row for (w, a, sparsity): this kind's own row first, then the all-kinds row.
  auto find = [&](int w, int a, Sparsity s) -> const Capability* {
    const Capability* wildcard = nullptr;
    for (const Capability& c : device_.capabilities) {
      if (c.weight_bits != w || c.activation_bits != a || c.sparsity != s) continue;
      if (c.op_kind == layer.kind) return &c;
      if (!c.op_kind.has_value()) wildcard = &c;
    }
    return wildcard;
  };

  LatencyPrediction p;
  const Capability* chosen = nullptr;
  bool sparse_kernel = false;
  std::string why;

  if (option.pattern != Sparsity::kDense) {
    const Capability* sparse = find(option.weight_bits, option.activation_bits, option.pattern);
    if (sparse != nullptr && sparse->native) {
      chosen = sparse;
      sparse_kernel = true;
    } else {
      why = absl::StrFormat("no %s sparse kernel: runs dense", SparsityName(option.pattern));
    }
  }
  bool emulated = !why.empty();
  if (chosen == nullptr) {
    const Capability* exact = find(option.weight_bits, option.activation_bits, Sparsity::kDense);
    if (exact != nullptr) {
      chosen = exact;
      if (!exact->native) {
        emulated = true;
        why = why.empty() ? "emulated (characterised row)" : why;
      }
    } else {
      // Emulate at the cheapest native dense precision that holds the option's values.
      double best = 0;
      for (const Capability& c : device_.capabilities) {
        if (!c.native || c.sparsity != Sparsity::kDense) continue;
        if (c.weight_bits < option.weight_bits || c.activation_bits < option.activation_bits) continue;
        const Capability* row = find(c.weight_bits, c.activation_bits, Sparsity::kDense);
        if (row == nullptr || !row->native) continue;
        const double seconds = Roofline(layer, option, *row, false);
        if (chosen == nullptr || seconds < best) {
          chosen = row;
          best = seconds;
        }
      }
      if (chosen != nullptr) {
        emulated = true;
        std::string unpack = absl::StrFormat(
            "no %s kernel: runs as %s", PrecisionName(option.weight_bits, option.activation_bits),
            PrecisionName(chosen->weight_bits, chosen->activation_bits));
        why = why.empty() ? unpack : absl::StrCat(why, "; ", unpack);
      }
    }
  }
  if (chosen == nullptr) {
    p.support = Support::kUnsupported;
    p.explanation = absl::StrFormat("%s has no kernel that can run %s %s", device_.id,
                                    OpKindName(layer.kind),
                                    PrecisionName(option.weight_bits, option.activation_bits));
    return p;
  }

  p.support = emulated ? Support::kEmulated : Support::kNative;
  p.executed_weight_bits = chosen->weight_bits;
  p.executed_activation_bits = chosen->activation_bits;
  p.executed_sparsity = sparse_kernel ? option.pattern : Sparsity::kDense;
  const double roofline = Roofline(layer, option, *chosen, sparse_kernel);

  // Measured samples of the same kind and executed precision calibrate the roofline: the ratio
  // measured / roofline of the nearest samples in MACs (log scale), distance-weighted.
  struct Near {
    double distance;
    double log_ratio;
  };
  std::vector<Near> near;
  for (const LatencySample& s : samples_) {
    if (s.op_kind != layer.kind || s.weight_bits != p.executed_weight_bits ||
        s.activation_bits != p.executed_activation_bits || s.sparsity != p.executed_sparsity) {
      continue;
    }
    const double keep = sparse_kernel ? 1.0 - s.sparsity_ratio : 1.0;
    const double compute_s = 2.0 * s.macs * keep / (chosen->peak_ops_per_s * chosen->efficiency);
    const double memory_s = (s.weight_bytes + s.activation_bytes) / device_.memory_bandwidth_bytes_per_s;
    const double sample_roofline = std::max(compute_s, memory_s) + device_.op_overhead_us * 1e-6;
    near.push_back({std::fabs(std::log(static_cast<double>(s.macs)) -
                              std::log(std::max<double>(1, layer.macs))),
                    std::log(s.latency_mean_us * 1e-6 / sample_roofline)});
  }
  if (!near.empty()) {
    constexpr size_t kNeighbours = 4;
    std::sort(near.begin(), near.end(), [](const Near& a, const Near& b) { return a.distance < b.distance; });
    near.resize(std::min(near.size(), kNeighbours));
    double weight_sum = 0, log_sum = 0;
    for (const Near& n : near) {
      const double w = 1.0 / (n.distance + 0.05);
      weight_sum += w;
      log_sum += w * n.log_ratio;
    }
    const double ratio = std::exp(log_sum / weight_sum);
    p.seconds = roofline * ratio;
    p.basis = Basis::kSamples;
    p.explanation = absl::StrFormat("%zu measured %s %s samples scale the roofline x%.2f", near.size(),
                                    OpKindName(layer.kind),
                                    PrecisionName(p.executed_weight_bits, p.executed_activation_bits),
                                    ratio);
  } else {
    p.seconds = roofline;
    p.basis = Basis::kSpecRoofline;
    p.explanation = absl::StrFormat("spec roofline at %s, %.1f Gops/s x %.2f",
                                    PrecisionName(p.executed_weight_bits, p.executed_activation_bits),
                                    chosen->peak_ops_per_s / 1e9, chosen->efficiency);
  }
  if (emulated) p.explanation = absl::StrCat(why, "; ", p.explanation);
  return p;
}

}  // namespace squeeze::device_profiles
