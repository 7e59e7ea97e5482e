#include "model/weight_math.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

namespace squeeze::model {
namespace {

ChannelMatrix Matrix(int64_t channels, int64_t per_channel, std::vector<float> values) {
  ChannelMatrix m;
  m.channels = channels;
  m.per_channel = per_channel;
  m.values = std::move(values);
  return m;
}

TEST_CASE("2:4 pruning keeps the two largest of every four", "[weight_math]") {
  // One row [1, -4, 3, 2 | 0.5, 0.1, -0.2, 0.3]: keeps -4, 3 and 0.5, 0.3.
  ChannelMatrix w = Matrix(1, 8, {1, -4, 3, 2, 0.5f, 0.1f, -0.2f, 0.3f});
  std::vector<uint8_t> mask = PruneMask(w, Sparsity::kTwoFour, 0.5);
  CHECK(mask == std::vector<uint8_t>{0, 1, 1, 0, 1, 0, 0, 1});
  ChannelMatrix pruned = Compress(w, 32, Sparsity::kTwoFour, 0.5);
  // Removed energy: 1 + 4 + 0.01 + 0.04 = 5.05 of 1 + 16 + 9 + 4 + 0.25 + 0.01 + 0.04 + 0.09 = 30.39.
  CHECK(RelativeDistortion(w.values, pruned.values) == Approx(5.05 / 30.39));
}

TEST_CASE("Unstructured pruning removes the smallest magnitudes of the layer", "[weight_math]") {
  ChannelMatrix w = Matrix(2, 3, {0.1f, -5, 2, -0.3f, 4, 0.2f});
  std::vector<uint8_t> mask = PruneMask(w, Sparsity::kUnstructured, 0.5);
  CHECK(mask == std::vector<uint8_t>{0, 1, 1, 0, 1, 0});
  ChannelMatrix pruned = Compress(w, 32, Sparsity::kUnstructured, 0.5);
  const double removed = 0.01 + 0.09 + 0.04;
  const double total = 0.01 + 25 + 4 + 0.09 + 16 + 0.04;
  CHECK(RelativeDistortion(w.values, pruned.values) == Approx(removed / total));
}

TEST_CASE("Channel pruning removes whole rows of smallest norm and keeps one at least", "[weight_math]") {
  // Row norms²: 1+1 = 2, 9+16 = 25, 0 (a zero channel), 4+0 = 4.
  ChannelMatrix w = Matrix(4, 2, {1, -1, 3, 4, 0, 0, 2, 0});
  std::vector<uint8_t> mask = PruneMask(w, Sparsity::kOutputChannel, 0.5);
  CHECK(mask == std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1});
  CHECK(KeptChannels(w, mask) == std::vector<int64_t>{1, 3});
  CHECK(RelativeDistortion(w.values, Compress(w, 32, Sparsity::kOutputChannel, 0.5).values) == Approx(2.0 / 31.0));
  CHECK(KeptChannels(w, PruneMask(w, Sparsity::kOutputChannel, 1.0)).size() == 1);
}

TEST_CASE("A zero channel quantizes to zero with a zero scale", "[weight_math]") {
  std::vector<float> row = {0, 0, 0};
  std::vector<float> out(3, 1.f);
  CHECK(QuantizeRow(row, {}, 8, absl::MakeSpan(out)) == 0);
  CHECK(out == std::vector<float>{0, 0, 0});
  ChannelMatrix w = Matrix(2, 3, {0, 0, 0, 1, 2, 3});
  CHECK(RelativeDistortion(w.values, Compress(w, 8, Sparsity::kDense, 0).values) < 1e-4);
}

TEST_CASE("Symmetric quantization by hand", "[weight_math]") {
  SECTION("values on the 8-bit grid are exact") {
    // absmax 127 -> scale 1: every integer in range is representable.
    std::vector<float> row = {-127, -3, 0, 5, 127};
    std::vector<float> out(5);
    CHECK(QuantizeRow(row, {}, 8, absl::MakeSpan(out)) == Approx(1.0));
    CHECK(out == row);
  }
  SECTION("2 bits: levels -s, 0, s") {
    std::vector<float> row = {-1, -0.2f, 0.6f, 1};
    std::vector<float> out(4);
    const float s = QuantizeRow(row, {}, 2, absl::MakeSpan(out));
    for (float v : out) CHECK((v == 0 || std::fabs(std::fabs(v) - s) < 1e-6f));
  }
  SECTION("clipping beats absmax when an outlier stretches the range") {
    // 1000 N(0, 1) values and one at 6: at 4 bits the absmax grid (step 6/7) wastes levels on
    // the outlier; clipping near 3 trades a little outlier error for much finer steps.
    std::vector<float> row(1000);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0, 1);
    for (float& v : row) v = normal(rng);
    row[0] = 6;
    std::vector<float> out(row.size());
    const float s = QuantizeRow(row, {}, 4, absl::MakeSpan(out));
    CHECK(s < 0.8f * 6.f / 7.f);
    std::vector<float> absmax_q(row.size());
    for (size_t i = 0; i < row.size(); ++i) {
      absmax_q[i] = std::clamp(std::nearbyint(row[i] / (6.f / 7)), -7.f, 7.f) * (6.f / 7);
    }
    CHECK(RelativeDistortion(row, out) < 0.7 * RelativeDistortion(row, absmax_q));
  }
}

