#include "runtime/sensitivity.h"

#include <onnx/onnx_pb.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>

#include "model/export_flavour.h"
#include "model/surgery.h"
#include "model/weight_math.h"
#include "model/weights.h"
#include "runtime/calibration.h"
#include "runtime/session.h"
#include "runtime/verify.h"
#include "tests/model/test_models.h"

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;

// Synthetic(LinearModel(), 2, 7).hash, pinned (see the platform test).
constexpr char kPinnedHash[] = "0c763b4bc352babf9ace8adca0b37932e8ee37e056b917c67740c0937d53d4b3";

CalibrationSet Synthetic(const model::LoadedModel& m, int count, uint64_t seed = 1) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  absl::StatusOr<CalibrationSet> set = SyntheticCalibration(m.analysis, (*session)->inputs(), count, seed);
  REQUIRE(set.ok());
  return *std::move(set);
}

// y = x · W with a 64x64 W of ramp values: for isotropic inputs, the relative output error of
// weight noise is close to its relative energy, so s ≈ 1.
model::LoadedModel LinearModel() {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    linear (float[16, 64] x) => (float[16, 64] y) {
      y = MatMul (x, w)
    }
  )onnx");
  std::vector<float> w(64 * 64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("w", {64, 64}, model::testing::Encoding::kRaw, w));
  return model::testing::MustLoad(proto);
}

TEST_CASE("A linear layer's sensitivity is about 1", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  SensitivityOptions options;
  options.threads = 1;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 4), options);
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 1);
  const LayerSensitivity& l = report->layers[0];
  CHECK(l.measured);
  CHECK(l.weight == Approx(1.0).epsilon(0.25));
  CHECK(report->synthetic_calibration);
  CHECK(report->samples == 4);
  // Activation quantization: 8 bits disturbs more than fp16, and both a little.
  REQUIRE(l.activation_error.count(8) == 1);
  REQUIRE(l.activation_error.count(16) == 1);
  CHECK(l.activation_error.at(8) > l.activation_error.at(16));
  CHECK(l.activation_error.at(16) > 0);
  CHECK(l.activation_error.at(8) < 1e-2);
  CHECK(l.input_range.min < 0);
  CHECK(l.input_range.max > 0);
}

// The linear model with a final Softmax: its fidelity is measured on the logits, so the layer's
// sensitivity is the linear one (about 1), not what the saturating probabilities would show.
TEST_CASE("Behind a final softmax, fidelity is measured on the logits", "[sensitivity]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    classifier (float[16, 64] x) => (float[16, 64] p) {
      logits = MatMul (x, w)
      scaled = Mul (logits, ten)
      p = Softmax <axis = 1> (scaled)
    }
  )onnx");
  std::vector<float> w(64 * 64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("w", {64, 64}, model::testing::Encoding::kRaw, w));
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("ten", {}, model::testing::Encoding::kRaw, {10.f}));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  CHECK(model::FidelityOutputs(m.proto) == std::vector<std::string>{"scaled"});
  SensitivityOptions options;
  options.threads = 1;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 4), options);
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 1);
  CHECK(report->layers[0].weight == Approx(1.0).epsilon(0.25));
  CHECK(report->warnings.empty());
}

// A layer behind a ReLU that the calibration inputs never turn on shows no response at any probe
// size: it is floored at a small fraction of the median layer, with a warning, never free.
TEST_CASE("A layer the calibration inputs never wake is not taken as free to compress", "[sensitivity]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    dead (float[16, 64] x) => (float[16, 64] y, float[16, 64] z) {
      y = MatMul (x, w1)
      h = MatMul (x, w2)
      d = Sub (h, hundred)
      z = Relu (d)
    }
  )onnx");
  std::vector<float> w(64 * 64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
  for (const char* name : {"w1", "w2"}) {
    model::testing::AddInitializer(proto.mutable_graph(),
                                   model::testing::FloatTensor(name, {64, 64}, model::testing::Encoding::kRaw, w));
  }
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("hundred", {}, model::testing::Encoding::kRaw, {100.f}));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  SensitivityOptions options;
  options.threads = 2;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 2), options);
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 2);
  const LayerSensitivity& live = report->layers[0];
  const LayerSensitivity& dead = report->layers[1];
  CHECK(live.weight > 0.1);
  CHECK(dead.measured);
  CHECK(dead.weight == Approx(1e-3 * live.weight).epsilon(1e-6));
  // Its ReLU is never on for these inputs: noise in its weights moves nothing at all.
  CHECK(live.exercised);
  CHECK_FALSE(dead.exercised);
  // Its output z is 0 everywhere: y alone carries the error at the full weight (s about 1 over
  // these two samples; about half that if z kept its share).
  CHECK(live.weight > 0.6);
  REQUIRE(report->warnings.size() == 2);
  CHECK_THAT(report->warnings[0], Catch::Matchers::Contains("outputs z are 0 on every calibration sample") &&
                                      Catch::Matchers::Contains("share"));
  CHECK_THAT(report->warnings[1], Catch::Matchers::Contains(dead.layer) && Catch::Matchers::Contains("never ran") &&
                                      Catch::Matchers::Contains("8-bit weights or more, unpruned"));
}

// Reads w back from the linear model.
std::vector<float> LinearWeight(const model::LoadedModel& m) {
  const onnx::TensorProto& t = m.proto.graph().initializer(0);
  std::vector<float> w(64 * 64);
  std::memcpy(w.data(), t.raw_data().data(), w.size() * sizeof(float));
  return w;
}

// y = x · W over the samples, 16 rows of 64 each.
std::vector<std::vector<float>> LinearOutputs(const CalibrationSet& set, const std::vector<float>& w) {
  std::vector<std::vector<float>> out;
  for (const auto& sample : set.samples) {
    absl::Span<const float> x = sample[0].floats();
    std::vector<float>& y = out.emplace_back(16 * 64, 0.f);
    for (int r = 0; r < 16; ++r) {
      for (int c = 0; c < 64; ++c) {
        double sum = 0;
        for (int k = 0; k < 64; ++k) sum += static_cast<double>(x[r * 64 + k]) * w[k * 64 + c];
        y[r * 64 + c] = static_cast<float>(sum);
      }
    }
  }
  return out;
}

