#include "model/weight_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace squeeze::model {
namespace {

// Clipping fractions of max|x| searched: [0.3, 1], first on 15 points, then refined twice.
constexpr int kCoarseSteps = 15;
constexpr double kMinClip = 0.3;

// Calls fn(row, column, flat index) for every element of a weight stored as `layout`.
template <typename Fn>
void ForEachElement(const ChannelLayout& layout, Fn&& fn) {
  const int64_t outer_per_group = layout.outer / layout.groups;
  for (int64_t o = 0; o < layout.outer; ++o) {
    const int64_t g = o / outer_per_group;
    const int64_t o_in_group = o % outer_per_group;
    for (int64_t j = 0; j < layout.axis; ++j) {
      const int64_t row = g * layout.axis + j;
      for (int64_t k = 0; k < layout.inner; ++k) {
        fn(row, o_in_group * layout.inner + k, (o * layout.axis + j) * layout.inner + k);
      }
    }
  }
}

}  // namespace

ChannelMatrix ToChannelMajor(absl::Span<const float> weights, const ChannelLayout& layout) {
  ChannelMatrix m;
  m.channels = layout.channels();
  m.per_channel = layout.per_channel();
  m.values.assign(weights.size(), 0.f);
  ForEachElement(layout,
                 [&](int64_t row, int64_t col, int64_t flat) { m.values[row * m.per_channel + col] = weights[flat]; });
  return m;
}

std::vector<float> FromChannelMajor(const ChannelMatrix& m, const ChannelLayout& layout) {
  std::vector<float> out(m.values.size(), 0.f);
  ForEachElement(layout,
                 [&](int64_t row, int64_t col, int64_t flat) { out[flat] = m.values[row * m.per_channel + col]; });
  return out;
}

std::vector<uint8_t> PruneMask(const ChannelMatrix& w, Sparsity pattern, double ratio) {
  const size_t n = w.values.size();
  std::vector<uint8_t> mask(n, 1);
  switch (pattern) {
    case Sparsity::kDense:
      break;
    case Sparsity::kUnstructured: {
      const size_t drop = std::min(n, static_cast<size_t>(std::llround(ratio * n)));
      if (drop == 0) break;
      // The `drop` smallest by (|w|, index): a strict order, so the set is the same on every run.
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      auto smaller = [&](size_t a, size_t b) {
        const float fa = std::fabs(w.values[a]), fb = std::fabs(w.values[b]);
        return fa < fb || (fa == fb && a < b);
      };
      std::nth_element(order.begin(), order.begin() + (drop - 1), order.end(), smaller);
      for (size_t i = 0; i < drop; ++i) mask[order[i]] = 0;
      break;
    }
    case Sparsity::kTwoFour: {
      for (int64_t c = 0; c < w.channels; ++c) {
        for (int64_t start = 0; start < w.per_channel; start += 4) {
          const int64_t len = std::min<int64_t>(4, w.per_channel - start);
          const int64_t keep = (len + 1) / 2;
          size_t idx[4];
          for (int64_t i = 0; i < len; ++i) idx[i] = static_cast<size_t>(c * w.per_channel + start + i);
          std::stable_sort(idx, idx + len,
                           [&](size_t a, size_t b) { return std::fabs(w.values[a]) > std::fabs(w.values[b]); });
          for (int64_t i = keep; i < len; ++i) mask[idx[i]] = 0;
        }
      }
      break;
    }
    case Sparsity::kOutputChannel: {
      std::vector<double> norm(static_cast<size_t>(w.channels), 0.0);
      for (int64_t c = 0; c < w.channels; ++c) {
        for (float x : w.Row(c)) norm[c] += static_cast<double>(x) * x;
      }
      const int64_t drop = std::min<int64_t>(w.channels - 1, static_cast<int64_t>(std::llround(ratio * w.channels)));
      std::vector<int64_t> order(static_cast<size_t>(w.channels));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[a] < norm[b]; });
      for (int64_t i = 0; i < drop; ++i) {
        std::fill_n(mask.begin() + order[i] * w.per_channel, w.per_channel, 0);
      }
      break;
    }
  }
  return mask;
}

std::vector<int64_t> KeptChannels(const ChannelMatrix& w, const std::vector<uint8_t>& mask) {
  std::vector<int64_t> kept;
  for (int64_t c = 0; c < w.channels; ++c) {
    const auto begin = mask.begin() + c * w.per_channel;
    if (std::any_of(begin, begin + w.per_channel, [](uint8_t m) { return m != 0; })) kept.push_back(c);
  }
  return kept;
}

float QuantizeRow(absl::Span<const float> row, absl::Span<const uint8_t> mask, int bits, absl::Span<float> out) {
  float absmax = 0;
  for (size_t i = 0; i < row.size(); ++i) {
    if (mask.empty() || mask[i]) absmax = std::max(absmax, std::fabs(row[i]));
  }
  std::fill(out.begin(), out.end(), 0.f);
  if (absmax == 0) return 0;
  const double q_max = std::ldexp(1.0, bits - 1) - 1;
  auto error_at = [&](double scale) {
    double err = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      if (!mask.empty() && !mask[i]) continue;
      const double q = std::clamp(std::nearbyint(row[i] / scale), -q_max, q_max) * scale;
      err += (row[i] - q) * (row[i] - q);
    }
    return err;
  };
  // Coarse to fine over the clip fraction in [kMinClip, 1]: a coarse grid, then two finer grids
  // around the best point. The squared error is smooth enough in the clip for this to land within
  // a fraction of a percent of an exhaustive search.
  double best_clip = 1.0;
  double best_error = error_at(absmax / q_max);
  double step = (1.0 - kMinClip) / (kCoarseSteps - 1);
  auto search = [&](double low, double high) {
    for (double clip = low; clip <= high + 1e-12; clip += step) {
      if (clip < kMinClip || clip > 1.0) continue;
      const double err = error_at(absmax * clip / q_max);
      if (err < best_error) {
        best_error = err;
        best_clip = clip;
      }
    }
  };
  search(kMinClip, 1.0);
  for (int refine = 0; refine < 2; ++refine) {
    const double center = best_clip;
    step /= 5;
    search(center - 4 * step, center + 4 * step);
  }
  const double best_scale = absmax * best_clip / q_max;
  QuantizeRowAt(row, mask, bits, best_scale, out);
  return static_cast<float>(best_scale);
}