TEST_CASE("Distortion falls as bits rise and pruned weights stay zero after quantization", "[weight_math]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 1);
  ChannelMatrix w = Matrix(8, 64, std::vector<float>(512));
  for (float& v : w.values) v = normal(rng);
  double previous = 1;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    const double d = RelativeDistortion(w.values, Compress(w, bits, Sparsity::kDense, 0).values);
    CHECK(d < previous);
    previous = d;
  }
  CHECK(previous < 1e-4);  // 8 bits
  ChannelMatrix both = Compress(w, 4, Sparsity::kUnstructured, 0.5);
  const std::vector<uint8_t> mask = PruneMask(w, Sparsity::kUnstructured, 0.5);
  for (size_t i = 0; i < mask.size(); ++i) {
    if (!mask[i]) CHECK(both.values[i] == 0);
  }
  CHECK(RelativeDistortion(w.values, both.values) >
        RelativeDistortion(w.values, Compress(w, 32, Sparsity::kUnstructured, 0.5).values));
}

TEST_CASE("fp16 rounding", "[weight_math]") {
  CHECK(RoundToHalf(1.0f) == 1.0f);
  CHECK(RoundToHalf(65504.f) == 65504.f);
  CHECK(std::isinf(RoundToHalf(1e6f)));
  CHECK(RoundToHalf(1.0f + 1.0f / 4096) == 1.0f);               // below half an ulp (2^-10)
  CHECK(RoundToHalf(1.0f + 3.0f / 2048) == 1.0f + 1.0f / 512);  // 1.5 ulp rounds to even (2 ulp)
  CHECK(HalfBitsToFloat(FloatToHalfBits(-2.5f)) == -2.5f);
  CHECK(HalfBitsToFloat(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(FloatToHalfBits(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(HalfBitsToFloat(FloatToHalfBits(std::ldexp(3.0f, -20))) == std::ldexp(3.0f, -20));  // subnormal
}

ChannelLayout Layout(int64_t outer, int64_t axis, int64_t inner, int64_t groups = 1) {
  ChannelLayout l;
  l.outer = outer;
  l.axis = axis;
  l.inner = inner;
  l.groups = groups;
  return l;
}

TEST_CASE("Channel-major views round trip for every weight layout", "[weight_math]") {
  std::vector<float> w(2 * 6 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  SECTION("axis 0 (Conv [C_out=2, 6, 3])") {
    ChannelMatrix m = ToChannelMajor(w, Layout(1, 2, 18));
    CHECK(m.channels == 2);
    CHECK(m.per_channel == 18);
    CHECK(m.Row(1)[0] == 18);
    CHECK(FromChannelMajor(m, Layout(1, 2, 18)) == w);
  }
  SECTION("last axis (MatMul [K=12, N=3])") {
    ChannelMatrix m = ToChannelMajor(w, Layout(12, 3, 1));
    CHECK(m.channels == 3);
    CHECK(m.per_channel == 12);
    CHECK(m.Row(1)[0] == 1);
    CHECK(m.Row(1)[1] == 4);
    CHECK(FromChannelMajor(m, Layout(12, 3, 1)) == w);
  }
  SECTION("axis 1 with groups (ConvTranspose [C_in=2, C_out/G=6, k=3], G=2)") {
    ChannelMatrix m = ToChannelMajor(w, Layout(2, 6, 3, 2));
    CHECK(m.channels == 12);
    CHECK(m.per_channel == 3);
    CHECK(m.Row(6)[0] == w[18]);  // group 1's first output channel reads input channel 1
    CHECK(FromChannelMajor(m, Layout(2, 6, 3, 2)) == w);
  }
}

}  // namespace
}  // namespace squeeze::model