// The sensitivities of `m` on `set`, activations measured at 8 bits only.
SensitivityReport MeasuredAt8Bits(const model::LoadedModel& m, const CalibrationSet& set) {
  SensitivityOptions options;
  options.activation_bits = {8};
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
  REQUIRE(report.ok());
  return *std::move(report);
}

TEST_CASE("A linear layer's activation errors are what the quantizer's error gives by hand", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  const CalibrationSet set = Synthetic(m, 2);
  SensitivityOptions options;
  options.activation_bits = {8, 16, 32};
  options.int8_symmetric = true;
  options.ranges.method = RangeMethod::kMinMax;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
  REQUIRE(report.ok());
  const LayerSensitivity& l = report->layers[0];
  // An export quantizes the layer's input x and its output y, each over its calibrated range. y =
  // x · W is linear: the output error of q(x) − x is ‖(q(x) − x) · W‖² / ‖x · W‖², and y's own
  // ‖q(y) − y‖² / ‖y‖²; the layer's error is their sum.
  const std::vector<float> w = LinearWeight(m);
  const std::vector<std::vector<float>> ys = LinearOutputs(set, w);
  float lo = 1e30f, hi = -1e30f, y_lo = 1e30f, y_hi = -1e30f;
  for (const auto& sample : set.samples) {
    for (float v : sample[0].floats()) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  for (const auto& y : ys) {
    for (float v : y) y_lo = std::min(y_lo, v), y_hi = std::max(y_hi, v);
  }
  CHECK(l.input_range.min == lo);
  CHECK(l.input_range.max == hi);
  auto by_hand = [&](int bits, model::ActivationScheme scheme) {
    const model::ActivationQuantizer q = model::ActivationQuantizerOf(scheme, lo, hi);
    const model::ActivationQuantizer q_out = model::ActivationQuantizerOf(scheme, y_lo, y_hi);
    double num = 0, den = 0, out_num = 0;
    for (size_t k = 0; k < set.samples.size(); ++k) {
      absl::Span<const float> x = set.samples[k][0].floats();
      for (int r = 0; r < 16; ++r) {
        for (int c = 0; c < 64; ++c) {
          double dy = 0;
          for (int j = 0; j < 64; ++j) {
            const float xv = x[r * 64 + j];
            dy += (static_cast<double>(model::FakeQuantize(xv, bits, q)) - xv) * w[j * 64 + c];
          }
          const float y = ys[k][r * 64 + c];
          const double e = static_cast<double>(model::FakeQuantize(y, bits, q_out)) - y;
          num += dy * dy;
          out_num += e * e;
          den += static_cast<double>(y) * y;
        }
      }
    }
    return (num + out_num) / den;
  };
  for (int bits : {8, 16}) {
    INFO("bits " << bits);
    CHECK(l.activation_error.at(bits) ==
          Approx(by_hand(bits, model::ActivationScheme::kAsymmetricUint8)).epsilon(0.01));
  }
  CHECK(l.activation_error.at(32) == 0);
  CHECK(l.activation_error.at(8) > 100 * l.activation_error.at(16));
  // As TensorRT takes them: int8 about 0 with the larger end's scale, a coarser step on N(0, 1)
  // inputs whose ends differ.
  REQUIRE(l.int8_symmetric_activation_error.has_value());
  CHECK(*l.int8_symmetric_activation_error ==
        Approx(by_hand(8, model::ActivationScheme::kSymmetricInt8)).epsilon(0.01));
  CHECK(*l.int8_symmetric_activation_error > l.activation_error.at(8));
}

TEST_CASE("Activation ranges are calibrated as the exports calibrate them", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  const CalibrationSet set = Synthetic(m, 2);
  SensitivityOptions options;
  options.activation_bits = {8};
  for (RangeMethod method : {RangeMethod::kMinMax, RangeMethod::kPercentile}) {
    INFO(RangeMethodName(method));
    options.ranges.method = method;
    options.ranges.percentile = 99.9;
    absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
    REQUIRE(report.ok());
    absl::StatusOr<std::map<std::string, model::TensorRange>> ranges = CalibrateRanges(m, {"x"}, set, options.ranges);
    REQUIRE(ranges.ok());
    CHECK(report->layers[0].input_range.min == ranges->at("x").min);
    CHECK(report->layers[0].input_range.max == ranges->at("x").max);
  }
}

TEST_CASE("A layer's quantization and pruning sensitivities are its output's response to its own errors",
          "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  const CalibrationSet set = Synthetic(m, 2);
  const SensitivityReport report = MeasuredAt8Bits(m, set);
  const LayerSensitivity& l = report.layers[0];
  // For y = x · W the response is exact at any energy: ‖x · ΔW‖² / ‖x · W‖² per unit of
  // ‖ΔW‖² / ‖W‖², with ΔW the error of one of W's own compressions (by its columns: MatMul's output
  // channels).
  const std::vector<float> w = LinearWeight(m);
  const model::ChannelLayout layout = m.analysis.layers[0].weight_layout;
  const model::ChannelMatrix rows = model::ToChannelMajor(w, layout);
  const std::vector<std::vector<float>> ys = LinearOutputs(set, w);
  auto response = [&](const model::ChannelMatrix& compressed) {
    const std::vector<float> q = model::FromChannelMajor(compressed, layout);
    double num = 0, den = 0;
    for (size_t k = 0; k < set.samples.size(); ++k) {
      absl::Span<const float> x = set.samples[k][0].floats();
      for (int r = 0; r < 16; ++r) {
        for (int c = 0; c < 64; ++c) {
          double dy = 0;
          for (int j = 0; j < 64; ++j) dy += static_cast<double>(x[r * 64 + j]) * (q[j * 64 + c] - w[j * 64 + c]);
          num += dy * dy;
          den += static_cast<double>(ys[k][r * 64 + c]) * ys[k][r * 64 + c];
        }
      }
    }
    return num / den / model::RelativeDistortion(w, q);
  };
  for (int bits : kQuantizationShapes) {
    INFO("bits " << bits);
    REQUIRE(l.quantization.count(bits) == 1);
    CHECK(l.quantization.at(bits) ==
          Approx(response(model::Compress(rows, bits, model::Sparsity::kDense, 0))).epsilon(0.02));
  }
  for (const PruningShape& shape : kPruningShapes) {
    const std::string name = PruningShapeOf(shape.pattern, shape.ratio);
    INFO(name);
    REQUIRE(l.pruning.count(name) == 1);
    CHECK(l.pruning.at(name) == Approx(response(model::Compress(rows, 32, shape.pattern, shape.ratio))).epsilon(0.02));
  }
  CHECK(l.pruning.size() == 3);
  // The prediction: each distortion times the sensitivity of its shape.
  CHECK(PredictedQuantizationError(&l, 8, 1e-4) == Approx(l.quantization.at(8) * 1e-4));
  CHECK(PredictedQuantizationError(&l, 5, 1e-2) == Approx(l.quantization.at(4) * 1e-2));
  CHECK(PredictedQuantizationError(&l, 3, 1e-2) == Approx(l.quantization.at(2) * 1e-2));
  CHECK(QuantizationShapeOf(8) == 8);
  CHECK(QuantizationShapeOf(1) == 2);
  CHECK(QuantizationShapeOf(16) == 0);
  CHECK(PredictedQuantizationError(&l, 16, 1e-6) == Approx(l.weight * 1e-6));
  CHECK(PredictedQuantizationError(nullptr, 4, 1e-2) == Approx(1e-2));
  // Unstructured at a ratio takes the probed ratio at or above it, the widest beyond them all.
  CHECK(PruningShapeOf(model::Sparsity::kUnstructured, 0.1) == "unstructured 50%");
  CHECK(PruningShapeOf(model::Sparsity::kUnstructured, 0.5) == "unstructured 50%");
  CHECK(PruningShapeOf(model::Sparsity::kUnstructured, 0.6) == "unstructured 90%");
  CHECK(PruningShapeOf(model::Sparsity::kUnstructured, 0.95) == "unstructured 90%");
  CHECK(PruningShapeOf(model::Sparsity::kTwoFour, 0.5) == "2:4");
  CHECK(PruningShapeOf(model::Sparsity::kOutputChannel, 0.5).empty());
  CHECK(PruningShapeOf(model::Sparsity::kDense, 0).empty());
  CHECK(PredictedPruningError(&l, model::Sparsity::kUnstructured, 0.3, 0.05) ==
        Approx(l.pruning.at("unstructured 50%") * 0.05));
  CHECK(PredictedPruningError(&l, model::Sparsity::kTwoFour, 0.5, 0.05) == Approx(l.pruning.at("2:4") * 0.05));
  // Without a channel measurement, output channels take the noise response.
  CHECK(PredictedPruningError(&l, model::Sparsity::kOutputChannel, 0.5, 0.05) == Approx(l.weight * 0.05));
  CHECK(PredictedPruningError(nullptr, model::Sparsity::kTwoFour, 0.5, 0.1) == Approx(0.1));
}

TEST_CASE("Removing a Conv's output channels is probed where the exporter removes them, biases on the way included",
          "[sensitivity]") {
  // a → ReLU → depthwise (with a bias) → 1x1 Conv: the exporter removes a's channels from the
  // depthwise Conv too, its bias with them, and from the last Conv's input. Channel 0 of a is dead
  // (zero weights, negative bias: 0 after the ReLU), yet the depthwise bias carries it on.
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    chain (float[1, 4, 8, 8] x) => (float[1, 3, 8, 8] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
      r = Relu (a)
      d = Conv <group = 8, pads = [1, 1, 1, 1]> (r, wd, bd)
      y = Conv (d, w2, b2)
    }
  )onnx");
  std::vector<float> w1(8 * 4 * 3 * 3), wd(8 * 9), w2(3 * 8);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = i < 36 ? 0.f : 0.3f * std::sin(0.61f * static_cast<float>(i));
  for (size_t i = 0; i < wd.size(); ++i) wd[i] = 0.2f + 0.1f * std::cos(0.3f * static_cast<float>(i));
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.5f * std::sin(1.3f * static_cast<float>(i) + 0.2f);
  namespace t = model::testing;
  t::AddInitializer(proto.mutable_graph(), t::FloatTensor("w1", {8, 4, 3, 3}, t::Encoding::kRaw, w1));
  t::AddInitializer(proto.mutable_graph(),
                    t::FloatTensor("b1", {8}, t::Encoding::kRaw, {-1.f, 0.1f, 0.f, 0.2f, 0.f, -0.1f, 0.f, 0.3f}));
  t::AddInitializer(proto.mutable_graph(), t::FloatTensor("wd", {8, 1, 3, 3}, t::Encoding::kRaw, wd));
  t::AddInitializer(proto.mutable_graph(),
                    t::FloatTensor("bd", {8}, t::Encoding::kRaw, {2.f, 0.f, 0.1f, 0.f, 0.f, 0.f, 0.f, 0.f}));
  t::AddInitializer(proto.mutable_graph(), t::FloatTensor("w2", {3, 8, 1, 1}, t::Encoding::kRaw, w2));
  t::AddInitializer(proto.mutable_graph(), t::FloatTensor("b2", {3}, t::Encoding::kRaw, {0.f, 0.f, 0.f}));
  const model::LoadedModel m = t::MustLoad(proto);
  const CalibrationSet set = Synthetic(m, 2);
  const SensitivityReport report = MeasuredAt8Bits(m, set);
  const LayerSensitivity& l = report.layers[0];
  REQUIRE(l.channel_removal.has_value());
  REQUIRE(l.channel_energy.size() == 8);
  // The dead channel carries the depthwise bias where the last Conv reads it.
  CHECK(l.channel_energy[0] > 0.1);
  absl::StatusOr<std::vector<model::ChannelMatrix>> weights = model::ReadLayerWeights(m);
  REQUIRE(weights.ok());
  for (double ratio : {0.125, 0.5}) {
    INFO("ratio " << ratio);
    const std::vector<int64_t> kept =
        model::KeptChannels((*weights)[0], model::PruneMask((*weights)[0], model::Sparsity::kOutputChannel, ratio));
    REQUIRE(kept.front() == 1);  // the dead channel goes first
    const double predicted =
        PredictedPruningError(&l, model::Sparsity::kOutputChannel, ratio, 0, RemovedEnergyShare(l, kept));
    std::vector<model::LayerPlan> plan(m.analysis.layers.size());
    plan[0].pattern = model::Sparsity::kOutputChannel;
    plan[0].prune_ratio = ratio;
    absl::StatusOr<VerifiedExport> exported =
        ExportAndVerify(m, m.proto.SerializeAsString(), plan, set, ExportCheckOptions{});
    REQUIRE(exported.ok());
    REQUIRE(exported->exported.report.layers[0].kept_out_channels == static_cast<int64_t>(kept.size()));
    const double measured = exported->verification.relative_error;
    CHECK(measured > 1e-3);
    // The larger of the two probed ratios' responses: at least what the export measures.
    CHECK(predicted >= 0.98 * measured);
    CHECK(predicted <= 20 * measured);
  }
}