void QuantizeRowAt(absl::Span<const float> row, absl::Span<const uint8_t> mask, int bits, double scale,
                   absl::Span<float> out) {
  const double q_max = std::ldexp(1.0, bits - 1) - 1;
  for (size_t i = 0; i < row.size(); ++i) {
    out[i] = !mask.empty() && !mask[i]
                 ? 0.f
                 : static_cast<float>(std::clamp(std::nearbyint(row[i] / scale), -q_max, q_max) * scale);
  }
}

uint16_t FloatToHalfBits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exponent = (x >> 23) & 0xffu;
  uint32_t mantissa = x & 0x7fffffu;
  if (exponent == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0u));  // inf, nan
  int32_t e = static_cast<int32_t>(exponent) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);  // underflows to zero
    mantissa |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(half);
}

float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t x;
  if (exponent == 0) {
    if (mantissa == 0) {
      x = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mantissa <<= 1;
      } while ((mantissa & 0x400u) == 0);
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 0x1f) {
    x = sign | 0x7f800000u | (mantissa << 13);
  } else {
    x = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &x, sizeof(out));
  return out;
}

float RoundToHalf(float x) { return HalfBitsToFloat(FloatToHalfBits(x)); }

ChannelMatrix QuantizeMasked(const ChannelMatrix& w, const std::vector<uint8_t>& mask, int weight_bits,
                             int64_t block_size, std::vector<float>* run_scales) {
  ChannelMatrix out = w;
  for (size_t i = 0; i < out.values.size(); ++i) {
    if (!mask[i]) out.values[i] = 0;
  }
  if (weight_bits <= 8) {
    const int64_t run = block_size > 0 ? std::min(block_size, w.per_channel) : w.per_channel;
    if (run_scales != nullptr) run_scales->clear();
    for (int64_t c = 0; c < w.channels; ++c) {
      for (int64_t k = 0; k < w.per_channel; k += run) {
        const size_t begin = static_cast<size_t>(c * w.per_channel + k);
        const size_t n = static_cast<size_t>(std::min(run, w.per_channel - k));
        const float scale =
            QuantizeRow(absl::MakeConstSpan(w.values).subspan(begin, n), absl::MakeConstSpan(mask).subspan(begin, n),
                        weight_bits, absl::MakeSpan(out.values).subspan(begin, n));
        if (run_scales != nullptr) run_scales->push_back(scale > 0 ? scale : 1.f);
      }
    }
  } else if (weight_bits == 16) {
    for (float& x : out.values) x = RoundToHalf(x);
  }
  return out;
}

ChannelMatrix Compress(const ChannelMatrix& w, int weight_bits, Sparsity pattern, double prune_ratio,
                       int64_t block_size) {
  return QuantizeMasked(w, PruneMask(w, pattern, prune_ratio), weight_bits, block_size);
}

double RelativeDistortion(absl::Span<const float> w, absl::Span<const float> w_hat) {
  double num = 0, den = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - w_hat[i];
    num += d * d;
    den += static_cast<double>(w[i]) * w[i];
  }
  return den > 0 ? num / den : 0;
}

int ActivationLevels(ActivationScheme scheme) {
  switch (scheme) {
    case ActivationScheme::kSymmetricInt8:
      return 254;
    case ActivationScheme::kAsymmetricUint16:
      return 65535;
    case ActivationScheme::kAsymmetricUint8:
      break;
  }
  return 255;
}

ActivationQuantizer ActivationQuantizerOf(ActivationScheme scheme, float min, float max) {
  ActivationQuantizer q;
  q.scheme = scheme;
  if (scheme == ActivationScheme::kSymmetricInt8) {
    const float scale = std::max(std::fabs(min), std::fabs(max)) / 127.f;
    if (scale > 0 && std::isfinite(scale)) q.scale = scale;
    return q;
  }
  const float levels = static_cast<float>(ActivationLevels(scheme));
  const float lo = std::min(min, 0.f), hi = std::max(max, 0.f);
  const float scale = (hi - lo) / levels;
  if (!(scale > 0) || !std::isfinite(scale)) return q;
  q.scale = scale;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.f, levels));
  return q;
}

int32_t QuantizedLevel(float x, const ActivationQuantizer& q) {
  const bool int8 = q.scheme == ActivationScheme::kSymmetricInt8;
  const float lowest = int8 ? -128.f : 0.f, highest = int8 ? 127.f : static_cast<float>(ActivationLevels(q.scheme));
  return static_cast<int32_t>(
      std::clamp(std::nearbyint(x / q.scale) + static_cast<float>(q.zero_point), lowest, highest));
}

float FakeQuantize(float x, int bits, const ActivationQuantizer& q) {
  if (bits == 8 || (bits == 16 && q.scheme == ActivationScheme::kAsymmetricUint16)) {
    return static_cast<float>(QuantizedLevel(x, q) - q.zero_point) * q.scale;
  }
  if (bits == 16) return RoundToHalf(x);
  return x;
}

}  // namespace squeeze::model
