#include "device_profiles/op_grid.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace squeeze::device_profiles {
namespace {

// A family of conv shapes: channels x (out/in ratios) x resolutions, kept where resolution x
// input channels lies in the band mobile networks live in (they trade one for the other).
struct Family {
  OpKind kind = OpKind::kConv;
  int64_t kernel = 1, stride = 1, groups = 1;
  std::vector<int64_t> channels;
  std::vector<double> ratios = {1};
  std::vector<int64_t> resolutions;
};

// The grid's shape of each mode. Channels and resolutions sit on x2 lattices (any shape is
// within x1.41 of a lattice point in each), the full grid adds a second lattice in between;
// the quick grid uses x4 steps (within x2).
struct GridParams {
  std::vector<Family> families;
  int64_t min_res_channels = 0, max_res_channels = 0;
  double max_macs = 0;                                            // per op, for time
  std::vector<int64_t> se_channels;                               // 1x1 convs at resolution 1, reduction 4 either way
  std::vector<int64_t> stem_out, stem_res;                        // k3 s2 convs of the 3-channel image
  std::vector<std::pair<int64_t, std::vector<int64_t>>> grouped;  // channels, group counts (k3 s1)
  std::vector<int64_t> transpose_in, transpose_res;
  std::vector<int64_t> gemm_m, gemm_k, gemm_n;
  int extras_every = 1;                // every n-th shape of a family also at the other precisions
  bool channel_pruned = false;         // some k1/k3 shapes with 50% and 70% of their output channels
  std::vector<int> element_exponents;  // non-layer ops over 2^e elements
};

GridParams Params(ProfileMode mode) {
  GridParams p;
  auto add = [&p](OpKind kind, int64_t kernel, int64_t stride, std::vector<int64_t> channels,
                  std::vector<double> ratios, std::vector<int64_t> resolutions) {
    Family f;
    f.kind = kind;
    f.kernel = kernel;
    f.stride = stride;
    f.channels = std::move(channels);
    f.ratios = std::move(ratios);
    f.resolutions = std::move(resolutions);
    p.families.push_back(std::move(f));
  };
  const OpKind conv = OpKind::kConv, dw = OpKind::kDepthwiseConv;
  if (mode == ProfileMode::kQuick) {
    const std::vector<int64_t> c = {8, 24, 64, 192, 512}, r = {10, 28, 80, 224};
    add(conv, 1, 1, c, {0.25, 1, 4}, r);
    add(conv, 3, 1, c, {0.25, 1}, r);
    add(conv, 3, 2, c, {2}, r);
    for (int64_t k : {3, 5}) {
      for (int64_t s : {1, 2}) add(dw, k, s, c, {1}, r);
    }
    p.min_res_channels = 256;
    p.max_res_channels = 16384;
    p.max_macs = 500e6;
    p.se_channels = c;
    p.stem_out = {16, 32};
    p.stem_res = {96, 320, 640};
    p.grouped = {{64, {4}}};
    p.transpose_in = {24};
    p.transpose_res = {160};
    p.gemm_m = {1, 64};
    p.gemm_k = {512};
    p.gemm_n = {2, 512};
    p.extras_every = 8;
    p.channel_pruned = true;  // pruned channel counts (no multiple of 8) run differently; searches prune
    // Every octave even here: uint8 pools slow down threefold per value once their input leaves L1.
    for (int e = 10; e <= 22; ++e) p.element_exponents.push_back(e);
    return p;
  }
  const std::vector<int64_t> c = {8, 16, 32, 64, 128, 256, 512}, r = {10, 20, 40, 80, 160, 320};
  const std::vector<int64_t> c2 = {12, 24, 48, 96, 192, 384}, r2 = {7, 14, 28, 56, 112, 224};
  add(conv, 1, 1, c, {0.25, 0.5, 1, 2, 4}, r);
  add(conv, 1, 1, c2, {1}, r2);
  add(conv, 3, 1, c, {0.25, 1, 2}, r);
  add(conv, 3, 2, c, {1, 2}, r);
  add(conv, 5, 1, c, {1}, r);
  add(conv, 1, 2, c, {2}, r);
  add(dw, 3, 1, c, {1}, r);
  add(dw, 3, 1, c2, {1}, r2);
  add(dw, 3, 2, c, {1}, r);
  add(dw, 5, 1, c, {1}, r);
  add(dw, 5, 2, c, {1}, r);
  p.min_res_channels = 256;
  p.max_res_channels = 12800;
  p.max_macs = 700e6;
  p.se_channels = {8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  p.stem_out = {8, 16, 32};
  p.stem_res = {96, 160, 224, 320, 640};
  p.grouped = {{32, {2, 8}}, {128, {2, 8}}};
  p.transpose_in = {16, 24, 64};
  p.transpose_res = {40, 80, 160, 320};
  p.gemm_m = {1, 16, 256};
  p.gemm_k = {64, 256, 1024};
  p.gemm_n = {2, 64, 256, 1024};
  p.extras_every = 4;
  p.channel_pruned = true;
  for (int e = 10; e <= 22; ++e) p.element_exponents.push_back(e);
  return p;
}

int64_t OutRes(int64_t res, int64_t stride, OpKind kind) {
  return kind == OpKind::kConvTranspose ? res * stride : (res + stride - 1) / stride;
}

// MACs as ShapeMacs counts them, for the grid's time cap.
double Macs(const OpSpec& s) {
  if (s.kind == OpKind::kGemm) return static_cast<double>(s.gemm_m) * s.gemm_k * s.gemm_n;
  if (!IsLayerKind(s.kind)) return 0;
  const double per_pixel = static_cast<double>(s.in_channels / s.groups) * s.out_channels * s.kernel * s.kernel;
  if (s.kind == OpKind::kConvTranspose) return per_pixel * s.height * s.width;
  return per_pixel * OutRes(s.height, s.stride, s.kind) * OutRes(s.width, s.stride, s.kind);
}

OpSpec Conv(OpKind kind, int64_t in, int64_t out, int64_t res, int64_t kernel, int64_t stride, int64_t groups = 1) {
  OpSpec s;
  s.kind = kind;
  s.in_channels = in;
  s.out_channels = out;
  s.height = s.width = res;
  s.kernel = kernel;
  s.stride = stride;
  s.groups = kind == OpKind::kDepthwiseConv ? in : groups;
  return s;
}

struct Precision {
  int w, a;
  Sparsity sparsity;
};
constexpr Precision kBase[] = {{32, 32, Sparsity::kDense}, {8, 8, Sparsity::kDense}};
constexpr Precision kExtras[] = {{16, 32, Sparsity::kDense},        {8, 32, Sparsity::kDense},
                                 {4, 8, Sparsity::kDense},          {4, 32, Sparsity::kDense},
                                 {32, 32, Sparsity::kUnstructured}, {32, 32, Sparsity::kTwoFour},
                                 {8, 8, Sparsity::kUnstructured},   {8, 8, Sparsity::kTwoFour}};
// A gemm's 2-bit weights with float activations are a MatMulNBits of its own 2-bit kernel
// (model::WritesMatMulNBits), which runs at another speed than the 4-bit one.
constexpr Precision kGemmExtras[] = {{2, 32, Sparsity::kDense}};

}  // namespace

absl::string_view ProfileModeName(ProfileMode mode) { return mode == ProfileMode::kQuick ? "quick" : "full"; }

int64_t OpSpec::Elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return shape.empty() ? 0 : n;
}