TEST_CASE("Channels no reader takes in (a graph output's) cost their share of the layer's output energy, bias included",
          "[sensitivity]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    conv (float[1, 4, 8, 8] x) => (float[1, 6, 8, 8] y) {
      y = Conv <pads = [1, 1, 1, 1]> (x, w, b)
    }
  )onnx");
  std::vector<float> w(6 * 4 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.3f * std::sin(0.61f * static_cast<float>(i));
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("w", {6, 4, 3, 3}, model::testing::Encoding::kRaw, w));
  // Channel 2 carries a large bias: small weights, a large value.
  model::testing::AddInitializer(
      proto.mutable_graph(),
      model::testing::FloatTensor("b", {6}, model::testing::Encoding::kRaw, {0.f, 0.1f, 5.f, 0.f, -0.2f, 0.f}));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  const CalibrationSet set = Synthetic(m, 2);
  const SensitivityReport report = MeasuredAt8Bits(m, set);
  const LayerSensitivity& l = report.layers[0];
  // y is the output: removing a share of its energy is that relative error, whatever the signs.
  REQUIRE(l.channel_removal.has_value());
  CHECK(*l.channel_removal == Approx(1.0).epsilon(0.01));
  // Each channel's share of y's energy, from y as ONNX Runtime computes it.
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  std::vector<double> energy(6, 0.0);
  for (const auto& sample : set.samples) {
    absl::StatusOr<std::vector<Tensor>> y = (*session)->Run(sample);
    REQUIRE(y.ok());
    absl::Span<const float> v = (*y)[0].floats();
    for (size_t j = 0; j < v.size(); ++j) energy[j / 64] += static_cast<double>(v[j]) * v[j];
  }
  const double total = std::accumulate(energy.begin(), energy.end(), 0.0);
  REQUIRE(l.channel_energy.size() == 6);
  for (size_t c = 0; c < 6; ++c) CHECK(l.channel_energy[c] == Approx(energy[c] / total).epsilon(1e-4));
  CHECK(l.channel_energy[2] > 0.5);                                         // the bias dominates
  const std::optional<double> share = RemovedEnergyShare(l, {0, 1, 3, 5});  // channels 2 and 4 removed
  REQUIRE(share.has_value());
  CHECK(*share == Approx((energy[2] + energy[4]) / total).epsilon(1e-4));
  CHECK(PredictedPruningError(&l, model::Sparsity::kOutputChannel, 0.3, 0.01, share) ==
        Approx(*l.channel_removal * *share));
  // A channel the layer does not have says nothing.
  CHECK_FALSE(RemovedEnergyShare(l, {0, 7}).has_value());
  CHECK(*RemovedEnergyShare(l, {}) == Approx(1.0));
}

