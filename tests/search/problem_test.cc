#include "search/problem/problem.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "model/quantized_region.h"
#include "model/weight_math.h"
#include "runtime/shape_probe.h"
#include "search/problem/plan.h"
#include "tests/device_profiles/test_device.h"
#include "tests/model/export_models.h"
#include "tests/model/test_models.h"

namespace squeeze::search {
namespace {

namespace dp = device_profiles;
using Catch::Matchers::Contains;

// One 1x1 Conv, 3 output channels of 4 weights, on a 1x4x8x8 input.
model::LoadedModel SmallModel() {
  return model::testing::MustLoad(model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    small (float[1, 4, 8, 8] x) => (float[1, 3, 8, 8] y) {
      w = Constant <value = float[3, 4, 1, 1] w_init {1.0, -2.0, 3.0, 0.5, 0.25, 4.0, -1.0, 2.0, 3.0, 1.0, 0.5, -0.75}> ()
      b = Constant <value = float[3] b_init {0.1, 0.2, 0.3}> ()
      c = Conv (x, w, b)
      y = Relu (c)
    }
  )onnx"));
}

runtime::SensitivityReport Report(double s, double act8) {
  runtime::SensitivityReport r;
  runtime::LayerSensitivity l;
  l.layer = "c";
  l.weight = s;
  l.measured = true;
  l.activation_error = {{8, act8}, {16, act8 / 1000}};
  r.layers.push_back(l);
  r.samples = 2;
  return r;
}

const OptionDetail* Find(const Problem& p, size_t layer, const std::string& label) {
  for (size_t k = 0; k < p.details[layer].size(); ++k) {
    if (p.table.layers[layer].options[k].label == label) return &p.details[layer][k];
  }
  return nullptr;
}

const LayerOption* FindOption(const Problem& p, size_t layer, const std::string& label) {
  for (const LayerOption& o : p.table.layers[layer].options) {
    if (o.label == label) return &o;
  }
  return nullptr;
}

// Conv -> BatchNormalization -> `activation` -> Mul(r, r). On fp32 weights the BatchNormalization
// and the activation fold into the Conv; the Mul of two computed tensors does not.
model::LoadedModel ConvBnActivationMul(const std::string& activation = "Relu") {
  std::string text = R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    small (float[1, 4, 8, 8] x) => (float[1, 3, 8, 8] y) {
      w = Constant <value = float[3, 4, 1, 1] w_init {1.0, -2.0, 3.0, 0.5, 0.25, 4.0, -1.0, 2.0, 3.0, 1.0, 0.5, -0.75}> ()
      scale = Constant <value = float[3] scale_init {1.0, 2.0, 3.0}> ()
      bias = Constant <value = float[3] bias_init {0.0, 0.1, 0.2}> ()
      mean = Constant <value = float[3] mean_init {0.0, 0.0, 0.0}> ()
      var = Constant <value = float[3] var_init {1.0, 1.0, 1.0}> ()
      c = Conv (x, w)
      n = BatchNormalization (c, scale, bias, mean, var)
      r = ACTIVATION (n)
      y = Mul (r, r)
    }
  )onnx";
  text.replace(text.find("ACTIVATION"), 10, activation);
  return model::testing::MustLoad(model::testing::ParseModel(text.c_str()));
}

// The inputs of a problem of `model` on `device` with its cost model; the rest as defaults.
ProblemInputs InputsFor(const model::LoadedModel& model, const dp::Device& device, const dp::CostModel& cost) {
  ProblemInputs in;
  in.model = &model;
  in.device = &device;
  in.cost_model = &cost;
  return in;
}

TEST_CASE("Ops ONNX Runtime folds into a layer cost nothing, the others move their bytes", "[problem]") {
  // The BatchNormalization and Relu fold into the Conv; the Mul of two computed tensors does not.
  const model::LoadedModel model = ConvBnActivationMul();
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  double mul_seconds = -1;
  for (const model::NodeActivations& node : model.analysis.nodes) {
    if (node.op_type == "Mul") mul_seconds = (node.input_bytes + node.output_bytes) / 10e9 + 10e-6;
  }
  REQUIRE(mul_seconds > 0);
  CHECK(problem->table.fixed.latency == Approx(mul_seconds));
}

TEST_CASE("A measured latency of the model corrects what single ops cannot see", "[problem]") {
  const model::LoadedModel model = ConvBnActivationMul();
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.model_sha256 = std::string(64, 'a');
  absl::StatusOr<Problem> plain = BuildProblem(in);
  REQUIRE(plain.ok());
  CHECK(plain->latency_calibration.empty());
  const double fp32 = FindOption(*plain, 0, "fp32")->latency;
  const double int8 = FindOption(*plain, 0, "w8a8")->latency;

  dp::ModelLatency measured;
  measured.key = "small";
  measured.model_sha256 = in.model_sha256;
  const double other = plain->table.fixed.latency;
  REQUIRE(other > 0);
  // A measurement of the uniform w8a8 export, and that plan's whole prediction.
  dp::ModelLatency w8a8 = measured;
  w8a8.key = "small uniform w8a8";
  w8a8.variant = dp::UniformVariantLabel(8, 8);
  const Choice uniform = {static_cast<uint16_t>(FindOption(*plain, 0, "w8a8") - &plain->table.layers[0].options[0])};
  absl::StatusOr<ObjectiveValues> whole = Evaluate(plain->table, uniform);
  REQUIRE(whole.ok());
  SECTION("slower than predicted: the float layers and the other ops are scaled up alike") {
    measured.latency_median_us = 1.5 * (fp32 + other) * 1e6;
    in.model_latencies = {measured};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(p->table.fixed.latency == Approx(1.5 * other));
    CHECK(FindOption(*p, 0, "fp32")->latency == Approx(1.5 * fp32));
    CHECK(FindOption(*p, 0, "w8a8")->latency == Approx(int8));
    CHECK_THAT(p->latency_calibration, Catch::Matchers::Contains("scaled by 1.500"));
  }
  SECTION("measured uniform exports calibrate their precision class") {
    measured.latency_median_us = (fp32 + other) * 1e6;
    // The uniform plan also converts its input (the graph's) and its output (read by the float
    // Mul): those keep their prediction, the layer takes the rest.
    const double conversions = whole->latency - other - int8;
    CHECK(conversions > 0);
    w8a8.latency_median_us = (other + conversions + 2 * int8) * 1e6;
    in.model_latencies = {measured, w8a8};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(FindOption(*p, 0, "w8a8")->latency == Approx(2 * int8));
    CHECK(FindOption(*p, 0, "w4a8")->latency == Approx(2 * FindOption(*plain, 0, "w4a8")->latency));
    CHECK(FindOption(*p, 0, "fp32")->latency == Approx(fp32));
    CHECK_THAT(p->latency_calibration, Catch::Matchers::Contains("uniform w8a8 measured"));
  }
  SECTION("a uniform export faster than its other ops predict shrinks the other ops, then calibrates again") {
    measured.latency_median_us = (fp32 + other) * 1e6;
    // Measured at half of what the other ops and conversions alone predict: no scale of the layer fits.
    w8a8.latency_median_us = 0.5 * (whole->latency - int8) * 1e6;
    in.model_latencies = {measured, w8a8};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    const double shrink = w8a8.latency_median_us * 1e-6 / whole->latency;
    CHECK(p->table.fixed.latency == Approx(shrink * other));
    // The model as it is still comes out as measured: its float layer took what the other ops gave up.
    const Choice fp32_plan = {static_cast<uint16_t>(FindOption(*p, 0, "fp32") - &p->table.layers[0].options[0])};
    CHECK(Evaluate(p->table, fp32_plan)->latency == Approx(fp32 + other));
    CHECK_THAT(p->latency_calibration, Catch::Matchers::Contains("other ops scaled by") &&
                                           Catch::Matchers::Contains("the model as it is measured"));
  }
  SECTION("faster than predicted: the float options absorb it, the integer ones keep their samples") {
    measured.latency_median_us = (other + fp32 / 2) * 1e6;
    in.model_latencies = {measured};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(p->table.fixed.latency == Approx(other));
    CHECK(FindOption(*p, 0, "fp32")->latency == Approx(fp32 / 2));
    CHECK(FindOption(*p, 0, "w8a8")->latency == Approx(int8));
    CHECK_THAT(p->latency_calibration, Catch::Matchers::Contains("float options are scaled by 0.500"));
  }
  SECTION("faster than even the other ops: everything scaled to the measurement") {
    measured.latency_median_us = (fp32 + other) / 4 * 1e6;
    REQUIRE(measured.latency_median_us * 1e-6 < other);
    in.model_latencies = {measured};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(FindOption(*p, 0, "fp32")->latency + p->table.fixed.latency == Approx((fp32 + other) / 4));
    CHECK(FindOption(*p, 0, "w8a8")->latency == Approx(int8 / 4));
  }
  SECTION("another model's or a variant's measurement does not apply") {
    measured.latency_median_us = 1e6;
    dp::ModelLatency variant = measured;
    variant.variant = "w8a8";
    measured.model_sha256 = std::string(64, 'b');
    in.model_latencies = {measured, variant};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(p->latency_calibration.empty());
    CHECK(p->table.fixed.latency == plain->table.fixed.latency);
  }
}

TEST_CASE("Integer layers pay for the followers ONNX Runtime no longer fuses into them", "[problem]") {
  // ONNX Runtime folds BatchNormalization into constant weights only, so the exporter folds it
  // into integer weights itself; HardSigmoid fuses into a float Conv whatever its weights, but
  // not into a QLinearConv.
  const model::LoadedModel model = ConvBnActivationMul("HardSigmoid");
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  const dp::LayerShape shape{dp::OpKind::kConv, 3 * 4 * 64, 12, 3, 256, 192};
  const double follower = cost->get()->PredictOp(dp::OpKind::kElementwise, 192, 192 * 8).seconds;
  const double quantize = cost->get()->PredictOp(dp::OpKind::kQuantizeLinear, 256, 256 * 5).seconds;
  const double dequantize = cost->get()->PredictOp(dp::OpKind::kDequantizeLinear, 192, 192 * 5).seconds;
  REQUIRE(follower > 0);
  auto layer_latency = [&](int w, int a) {
    return cost->get()->Predict(shape, dp::CompressionOption{w, a, dp::Sparsity::kDense, 0}).seconds;
  };
  CHECK(FindOption(*problem, 0, "fp32")->latency == Approx(layer_latency(32, 32)));
  // Weight-only: the BatchNormalization is folded, the HardSigmoid still fuses.
  CHECK(FindOption(*problem, 0, "w8a32")->latency == Approx(layer_latency(8, 32)));
  // uint8 activations: the HardSigmoid runs on its own; the Q in and the DQ out are the
  // boundaries' (the graph input and the HardSigmoid are float), within the option's bound.
  const LayerOption* int8 = FindOption(*problem, 0, "w8a8");
  CHECK(int8->latency == Approx(layer_latency(8, 8) + follower));
  CHECK(int8->integer_activations);
  CHECK(int8->boundary_latency == Approx(quantize + dequantize));
  const Choice uniform = {static_cast<uint16_t>(int8 - &problem->table.layers[0].options[0])};
  absl::StatusOr<ObjectiveValues> whole = Evaluate(problem->table, uniform);
  REQUIRE(whole.ok());
  CHECK(whole->latency == Approx(problem->table.fixed.latency + int8->latency + quantize + dequantize));
  CHECK_THAT(Find(*problem, 0, "w8a8")->latency.explanation, Catch::Matchers::Contains("no longer fused"));
  // Between two tensors the plan quantizes anyway, the weight-only option runs as its uint8
  // sibling: the layer's input and output are boundaries of the table.
  const Layer& layer = problem->table.layers[0];
  REQUIRE(layer.input_boundary >= 0);
  REQUIRE(layer.output_boundary >= 0);
  CHECK(problem->table.boundaries[layer.input_boundary].readers == std::vector<int32_t>{0});
  CHECK(problem->table.boundaries[layer.output_boundary].producer == 0);
  const LayerOption* weight_only = FindOption(*problem, 0, "w8a32");
  CHECK(weight_only->fused_latency == Approx(int8->latency));
  CHECK(weight_only->boundary_latency >= int8->boundary_latency);
  CHECK_FALSE(FindOption(*problem, 0, "fp32")->fused_latency >= 0);
  CHECK_THAT(Find(*problem, 0, "w8a32")->latency.explanation, Catch::Matchers::Contains("fuses it into"));
}

TEST_CASE("The option table of a small layer, by hand", "[problem]") {
  const model::LoadedModel model = SmallModel();
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  const runtime::SensitivityReport report = Report(2.0, 0.01);
  ProblemInputs in = InputsFor(model, device, **cost);
  in.sensitivity = &report;
  in.channel_alignment = 1;  // 3 channels: any kept count
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  REQUIRE(problem->table.layers.size() == 1);

  const LayerOption* fp32 = FindOption(*problem, 0, "fp32");
  REQUIRE(fp32 != nullptr);
  CHECK(fp32->error == 0);
  // Sizes are the file's (model::LayerFileBytes and the structure the export adds; below).
  CHECK(model::LayerFileBytes(model.analysis.layers[0], {32, 32}, model::ExportFlavour::kOrtCpu, 3, false) == 12 * 4);
  // 1x4x8x8 in + 1x3x8x8 out at 4 bytes; the Relu's output is not alive during the Conv.
  CHECK(fp32->activation_bytes == (256 + 192) * 4);

  const LayerOption* int8 = FindOption(*problem, 0, "w8a8");
  REQUIRE(int8 != nullptr);
  const model::ChannelMatrix w = model::ToChannelMajor(
      std::vector<float>{1, -2, 3, 0.5f, 0.25f, 4, -1, 2, 3, 1, 0.5f, -0.75f}, model.analysis.layers[0].weight_layout);
  const double d8 = model::RelativeDistortion(w.values, model::Compress(w, 8, model::Sparsity::kDense, 0).values);
  CHECK(int8->error == Approx(2.0 * d8 + 0.01));
  // int8 weights, per-channel fp32 scales and int8 zero points, and the int32 bias's scales and
  // zero points (the bias itself takes the float one's 12 bytes).
  CHECK(model::LayerFileBytes(model.analysis.layers[0], {8, 8}, model::ExportFlavour::kOrtCpu, 3, false) ==
        12 + 3 * 4 + 3 + 3 * 8);
  CHECK(int8->activation_bytes == (256 + 192) * 1);
  // The int8 layer: the conv itself (its Relu fuses as the Q's saturation); the QuantizeLinear of
  // its 256 input values and the DequantizeLinear of its 192 outputs (the graph's input and
  // output, float) are its boundaries'.
  const dp::LayerShape shape{dp::OpKind::kConv, 3 * 4 * 64, 12, 3, 256, 192};
  const double quantize = cost->get()->PredictOp(dp::OpKind::kQuantizeLinear, 256, 256 * 5).seconds;
  const double dequantize = cost->get()->PredictOp(dp::OpKind::kDequantizeLinear, 192, 192 * 5).seconds;
  CHECK(int8->latency ==
        Approx(cost->get()->Predict(shape, dp::CompressionOption{8, 8, dp::Sparsity::kDense, 0}).seconds));
  CHECK(int8->boundary_latency == Approx(quantize + dequantize));
  REQUIRE(problem->table.boundaries.size() == 2);
  CHECK_THAT(Find(*problem, 0, "w8a8")->latency.explanation, Catch::Matchers::Contains("quantizing its input"));

  // The Conv's channels are the graph output (through the Relu): the exporter would keep them, so
  // no option removes them.
  for (const LayerOption& o : problem->table.layers[0].options) CHECK(o.label.find("channel") == std::string::npos);

  // Fixed cost: none, as ONNX Runtime folds the Relu into the Conv.
  CHECK(problem->table.fixed.latency == 0);
  // Every file of the model holds the bias and the model's structure (names, nodes, shapes), and
  // the predicted size of a plan is its file's: within the 120 bytes allowed for the job and
  // device metadata the server adds.
  CHECK(problem->table.fixed.bytes > 12 + 100);
  for (const LayerOption* option : {fp32, int8}) {
    const model::LayerPlan plan = option == fp32 ? model::LayerPlan{32, 32} : model::LayerPlan{8, 8};
    const absl::StatusOr<std::vector<std::string>> names =
        model::ActivationsToCalibrate(model, {plan}, model::ExportFlavour::kOrtCpu);
    REQUIRE(names.ok());
    std::map<std::string, model::TensorRange> ranges;
    for (const std::string& t : *names) ranges[t] = {-1, 1};
    absl::StatusOr<model::ExportedModel> file = model::ExportModel(model, {plan}, ranges);
    INFO(file.status().ToString());
    REQUIRE(file.ok());
    const double predicted = problem->table.fixed.bytes + option->bytes;
    INFO(option->label << ": predicted " << predicted << " B, file " << file->bytes.size() << " B");
    CHECK(std::abs(predicted - 120 - static_cast<double>(file->bytes.size())) <= 64);
  }
  CHECK(ValidateOptionTable(problem->table).ok());
}

TEST_CASE("Pruning a layer's channels is credited with the layers it narrows", "[problem]") {
  // x -> Conv a (3>8) -> Relu -> Conv b (8>8) -> depthwise d -> Conv c (8>4) -> y: removing half of
  // a's channels halves b's input channels; removing half of b's halves d and c's input.
  const model::LoadedModel model = model::testing::MustLoad(model::testing::ChainProto());
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.channel_alignment = 4;  // 8 channels: keep 4
  in.grid.weight_bits = {32};
  in.grid.activation_bits = {32};
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  auto shape_of = [&](size_t i) {
    const model::Layer& l = model.analysis.layers[i];
    dp::LayerShape s{
        l.depthwise ? dp::OpKind::kDepthwiseConv : dp::OpKind::kConv, l.macs, l.params, l.out_channels, 1, 1};
    s.input_elements = 1;
    for (int64_t d : l.input_shape) s.input_elements *= d;
    s.output_elements = 1;
    for (int64_t d : l.output_shape) s.output_elements *= d;
    s.in_channels = l.in_channels;
    return s;
  };
  const double b = FindOption(*problem, 1, "fp32")->latency, d = FindOption(*problem, 2, "fp32")->latency,
               c = FindOption(*problem, 3, "fp32")->latency;
  const double own_a =
      cost->get()->Predict(shape_of(0), dp::CompressionOption{32, 32, dp::Sparsity::kOutputChannel, 0.5}).seconds;
  const double own_b =
      cost->get()->Predict(shape_of(1), dp::CompressionOption{32, 32, dp::Sparsity::kOutputChannel, 0.5}).seconds;
  // The options keep their own time; the narrowings say whom they narrow, and planning credits
  // each with its readers at its own precision.
  const LayerOption* a_pruned = FindOption(*problem, 0, "fp32 channel 50%");
  const LayerOption* b_pruned = FindOption(*problem, 1, "fp32 channel 50%");
  CHECK(a_pruned->latency == Approx(own_a));
  CHECK(b_pruned->latency == Approx(own_b));
  CHECK(a_pruned->narrowing_credit == Approx(0.5 * b));
  CHECK(b_pruned->narrowing_credit == Approx(0.5 * (d + c)));
  // In bytes: what narrows of b (its 8x8 fp32 weights, 4 rows of them when it prunes itself), of the
  // depthwise d (all of its 8 channels of 3x3) and of c (its 4x8 weights).
  CHECK(FindOption(*problem, 1, "fp32")->narrowable_bytes == 8 * 8 * 4);
  CHECK(b_pruned->narrowable_bytes == 4 * 8 * 4);
  CHECK(FindOption(*problem, 2, "fp32")->narrowable_bytes == 8 * 9 * 4);
  CHECK(FindOption(*problem, 3, "fp32")->narrowable_bytes == 4 * 8 * 4);
  CHECK(a_pruned->bytes_credit == Approx(0.5 * 8 * 8 * 4));
  CHECK(b_pruned->bytes_credit == Approx(0.5 * (8 * 9 * 4 + 4 * 8 * 4)));
  CHECK_THAT(Find(*problem, 0, "fp32 channel 50%")->latency.explanation, Contains("read its channels"));
  REQUIRE(problem->table.narrowings.size() == 3);
  CHECK(problem->table.narrowings[0].pruner == 0);
  CHECK(problem->table.narrowings[0].reader == 1);
  CHECK(problem->table.narrowings[0].share == 1.0);
  // A plan pruning a and b takes half of b's own (pruned) time, and half of d's and c's, off.
  Choice plan(problem->table.layers.size(), 0);
  plan[0] = static_cast<uint16_t>(a_pruned - &problem->table.layers[0].options[0]);
  plan[1] = static_cast<uint16_t>(b_pruned - &problem->table.layers[1].options[0]);
  const double fixed = problem->table.fixed.latency;
  CHECK(Evaluate(problem->table, plan)->latency == Approx(fixed + own_a + own_b * 0.5 + (d + c) * 0.5));
  // And stores half of what narrows of b, d and c less.
  double bytes = problem->table.fixed.bytes;
  for (size_t i = 0; i < plan.size(); ++i) bytes += problem->table.layers[i].options[plan[i]].bytes;
  CHECK(Evaluate(problem->table, plan)->size == Approx(bytes - 0.5 * (4 * 8 * 4 + 8 * 9 * 4 + 4 * 8 * 4)));
  // The depthwise Conv carries b's channels and the last Conv's are the graph output: neither is pruned alone.
  for (size_t i : {2, 3}) {
    for (const LayerOption& o : problem->table.layers[i].options) CHECK(o.label.find("channel") == std::string::npos);
  }
}

// What a plan of `problem` (built for `model` on an ONNX Runtime CPU device) is predicted to
// weigh, what it would without its narrowings, and what the file ExportModel writes for it weighs
// with the 120 bytes of job and device metadata the server adds (and the prediction counts).
struct PlanSizes {
  double predicted = 0, without_narrowing = 0, file = 0;
};
PlanSizes SizesOf(const Problem& problem, const model::LoadedModel& model, const Choice& choice) {
  PlanSizes sizes;
  const absl::StatusOr<ObjectiveValues> values = Evaluate(problem.table, choice);
  const absl::StatusOr<PlanConversions> conversions = ConversionsOf(problem.table, choice);
  REQUIRE(values.ok());
  REQUIRE(conversions.ok());
  sizes.predicted = values->size;
  sizes.without_narrowing = values->size;
  for (double b : conversions->narrowed_bytes) sizes.without_narrowing += b;
  const std::vector<model::LayerPlan> plan = ExportPlanOf(problem, choice);
  const absl::StatusOr<std::vector<std::string>> names =
      model::ActivationsToCalibrate(model, plan, model::ExportFlavour::kOrtCpu);
  REQUIRE(names.ok());
  std::map<std::string, model::TensorRange> ranges;
  for (const std::string& t : *names) ranges[t] = {-1, 1};
  absl::StatusOr<model::ExportedModel> file = model::ExportModel(model, plan, ranges);
  INFO(file.status().ToString());
  REQUIRE(file.ok());
  sizes.file = static_cast<double>(file->bytes.size()) + 120;
  return sizes;
}

// `precision` for every layer; the layers pruning can narrow others with (reach) lose `ratio` of
// their output channels at `pruned_precision`.
std::vector<model::LayerPlan> PrunedPlan(const std::vector<model::ChannelPruningReach>& reach,
                                         model::LayerPlan precision, model::LayerPlan pruned_precision, double ratio) {
  std::vector<model::LayerPlan> plan(reach.size(), precision);
  for (size_t i = 0; i < reach.size(); ++i) {
    if (!reach[i].removable) continue;
    plan[i] = pruned_precision;
    plan[i].pattern = model::Sparsity::kOutputChannel;
    plan[i].prune_ratio = ratio;
  }
  return plan;
}

TEST_CASE("A plan's predicted size is its file's where pruning narrows the layers after it", "[problem]") {
  // a (3>64) and b (64>64) lose half their channels; b's run through a BatchNormalization, a
  // depthwise Conv, another BatchNormalization and a per-channel Mul into the last Conv.
  const model::LoadedModel model = model::testing::MustLoad(model::testing::NarrowingProto(64));
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.channel_alignment = 8;
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  REQUIRE(ValidateOptionTable(problem->table).ok());
  const std::vector<model::ChannelPruningReach> reach = model::AnalyzeChannelPruning(model);
  struct Case {
    model::LayerPlan precision, pruned;
  };
  // Float, integer (both BatchNormalizations folded), weight-only, and float readers of integer
  // pruners (the depthwise Conv's BatchNormalization stays, sliced).
  const std::vector<Case> cases = {{{32, 32}, {32, 32}}, {{8, 8}, {8, 8}}, {{8, 32}, {8, 32}}, {{32, 32}, {8, 8}}};
  for (const Case& c : cases) {
    INFO(model::LayerPlanLabel(c.pruned) << " pruned, " << model::LayerPlanLabel(c.precision) << " readers");
    const std::optional<Choice> pruned = ChoiceOfPlan(*problem, PrunedPlan(reach, c.precision, c.pruned, 0.5));
    std::vector<model::LayerPlan> unpruned_plan = PrunedPlan(reach, c.precision, c.pruned, 0);
    for (model::LayerPlan& p : unpruned_plan) p.pattern = model::Sparsity::kDense;
    const std::optional<Choice> dense = ChoiceOfPlan(*problem, unpruned_plan);
    REQUIRE(pruned.has_value());
    REQUIRE(dense.has_value());
    const PlanSizes sizes = SizesOf(*problem, model, *pruned), unpruned = SizesOf(*problem, model, *dense);
    INFO("predicted " << std::llround(sizes.predicted) << " B, " << std::llround(sizes.without_narrowing)
                      << " B without narrowings; file " << std::llround(sizes.file) << " B; unpruned: predicted "
                      << std::llround(unpruned.predicted) << " B, file " << std::llround(unpruned.file) << " B");
    CHECK(sizes.predicted < unpruned.predicted);
    CHECK(sizes.without_narrowing - sizes.file > 1000);
    // The thousands of bytes the narrowed layers and constants lose are counted: the prediction
    // misses the file by what the same plan unpruned does (its quantized tensors' structure), and
    // by the names of what the exporter slices ("_pruned"), a dozen bytes each.
    CHECK(std::abs((sizes.predicted - sizes.file) - (unpruned.predicted - unpruned.file)) <= 200);
  }
}

TEST_CASE("On the QNN HTP, the constants between layers are counted in uint8 where a layer beside runs integer",
          "[problem]") {
  // x → Conv a (3→16) → Mul by a per-channel scale → Add a [16, 16, 16] bias → Conv b (16→4) → y:
  // the bias's 4096 values (and the scale's 16) take 3 bytes less each in uint8.
  const model::LoadedModel model = model::testing::MustLoad(model::testing::ScaledBiasProto(16, 16));
  dp::Device device = dp::TestDevice();
  device.runtime = "onnxruntime-qnn";
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  absl::StatusOr<Problem> problem = BuildProblem(InputsFor(model, device, **cost));
  INFO(problem.status().ToString());
  REQUIRE(problem.ok());
  REQUIRE(ValidateOptionTable(problem->table).ok());
  const std::vector<model::QuantizableRegion> regions = model::QuantizableRegionsOf(model, model::ExportFlavour::kQnn);
  REQUIRE(regions.size() == 1);
  REQUIRE(problem->table.region_savings.size() == 1);
  CHECK(problem->table.region_savings[0].layers == std::vector<int32_t>{0, 1});
  CHECK(problem->table.region_savings[0].saving == static_cast<double>(regions[0].saved_bytes));
  CHECK(regions[0].saved_bytes > 3 * (4096 + 16) - 2 * 300);

  // Predicted against the qnn file, with the constants quantized (w8a8, or one integer layer
  // beside them) and float (both layers fp16): the prediction misses each file by about as much.
  auto miss = [&](const std::vector<model::LayerPlan>& plan) {
    const std::optional<Choice> choice = ChoiceOfPlan(*problem, plan);
    REQUIRE(choice.has_value());
    const absl::StatusOr<ObjectiveValues> values = Evaluate(problem->table, *choice);
    REQUIRE(values.ok());
    const std::vector<model::LayerPlan> exported = ExportPlanOf(*problem, *choice);
    absl::StatusOr<std::vector<std::string>> names =
        model::ActivationsToCalibrate(model, exported, model::ExportFlavour::kQnn);
    REQUIRE(names.ok());
    std::map<std::string, model::TensorRange> ranges;
    for (const std::string& t : *names) ranges[t] = {-1, 1};
    model::ExportOptions options;
    options.flavour = model::ExportFlavour::kQnn;
    absl::StatusOr<model::ExportedModel> file = model::ExportModel(model, exported, ranges, options);
    INFO(file.status().ToString());
    REQUIRE(file.ok());
    return values->size - static_cast<double>(file->bytes.size());
  };
  const double integer = miss({{8, 8}, {8, 8}}), one = miss({{16, 16}, {8, 8}}), fp16 = miss({{16, 16}, {16, 16}});
  INFO("missed by " << integer << " B (w8a8), " << one << " B (one w8a8), " << fp16 << " B (fp16)");
  CHECK(std::abs(integer - fp16) < 200);
  CHECK(std::abs(one - fp16) < 200);
}

TEST_CASE("PP-OCRv4 det's channel-pruned plans are predicted at their files' sizes", "[problem]") {
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 640, 640};
  const model::LoadedModel model =
      model::testing::MustLoad(model::testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx"), options);
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.threads = 2;
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  REQUIRE(ValidateOptionTable(problem->table).ok());
  const std::vector<model::ChannelPruningReach> reach = model::AnalyzeChannelPruning(model);
  REQUIRE(std::count_if(reach.begin(), reach.end(), [](const auto& r) { return r.removable; }) > 10);
  for (const model::LayerPlan precision : {model::LayerPlan{32, 32}, model::LayerPlan{8, 8}}) {
    const std::optional<Choice> dense = ChoiceOfPlan(*problem, std::vector<model::LayerPlan>(reach.size(), precision));
    REQUIRE(dense.has_value());
    double previous = SizesOf(*problem, model, *dense).predicted;
    for (double ratio : {0.3, 0.5}) {
      // Every layer that can lose channels on its own, at the grid ratio the device's alignment
      // rounds to its channel count.
      const std::optional<Choice> pruned =
          ChoiceOfPlan(*problem, model::UniformChannelPlan(reach, model, precision, ratio, ChannelAlignment(device)));
      REQUIRE(pruned.has_value());
      const PlanSizes sizes = SizesOf(*problem, model, *pruned);
      INFO(model::LayerPlanLabel(precision) << " " << ratio << ": predicted " << std::llround(sizes.predicted) << " B, "
                                            << std::llround(sizes.without_narrowing) << " B without narrowings; file "
                                            << std::llround(sizes.file) << " B");
      CHECK(sizes.predicted < previous);
      CHECK(std::abs(sizes.predicted / sizes.file - 1) < 0.01);
      CHECK(sizes.without_narrowing / sizes.file - 1 > 0.1);
      previous = sizes.predicted;
    }
  }
}

TEST_CASE("A measured pruned export calibrates the pruned float options by their width", "[problem]") {
  // Chain: a (3>8) and b (8>8) can lose channels; at alignment 2 the grid's 25% and 50% keep 6 and 4.
  const model::LoadedModel model = model::testing::MustLoad(model::testing::ChainProto());
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.channel_alignment = 2;
  in.grid.weight_bits = {32, 8};
  in.grid.activation_bits = {32, 8};
  in.grid.prune_ratios = {0, 0.25, 0.5};
  in.model_sha256 = std::string(64, 'c');
  absl::StatusOr<Problem> plain = BuildProblem(in);
  REQUIRE(plain.ok());
  // The plan the profiler times (model::UniformChannelPlan): a and b half pruned, d and c dense.
  const std::vector<model::LayerPlan> timed = model::UniformChannelPlan(
      model::AnalyzeChannelPruning(model), model, model::LayerPlan{32, 32}, 0.5, in.channel_alignment);
  REQUIRE(timed.size() == 4);
  CHECK(timed[0].prune_ratio == 0.5);
  CHECK(timed[1].prune_ratio == 0.5);
  CHECK(timed[2].pattern == model::Sparsity::kDense);
  CHECK(timed[3].pattern == model::Sparsity::kDense);
  auto index = [&](const Problem& p, size_t layer, const std::string& label) {
    const LayerOption* o = FindOption(p, layer, label);
    REQUIRE(o != nullptr);
    return static_cast<uint16_t>(o - &p.table.layers[layer].options[0]);
  };
  const Choice plan = {index(*plain, 0, "fp32 channel 50%"), index(*plain, 1, "fp32 channel 50%"),
                       index(*plain, 2, "fp32"), index(*plain, 3, "fp32")};
  const double predicted = Evaluate(plain->table, plan)->latency;
  // The pruned layers' share of that plan: their own time less what b's narrowing takes off it.
  const double a50 = FindOption(*plain, 0, "fp32 channel 50%")->latency;
  const double b50 = FindOption(*plain, 1, "fp32 channel 50%")->latency;
  const double d = FindOption(*plain, 2, "fp32")->latency, c = FindOption(*plain, 3, "fp32")->latency;
  REQUIRE(predicted == Approx(plain->table.fixed.latency + a50 + 0.5 * b50 + 0.5 * (d + c)));

  dp::ModelLatency pruned;
  pruned.key = "chain uniform w32a32 channel 50%";
  pruned.model_sha256 = in.model_sha256;
  pruned.variant = dp::UniformVariantLabel(32, 32, 0.5);
  REQUIRE(pruned.variant == "uniform w32a32 channel 50%");
  SECTION("the measured plan comes out as measured; a quarter pruned moves half as far") {
    const double measured = predicted - 0.4 * (a50 + 0.5 * b50);  // s = 0.6
    pruned.latency_median_us = measured * 1e6;
    in.model_latencies = {pruned};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(Evaluate(p->table, plan)->latency == Approx(measured));
    CHECK(FindOption(*p, 0, "fp32 channel 50%")->latency == Approx(0.6 * a50));
    CHECK(FindOption(*p, 1, "fp32 channel 50%")->latency == Approx(0.6 * b50));
    CHECK(FindOption(*p, 0, "fp32 channel 25%")->latency ==
          Approx(0.8 * FindOption(*plain, 0, "fp32 channel 25%")->latency));
    // Dense and integer options keep theirs.
    CHECK(FindOption(*p, 0, "fp32")->latency == Approx(FindOption(*plain, 0, "fp32")->latency));
    CHECK(FindOption(*p, 0, "w8a8 channel 50%")->latency == Approx(FindOption(*plain, 0, "w8a8 channel 50%")->latency));
    CHECK_THAT(p->latency_calibration, Contains("uniform w32a32 channel 50% measured"));
    CHECK_THAT(Find(*p, 0, "fp32 channel 25%")->latency.explanation, Contains("x 0.800 for its width"));
  }
  SECTION("a measurement no scale within bounds can match is not applied, and the calibration says so") {
    pruned.latency_median_us = predicted * 1e6 * 50;
    in.model_latencies = {pruned};
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    CHECK(FindOption(*p, 0, "fp32 channel 50%")->latency == Approx(a50));
    CHECK_THAT(p->latency_calibration, Contains("not applied"));
  }
  SECTION("a variant of another model changes nothing; one whose plan is not on offer says so") {
    pruned.latency_median_us = predicted * 1e6 / 2;
    pruned.model_sha256 = std::string(64, 'd');
    in.model_latencies = {pruned};
    CHECK(BuildProblem(in)->latency_calibration.empty());
    pruned.model_sha256 = in.model_sha256;
    in.model_latencies = {pruned};
    in.grid.prune_ratios = {0, 0.25};  // the timed plan's 50% is not among the options
    absl::StatusOr<Problem> p = BuildProblem(in);
    REQUIRE(p.ok());
    ProblemInputs untimed = in;
    untimed.model_latencies.clear();
    absl::StatusOr<Problem> untimed_problem = BuildProblem(untimed);
    REQUIRE(untimed_problem.ok());
    CHECK(FindOption(*p, 0, "fp32 channel 25%")->latency ==
          Approx(FindOption(*untimed_problem, 0, "fp32 channel 25%")->latency));
    CHECK_THAT(p->latency_calibration, Contains("uniform w32a32 channel 50% measured") &&
                                           Contains("not used, as some layer has no such option"));
  }
}

TEST_CASE("A tensor narrowed by pruning converts at the cost of its narrower width", "[problem]") {
  // Chain: a's output (after its Relu, 8x8x8 values) is what an integer b quantizes; removing
  // half of a's channels leaves half of it, and its conversions are predicted at that size.
  const model::LoadedModel model = model::testing::MustLoad(model::testing::ChainProto());
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.channel_alignment = 4;
  in.grid.weight_bits = {32, 8};
  in.grid.activation_bits = {32, 8};
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  const LayerOption* pruned = FindOption(*problem, 0, "fp32 channel 50%");
  REQUIRE(pruned != nullptr);
  CHECK(pruned->removed_channels == Approx(0.5));
  CHECK(FindOption(*problem, 0, "fp32")->removed_channels == 0);
  const int32_t index = problem->table.layers[0].output_boundary;
  REQUIRE(index >= 0);
  const ActivationBoundary& b = problem->table.boundaries[static_cast<size_t>(index)];
  CHECK(b.narrowed_by == std::vector<std::pair<int32_t, double>>{{0, 1.0}});
  REQUIRE(b.narrower.size() == 1);
  CHECK(b.narrower[0].kept == Approx(0.5));
  CHECK(b.quantize_latency == Approx(cost->get()->PredictOp(dp::OpKind::kQuantizeLinear, 512, 512 * 5).seconds));
  CHECK(b.narrower[0].quantize_latency ==
        Approx(cost->get()->PredictOp(dp::OpKind::kQuantizeLinear, 256, 256 * 5).seconds));
  CHECK(b.narrower[0].quantize_latency < b.quantize_latency);
  // A plan with a pruned and float, b integer pays the narrower quantization.
  Choice plan(problem->table.layers.size(), 0);
  plan[0] = static_cast<uint16_t>(pruned - &problem->table.layers[0].options[0]);
  const LayerOption* b_int = FindOption(*problem, 1, "w8a8");
  REQUIRE(b_int != nullptr);
  plan[1] = static_cast<uint16_t>(b_int - &problem->table.layers[1].options[0]);
  Choice whole = plan;
  whole[0] = 0;
  const double saved = Evaluate(problem->table, whole)->latency - Evaluate(problem->table, plan)->latency;
  // a's own time, half of b's (int8) and the quantization's narrower cost.
  CHECK(saved == Approx(FindOption(*problem, 0, "fp32")->latency - pruned->latency + 0.5 * b_int->latency +
                        b.quantize_latency - b.narrower[0].quantize_latency));
  CHECK(ValidateOptionTable(problem->table).ok());
}

TEST_CASE("A layer the calibration never ran keeps only 8-bit-or-more, unpruned options", "[problem]") {
  const model::LoadedModel model = SmallModel();
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  runtime::SensitivityReport report = Report(2.0, 0.01);
  ProblemInputs in = InputsFor(model, device, **cost);
  in.sensitivity = &report;
  in.channel_alignment = 1;
  const size_t all = BuildProblem(in)->table.layers[0].options.size();
  report.layers[0].exercised = false;
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  const std::vector<OptionDetail>& options = problem->details[0];
  REQUIRE_FALSE(options.empty());
  CHECK(options.size() < all);
  for (const OptionDetail& o : options) {
    CHECK(o.option.weight_bits >= 8);
    CHECK(o.option.pattern == dp::Sparsity::kDense);
  }
  CHECK(FindOption(*problem, 0, "w8a8") != nullptr);
}

TEST_CASE("The options respect what the device runs", "[problem]") {
  const model::LoadedModel model = SmallModel();
  dp::Device npu = dp::TestDevice("npu");
  npu.capabilities.erase(npu.capabilities.begin());  // int8 only
  auto cost = dp::DeviceCostModel::Create(npu, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, npu, **cost);
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  std::set<std::string> labels;
  for (const LayerOption& o : problem->table.layers[0].options) labels.insert(o.label);
  CHECK(labels.count("fp32") == 0);
  CHECK(labels.count("fp16") == 0);
  CHECK(labels.count("w8a8") == 1);
  CHECK(labels.count("w4a8 2:4") == 1);
  const OptionDetail* w4 = Find(*problem, 0, "w4a8");
  REQUIRE(w4 != nullptr);
  CHECK(w4->latency.support == dp::Support::kEmulated);
  CHECK_THAT(problem->warnings.front(), Contains("sensitivity"));

  SECTION("a grid the device cannot run at all is refused naming the layer") {
    in.grid.weight_bits = {32};
    in.grid.activation_bits = {32};
    absl::StatusOr<Problem> none = BuildProblem(in);
    CHECK(none.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(none.status().message()), Contains("'" + model.analysis.layers[0].name + "'"));
  }
  SECTION("a bad grid is InvalidArgument") {
    in.grid.weight_bits = {7};
    CHECK(BuildProblem(in).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Grouped convolutions get no channel pruning and short rows no 2:4", "[problem]") {
  model::Layer depthwise;
  depthwise.op_type = "Conv";
  depthwise.grouped = depthwise.depthwise = true;
  depthwise.out_channels = 16;
  depthwise.params = 16 * 9;
  OptionGrid grid;
  for (const dp::CompressionOption& o : LayerOptions(grid, depthwise)) {
    CHECK(o.pattern != dp::Sparsity::kOutputChannel);
  }
  model::Layer tiny;
  tiny.op_type = "Gemm";
  tiny.out_channels = 4;
  tiny.params = 4 * 3;  // rows of 3 weights
  for (const dp::CompressionOption& o : LayerOptions(grid, tiny)) CHECK(o.pattern != dp::Sparsity::kTwoFour);
  // Channel pruning always keeps a channel: with any count allowed, 90% of 4 keeps 1.
  for (const dp::CompressionOption& o : LayerOptions(grid, tiny, DeviceRealization{model::ExportFlavour::kOrtCpu, 1})) {
    if (o.pattern == dp::Sparsity::kOutputChannel) CHECK(o.prune_ratio <= 0.75);
  }
  // 4 channels cannot keep a positive multiple of 8 below 4: no channel pruning by default.
  for (const dp::CompressionOption& o : LayerOptions(grid, tiny)) CHECK(o.pattern != dp::Sparsity::kOutputChannel);
}

TEST_CASE("Output-channel pruning keeps multiples of the device's alignment, the same count everywhere", "[problem]") {
  model::Layer conv;
  conv.op_type = "Conv";
  conv.out_channels = 100;
  conv.params = 100 * 16 * 9;
  OptionGrid grid;
  std::set<int64_t> kept;
  for (const dp::CompressionOption& o : LayerOptions(grid, conv)) {
    if (o.pattern != dp::Sparsity::kOutputChannel || o.weight_bits != 32) continue;
    // The ratio is exactly removed / out: llround(out · ratio), as PruneMask, the cost model and the
    // exporter compute it, gives back the removed count.
    const int64_t removed = std::llround(conv.out_channels * o.prune_ratio);
    CHECK((conv.out_channels - removed) % 8 == 0);
    CHECK(o.prune_ratio == Approx(static_cast<double>(removed) / 100));
    CHECK(kept.insert(conv.out_channels - removed).second);  // no two options keep the same count
  }
  // 10%..90% of 100 channels keep 90, 80, ..., 10, each moved to the nearest multiple of 8
  // (50 / 8 = 6.25 keeps 48; 20 / 8 = 2.5 keeps 24).
  CHECK(kept == std::set<int64_t>{88, 80, 72, 64, 48, 40, 32, 24, 8});
  SECTION("a layer of 8 channels or fewer gets none") {
    conv.out_channels = 8;
    conv.params = 8 * 16 * 9;
    for (const dp::CompressionOption& o : LayerOptions(grid, conv)) CHECK(o.pattern != dp::Sparsity::kOutputChannel);
  }
}

TEST_CASE("An option is what the export flavour writes: no 16-bit activations for ONNX Runtime's CPU provider",
          "[problem]") {
  model::Layer conv;
  conv.op_type = "Conv";
  conv.out_channels = 16;
  conv.params = 16 * 16 * 9;
  OptionGrid grid;
  std::set<std::pair<int, int>> cpu, coreml;
  for (const dp::CompressionOption& o : LayerOptions(grid, conv)) cpu.emplace(o.weight_bits, o.activation_bits);
  for (const dp::CompressionOption& o :
       LayerOptions(grid, conv, DeviceRealization{model::FlavourForRuntime("coreml"), 8})) {
    coreml.emplace(o.weight_bits, o.activation_bits);
  }
  for (const auto& [w, a] : cpu) CHECK(a != 16);
  CHECK(cpu.count({16, 32}) == 1);  // fp16 weights, computed in fp32: half the bytes, fp32's time
  CHECK(cpu.count({8, 8}) == 1);
  CHECK(cpu.count({4, 32}) == 1);
  CHECK(cpu.count({32, 8}) == 0);
  CHECK(coreml.count({16, 16}) == 1);  // the runtime computes float layers in fp16 when built for it
  // ONNX Runtime's CoreML provider converts no Q/DQ: float options only.
  CHECK(coreml == std::set<std::pair<int, int>>{{32, 32}, {16, 16}});
  CHECK(model::FlavourForRuntime("onnxruntime-coreml") == model::ExportFlavour::kRuntimePrecision);
  // The QNN HTP computes integer layers on uint8 or uint16 activations, float ones in fp16.
  std::set<std::pair<int, int>> qnn;
  for (const dp::CompressionOption& o :
       LayerOptions(grid, conv, DeviceRealization{model::FlavourForRuntime("onnxruntime-qnn"), 8})) {
    qnn.emplace(o.weight_bits, o.activation_bits);
  }
  CHECK(qnn.count({8, 8}) == 1);
  CHECK(qnn.count({4, 16}) == 1);
  CHECK(qnn.count({16, 16}) == 1);
  for (const auto& [w, a] : qnn) CHECK(a != 32);
  CHECK(model::FlavourForRuntime("onnxruntime-cpu") == model::ExportFlavour::kOrtCpu);
  CHECK_THAT(model::RealizationNote(model::ExportFlavour::kOrtCpu, 16, 32), Contains("computes in fp32"));
}

TEST_CASE("2..4-bit MatMul weights with float activations are offered once per block size, never per channel",
          "[problem]") {
  model::Layer matmul;
  matmul.op_type = "MatMul";
  matmul.weight_shape = {256, 64};
  matmul.weight_layout = model::ChannelLayout{256, 64, 1, 1};
  matmul.out_channels = 64;
  matmul.params = 256 * 64;
  OptionGrid grid;
  grid.prune_ratios = {0};
  std::set<std::tuple<int, int, int>> cpu;
  for (const dp::CompressionOption& o : LayerOptions(grid, matmul)) {
    if (o.pattern == dp::Sparsity::kDense) CHECK(cpu.emplace(o.weight_bits, o.activation_bits, o.block_size).second);
  }
  for (int w : {2, 3, 4}) {
    CHECK(cpu.count({w, 32, 32}) == 1);
    CHECK(cpu.count({w, 32, 64}) == 1);
    CHECK(cpu.count({w, 32, 128}) == 1);
    CHECK(cpu.count({w, 32, 0}) == 0);
    CHECK(cpu.count({w, 8, 0}) == 1);  // integer activations: QLinearMatMul, int8 per channel
  }
  CHECK(cpu.count({8, 32, 0}) == 1);
  CHECK(cpu.count({8, 32, 32}) == 0);
  dp::CompressionOption block;
  block.weight_bits = 4;
  block.block_size = 32;
  CHECK(OptionLabel(block) == "w4a32 block 32");
  // Another flavour's runtime has no MatMulNBits; nor has a Conv, nor an fp16 MatMul.
  for (const dp::CompressionOption& o : LayerOptions(grid, matmul, DeviceRealization{model::ExportFlavour::kQnn, 8})) {
    CHECK(o.block_size == 0);
  }
  model::Layer half = matmul;
  half.weight_elem_type = 10;
  for (const dp::CompressionOption& o : LayerOptions(grid, half)) CHECK(o.block_size == 0);
  SECTION("the grid's block sizes are MatMulNBits' own") {
    grid.block_sizes = {32, 48};
    CHECK_THAT(std::string(ValidateOptionGrid(grid).message()), Contains("block size 48"));
    grid.block_sizes = {8};
    CHECK_FALSE(ValidateOptionGrid(grid).ok());
    grid.block_sizes = {};
    CHECK_FALSE(ValidateOptionGrid(grid).ok());
    grid.block_sizes = {16, 256};
    CHECK(ValidateOptionGrid(grid).ok());
  }
}

TEST_CASE("A MatMulNBits runs as itself whatever its neighbours quantize: nothing fuses it", "[problem]") {
  onnx::ModelProto proto = model::testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    mm (float[4, 64] x) => (float[4, 32] y) {
      y = MatMul (x, w)
    }
  )onnx");
  model::testing::AddInitializer(proto.mutable_graph(), model::testing::FloatTensor("w", {64, 32}));
  const model::LoadedModel model = model::testing::MustLoad(proto);
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  REQUIRE(problem->table.layers[0].input_boundary >= 0);
  REQUIRE(problem->table.layers[0].output_boundary >= 0);
  // int8 weights behind a DequantizeLinear fuse into QLinearMatMul between quantized tensors; the
  // MatMulNBits holds no DequantizeLinear to fuse.
  CHECK(FindOption(*problem, 0, "w8a32")->fused_latency >= 0);
  for (const char* label : {"w4a32 block 32", "w4a32 block 128", "w2a32 block 32"}) {
    INFO(label);
    const LayerOption* nbits = FindOption(*problem, 0, label);
    REQUIRE(nbits != nullptr);
    CHECK(nbits->fused_latency < 0);
    CHECK_FALSE(nbits->integer_activations);
    CHECK_THAT(Find(*problem, 0, label)->latency.explanation, !Contains("fuses it into"));
  }
}

TEST_CASE("PP-OCRv4 rec with block-wise 4-bit MatMuls: the predicted size is the exported file's", "[problem]") {
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 320};
  const model::LoadedModel model =
      model::testing::MustLoad(model::testing::ReadCachedModel("bench/ppocrv4_rec.onnx"), options);
  const dp::Device device = dp::TestDevice();
  REQUIRE(model::FlavourForRuntime(device.runtime) == model::ExportFlavour::kOrtCpu);
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.grid.weight_bits = {8, 4, 2};
  in.grid.activation_bits = {32};
  in.grid.prune_ratios = {0};
  in.grid.patterns = {};
  in.threads = 2;
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  for (int block : {32, 128}) {
    for (int bits : {2, 4}) {
      DYNAMIC_SECTION("w" << bits << " block " << block) {
        const std::string nbits = absl::StrCat("w", bits, "a32 block ", block);
        Choice choice;
        std::vector<model::LayerPlan> plan;
        int matmuls = 0;
        for (size_t i = 0; i < problem->details.size(); ++i) {
          const bool blocks = Find(*problem, i, nbits) != nullptr;
          matmuls += blocks;
          const std::vector<LayerOption>& layer_options = problem->table.layers[i].options;
          const auto it = std::find_if(layer_options.begin(), layer_options.end(), [&](const LayerOption& o) {
            return o.label == (blocks ? nbits : std::string("w8a32"));
          });
          REQUIRE(it != layer_options.end());
          choice.push_back(static_cast<uint16_t>(it - layer_options.begin()));
          plan.push_back(LayerPlanOf(problem->details[i][choice.back()].option));
        }
        CHECK(matmuls == 9);
        const absl::StatusOr<ObjectiveValues> predicted = Evaluate(problem->table, choice);
        REQUIRE(predicted.ok());
        model::ExportOptions export_options;
        export_options.shape_probe = runtime::OnnxRuntimeShapeProbe();  // the file is at opset 9
        absl::StatusOr<model::ExportedModel> file = model::ExportModel(model, plan, {}, export_options);
        INFO(file.status().ToString());
        REQUIRE(file.ok());
        INFO("predicted " << predicted->size << " B, file " << file->bytes.size() << " B");
        // The export here carries no job, device or candidate metadata (the search counts 120 bytes).
        CHECK(predicted->size - 120 == Approx(static_cast<double>(file->bytes.size())).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("PP-OCRv4 rec's CTC head keeps every output channel: no option prunes what reaches the output", "[problem]") {
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 320};
  const model::LoadedModel model =
      model::testing::MustLoad(model::testing::ReadCachedModel("bench/ppocrv4_rec.onnx"), options);
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.grid.weight_bits = {8, 16};
  in.grid.activation_bits = {8, 16};
  in.grid.patterns = {dp::Sparsity::kOutputChannel};
  in.grid.prune_ratios = {0, 0.3};
  in.threads = 2;
  absl::StatusOr<Problem> problem = BuildProblem(in);
  INFO(problem.status().ToString());
  REQUIRE(problem.ok());
  const std::vector<model::ChannelPruningReach> reach = model::AnalyzeChannelPruning(model);
  int heads = 0, prunable = 0;
  for (size_t i = 0; i < model.analysis.layers.size(); ++i) {
    const bool prunes = std::any_of(problem->details[i].begin(), problem->details[i].end(), [](const OptionDetail& d) {
      return d.option.pattern == dp::Sparsity::kOutputChannel && d.option.prune_ratio > 0;
    });
    prunable += prunes;
    if (model.analysis.layers[i].out_channels != 6625) continue;  // the character classes
    ++heads;
    INFO(model.analysis.layers[i].name);
    CHECK_FALSE(prunes);
    CHECK_THAT(reach[i].why_not, Contains("graph output"));
  }
  CHECK(heads == 1);
  CHECK(prunable > 0);  // the grid does prune the layers whose channels stay inside
}

TEST_CASE("PP-OCRv4 det builds a full table on a real device profile", "[problem]") {
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 640, 640};
  const model::LoadedModel model =
      model::testing::MustLoad(model::testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx"), options);
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  in.threads = 2;
  std::vector<double> progress;
  in.on_progress = [&](double f) { progress.push_back(f); };
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  REQUIRE(problem->table.layers.size() == 64);
  CHECK(progress.size() == 64);
  CHECK(progress.back() == 1.0);
  for (size_t i = 0; i < 64; ++i) {
    INFO(problem->table.layers[i].name);
    CHECK(problem->table.layers[i].options.size() > 50);
    // Fewer weight bits never distort less, at the same sparsity.
    double previous = 0;
    for (const char* label : {"fp32", "w8a8", "w6a8", "w5a8", "w4a8", "w3a8", "w2a8"}) {
      const OptionDetail* d = Find(*problem, i, label);
      REQUIRE(d != nullptr);
      CHECK(d->distortion >= previous * 0.999);
      previous = d->distortion;
    }
  }
  CHECK(ValidateOptionTable(problem->table).ok());

  std::atomic<bool> cancelled{true};
  in.cancelled = &cancelled;
  in.on_progress = nullptr;
  CHECK(BuildProblem(in).status().code() == absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace squeeze::search

namespace squeeze::search {
namespace {

TEST_CASE("Uniform baselines and plan summaries", "[plan]") {
  const model::LoadedModel model = SmallModel();
  const dp::Device device = dp::TestDevice();
  auto cost = dp::DeviceCostModel::Create(device, {});
  REQUIRE(cost.ok());
  ProblemInputs in = InputsFor(model, device, **cost);
  absl::StatusOr<Problem> problem = BuildProblem(in);
  REQUIRE(problem.ok());
  std::optional<Choice> int8 = UniformChoice(*problem, 8, 8);
  REQUIRE(int8.has_value());
  CHECK(problem->table.layers[0].options[(*int8)[0]].label == "w8a8");
  CHECK(PlanSummary(*problem, *int8) == "1×int8");
  CHECK_FALSE(UniformChoice(*problem, 7, 8).has_value());

  Choice pruned = {0};
  for (size_t k = 0; k < problem->details[0].size(); ++k) {
    if (problem->table.layers[0].options[k].label == "w4a8 unstructured 30%") pruned[0] = static_cast<uint16_t>(k);
  }
  CHECK(PlanSummary(*problem, pruned) == "1×int4; 30% pruned");

  CHECK(SqnrDb(0.01) == Approx(20));
  CHECK(ErrorOfSqnrDb(30) == Approx(0.001));
  CHECK(std::isinf(SqnrDb(0)));
}

}  // namespace
}  // namespace squeeze::search