std::string PrecisionLabel(int weight_bits, int activation_bits) {
  if (weight_bits == 32 && activation_bits == 32) return "fp32";
  if (weight_bits == 16 && activation_bits == 16) return "fp16";
  return absl::StrCat("w", weight_bits, "a", activation_bits);
}

std::string OpSpecKey(const OpSpec& s) {
  std::string key(OpKindName(s.kind));
  if (!IsLayerKind(s.kind)) {
    if (s.kind == OpKind::kElementwise) absl::StrAppend(&key, " ", absl::AsciiStrToLower(s.op_type));
    return absl::StrCat(key, " ", absl::StrJoin(s.shape, "x"));
  }
  if (s.kind == OpKind::kGemm) {
    absl::StrAppend(&key, " ", s.gemm_m, "x", s.gemm_k, ">", s.gemm_n);
  } else {
    absl::StrAppend(&key, " k", s.kernel, " s", s.stride);
    if (s.kind == OpKind::kDepthwiseConv) {
      absl::StrAppend(&key, " ", s.in_channels);
    } else {
      if (s.groups > 1) absl::StrAppend(&key, " g", s.groups);
      absl::StrAppend(&key, " ", s.in_channels, ">", s.out_channels);
    }
    absl::StrAppend(&key, " ", s.height, "x", s.width);
  }
  absl::StrAppend(&key, " ", PrecisionLabel(s.weight_bits, s.activation_bits));
  if (s.sparsity == Sparsity::kUnstructured) {
    absl::StrAppend(&key, " unstructured ", std::lround(s.sparsity_ratio * 100), "%");
  } else if (s.sparsity == Sparsity::kTwoFour) {
    absl::StrAppend(&key, " 2:4");
  }
  return key;
}