TEST_CASE("Activation quantizers: uint8 with a zero point, or int8 symmetric as TensorRT takes them", "[sensitivity]") {
  const model::ActivationQuantizer relu6 = model::ActivationQuantizerOf(model::ActivationScheme::kSymmetricInt8, 0, 6);
  CHECK(relu6.zero_point == 0);
  CHECK(relu6.scale == Approx(6.0 / 127));
  CHECK(model::FakeQuantize(6.0f, 8, relu6) == Approx(6.0));
  CHECK(model::FakeQuantize(-100.0f, 8, relu6) == Approx(-128 * 6.0 / 127));  // saturates at -128
  const model::ActivationQuantizer asym = model::ActivationQuantizerOf(model::ActivationScheme::kAsymmetricUint8, 0, 6);
  CHECK(asym.scale == Approx(6.0 / 255));
  CHECK(model::FakeQuantize(-1.0f, 8, asym) == 0);  // saturates at level 0
  // A one-signed range wastes half of int8's levels: the step is about twice the uint8 one.
  CHECK(relu6.scale / asym.scale == Approx(255.0 / 127));
  const model::ActivationQuantizer zeros = model::ActivationQuantizerOf(model::ActivationScheme::kSymmetricInt8, 0, 0);
  CHECK(zeros.scale == 1);
  CHECK(model::ActivationSchemeOf(model::FlavourForRuntime("tensorrt"), 8) == model::ActivationScheme::kSymmetricInt8);
  CHECK(model::ActivationSchemeOf(model::FlavourForRuntime("onnxruntime-cpu"), 8) ==
        model::ActivationScheme::kAsymmetricUint8);
  CHECK(model::ActivationSchemeOf(model::FlavourForRuntime("coreml"), 8) == model::ActivationScheme::kAsymmetricUint8);
  // The QNN HTP's 16-bit activations: uint16 with a zero point, 257 times finer than uint8.
  CHECK(model::ActivationSchemeOf(model::FlavourForRuntime("onnxruntime-qnn"), 16) ==
        model::ActivationScheme::kAsymmetricUint16);
  CHECK(model::ActivationSchemeOf(model::FlavourForRuntime("onnxruntime-qnn"), 8) ==
        model::ActivationScheme::kAsymmetricUint8);
  const model::ActivationQuantizer u16 =
      model::ActivationQuantizerOf(model::ActivationScheme::kAsymmetricUint16, -1, 3);
  CHECK(u16.scale == Approx(4.0 / 65535));
  CHECK(u16.zero_point == 16384);
  CHECK(model::FakeQuantize(3.0f, 16, u16) == Approx(3.0).margin(1e-6));
  CHECK(model::FakeQuantize(5.0f, 16, u16) == Approx(3.0).margin(1e-4));  // saturates at 65535
  CHECK(std::abs(model::FakeQuantize(0.123456f, 16, u16) - 0.123456f) <= u16.scale / 2 + 1e-7);
  // fp16 for every other scheme at 16 bits.
  CHECK(model::FakeQuantize(0.1f, 16, asym) == model::RoundToHalf(0.1f));
}

