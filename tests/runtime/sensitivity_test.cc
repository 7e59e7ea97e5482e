#include "runtime/sensitivity.h"

#include <onnx/onnx_pb.h>

#include <atomic>

#include <catch2/catch.hpp>

#include "runtime/calibration.h"
#include "runtime/session.h"
#include "tests/model/test_models.h"

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;


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
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("w", {64, 64}, model::testing::Encoding::kRaw, w));
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

TEST_CASE("A layer whose output dominates the result is the more sensitive", "[sensitivity]") {
  // y = 100 · (x · A) + x · B: noise in A shows 100x stronger than in B.
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    two (float[8, 32] x) => (float[8, 32] y) {
      a = MatMul (x, wa)
      b = MatMul (x, wb)
      k = Constant <value = float[1] k_init {100.0}> ()
      big = Mul (a, k)
      y = Add (big, b)
    }
  )onnx");
  std::vector<float> w(32 * 32);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.11f * static_cast<float>(i));
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("wa", {32, 32}, model::testing::Encoding::kRaw, w));
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("wb", {32, 32}, model::testing::Encoding::kRaw, w));
  const model::LoadedModel m = model::testing::MustLoad(proto);
  SensitivityOptions options;
  absl::StatusOr<SensitivityReport> report = MeasureSensitivity(m, Synthetic(m, 2), options);
  REQUIRE(report.ok());
  REQUIRE(report->layers.size() == 2);
  CHECK(report->layers[0].weight > 100 * report->layers[1].weight);
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
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("w", {8, 8}, model::testing::Encoding::kRaw, w));
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

TEST_CASE("Measuring stops when cancelled", "[sensitivity]") {
  const model::LoadedModel m = LinearModel();
  std::atomic<bool> cancelled{true};
  SensitivityOptions options;
  options.cancelled = &cancelled;
  CHECK(MeasureSensitivity(m, Synthetic(m, 1), options).status().code() == absl::StatusCode::kCancelled);
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
}

TEST_CASE("Uploaded calibration tensors are checked against the model", "[calibration]") {
  const model::LoadedModel m = LinearModel();
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.proto.SerializeAsString());
  REQUIRE(session.ok());
  const auto& inputs = (*session)->inputs();
  std::vector<float> values(16 * 64, 0.5f);
  const std::string good = model::testing::FloatTensor("x", {16, 64}, model::testing::Encoding::kRaw, values).SerializeAsString();

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
        m.analysis, inputs, {{model::testing::FloatTensor("x", {8, 64}, model::testing::Encoding::kRaw, short_values).SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("[8,64]") && Contains("[16,64]"));
  }
  SECTION("an unknown input name") {
    auto bad = CalibrationFromTensorProtos(
        m.analysis, inputs, {{model::testing::FloatTensor("nope", {16, 64}, model::testing::Encoding::kRaw, values).SerializeAsString()}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()), Contains("nope"));
  }
  SECTION("no samples") {
    CHECK(CalibrationFromTensorProtos(m.analysis, inputs, {}).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace squeeze::runtime
