#include "device_profiles/cost_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace squeeze::device_profiles {
namespace {

int64_t CeilDiv8(int64_t bits) { return (bits + 7) / 8; }

// The integer width the exporter stores 2..8-bit weights in.
constexpr int kStoredIntegerBits = 8;

// A sample group smaller than this is not fitted on its own (the fit has 4 features).
constexpr size_t kMinSamplesToFit = 4;

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

double MedianSeconds(const LatencySample& s) {
  return 1e-6 * (s.latency_median_us > 0 ? s.latency_median_us : s.latency_mean_us);
}

double Log2(double v) { return std::log2(std::max(1.0, v)); }

// The fitted features of a layer: MACs, activation elements read and written, weights, and 1 (the
// per-op overhead). Seconds = coefficients · features.
std::vector<double> LayerFeatures(const LayerShape& l) {
  return {static_cast<double>(l.macs), static_cast<double>(l.input_elements + l.output_elements),
          static_cast<double>(l.weight_params), 1.0};
}

// Where a layer sits among the samples: kernel and stride count double, the rest on a log2 scale,
// and channel counts that are no multiple of 8 (pruned layers, image stems) apart from those that
// are, as far as 3 octaves of channels: vector kernels and blocked layouts run them differently.
std::vector<double> LayerKey(const LayerShape& l) {
  if (l.kind == OpKind::kGemm) {
    const double k = std::max<int64_t>(1, l.in_channels), n = std::max<int64_t>(1, l.out_channels);
    return {Log2(static_cast<double>(l.macs) / (k * n)), Log2(k), Log2(n)};
  }
  const bool ragged = l.out_channels % 8 != 0 || l.in_channels % 8 != 0;
  return {Log2(l.in_channels), Log2(l.out_channels), Log2(static_cast<double>(l.height) * l.width) / 2,
          2 * Log2(l.kernel),  2 * Log2(l.stride),   Log2(l.groups),
          ragged ? 3.0 : 0.0};
}

// A sample as the layer it measured (shapes as LayerShape counts them).
LayerShape SampleLayer(const LatencySample& s) {
  LayerShape l;
  l.kind = s.op_kind;
  l.macs = s.macs;
  if (s.op_kind == OpKind::kGemm) {
    l.in_channels = s.gemm_k;
    l.out_channels = s.gemm_n;
    l.weight_params = s.gemm_k * s.gemm_n;
    l.input_elements = s.gemm_m * s.gemm_k;
    l.output_elements = s.gemm_m * s.gemm_n;
    return l;
  }
  const int64_t stride = std::max<int64_t>(1, s.stride), groups = std::max<int64_t>(1, s.groups);
  int64_t out_h = (s.height + stride - 1) / stride, out_w = (s.width + stride - 1) / stride;
  if (s.op_kind == OpKind::kConvTranspose) out_h = s.height * stride, out_w = s.width * stride;
  l.in_channels = s.in_channels;
  l.out_channels = s.out_channels;
  l.height = s.height;
  l.width = s.width;
  l.kernel = s.kernel;
  l.stride = stride;
  l.groups = groups;
  l.weight_params = s.out_channels * (s.in_channels / groups) * s.kernel * s.kernel;
  l.input_elements = s.batch * s.in_channels * s.height * s.width;
  l.output_elements = s.batch * s.out_channels * out_h * out_w;
  return l;
}

std::vector<double> ElementFeatures(int64_t elements) { return {static_cast<double>(elements), 1.0}; }
std::vector<double> ElementKey(int64_t elements) { return {Log2(static_cast<double>(elements))}; }

// Least squares minimizing Σ ((x·c − y) / y)² with c ≥ 0: features that would take a negative
// coefficient are dropped one at a time. Fewer samples than features keep the first ones.
std::vector<double> FitNonNegative(const std::vector<std::vector<double>>& x, const std::vector<double>& y) {
  const size_t dims = x.empty() ? 0 : x[0].size();
  std::vector<double> coefficients(dims, 0);
  std::vector<size_t> active;
  for (size_t j = 0; j < dims && active.size() < x.size(); ++j) active.push_back(j);
  while (!active.empty()) {
    const size_t m = active.size();
    std::vector<std::vector<double>> a(m, std::vector<double>(m + 1, 0));
    for (size_t i = 0; i < x.size(); ++i) {
      const double w = 1.0 / (y[i] * y[i]);
      for (size_t r = 0; r < m; ++r) {
        for (size_t c = 0; c < m; ++c) a[r][c] += w * x[i][active[r]] * x[i][active[c]];
        a[r][m] += w * x[i][active[r]] * y[i];
      }
    }
    // Gaussian elimination with partial pivoting; a singular system drops its last feature.
    bool singular = false;
    for (size_t c = 0; c < m && !singular; ++c) {
      size_t pivot = c;
      for (size_t r = c + 1; r < m; ++r) {
        if (std::fabs(a[r][c]) > std::fabs(a[pivot][c])) pivot = r;
      }
      if (std::fabs(a[pivot][c]) < 1e-300) {
        singular = true;
        break;
      }
      std::swap(a[c], a[pivot]);
      for (size_t r = 0; r < m; ++r) {
        if (r == c) continue;
        const double f = a[r][c] / a[c][c];
        for (size_t k = c; k <= m; ++k) a[r][k] -= f * a[c][k];
      }
    }
    if (singular) {
      active.pop_back();
      continue;
    }
    size_t worst = m;
    double worst_value = 0;
    for (size_t r = 0; r < m; ++r) {
      const double value = a[r][m] / a[r][r];
      if (value < worst_value) worst_value = value, worst = r;
    }
    if (worst == m) {
      std::fill(coefficients.begin(), coefficients.end(), 0);
      for (size_t r = 0; r < m; ++r) coefficients[active[r]] = a[r][m] / a[r][r];
      return coefficients;
    }
    active.erase(active.begin() + static_cast<std::ptrdiff_t>(worst));
  }
  return coefficients;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

absl::string_view SupportName(Support support) {
  switch (support) {
    case Support::kNative:
      return "native";
    case Support::kEmulated:
      return "emulated";
    case Support::kUnsupported:
      return "unsupported";
  }
  return "unsupported";
}

absl::string_view BasisName(Basis basis) {
  switch (basis) {
    case Basis::kSamples:
      return "samples";
    case Basis::kSpecRoofline:
      return "spec-roofline";
    case Basis::kReported:
      return "reported";
  }
  return "spec-roofline";
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
  // A scale per output channel, or per block of K (MatMulNBits).
  const int64_t per_channel = layer.out_channels > 0 ? layer.weight_params / layer.out_channels : 0;
  const int64_t scales = option.block_size > 0 ? std::max<int64_t>(channels, 1) *
                                                     ((per_channel + option.block_size - 1) / option.block_size)
                                               : std::max<int64_t>(channels, 1);
  const int64_t scale_bytes = option.weight_bits <= 8 ? 4 * scales : 0;
  return CeilDiv8(kept * option.weight_bits) + CeilDiv8(index_bits) + scale_bytes;
}

LatencyPrediction ProportionalCostModel::Predict(const LayerShape& layer, const CompressionOption& option) const {
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

absl::StatusOr<std::unique_ptr<DeviceCostModel>> DeviceCostModel::Create(Device device,
                                                                         std::vector<LatencySample> samples) {
  absl::Status status = ValidateDevice(device);
  if (!status.ok()) return status;
  for (const LatencySample& sample : samples) {
    status = ValidateSample(sample);
    if (!status.ok()) return status;
  }
  return std::unique_ptr<DeviceCostModel>(new DeviceCostModel(std::move(device), std::move(samples)));
}

DeviceCostModel::DeviceCostModel(Device device, std::vector<LatencySample> samples)
    : device_(std::move(device)), samples_(std::move(samples)) {
  for (const LatencySample& s : samples_) {
    SampleGroup* group = nullptr;
    for (SampleGroup& g : groups_) {
      if (g.kind == s.op_kind && g.weight_bits == s.weight_bits && g.activation_bits == s.activation_bits &&
          g.sparsity == s.sparsity) {
        group = &g;
      }
    }
    if (group == nullptr) {
      SampleGroup fresh;
      fresh.kind = s.op_kind;
      fresh.weight_bits = s.weight_bits;
      fresh.activation_bits = s.activation_bits;
      fresh.sparsity = s.sparsity;
      groups_.push_back(std::move(fresh));
      group = &groups_.back();
    }
    group->samples.push_back(&s);
  }
  // The ops that are not layers first: an integer-activation conv's samples lose the transposes
  // around them (SampleGroup::seconds), predicted from the transpose samples.
  std::stable_partition(groups_.begin(), groups_.end(), [](const SampleGroup& g) { return !IsLayerKind(g.kind); });
  const SampleGroup* transposes = nullptr;
  for (SampleGroup& g : groups_) {
    std::vector<std::vector<double>> x;
    for (const LatencySample* s : g.samples) {
      x.push_back(IsLayerKind(g.kind) ? LayerFeatures(SampleLayer(*s)) : ElementFeatures(s->elements));
      g.seconds.push_back(MedianSeconds(*s));
    }
    g.transposes_removed = transposes != nullptr && g.activation_bits == 8 &&
                           (g.kind == OpKind::kConv || g.kind == OpKind::kDepthwiseConv);
    if (g.transposes_removed) {
      // A transpose sample is a whole run: the run's overhead, which the conv's sample paid once
      // already, comes off each.
      const double overhead = device_.op_overhead_us * 1e-6;
      auto transpose = [&](int64_t elements) {
        return std::max(0.0,
                        FromSamples(*transposes, ElementFeatures(elements), ElementKey(elements), nullptr) - overhead);
      };
      for (size_t i = 0; i < g.samples.size(); ++i) {
        const LayerShape shape = SampleLayer(*g.samples[i]);
        const double around = transpose(shape.input_elements) + transpose(shape.output_elements);
        // Never below a quarter of what was measured: the transposes are predicted, the sample is not.
        g.seconds[i] = std::max(0.25 * g.seconds[i], g.seconds[i] - around);
      }
    }
    g.coefficients = FitNonNegative(x, g.seconds);
    if (g.kind == OpKind::kTranspose && transposes == nullptr) transposes = &g;
  }
}

const DeviceCostModel::SampleGroup* DeviceCostModel::FindGroup(OpKind kind, int weight_bits, int activation_bits,
                                                               Sparsity sparsity) const {
  for (const SampleGroup& g : groups_) {
    if (g.kind == kind && g.weight_bits == weight_bits && g.activation_bits == activation_bits &&
        g.sparsity == sparsity) {
      return &g;
    }
  }
  return nullptr;
}

double DeviceCostModel::FromSamples(const SampleGroup& group, const std::vector<double>& features,
                                    const std::vector<double>& shape_key, std::string* nearest) const {
  const double fitted = std::max(1e-9, Dot(group.coefficients, features));
  // The nearest samples' measured/fitted ratios, weighted by 1 / (distance² + 0.01): a sampled
  // shape comes back as measured, a shape between samples gets their blend.
  struct Near {
    double distance2;
    double log_ratio;
    const LatencySample* sample;
  };
  std::vector<Near> near;
  for (size_t i = 0; i < group.samples.size(); ++i) {
    const LatencySample* s = group.samples[i];
    const bool layer = IsLayerKind(group.kind);
    const std::vector<double> key = layer ? LayerKey(SampleLayer(*s)) : ElementKey(s->elements);
    const std::vector<double> f = layer ? LayerFeatures(SampleLayer(*s)) : ElementFeatures(s->elements);
    double d2 = 0;
    for (size_t k = 0; k < key.size() && k < shape_key.size(); ++k) {
      d2 += (key[k] - shape_key[k]) * (key[k] - shape_key[k]);
    }
    near.push_back({d2, std::log(group.seconds[i] / std::max(1e-9, Dot(group.coefficients, f))), s});
  }
  constexpr size_t kNeighbours = 3;
  std::sort(near.begin(), near.end(), [](const Near& a, const Near& b) { return a.distance2 < b.distance2; });
  near.resize(std::min(near.size(), kNeighbours));
  double weight_sum = 0, log_sum = 0;
  for (const Near& n : near) {
    const double w = 1.0 / (n.distance2 + 0.01);
    weight_sum += w;
    log_sum += w * n.log_ratio;
  }
  if (nearest != nullptr && !near.empty()) *nearest = near.front().sample->key;
  return fitted * (weight_sum > 0 ? std::exp(log_sum / weight_sum) : 1.0);
}

OpPrediction DeviceCostModel::PredictOp(OpKind kind, int64_t elements, double bytes) const {
  // Any precision of the kind: the group with the most samples.
  const SampleGroup* best = nullptr;
  for (const SampleGroup& g : groups_) {
    if (g.kind == kind && (best == nullptr || g.samples.size() > best->samples.size())) best = &g;
  }
  if (best != nullptr && elements > 0) {
    return {FromSamples(*best, ElementFeatures(elements), ElementKey(elements), nullptr), Basis::kSamples};
  }
  return {bytes / device_.memory_bandwidth_bytes_per_s + device_.op_overhead_us * 1e-6, Basis::kSpecRoofline};
}

double DeviceCostModel::Roofline(const LayerShape& layer, const CompressionOption& option, const Capability& capability,
                                 bool sparse_kernel) const {
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

LatencyPrediction DeviceCostModel::Predict(const LayerShape& original, const CompressionOption& requested) const {
  // Output-channel pruning is a smaller dense layer; 2:4 always removes half.
  LayerShape layer = original;
  CompressionOption option = requested;
  // The exporter stores every 2..8-bit weight in int8 (model/export.h): the file runs as 8-bit
  // whatever the width, so it is costed as 8-bit.
  std::string stored_wider;
  if (option.block_size > 0) {
    // MatMulNBits (model::WritesMatMulNBits): 2-bit codes run its 2-bit kernel, 3- and 4-bit ones its
    // 4-bit kernel (model::MatMulNBitsStorageBits), at any block size alike.
    const int codes = option.weight_bits <= 2 ? 2 : 4;
    if (codes != option.weight_bits) {
      stored_wider = absl::StrFormat("%d-bit weights are stored in %d-bit MatMulNBits codes: runs as %s",
                                     option.weight_bits, codes, PrecisionName(codes, option.activation_bits));
    }
    option.weight_bits = codes;
  } else if (option.weight_bits >= 2 && option.weight_bits < kStoredIntegerBits) {
    stored_wider = absl::StrFormat("%d-bit weights are stored in int8: runs as %s", option.weight_bits,
                                   PrecisionName(kStoredIntegerBits, option.activation_bits));
    option.weight_bits = kStoredIntegerBits;
  }
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
        std::string unpack =
            absl::StrFormat("no %s kernel: runs as %s", PrecisionName(option.weight_bits, option.activation_bits),
                            PrecisionName(chosen->weight_bits, chosen->activation_bits));
        why = why.empty() ? unpack : absl::StrCat(why, "; ", unpack);
      }
    }
  }
  // Samples of the option's own (dense) realization measured what its file does: they come before
  // what the rows say it would run as.
  const SampleGroup* own =
      sparse_kernel ? nullptr : FindGroup(layer.kind, option.weight_bits, option.activation_bits, Sparsity::kDense);
  if (chosen == nullptr && own == nullptr) {
    p.support = Support::kUnsupported;
    p.explanation = absl::StrFormat("%s has no kernel that can run %s %s", device_.id, OpKindName(layer.kind),
                                    PrecisionName(option.weight_bits, option.activation_bits));
    return p;
  }

  p.support = emulated || chosen == nullptr ? Support::kEmulated : Support::kNative;
  p.executed_weight_bits = own != nullptr ? option.weight_bits : chosen->weight_bits;
  p.executed_activation_bits = own != nullptr ? option.activation_bits : chosen->activation_bits;
  p.executed_sparsity = sparse_kernel ? option.pattern : Sparsity::kDense;

  // Measured samples of the same kind and executed precision, fitted and interpolated. A group of
  // too few samples to fit on its own rides on the kind's fp32 fit, scaled by how its samples
  // compare with that fit at their shapes (one tiny gemm cannot say how a large one scales).
  const SampleGroup* reference = FindGroup(layer.kind, 32, 32, Sparsity::kDense);
  if (const SampleGroup* group =
          FindGroup(layer.kind, p.executed_weight_bits, p.executed_activation_bits, p.executed_sparsity)) {
    std::string nearest;
    p.basis = Basis::kSamples;
    if (group->samples.size() < kMinSamplesToFit && reference != nullptr && reference != group &&
        reference->samples.size() >= kMinSamplesToFit) {
      double log_sum = 0;
      for (size_t i = 0; i < group->samples.size(); ++i) {
        const LayerShape shape = SampleLayer(*group->samples[i]);
        log_sum += std::log(group->seconds[i] /
                            std::max(1e-9, FromSamples(*reference, LayerFeatures(shape), LayerKey(shape), nullptr)));
      }
      const double ratio = std::exp(log_sum / static_cast<double>(group->samples.size()));
      p.seconds = ratio * FromSamples(*reference, LayerFeatures(layer), LayerKey(layer), &nearest);
      p.explanation = absl::StrFormat(
          "fit over %zu measured %s fp32 samples (nearest '%s') x %.3f, what the %zu measured %s samples take "
          "against that fit",
          reference->samples.size(), OpKindName(layer.kind), nearest, ratio, group->samples.size(),
          PrecisionName(group->weight_bits, group->activation_bits));
    } else {
      p.seconds = FromSamples(*group, LayerFeatures(layer), LayerKey(layer), &nearest);
      p.explanation =
          absl::StrFormat("fit over %zu measured %s %s samples, nearest '%s'", group->samples.size(),
                          OpKindName(layer.kind), PrecisionName(group->weight_bits, group->activation_bits), nearest);
    }
    if (group->transposes_removed) {
      absl::StrAppend(&p.explanation,
                      ", each less the uint8 NCHW/NHWC transposes around it (predicted from transpose samples; "
                      "paid where integer and float layers meet)");
    }
  } else {
    p.seconds = Roofline(layer, option, *chosen, sparse_kernel);  // no group: `own` is null, so chosen is set
    p.basis = Basis::kSpecRoofline;
    p.explanation = absl::StrFormat("spec roofline at %s, %.1f Gops/s x %.2f",
                                    PrecisionName(p.executed_weight_bits, p.executed_activation_bits),
                                    chosen->peak_ops_per_s / 1e9, chosen->efficiency);
  }
  if (emulated) p.explanation = absl::StrCat(why, "; ", p.explanation);
  if (!stored_wider.empty()) {
    p.support = Support::kEmulated;  // the kernel is native; the width is not
    p.explanation = absl::StrCat(stored_wider, "; ", p.explanation);
  }
  return p;
}

}  // namespace squeeze::device_profiles