TEST_CASE("An fp16 layer is measured through fp16 inputs, as its fp32 twin", "[sensitivity]") {
  auto make = [](bool half) {
    onnx::ModelProto proto = model::testing::ParseModel(half ? R"onnx(
      <ir_version: 8, opset_import: ["" : 17]>
      half (float16[16, 64] x) => (float16[16, 32] y) {
        y = MatMul (x, w)
      }
    )onnx"
                                                             : R"onnx(
      <ir_version: 8, opset_import: ["" : 17]>
      single (float[16, 64] x) => (float[16, 32] y) {
        y = MatMul (x, w)
      }
    )onnx");
    std::vector<float> w(64 * 32);
    for (size_t i = 0; i < w.size(); ++i) w[i] = model::RoundToHalf(std::cos(0.7f * static_cast<float>(i)));
    model::testing::AddInitializer(
        proto.mutable_graph(), half ? model::testing::HalfTensor("w", {64, 32}, model::testing::Encoding::kRaw, w)
                                    : model::testing::FloatTensor("w", {64, 32}, model::testing::Encoding::kRaw, w));
    return model::testing::MustLoad(proto);
  };
  const model::LoadedModel half = make(true), single = make(false);
  SensitivityOptions options;
  options.noise_energy = 1e-3;
  absl::StatusOr<SensitivityReport> h = MeasureSensitivity(half, Synthetic(half, 4), options);
  absl::StatusOr<SensitivityReport> f = MeasureSensitivity(single, Synthetic(single, 4), options);
  REQUIRE(h.ok());
  REQUIRE(f.ok());
  const LayerSensitivity& l = h->layers[0];
  CHECK(l.measured);
  CHECK(l.weight == Approx(f->layers[0].weight).epsilon(0.1));
  CHECK(l.activation_error.at(16) == 0);  // an fp16 activation is fp16 already
  // No export quantizes an fp16 layer's activations: its 8-bit error is its input's alone, where
  // its fp32 twin's adds its output's, which an export quantizes with it.
  CHECK(l.activation_error.at(8) > 0);
  CHECK(l.activation_error.at(8) < 0.9 * f->layers[0].activation_error.at(8));
}

// The model `text` with its two 32x32 weights wa and wb, both cosine ramps.
model::LoadedModel WithWeightsAB(const char* text) {
  onnx::ModelProto proto = model::testing::ParseModel(text);
  std::vector<float> w(32 * 32);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.11f * static_cast<float>(i));
  for (const char* name : {"wa", "wb"}) {
    model::testing::AddInitializer(proto.mutable_graph(),
                                   model::testing::FloatTensor(name, {32, 32}, model::testing::Encoding::kRaw, w));
  }
  return model::testing::MustLoad(proto);
}

TEST_CASE("A layer whose output dominates the result is the more sensitive", "[sensitivity]") {
  // y = 100 · (x · A) + x · B: noise in A shows 100x stronger than in B.
  const model::LoadedModel m = WithWeightsAB(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    two (float[8, 32] x) => (float[8, 32] y) {
      a = MatMul (x, wa)
      b = MatMul (x, wb)
      k = Constant <value = float[1] k_init {100.0}> ()
      big = Mul (a, k)
      y = Add (big, b)
    }
  )onnx");
  SensitivityOptions options;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 2), options);
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 2);
  CHECK(report->layers[0].weight > 100 * report->layers[1].weight);
}

// Two outputs of the same shape, one 100x the other: y_big = 100·(x·A), y_small = x·B.
model::LoadedModel TwoOutputModel() {
  return WithWeightsAB(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    two (float[8, 32] x) => (float[8, 32] big, float[8, 32] small) {
      a = MatMul (x, wa)
      k = Constant <value = float[1] k_init {100.0}> ()
      big = Mul (a, k)
      small = MatMul (x, wb)
    }
  )onnx");
}

TEST_CASE("Each output's error counts relative to its own size, by its weight", "[sensitivity]") {
  const model::LoadedModel m = TwoOutputModel();
  const CalibrationSet set = Synthetic(m, 2);
  SensitivityOptions options;
  options.threads = 1;

  SECTION("by default both outputs weigh the same, whatever their magnitudes") {
    // Pooled over both outputs, noise in B would show 10^4 times weaker than noise in A.
    absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
    REQUIRE(report.ok());
    REQUIRE(report->layers.size() == 2);
    CHECK(report->layers[0].weight == Approx(0.5).epsilon(0.3));
    CHECK(report->layers[1].weight == Approx(0.5).epsilon(0.3));
    CHECK(report->weighted_over == "equal over 2 outputs");
  }
  SECTION("named outputs alone count; a layer reaching only the others is compressible, not idle") {
    options.output_weights = {{"small", 1}};
    absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
    REQUIRE(report.ok());
    CHECK(report->layers[1].weight == Approx(1.0).epsilon(0.3));
    CHECK(report->layers[0].weight < 0.01 * report->layers[1].weight);
    CHECK(report->layers[0].exercised);
    CHECK(report->weighted_over == "small 1");
    bool warned = false;
    for (const std::string& w : report->warnings) warned = warned || w.find("weigh nothing") != std::string::npos;
    CHECK(warned);
  }
  SECTION("an output the model does not have is refused") {
    options.output_weights = {{"mask", 1}};
    absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, options);
    CHECK(report.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(report.status().message()), Contains("no output 'mask'") && Contains("'big', 'small'"));
  }
}

TEST_CASE("The same seed measures the same sensitivities", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  SensitivityOptions options;
  const CalibrationSet set = Synthetic(m, 2);
  absl::StatusOr<SensitivityReport> a = MeasureSensitivity(m, set, options);
  absl::StatusOr<SensitivityReport> b = MeasureSensitivity(m, set, options);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->layers[0].weight == b->layers[0].weight);
  CHECK(a->layers[0].activation_error == b->layers[0].activation_error);
}

