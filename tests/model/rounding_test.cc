#include "model/rounding.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <random>

namespace squeeze::model {
namespace {

// Rows of X as a transformer's layer inputs look: correlated features (a random mix of a few
// directions of decaying strength) plus a few outlier features far larger than the rest.
LayerInputRows CorrelatedRows(int64_t rows, int64_t k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  const int64_t directions = k / 4;
  std::mt19937_64 mix_rng(7);  // the same mix for every draw: one distribution
  std::vector<float> mix(static_cast<size_t>(directions * k));
  for (float& m : mix) m = normal(mix_rng);
  LayerInputRows x;
  x.k = k;
  x.values.assign(static_cast<size_t>(rows * k), 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < directions; ++d) {
      const float z = normal(rng) / static_cast<float>(1 + d);
      for (int64_t j = 0; j < k; ++j) x.values[r * k + j] += z * mix[d * k + j];
    }
    for (int64_t j = 0; j < k; ++j) x.values[r * k + j] += 0.05f * normal(rng);
    x.values[r * k + 3] *= 20;  // outlier features
    x.values[r * k + k / 2] *= 12;
  }
  return x;
}

ChannelMatrix GaussianWeights(int64_t channels, int64_t per_channel, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f / std::sqrt(static_cast<float>(per_channel)));
  ChannelMatrix w;
  w.channels = channels;
  w.per_channel = per_channel;
  w.values.resize(static_cast<size_t>(channels * per_channel));
  for (float& v : w.values) v = normal(rng);
  return w;
}

std::vector<uint8_t> KeepAll(const ChannelMatrix& w) { return std::vector<uint8_t>(w.values.size(), 1); }

TEST_CASE(
    "GPTQ's layer output errs less than round-to-nearest's at 4 and 3 bits, on the calibration rows and on others",
    "[rounding]") {
  const ChannelMatrix w = GaussianWeights(96, 128, 1);
  const LayerInputRows calibration = CorrelatedRows(1024, 128, 2);
  const LayerInputRows held_out = CorrelatedRows(1024, 128, 3);
  const std::optional<CompensationBasis> basis = CompensationBasisOf(calibration);
  REQUIRE(basis);
  for (int bits : {4, 3}) {
    for (int64_t block : {32, 128}) {
      const BlockQuantized nearest = QuantizeBlocks(w, KeepAll(w), bits, block);
      const BlockQuantized gptq = QuantizeBlocks(w, KeepAll(w), bits, block, &*basis);
      REQUIRE_FALSE(nearest.compensated);
      REQUIRE(gptq.compensated);
      const double in_nearest = RelativeOutputDistortion(w, nearest.values, calibration);
      const double in_gptq = RelativeOutputDistortion(w, gptq.values, calibration);
      const double out_nearest = RelativeOutputDistortion(w, nearest.values, held_out);
      const double out_gptq = RelativeOutputDistortion(w, gptq.values, held_out);
      INFO(bits << " bits, block " << block << ": calibration " << in_gptq << " vs " << in_nearest << ", held out "
                << out_gptq << " vs " << out_nearest);
      CHECK(in_gptq < 0.7 * in_nearest);
      CHECK(out_gptq < 0.8 * out_nearest);
      // It buys the output's accuracy with the weights': Ŵ is no closer to W.
      CHECK(RelativeDistortion(w.values, gptq.values.values) >=
            0.95 * RelativeDistortion(w.values, nearest.values.values));
    }
  }
}

TEST_CASE("GPTQ's weights are whole levels of their run's scale, as MatMulNBits stores them", "[rounding]") {
  const ChannelMatrix w = GaussianWeights(8, 80, 4);  // K = 80: the last run of 32 holds 16
  const LayerInputRows x = CorrelatedRows(256, 80, 5);
  const std::optional<CompensationBasis> basis = CompensationBasisOf(x);
  REQUIRE(basis);
  const BlockQuantized q = QuantizeBlocks(w, KeepAll(w), 4, 32, &*basis);
  REQUIRE(q.compensated);
  REQUIRE(q.scales.size() == 8 * 3);
  for (int64_t c = 0; c < 8; ++c) {
    for (int64_t j = 0; j < 80; ++j) {
      const float scale = q.scales[static_cast<size_t>(c * 3 + j / 32)];
      REQUIRE(scale > 0);
      const double level = q.values.values[static_cast<size_t>(c * 80 + j)] / scale;
      CHECK(std::fabs(level - std::nearbyint(level)) < 1e-4);
      CHECK(std::fabs(std::nearbyint(level)) <= 7);
    }
  }
}

TEST_CASE("Without enough calibration rows, or with pruned weights, blocks round to nearest", "[rounding]") {
  const ChannelMatrix w = GaussianWeights(16, 64, 6);
  const ChannelMatrix reference = QuantizeMasked(w, KeepAll(w), 4, 32);
  CHECK_FALSE(CompensationBasisOf(CorrelatedRows(kLeastCompensationRows - 1, 64, 7)));
  const BlockQuantized without = QuantizeBlocks(w, KeepAll(w), 4, 32, nullptr);
  CHECK_FALSE(without.compensated);
  CHECK(without.values.values == reference.values);

  const std::optional<CompensationBasis> enough = CompensationBasisOf(CorrelatedRows(512, 64, 8));
  REQUIRE(enough);
  CHECK(QuantizeBlocks(w, KeepAll(w), 4, 32, &*enough).compensated);
  std::vector<uint8_t> pruned = KeepAll(w);
  pruned[5] = 0;
  const BlockQuantized masked = QuantizeBlocks(w, pruned, 4, 32, &*enough);
  CHECK_FALSE(masked.compensated);
  CHECK(masked.values.values == QuantizeMasked(w, pruned, 4, 32).values);
  const std::optional<CompensationBasis> other_k = CompensationBasisOf(CorrelatedRows(512, 32, 9));
  REQUIRE(other_k);
  CHECK_FALSE(QuantizeBlocks(w, KeepAll(w), 4, 32, &*other_k).compensated);
}

TEST_CASE("An input no calibration row reads leaves GPTQ finite", "[rounding]") {
  const ChannelMatrix w = GaussianWeights(12, 64, 10);
  LayerInputRows x = CorrelatedRows(256, 64, 11);
  for (int64_t r = 0; r < x.rows(); ++r) x.values[r * 64 + 9] = 0;  // a dead feature
  const std::optional<CompensationBasis> basis = CompensationBasisOf(x);
  REQUIRE(basis);
  const BlockQuantized q = QuantizeBlocks(w, KeepAll(w), 3, 64, &*basis);
  REQUIRE(q.compensated);
  for (float v : q.values.values) REQUIRE(std::isfinite(v));
  CHECK(RelativeOutputDistortion(w, q.values, x) <
        RelativeOutputDistortion(w, QuantizeMasked(w, KeepAll(w), 3, 64), x));
}

TEST_CASE("The relative output distortion is 0 for the weights themselves and 1 for zeros", "[rounding]") {
  const ChannelMatrix w = GaussianWeights(4, 16, 12);
  const LayerInputRows x = CorrelatedRows(32, 16, 13);
  CHECK(RelativeOutputDistortion(w, w, x) == 0);
  ChannelMatrix zeros = w;
  std::fill(zeros.values.begin(), zeros.values.end(), 0.f);
  CHECK(RelativeOutputDistortion(w, zeros, x) == Approx(1));
}

}  // namespace
}  // namespace squeeze::model
