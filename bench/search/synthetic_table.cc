#include "bench/search/synthetic_table.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace squeeze::search::bench {
namespace {

struct Precision {
  int w_bits, a_bits;
};
constexpr Precision kPrecisions[] = {{32, 32}, {16, 16}, {8, 16}, {6, 16}, {4, 16}, {2, 16},
                                     {8, 8},   {6, 8},   {5, 8},  {4, 8},  {3, 8},  {2, 8}};

enum class Pattern { kDense, kUnstructured, kTwoFour, kOutputChannel };
struct Sparsity {
  Pattern pattern;
  double ratio;
  const char* name;
};
constexpr Sparsity kSparsities[] = {{Pattern::kDense, 0, "dense"},           {Pattern::kUnstructured, 0.25, "u25"},
                                    {Pattern::kUnstructured, 0.5, "u50"},    {Pattern::kUnstructured, 0.75, "u75"},
                                    {Pattern::kTwoFour, 0.5, "2:4"},         {Pattern::kOutputChannel, 0.125, "oc12"},
                                    {Pattern::kOutputChannel, 0.25, "oc25"}, {Pattern::kOutputChannel, 0.5, "oc50"}};

// Share of a Gaussian weight tensor's energy removed by zeroing the fraction p of smallest
// magnitudes: P(|Z| < t) − 2tφ(t) with P(|Z| < t) = p.
double MagnitudePruningLoss(double p) {
  if (p <= 0) return 0;
  double lo = 0, hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double t = (lo + hi) / 2;
    (std::erf(t / std::sqrt(2.0)) < p ? lo : hi) = t;
  }
  const double t = lo;
  const double phi = std::exp(-t * t / 2) / std::sqrt(2 * 3.14159265358979323846);
  return p - 2 * t * phi;
}

double PruningLoss(const Sparsity& s) {
  switch (s.pattern) {
    case Pattern::kDense:
      return 0;
    case Pattern::kUnstructured:
      return MagnitudePruningLoss(s.ratio);
    case Pattern::kTwoFour:
      return 1.4 * MagnitudePruningLoss(0.5);  // the constraint forbids the globally best zeros
    case Pattern::kOutputChannel:
      return s.ratio * (0.55 + 0.45 * s.ratio);  // channel norms concentrate: little to choose
  }
  return 0;
}

// Quantization noise energy relative to the weights' (per-channel symmetric, ~±3σ range).
double QuantizationLoss(int bits) {
  if (bits >= 32) return 0;
  if (bits == 16) return 1e-8;
  return 3.0 * std::pow(4.0, -bits);
}

// Multiply-accumulates per microsecond of this device's kernels.
double ComputeRate(const Precision& p) {
  if (p.w_bits == 32) return 20e3;
  if (p.w_bits == 16) return 35e3;
  if (p.a_bits == 16) return 30e3;  // weight-only quantization, dequantized to fp16
  const double unpack = p.w_bits == 8 ? 1.0 : p.w_bits >= 4 ? 0.9 : 0.85;
  return 60e3 * unpack;
}

}  // namespace

OptionTable SyntheticTable(int layers, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 1.0);
  auto log_uniform = [&](double lo, double hi) { return lo * std::pow(hi / lo, u(gen)); };
  constexpr double kBandwidth = 8e3;  // bytes per microsecond
  constexpr double kOverhead = 4;     // microseconds per op

  struct Shape {
    double macs, params, out_channels, activations, sensitivity, activation_sensitivity;
  };
  std::vector<Shape> shapes(layers);
  double total_sensitivity = 0;
  for (Shape& s : shapes) {
    s.macs = log_uniform(1e5, 1e8);
    const double spatial = log_uniform(16, 12544);  // 4×4 to 112×112 outputs
    s.params = std::max(64.0, s.macs / spatial);
    s.out_channels = std::clamp(std::sqrt(s.params), 8.0, 1024.0);
    s.activations = 2 * spatial * s.out_channels;  // input and output, roughly
    s.sensitivity = log_uniform(0.1, 10);
    s.activation_sensitivity = log_uniform(0.2, 2);
    total_sensitivity += s.sensitivity;
  }

  OptionTable table;
  double fp32_latency = 0, fp32_bytes = 0, largest_activation = 0;
  for (int i = 0; i < layers; ++i) {
    Shape& s = shapes[i];
    s.sensitivity *= 20.0 / total_sensitivity;  // Σ sensitivities = 20: all-int8 error ≈ 1e-3
    Layer layer;
    layer.name = absl::StrCat("layer", i);
    for (const Precision& p : kPrecisions) {
      for (const Sparsity& sp : kSparsities) {
        const double keep = 1 - sp.ratio;
        // Packed bytes: kept weights, then sparse indices, then per-channel scales.
        double bytes = s.params * keep * p.w_bits / 8;
        if (sp.pattern == Pattern::kUnstructured) bytes += s.params / 8;  // bitmask
        if (sp.pattern == Pattern::kTwoFour) bytes += s.params * keep * 2 / 8;
        if (p.w_bits <= 8) bytes += s.out_channels * 4;
        // Roofline latency with the device's real kernels: no sparse speed-up below 50%.
        double work = s.macs;
        if (sp.pattern == Pattern::kUnstructured && sp.ratio >= 0.5) work *= keep * 1.8;
        if (sp.pattern == Pattern::kTwoFour) work *= 0.6;
        if (sp.pattern == Pattern::kOutputChannel) work *= keep;
        const double activation_bytes = s.activations * p.a_bits / 8;
        const double compute = work / ComputeRate(p);
        const double memory = (bytes + activation_bytes) / kBandwidth;
        const double latency = (std::max(compute, memory) + kOverhead) * std::max(0.5, 1 + 0.03 * noise(gen));
        // Error: weight distortion plus activation quantization, times the layer's sensitivity.
        const double weight_loss =
            QuantizationLoss(p.w_bits) * (1 + 0.15 * u(gen)) + PruningLoss(sp) * (1 + 0.1 * u(gen));
        const double activation_loss = p.a_bits == 8 ? s.activation_sensitivity * QuantizationLoss(8) : 0;
        LayerOption o;
        o.label = absl::StrCat("w", p.w_bits, "a", p.a_bits, " ", sp.name);
        o.latency = latency;
        o.bytes = bytes;
        o.error = s.sensitivity * (weight_loss + activation_loss);
        o.activation_bytes = activation_bytes;
        layer.options.push_back(std::move(o));
        if (p.w_bits == 32 && sp.pattern == Pattern::kDense) {
          fp32_latency += latency;
          fp32_bytes += bytes;
          largest_activation = std::max(largest_activation, activation_bytes);
        }
      }
    }
    table.layers.push_back(std::move(layer));
  }
  // The other ops: element-wise work, heads, biases.
  table.fixed = FixedCost{0.03 * fp32_latency, 0.01 * fp32_bytes, 0.5 * largest_activation};
  return table;
}

}  // namespace squeeze::search::bench