TEST_CASE("A model ONNX Runtime cannot run gets unmeasured sensitivities and a warning", "[sensitivity]") {
  // An op of a domain ONNX Runtime has no kernels for, between the input and the layer.
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17, "com.example" : 1]>
    custom (float[4, 8] x) => (float[4, 8] y) {
      z = com.example.Mystery (x)
      y = MatMul (z, w)
    }
  )onnx");
  std::vector<float> w(64, 0.5f);
  model::testing::AddInitializer(proto.mutable_graph(),
                                 model::testing::FloatTensor("w", {8, 8}, model::testing::Encoding::kRaw, w));
  model::AnalyzeOptions analyze;
  const model::LoadedModel m = model::testing::MustLoad(proto, analyze);
  CalibrationSet set;
  set.synthetic = true;
  const std::vector<float> x(32, 1.f);
  set.samples.push_back({Tensor::Float("x", {4, 8}, x)});
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, set, SensitivityOptions());
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 1);
  CHECK_FALSE(report->layers[0].measured);
  CHECK(report->layers[0].weight == 1);
  REQUIRE_FALSE(report->warnings.empty());
  CHECK_THAT(report->warnings.back(), Contains("ONNX Runtime"));
}

TEST_CASE("Synthetic samples enough for the smallest output's error to be measured on 32 values", "[sensitivity]") {
  // Two logits per sample (a 2-class head) beside a 64-value feature output.
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    head (float[1, 64] x) => (float[1, 64] features, float[1, 2] logits) {
      features = MatMul (x, w)
      logits = MatMul (features, h)
    }
  )onnx");
  model::testing::AddInitializer(
      proto.mutable_graph(),
      model::testing::FloatTensor("w", {64, 64}, model::testing::Encoding::kRaw, std::vector<float>(64 * 64, 0.01f)));
  model::testing::AddInitializer(
      proto.mutable_graph(),
      model::testing::FloatTensor("h", {64, 2}, model::testing::Encoding::kRaw, std::vector<float>(128, 0.02f)));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  // 2 values per sample: 16 samples would give 32, held to the most (8).
  CHECK(SyntheticSampleCount(m.analysis, **session, 2, 1).value() == kMostSyntheticSamples);
  CHECK(SyntheticSampleCount(m.analysis, **session, 12, 1).value() == 12);  // asked for more: kept
  // The linear model's 16x64 output holds 1024 values per sample: the samples asked for.
  const model::LoadedModel linear = LinearModel();
  absl::StatusOr<std::unique_ptr<Session>> big = Session::Create(linear.proto.SerializeAsString());
  REQUIRE(big.ok());
  CHECK(SyntheticSampleCount(linear.analysis, **big, 2, 1).value() == 2);
  CHECK(SyntheticSampleCount(linear.analysis, **big, 1, 1).value() == 1);
  // Values for no input of the model: refused as SyntheticCalibration refuses them.
  CHECK(SyntheticSampleCount(m.analysis, **session, 2, 1, {{"stride", 2}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A model that does not run on its synthetic inputs is named before anything is measured", "[sensitivity]") {
  // An int64 step input: synthetic calibration gives it 0, and Range refuses a step of 0 (as a
  // sample-rate input outside the model's set refuses it).
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    stepped (float[4, 8] x, int64 step) => (float[4, 8] y, int64[N] r) {
      y = MatMul (x, w)
      start = Constant <value = int64 {0}> ()
      limit = Constant <value = int64 {8}> ()
      r = Range (start, limit, step)
    }
  )onnx");
  model::testing::AddInitializer(
      proto.mutable_graph(),
      model::testing::FloatTensor("w", {8, 8}, model::testing::Encoding::kRaw, std::vector<float>(64, 0.5f)));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  CalibrationSet set = Synthetic(m, 2);
  absl::Status runs = CheckModelRunsOn(**session, set);
  CHECK(runs.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(runs.message()),
             Contains("before any compression") && Contains("zeros for 'step' (int64)") && Contains("--calibration"));
  // Given a step it runs on, it passes.
  for (std::vector<Tensor>& sample : set.samples) {
    for (Tensor& t : sample) {
      if (t.name == "step") t.bytes = std::string("\x02\0\0\0\0\0\0\0", 8);
    }
  }
  CHECK(CheckModelRunsOn(**session, set).ok());
  set.synthetic = false;
  for (Tensor& t : set.samples[1]) {
    if (t.name == "step") t.bytes.assign(8, '\0');
  }
  CHECK_THAT(std::string(CheckModelRunsOn(**session, set).message()), Contains("uploaded calibration sample 2 of 2"));

  SECTION("an input value gives the step a value it runs on, and a bad one is refused") {
    CHECK_THAT(std::string(runs.message()), Contains("--input-value NAME=V"));
    absl::StatusOr<CalibrationSet> given = SyntheticCalibration(m.analysis, (*session)->inputs(), 2, 1, {{"step", 2}});
    REQUIRE(given.ok());
    CHECK(given->synthetic);
    CHECK(CheckModelRunsOn(**session, *given).ok());
    for (const std::vector<Tensor>& sample : given->samples) {
      CHECK(sample[1].name == "step");
      CHECK(sample[1].bytes == std::string("\x02\0\0\0\0\0\0\0", 8));
    }
    // The float input is still drawn; the hash tells the two sets apart.
    CHECK(given->samples[0][0].floats() == Synthetic(m, 2).samples[0][0].floats());
    CHECK(given->hash != Synthetic(m, 2).hash);
    // A value the model rejects is named with the value it got.
    absl::StatusOr<CalibrationSet> zero = SyntheticCalibration(m.analysis, (*session)->inputs(), 1, 1, {{"step", 0}});
    REQUIRE(zero.ok());
    CHECK_THAT(std::string(CheckModelRunsOn(**session, *zero).message()), Contains("'step' = 0"));
    for (const auto& [values, why] : std::vector<std::pair<std::map<std::string, double>, std::string>>{
             {{{"stride", 2}}, "no input of the model; its inputs are 'x', 'step'"},
             {{{"step", 2.5}}, "whole numbers"},
             {{{"step", 1e30}}, "outside its type's range"},
             {{{"step", std::nan("")}}, "not a finite number"}}) {
      absl::StatusOr<CalibrationSet> bad = SyntheticCalibration(m.analysis, (*session)->inputs(), 1, 1, values);
      CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
      CHECK_THAT(std::string(bad.status().message()), Contains(why));
    }
  }
}

TEST_CASE("Measuring stops when cancelled", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  std::atomic<bool> cancelled{true};
  SensitivityOptions options;
  options.cancelled = &cancelled;
  CHECK(MeasureSensitivity(m, Synthetic(m, 1), options).status().code() == absl::StatusCode::kCancelled);
}

// The PP-OCR mobile classifier at 1x3x48x192: 54 layers.
model::LoadedModel Classifier() {
  const std::string bytes = model::testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  INFO("ch_ppocr_mobile_v2.0_cls_infer.onnx from .cache/models (deploy/install-deps.sh)");
  REQUIRE_FALSE(bytes.empty());
  model::AnalyzeOptions analyze;
  analyze.input_shapes["x"] = {1, 3, 48, 192};
  return model::testing::MustLoad(bytes, analyze);
}

TEST_CASE("PP-OCR cls: every layer measured, the same whatever the thread count", "[sensitivity][pp-ocr]") {
  const model::LoadedModel m = Classifier();
  const CalibrationSet set = Synthetic(m, 1);
  SensitivityOptions options;
  std::vector<double> progress;
  options.threads = 1;
  options.on_progress = [&progress](double f) { progress.push_back(f); };
  absl::StatusOr<SensitivityReport> one = MeasureSensitivity(m, set, options);
  options.threads = 2;
  options.on_progress = nullptr;
  absl::StatusOr<SensitivityReport> two = MeasureSensitivity(m, set, options);
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  REQUIRE(one->layers.size() == 54);
  for (const std::string& w : one->warnings) UNSCOPED_INFO(w);
  CHECK(one->warnings.empty());
  int eight_worse = 0;
  for (size_t i = 0; i < one->layers.size(); ++i) {
    INFO(one->layers[i].layer);
    CHECK(one->layers[i].measured);
    CHECK(one->layers[i].weight > 0);
    CHECK(one->layers[i].weight == two->layers[i].weight);
    CHECK(one->layers[i].activation_error == two->layers[i].activation_error);
    REQUIRE(one->layers[i].activation_error.count(8) == 1);
    eight_worse += one->layers[i].activation_error.at(8) > one->layers[i].activation_error.at(16);
  }
  // Data-dependent for a few tiny layers (an SE block's 2-channel input can be all zeros).
  CHECK(eight_worse >= 50);
  // One call per layer's weight runs and per value an export may quantize (its input or output).
  REQUIRE(progress.size() > 54);
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == 1.0);
}