LatencySample SampleOf(const OpSpec& s) {
  LatencySample sample;
  sample.key = OpSpecKey(s);
  sample.op_kind = s.kind;
  sample.batch = 1;
  if (s.kind == OpKind::kGemm) {
    sample.gemm_m = s.gemm_m;
    sample.gemm_k = s.gemm_k;
    sample.gemm_n = s.gemm_n;
  } else if (IsLayerKind(s.kind)) {
    sample.in_channels = s.in_channels;
    sample.out_channels = s.out_channels;
    sample.height = s.height;
    sample.width = s.width;
    sample.kernel = s.kernel;
    sample.stride = s.stride;
    sample.groups = s.groups;
  } else {
    sample.elements = s.Elements();
  }
  sample.weight_bits = s.weight_bits;
  sample.activation_bits = s.activation_bits;
  sample.sparsity = s.sparsity;
  sample.sparsity_ratio = s.sparsity_ratio;
  return sample;
}

std::vector<OpSpec> ProfileGrid(ProfileMode mode) {
  const GridParams p = Params(mode);
  auto fits = [&](const OpSpec& s) {
    const int64_t rc = s.height * s.in_channels;
    return rc >= p.min_res_channels && rc <= p.max_res_channels && Macs(s) <= p.max_macs && Macs(s) > 0;
  };
  // Layer shapes by family; each family sorted by MACs so every n-th one spans its range.
  std::vector<std::vector<OpSpec>> families;
  for (const Family& family : p.families) {
    std::vector<OpSpec> f;
    for (int64_t in : family.channels) {
      for (double r : family.ratios) {
        const int64_t out = std::llround(in * r);
        if (out < 8 || out > 512) continue;
        for (int64_t res : family.resolutions) {
          OpSpec s = Conv(family.kind, in, out, res, family.kernel, family.stride, family.groups);
          if (fits(s)) f.push_back(s);
        }
      }
    }
    families.push_back(f);
  }
  {
    std::vector<OpSpec> f;
    for (int64_t in : p.se_channels) {
      for (double r : {0.25, 4.0}) {
        const int64_t out = std::llround(in * r);
        if (out >= 8 && out <= 2048) f.push_back(Conv(OpKind::kConv, in, out, 1, 1, 1));
      }
    }
    families.push_back(f);
  }
  {
    std::vector<OpSpec> f;
    for (int64_t out : p.stem_out) {
      for (int64_t res : p.stem_res) {
        OpSpec s = Conv(OpKind::kConv, 3, out, res, 3, 2);
        if (Macs(s) <= p.max_macs) f.push_back(s);
      }
    }
    families.push_back(f);
  }
  {
    std::vector<OpSpec> f;
    for (const auto& [c, groups] : p.grouped) {
      for (int64_t g : groups) {
        for (int64_t res : {10, 20, 40, 80, 160}) {
          OpSpec s = Conv(OpKind::kConv, c, c, res, 3, 1, g);
          if (fits(s)) f.push_back(s);
        }
      }
    }
    families.push_back(f);
  }
  {
    std::vector<OpSpec> f;
    for (int64_t kernel : {2, 4}) {
      for (int64_t in : p.transpose_in) {
        for (int64_t out : {int64_t{1}, in}) {
          for (int64_t res : p.transpose_res) {
            OpSpec s = Conv(OpKind::kConvTranspose, in, out, res, kernel, 2);
            if (res * in <= 8192 && Macs(s) <= p.max_macs) f.push_back(s);
          }
        }
      }
    }
    families.push_back(f);
  }
  {
    std::vector<OpSpec> f;
    for (int64_t m : p.gemm_m) {
      for (int64_t k : p.gemm_k) {
        for (int64_t n : p.gemm_n) {
          OpSpec s;
          s.kind = OpKind::kGemm;
          s.gemm_m = m, s.gemm_k = k, s.gemm_n = n;
          if (Macs(s) <= p.max_macs) f.push_back(s);
        }
      }
    }
    families.push_back(f);
  }

  // Every shape at the base precisions, every n-th also at the others; channel-pruned variants.
  std::vector<std::vector<OpSpec>> shapes;  // one entry per shape: its precisions
  for (size_t fi = 0; fi < families.size(); ++fi) {
    std::vector<OpSpec>& f = families[fi];
    std::stable_sort(f.begin(), f.end(), [](const OpSpec& a, const OpSpec& b) { return Macs(a) < Macs(b); });
    for (size_t i = 0; i < f.size(); ++i) {
      std::vector<OpSpec> group;
      auto add = [&group](OpSpec s, const Precision& pr) {
        s.weight_bits = pr.w;
        s.activation_bits = pr.a;
        s.sparsity = pr.sparsity;
        s.sparsity_ratio = pr.sparsity == Sparsity::kDense ? 0 : 0.5;
        group.push_back(s);
      };
      for (const Precision& pr : kBase) add(f[i], pr);
      if (i % p.extras_every == 0) {
        for (const Precision& pr : kExtras) add(f[i], pr);
        if (f[i].kind == OpKind::kGemm) {
          for (const Precision& pr : kGemmExtras) add(f[i], pr);
        }
      }
      shapes.push_back(group);
      const bool prunable = f[i].kind == OpKind::kConv && f[i].groups == 1 && f[i].height > 1 && f[i].in_channels > 3 &&
                            (f[i].kernel == 1 || f[i].kernel == 3) && f[i].stride == 1;
      if (p.channel_pruned && prunable && i % p.extras_every == 1 && f[i].out_channels >= 16) {
        for (double keep : {0.5, 0.7}) {
          OpSpec pruned = f[i];
          pruned.out_channels = std::llround(f[i].out_channels * keep);
          std::vector<OpSpec> pruned_group;
          for (const Precision& pr : kBase) {
            pruned.weight_bits = pr.w;
            pruned.activation_bits = pr.a;
            pruned_group.push_back(pruned);
          }
          shapes.push_back(pruned_group);
        }
      }
    }
  }
  {
    // The ops around layers.
    const std::vector<std::pair<OpKind, const char*>> ops = {{OpKind::kQuantizeLinear, "QuantizeLinear"},
                                                             {OpKind::kDequantizeLinear, "DequantizeLinear"},
                                                             {OpKind::kElementwise, "Add"},
                                                             {OpKind::kElementwise, "Mul"},
                                                             {OpKind::kElementwise, "Relu"},
                                                             {OpKind::kElementwise, "HardSigmoid"},
                                                             {OpKind::kElementwise, "HardSwish"},
                                                             {OpKind::kTranspose, "Transpose"},
                                                             {OpKind::kMaxPool, "MaxPool"}};
    for (int e : p.element_exponents) {
      for (const auto& [kind, op] : ops) {
        OpSpec s;
        s.kind = kind;
        s.op_type = op;
        s.shape = {1, 32, int64_t{1} << ((e - 5) / 2), int64_t{1} << (e - 5 - (e - 5) / 2)};
        if (kind == OpKind::kQuantizeLinear || kind == OpKind::kDequantizeLinear || kind == OpKind::kTranspose ||
            kind == OpKind::kMaxPool) {
          s.activation_bits = 8;
        }
        shapes.push_back({s});
      }
    }
  }
  // Shapes interleaved (a fixed shuffle), so slow drift of the machine spreads over all families
  // instead of biasing one; a shape's precisions stay together.
  std::mt19937_64 rng(20240601);
  std::shuffle(shapes.begin(), shapes.end(), rng);
  std::vector<OpSpec> grid;
  absl::flat_hash_set<std::string> keys;  // a channel-pruned shape may be a grid shape already
  for (std::vector<OpSpec>& group : shapes) {
    for (OpSpec& s : group) {
      if (keys.insert(OpSpecKey(s)).second) grid.push_back(std::move(s));
    }
  }
  return grid;
}

}  // namespace squeeze::device_profiles