TEST_CASE("PP-OCR cls: cancelled midway, the measurement stops", "[sensitivity][pp-ocr]") {
  const model::LoadedModel m = Classifier();
  std::atomic<bool> cancelled{false};
  SensitivityOptions options;
  options.cancelled = &cancelled;
  int calls = 0;
  options.on_progress = [&](double) {
    ++calls;
    cancelled = true;
  };
  CHECK(MeasureSensitivity(m, Synthetic(m, 1), options).status().code() == absl::StatusCode::kCancelled);
  CHECK(calls <= 2);  // at most the layer each thread was measuring finishes
}

TEST_CASE("A layer in an If branch gets its weight sensitivity, not its activation's", "[sensitivity]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    branch (float[4, 16] x) => (float[4, 16] y) {
      s = ReduceSum <keepdims = 0> (x)
      low = Constant <value = float {-1000000.0}> ()
      cond = Greater (s, low)
      y = If (cond) <
        then_branch = then_g () => (float[4, 16] t) {
          t = MatMul (x, w_then)
        },
        else_branch = else_g () => (float[4, 16] e) {
          e = Identity (x)
        }
      >
    }
  )onnx");
  std::vector<float> w(16 * 16);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.3f * static_cast<float>(i)) + 0.2f;
  model::testing::AddInitializer(model::testing::Subgraph(&proto, 3, "then_branch"),
                                 model::testing::FloatTensor("w_then", {16, 16}, model::testing::Encoding::kRaw, w));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 4), SensitivityOptions());
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 1);
  CHECK(report->layers[0].measured);
  CHECK(report->layers[0].weight == Approx(1.0).epsilon(0.5));
  CHECK(report->layers[0].activation_error.empty());
  REQUIRE(report->warnings.size() == 1);
  CHECK_THAT(report->warnings[0], Contains("activation error not measured") && Contains("subgraph"));
}

TEST_CASE("Options out of range are refused", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  const CalibrationSet set = Synthetic(m, 1);
  SensitivityOptions options;
  options.noise_energy = 0;
  CHECK(MeasureSensitivity(m, set, options).status().code() == absl::StatusCode::kInvalidArgument);
  options = SensitivityOptions();
  options.activation_bits = {4};
  CHECK(MeasureSensitivity(m, set, options).status().code() == absl::StatusCode::kInvalidArgument);
  options = SensitivityOptions();
  options.threads = 0;
  CHECK(MeasureSensitivity(m, set, options).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(MeasureSensitivity(m, CalibrationSet(), SensitivityOptions()).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Synthetic calibration is deterministic per seed", "[calibration]") {
  const model::LoadedModel m = LinearModel();
  const CalibrationSet a = Synthetic(m, 2, 7), b = Synthetic(m, 2, 7), c = Synthetic(m, 2, 8);
  CHECK(a.synthetic);
  CHECK(a.hash == b.hash);
  CHECK(a.hash != c.hash);
  REQUIRE(a.samples.size() == 2);
  CHECK(a.samples[0][0].shape == std::vector<int64_t>{16, 64});
  CHECK(a.samples[0][0].bytes != a.samples[1][0].bytes);
  // N(0, 1): mean near 0, variance near 1 over the 2048 values.
  double sum = 0, squares = 0;
  for (const auto& sample : a.samples) {
    for (float v : sample[0].floats()) sum += v, squares += static_cast<double>(v) * v;
  }
  CHECK(std::fabs(sum / 2048) < 0.1);
  CHECK(squares / 2048 == Approx(1.0).epsilon(0.1));
}

TEST_CASE("Synthetic draws and their hash are the same on every platform", "[calibration]") {
  // Pinned: a change here changes every cached sensitivity's key, so it must be deliberate.
  const std::vector<float> draws = StandardNormal(1, 4);
  REQUIRE(draws.size() == 4);
  CHECK(draws == StandardNormal(1, 4));
  CHECK(draws != StandardNormal(2, 4));
  CHECK(DeriveSeed(1, 0) != DeriveSeed(1, 1));
  CHECK(DeriveSeed(1, 0) == DeriveSeed(1, 0));
  const model::LoadedModel m = LinearModel();
  CHECK(Synthetic(m, 2, 7).hash == kPinnedHash);
}

TEST_CASE("Token ids are drawn over their embedding table's rows, other integer inputs stay 0", "[calibration]") {
  // ids index two tables (the smaller bounds them); n is read by a Cast, so it is no index.
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    embed (int64[2, 8] ids, int64[2, 8] n) => (float[2, 8, 16] y) {
      a = Gather (big, ids)
      b = Gather (small, ids)
      e = Add (a, b)
      h = MatMul (e, w)
      c = Cast <to = 1> (n)
      c3 = Unsqueeze (c, axes)
      y = Add (h, c3)
    }
  )onnx");
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("big", {1000, 16}));
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("small", {300, 16}));
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("w", {16, 16}));
  onnx::TensorProto axes;
  axes.set_name("axes");
  axes.set_data_type(onnx::TensorProto::INT64);
  axes.add_dims(1);
  axes.add_int64_data(2);
  model::testing::AddInitializer(proto.mutable_graph(), axes);
  const model::LoadedModel m = model::testing::MustLoad(proto);
  CHECK(m.analysis.index_input_bounds == std::map<std::string, int64_t>{{"ids", 300}});

  const CalibrationSet set = Synthetic(m, 2, 7);
  std::set<int64_t> seen;
  for (const std::vector<Tensor>& sample : set.samples) {
    for (const Tensor& t : sample) {
      REQUIRE(t.bytes.size() == 16 * sizeof(int64_t));
      std::vector<int64_t> values(16);
      std::memcpy(values.data(), t.bytes.data(), t.bytes.size());
      for (int64_t v : values) {
        if (t.name == "n") {
          CHECK(v == 0);
        } else {
          CHECK(v >= 0);
          CHECK(v < 300);
          seen.insert(v);
        }
      }
    }
  }
  CHECK(seen.size() > 20);  // 32 draws from 300 rows: text, not one token repeated
  CHECK(Synthetic(m, 2, 7).hash == set.hash);
  CHECK(Synthetic(m, 2, 8).hash != set.hash);
  // The model runs on them.
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  CHECK((*session)->Run(set.samples[0]).ok());
}

TEST_CASE("An integer input a subgraph also reads is no token id", "[calibration]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    branchy (int64[4] ids, bool c) => (float[4, 16] y, int64[4] z) {
      e = Gather (table, ids)
      y = MatMul (e, w)
      z = If (c) <then_branch = then_graph () => (int64[4] a) { a = Identity (ids) },
                  else_branch = else_graph () => (int64[4] b) { b = Identity (ids) }>
    }
  )onnx");
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("table", {50, 16}));
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("w", {16, 16}));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  CHECK(m.analysis.index_input_bounds.empty());
}

TEST_CASE("Uploaded calibration tensors are checked against the model", "[calibration]") {
  const model::LoadedModel m = LinearModel();
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  const auto& inputs = (*session)->inputs();
  std::vector<float> values(16 * 64, 0.5f);
  const std::string good =
      model::testing::FloatTensor("x", {16, 64}, model::testing::Encoding::kRaw, values).SerializeAsString();

  absl::StatusOr<CalibrationSet> ok = CalibrationFromTensorProtos(m.analysis, inputs, {{good}});
  REQUIRE(ok.ok());
  CHECK_FALSE(ok->synthetic);
  CHECK(ok->samples[0][0].floats()[3] == 0.5f);

  SECTION("bytes that are not a TensorProto") {
    const std::vector<std::vector<std::string>> files = {{std::string("\xff\xff\xff garbage", 12)}};
    auto bad = CalibrationFromTensorProtos(m.analysis, inputs, files);
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("TensorProto"));
  }
  SECTION("a wrong shape") {
    std::vector<float> short_values(8 * 64, 0.5f);
    auto bad = CalibrationFromTensorProtos(
        m.analysis, inputs,
        {{model::testing::FloatTensor("x", {8, 64}, model::testing::Encoding::kRaw, short_values)
              .SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("[8,64]") && Contains("[16,64]"));
  }
  SECTION("an unknown input name") {
    auto bad = CalibrationFromTensorProtos(
        m.analysis, inputs,
        {{model::testing::FloatTensor("nope", {16, 64}, model::testing::Encoding::kRaw, values).SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("nope"));
  }
  SECTION("a wrong element type") {
    onnx::TensorProto ints;
    ints.set_name("x");
    ints.set_data_type(onnx::TensorProto::INT64);
    ints.add_dims(16);
    ints.add_dims(64);
    for (int i = 0; i < 16 * 64; ++i) ints.add_int64_data(i);
    auto bad = CalibrationFromTensorProtos(m.analysis, inputs, {{ints.SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("int64") && Contains("float32"));
  }
  SECTION("data that does not fill the shape") {
    onnx::TensorProto proto = model::testing::FloatTensor("x", {16, 64}, model::testing::Encoding::kRaw, values);
    proto.mutable_raw_data()->resize(100);
    auto bad = CalibrationFromTensorProtos(m.analysis, inputs, {{proto.SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("sample 0"));
  }
  SECTION("the same input twice, and a missing one") {
    std::vector<TensorInfo> two = inputs;
    two.push_back({"mask", ElementType::kFloat32, {16, 64}, {}});
    auto bad = CalibrationFromTensorProtos(m.analysis, two, {{good, good}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("twice"));
    bad = CalibrationFromTensorProtos(m.analysis, two, {{good}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("2 inputs"));
  }
  SECTION("integer inputs in typed fields") {
    model::Analysis analysis;
    analysis.input_shapes["ids"] = {2, 3};
    const std::vector<TensorInfo> ids = {{"ids", ElementType::kInt64, {2, 3}, {}}};
    onnx::TensorProto proto;
    proto.set_data_type(onnx::TensorProto::INT64);
    proto.add_dims(2);
    proto.add_dims(3);
    for (int64_t i = 0; i < 6; ++i) proto.add_int64_data(100 + i);
    auto set = CalibrationFromTensorProtos(analysis, ids, {{proto.SerializeAsString()}});
    REQUIRE(set.ok());
    const Tensor& t = set->samples[0][0];
    CHECK(t.type == ElementType::kInt64);
    int64_t last;
    std::memcpy(&last, t.bytes.data() + 5 * sizeof(int64_t), sizeof(last));
    CHECK(last == 105);
  }
  SECTION("no samples") {
    CHECK(CalibrationFromTensorProtos(m.analysis, inputs, {}).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace squeeze::runtime
