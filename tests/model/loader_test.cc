#include "model/loader.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;
using testing::AddConstantNode;
using testing::AddInitializer;
using testing::Bytes;
using testing::Encoding;
using testing::FloatTensor;
using testing::HalfTensor;
using testing::LayerNamed;
using testing::MustLoad;
using testing::ParseModel;
using testing::Ramp;
using Dims = std::vector<int64_t>;

// Serial per-output-channel reference for weights laid out [channels, rest...].
ChannelStats RowStats(const std::vector<float>& w, int64_t channels) {
  ChannelStats stats;
  const size_t per = w.size() / channels;
  for (int64_t c = 0; c < channels; ++c) {
    float absmax = 0;
    double sum_sq = 0;
    for (size_t i = c * per; i < (c + 1) * per; ++i) {
      absmax = std::max(absmax, std::fabs(w[i]));
      sum_sq += double{w[i]} * w[i];
    }
    stats.absmax.push_back(absmax);
    stats.l2_norm.push_back(static_cast<float>(std::sqrt(sum_sq)));
  }
  return stats;
}

// Conv → Flatten → Gemm (transB) → MatMul, weights as fp32 initializers.
onnx::ModelProto SmallCnn() {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13], producer_name: "handmade", producer_version: "1.0">
    small (float[1,3,8,8] x) => (float[1,5] y) {
      c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w1, b1)
      f = Flatten (c)
      g = Gemm <transB = 1> (f, w2, b2)
      y = MatMul (g, w3)
    }
  )onnx");
  onnx::GraphProto* graph = model.mutable_graph();
  AddInitializer(graph, FloatTensor("w1", {4, 3, 3, 3}));
  AddInitializer(graph, FloatTensor("b1", {4}));
  AddInitializer(graph, FloatTensor("w2", {10, 64}, Encoding::kRaw));
  AddInitializer(graph, FloatTensor("b2", {10}));
  AddInitializer(graph, FloatTensor("w3", {10, 5}));
  return model;
}

TEST_CASE("A model newer than the runtime loads is refused, naming both IR versions", "[model]") {
  onnx::ModelProto model = SmallCnn();
  AnalyzeOptions options;
  options.max_ir_version = 8;
  CHECK(LoadModel(Bytes(model), options).ok());
  model.set_ir_version(int64_t{1} << 40);
  const absl::Status refused = LoadModel(Bytes(model), options).status();
  REQUIRE(refused.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.message()),
             Catch::Matchers::Contains("ir_version 1099511627776") && Catch::Matchers::Contains("at most 8"));
}

// Memory bombs: a few hundred bytes of model whose values need gigabytes.
constexpr char kReduceBomb[] = R"onnx(
  <ir_version: 8, opset_import: ["" : 17]>
  bomb (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
    shape = Constant <value = int64[1] {1000000000}> ()
    big = ConstantOfShape <value = float[1] {1.0}> (shape)
    total = ReduceSum <keepdims = 0> (big)
    xs = Add (x, total)
    w = Constant <value = float[3, 2, 1, 1] {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
    y = Conv (xs, w)
  }
)onnx";

TEST_CASE("A model whose values pass the activation budget is refused before anything runs", "[model][budget]") {
  AnalyzeOptions options;
  options.max_activation_bytes = int64_t{1} << 30;
  // 10^9 floats from ConstantOfShape: refused from the shapes alone, naming the node and the flag.
  const absl::Status bomb = LoadModel(Bytes(ParseModel(kReduceBomb)), options).status();
  REQUIRE(bomb.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(bomb.message()), Contains("3.73 GiB") && Contains("ConstantOfShape") &&
                                              Contains("--max-activation-bytes") && Contains("x=1,2,4,4"));
  // Without a budget it loads: the budget is the only thing that refused it.
  CHECK(LoadModel(Bytes(ParseModel(kReduceBomb)), AnalyzeOptions()).ok());

  // A real model at a shape too large for the budget, and the same model at a normal one.
  const std::string det = testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx");
  REQUIRE_FALSE(det.empty());
  options.input_shapes = {{"x", {1, 3, 4096, 4096}}};
  const absl::Status large = LoadModel(det, options).status();
  REQUIRE(large.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(large.message()), Contains("x=1,3,4096,4096"));
  options.input_shapes = {{"x", {1, 3, 640, 640}}};
  absl::StatusOr<LoadedModel> normal = LoadModel(det, options);
  REQUIRE(normal.ok());
  CHECK(normal->analysis.peak_activation_bytes < options.max_activation_bytes);

  // Dimensions whose product passes int64 saturate instead of wrapping round to a small number.
  onnx::ModelProto huge = ParseModel(kReduceBomb);
  huge.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_t()->set_int64_data(0, INT64_MAX);
  options.input_shapes.clear();
  const absl::Status saturated = LoadModel(Bytes(huge), options).status();
  INFO(saturated.message());
  CHECK(saturated.code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("Inputs the fuzzer made crash no longer do: each is refused or loaded", "[model][fuzz]") {
  // fuzz/regressions/model_load holds every input scripts/fuzz.sh found crashing, once fixed.
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(SQUEEZE_SOURCE_DIR) + "/fuzz/regressions/model_load")) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(entry.path().filename().string());
    AnalyzeOptions options;
    options.max_activation_bytes = int64_t{256} << 20;
    const absl::Status status = LoadModel(bytes, options).status();
    CHECK((status.ok() || status.code() == absl::StatusCode::kInvalidArgument ||
           status.code() == absl::StatusCode::kResourceExhausted));
    ++files;
  }
  CHECK(files >= 1);
  // The first: a Conv input declared with a dimension near INT64_MAX, on which libonnx 1.12's
  // shape inference read out of bounds. Such a dimension is refused by name first.
  onnx::ModelProto model = SmallCnn();
  model.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(2)
      ->set_dim_value(INT64_MAX - 67);
  const absl::Status huge = LoadModel(Bytes(model), AnalyzeOptions()).status();
  CHECK(huge.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(huge.message()), Contains("dimension 2 of") && Contains("at most 2147483647"));
  AnalyzeOptions given;
  given.input_shapes[model.graph().input(0).name()] = {1, 3, int64_t{1} << 40, 8};
  CHECK_THAT(std::string(LoadModel(Bytes(SmallCnn()), given).status().message()), Contains("larger than any tensor"));

  // The second: a rank-3 value computed into a Conv with a rank-4 weight, on which libonnx 1.12's
  // Conv shape inference read out of bounds. The ranks are checked before it runs.
  onnx::ModelProto ranks = testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    ranks (float[2, 4, 4] x) => (float[1, 3, 4, 4] y) {
      one = Constant <value = float {1.0}> ()
      xs = Add (x, one)
      y = Conv (xs, w)
    }
  )onnx");
  testing::AddInitializer(ranks.mutable_graph(),
                          testing::FloatTensor("w", {3, 2, 1, 1}, testing::Encoding::kRaw, testing::Ramp(6)));
  const absl::Status mismatch = LoadModel(Bytes(ranks), AnalyzeOptions()).status();
  CHECK(mismatch.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(mismatch.message()), Contains("its input 'xs' has rank 3 and its weight 'w' rank 4"));
}

TEST_CASE("A small CNN: layers, shapes, MACs and params by hand", "[model]") {
  int probe_calls = 0;
  AnalyzeOptions options;
  options.shape_probe = [&probe_calls](const onnx::ModelProto&, const std::map<std::string, Dims>&,
                                       const std::vector<std::string>&) -> absl::StatusOr<std::map<std::string, Dims>> {
    ++probe_calls;
    return std::map<std::string, Dims>{};
  };
  LoadedModel loaded = MustLoad(SmallCnn(), options);
  const Analysis& a = loaded.analysis;
  CHECK(probe_calls == 0);  // libonnx inferred everything
  CHECK(a.ir_version == 8);
  CHECK(a.opsets == std::map<std::string, int64_t>{{"", 13}});
  CHECK(a.producer == "handmade 1.0");
  CHECK(a.fully_validated);
  CHECK(a.warnings.empty());
  CHECK(a.defaulted_dims.empty());
  CHECK(a.input_shapes.at("x") == Dims{1, 3, 8, 8});
  REQUIRE(a.layers.size() == 3);

  const Layer& conv = a.layers[0];
  CHECK(conv.name == "Conv_0");
  CHECK(conv.op_type == "Conv");
  CHECK(conv.weight_name == "w1");
  CHECK(conv.weight_storage == WeightStorage::kInitializer);
  CHECK(conv.weight_shape == Dims{4, 3, 3, 3});
  CHECK(conv.params == 108);
  CHECK(conv.bias_params == 4);
  CHECK(conv.out_channels == 4);
  CHECK(conv.in_channels == 3);
  CHECK(conv.kernel == Dims{3, 3});
  CHECK(conv.strides == Dims{2, 2});
  CHECK_FALSE(conv.grouped);
  CHECK(conv.input_shape == Dims{1, 3, 8, 8});
  CHECK(conv.output_shape == Dims{1, 4, 4, 4});  // (8 + 2 − 3) / 2 + 1
  CHECK(conv.input_bytes == 3 * 8 * 8 * 4);
  CHECK(conv.output_bytes == 4 * 4 * 4 * 4);
  CHECK(conv.macs == 1 * 4 * 4 * 4 * 3 * 9);  // N·Cout·Hout·Wout·Cin·kh·kw
  CHECK(conv.shape_source == ShapeSource::kInferred);
  const ChannelStats expected = RowStats(Ramp(108), 4);
  CHECK(conv.stats.absmax == expected.absmax);
  CHECK(conv.stats.l2_norm == expected.l2_norm);

  const Layer& gemm = a.layers[1];
  CHECK(gemm.name == "Gemm_2");
  CHECK(gemm.input_shape == Dims{1, 64});
  CHECK(gemm.output_shape == Dims{1, 10});
  CHECK(gemm.in_channels == 64);
  CHECK(gemm.out_channels == 10);
  CHECK(gemm.macs == 1 * 64 * 10);
  CHECK(gemm.bias_params == 10);
  CHECK(gemm.stats.absmax.size() == 10);

  const Layer& matmul = a.layers[2];
  CHECK(matmul.name == "MatMul_3");
  CHECK(matmul.macs == 1 * 10 * 5);
  CHECK(matmul.bias_params == 0);
  CHECK(matmul.output_shape == Dims{1, 5});

  CHECK(a.total_params == 108 + 640 + 50);
  CHECK(a.total_macs == 1728 + 640 + 50);
  CHECK(a.compressible_weight_bytes == (108 + 640 + 50) * 4);
  CHECK(a.other_initializer_bytes == (4 + 10) * 4);
  CHECK(a.op_histogram == std::map<std::string, int64_t>{{"Conv", 1}, {"Flatten", 1}, {"Gemm", 1}, {"MatMul", 1}});
  CHECK(a.uncompressed_ops == std::map<std::string, int64_t>{{"Flatten", 1}});

  // The canonical proto records libonnx's inferences.
  bool recorded = false;
  for (const onnx::ValueInfoProto& info : loaded.proto.graph().value_info()) recorded |= info.name() == "c";
  CHECK(recorded);
}

TEST_CASE("Gemm honours transA and transB, and batched MatMul counts every batch", "[model]") {
  SECTION("transA, B as [K, N]") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[8,6] a) => (float[6,5] y) {
        y = Gemm <transA = 1> (a, b)
      }
    )onnx");
    std::vector<float> b(40);
    for (int i = 0; i < 40; ++i) b[i] = static_cast<float>(i);
    AddInitializer(model.mutable_graph(), FloatTensor("b", {8, 5}, Encoding::kTyped, b));
    const Layer layer = MustLoad(model).analysis.layers.at(0);
    CHECK(layer.macs == 6 * 8 * 5);  // M = 6, K = 8, N = 5
    CHECK(layer.in_channels == 8);
    CHECK(layer.out_channels == 5);
    // Output channel n is column n of B: n, n + 5, ..., n + 35.
    REQUIRE(layer.stats.absmax.size() == 5);
    CHECK(layer.stats.absmax[0] == 35);
    CHECK(layer.stats.absmax[4] == 39);
    CHECK(layer.stats.l2_norm[0] == Approx(std::sqrt(3500.0)));
  }
  SECTION("transB, B as [N, K]") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[6,8] a) => (float[6,5] y) {
        y = Gemm <transB = 1> (a, b)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("b", {5, 8}));
    const Layer layer = MustLoad(model).analysis.layers.at(0);
    CHECK(layer.macs == 6 * 8 * 5);
    CHECK(layer.stats.absmax == RowStats(Ramp(40), 5).absmax);
  }
  SECTION("MatMul over batch dims") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[2,3,4,6] a) => (float[2,3,4,7] y) {
        y = MatMul (a, w)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {6, 7}));
    const Layer layer = MustLoad(model).analysis.layers.at(0);
    CHECK(layer.macs == 2 * 3 * 4 * 6 * 7);
    CHECK(layer.out_channels == 7);
    CHECK(layer.stats.absmax.size() == 7);
    CHECK(layer.shape_source == ShapeSource::kDeclared);
  }
}

TEST_CASE("Grouped, depthwise and transposed convolutions", "[model]") {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,4,8,8] x) => (float[1,6,16,16] y) {
      d = Conv <group = 4, pads = [1, 1, 1, 1]> (x, wd)
      p = Conv <group = 2> (d, wp)
      y = ConvTranspose <group = 2, strides = [2, 2]> (p, wt)
    }
  )onnx");
  AddInitializer(model.mutable_graph(), FloatTensor("wd", {4, 1, 3, 3}));
  AddInitializer(model.mutable_graph(), FloatTensor("wp", {8, 2, 1, 1}));
  // wt[ci, j, :, :] = 10·ci + j.
  std::vector<float> wt;
  for (int ci = 0; ci < 8; ++ci) {
    for (int j = 0; j < 3; ++j) wt.insert(wt.end(), 4, static_cast<float>(10 * ci + j));
  }
  AddInitializer(model.mutable_graph(), FloatTensor("wt", {8, 3, 2, 2}, Encoding::kRaw, wt));
  const Analysis a = MustLoad(model).analysis;
  REQUIRE(a.layers.size() == 3);

  const Layer& depthwise = a.layers[0];
  CHECK(depthwise.groups == 4);
  CHECK(depthwise.grouped);
  CHECK(depthwise.depthwise);
  CHECK(depthwise.in_channels == 4);
  CHECK(depthwise.macs == 1 * 4 * 8 * 8 * 1 * 9);

  const Layer& grouped = a.layers[1];
  CHECK(grouped.grouped);
  CHECK_FALSE(grouped.depthwise);
  CHECK(grouped.in_channels == 4);
  CHECK(grouped.out_channels == 8);
  CHECK(grouped.macs == 1 * 8 * 8 * 8 * 2 * 1);

  const Layer& transposed = a.layers[2];
  CHECK(transposed.op_type == "ConvTranspose");
  CHECK(transposed.grouped);
  CHECK(transposed.in_channels == 8);
  CHECK(transposed.out_channels == 6);
  CHECK(transposed.output_shape == Dims{1, 6, 16, 16});
  CHECK(transposed.macs == 1 * 8 * 8 * 8 * 3 * 4);  // N·Cin·Hin·Win·(Cout/g)·kh·kw
  CHECK(a.total_macs == depthwise.macs + grouped.macs + transposed.macs);
  // Output channel g·3 + j reads wt[4g .. 4g+3, j].
  REQUIRE(transposed.stats.absmax.size() == 6);
  CHECK(transposed.stats.absmax[0] == 30);  // ci = 3, j = 0
  CHECK(transposed.stats.absmax[4] == 71);  // ci = 7, j = 1
  CHECK(transposed.stats.l2_norm[4] == Approx(2 * std::sqrt(41.0 * 41 + 51 * 51 + 61 * 61 + 71 * 71)));
}

TEST_CASE("Weights in Constant nodes and initializers, fp32 and fp16, raw and typed", "[model]") {
  SECTION("fp32 Constant nodes") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[1,3,6,6] x) => (float[1,2,4,4] y) {
        c = Conv (x, w_raw)
        y = Conv <pads = [1, 1, 1, 1]> (c, w_typed)
      }
    )onnx");
    AddConstantNode(model.mutable_graph(), "w_raw", FloatTensor("", {4, 3, 3, 3}, Encoding::kRaw));
    AddConstantNode(model.mutable_graph(), "w_typed", FloatTensor("", {2, 4, 3, 3}, Encoding::kTyped));
    const Analysis a = MustLoad(model).analysis;
    REQUIRE(a.layers.size() == 2);
    for (const Layer& layer : a.layers) {
      CHECK(layer.weight_storage == WeightStorage::kConstantNode);
      CHECK(layer.weight_elem_type == onnx::TensorProto::FLOAT);
    }
    CHECK(a.layers[0].weight_name == "w_raw");
    CHECK(a.layers[0].stats.absmax == RowStats(Ramp(108), 4).absmax);
    CHECK(a.layers[1].stats.l2_norm == RowStats(Ramp(72), 2).l2_norm);
    CHECK(a.layers[1].macs == 1 * 2 * 4 * 4 * 4 * 9);
    CHECK(a.op_histogram.at("Constant") == 2);
    CHECK(a.uncompressed_ops.empty());
  }
  SECTION("fp16 initializer in raw_data and Constant in int32_data") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float16[2,16] x) => (float16[2,4] y) {
        h = MatMul (x, w_init)
        y = MatMul (h, w_const)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), HalfTensor("w_init", {16, 8}, Encoding::kRaw));
    AddConstantNode(model.mutable_graph(), "w_const", HalfTensor("", {8, 4}, Encoding::kTyped));
    const Analysis a = MustLoad(model).analysis;
    REQUIRE(a.layers.size() == 2);
    const Layer& first = a.layers[0];
    CHECK(first.weight_elem_type == onnx::TensorProto::FLOAT16);
    CHECK(first.weight_storage == WeightStorage::kInitializer);
    CHECK(first.input_bytes == 2 * 16 * 2);  // fp16 activations
    CHECK(first.macs == 2 * 16 * 8);
    // Channel n of a [16, 8] MatMul weight is column n; Ramp values survive fp16 exactly.
    std::vector<float> w = Ramp(128);
    float absmax0 = 0;
    for (int k = 0; k < 16; ++k) absmax0 = std::max(absmax0, std::fabs(w[k * 8]));
    CHECK(first.stats.absmax.at(0) == absmax0);
    const Layer& second = a.layers[1];
    CHECK(second.weight_storage == WeightStorage::kConstantNode);
    CHECK(second.weight_elem_type == onnx::TensorProto::FLOAT16);
    CHECK(second.params == 32);
    CHECK(a.compressible_weight_bytes == (128 + 32) * 2);
  }
}

TEST_CASE("Layers inside If branches and a Loop body, with outer-scope weights", "[model]") {
  SECTION("If") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      branches (float[1,3,8,8] x, bool cond) => (float[1,4,6,6] y) {
        y = If (cond) <
          then_branch = then_graph () => (float[1,4,6,6] ty) { ty = Conv (x, w) },
          else_branch = else_graph () => (float[1,4,6,6] ey) { ey = Conv (x, w2) }>
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
    AddConstantNode(testing::Subgraph(&model, 0, "else_branch"), "w2", HalfTensor("", {4, 3, 3, 3}));
    // The fp16 weight would not type-check in a runtime; the analysis does not mind.
    const LoadedModel loaded = MustLoad(model);
    const Analysis& a = loaded.analysis;
    REQUIRE(a.layers.size() == 2);
    const Layer& then_conv = LayerNamed(a, "If_0/then_branch/Conv_0");
    CHECK(then_conv.subgraph == "If_0/then_branch");
    CHECK(then_conv.weight_storage == WeightStorage::kInitializer);
    CHECK(then_conv.macs == 1 * 4 * 6 * 6 * 3 * 9);
    CHECK(then_conv.shape_source == ShapeSource::kDeclared);
    const Layer& else_conv = LayerNamed(a, "If_0/else_branch/Conv_1");
    CHECK(else_conv.weight_storage == WeightStorage::kConstantNode);
    CHECK(else_conv.weight_elem_type == onnx::TensorProto::FLOAT16);
    CHECK(else_conv.macs == then_conv.macs);
    CHECK(a.op_histogram == std::map<std::string, int64_t>{{"Conv", 2}, {"Constant", 1}, {"If", 1}});
    CHECK(a.uncompressed_ops == std::map<std::string, int64_t>{{"If", 1}});
    CHECK(a.input_shapes.at("cond").empty());  // a scalar
  }
  SECTION("Loop") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      looped (float[1,4,8,8] x) => (float[1,4,8,8] y) {
        trip = Constant <value = int64 {3}> ()
        keep = Constant <value = bool {1}> ()
        y = Loop (trip, keep, x) <body = body (int64 i, bool c, float[1,4,8,8] s) => (bool c_out, float[1,4,8,8] s_out) {
          c_out = Identity (c)
          s_out = Conv <pads = [1, 1, 1, 1]> (s, w)
        }>
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 4, 3, 3}));
    const Analysis a = MustLoad(model).analysis;
    REQUIRE(a.layers.size() == 1);
    const Layer& conv = a.layers[0];
    CHECK(conv.name == "Loop_2/body/Conv_1");
    CHECK(conv.input_shape == Dims{1, 4, 8, 8});
    CHECK(conv.macs == 1 * 4 * 8 * 8 * 4 * 9);
  }
}

TEST_CASE("An IR 3 model lists its initializers among the inputs", "[model]") {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 3, opset_import: ["" : 9]>
    g (float[N,3,8,8] x, float[4,3,3,3] w) => (float[N,4,6,6] y) {
      y = Conv (x, w)
    }
  )onnx");
  AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
  const Analysis a = MustLoad(model).analysis;
  CHECK(a.input_shapes == std::map<std::string, Dims>{{"x", {1, 3, 8, 8}}});  // w is no input to give
  REQUIRE(a.layers.size() == 1);
  CHECK(a.layers[0].weight_storage == WeightStorage::kInitializer);
  CHECK(a.layers[0].macs == 1 * 4 * 6 * 6 * 3 * 9);
}

TEST_CASE("Every node gets a unique name", "[model]") {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,8] x) => (float[1,8] y) {
      a = MatMul (x, w)
      b = Relu (a)
      c = MatMul (b, w)
      y = Relu (c)
    }
  )onnx");
  AddInitializer(model.mutable_graph(), FloatTensor("w", {8, 8}));
  model.mutable_graph()->mutable_node(0)->set_name("fc");
  model.mutable_graph()->mutable_node(1)->set_name("fc");        // duplicate
  model.mutable_graph()->mutable_node(3)->set_name("MatMul_2");  // taken before the generated one
  const LoadedModel loaded = MustLoad(model);
  std::vector<std::string> names;
  for (const onnx::NodeProto& node : loaded.proto.graph().node()) names.push_back(node.name());
  CHECK(names == std::vector<std::string>{"fc", "Relu_1", "MatMul_2_1", "MatMul_2"});
  REQUIRE(loaded.analysis.layers.size() == 2);
  CHECK(loaded.analysis.layers[1].name == "MatMul_2_1");
  // One weight shared by two layers is stored once.
  CHECK(loaded.analysis.total_params == 128);
  CHECK(loaded.analysis.compressible_weight_bytes == 64 * 4);
}

onnx::ModelProto SymbolicConv() {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N,3,H,W] x) => (float[N,4,A,B] y) {
      y = Conv <pads = [1, 1, 1, 1]> (x, w)
    }
  )onnx");
  AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
  return model;
}

TEST_CASE("Symbolic input dims: given shapes, the batch default, and what cannot be guessed", "[model]") {
  SECTION("H and W cannot be guessed") {
    absl::StatusOr<LoadedModel> loaded = LoadModel(Bytes(SymbolicConv()), {});
    REQUIRE(loaded.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(loaded.status().message());
    CHECK_THAT(message, Contains("input 'x'"));
    CHECK_THAT(message, Contains("2 'H', 3 'W'"));
    CHECK_THAT(message, Contains("--input-shape x=d0,d1,d2,d3"));
  }
  SECTION("a given shape") {
    AnalyzeOptions options;
    options.input_shapes["x"] = {2, 3, 16, 12};
    const Analysis a = MustLoad(SymbolicConv(), options).analysis;
    CHECK(a.defaulted_dims.empty());
    CHECK(a.input_shapes.at("x") == Dims{2, 3, 16, 12});
    CHECK(a.layers.at(0).output_shape == Dims{2, 4, 16, 12});
    CHECK(a.layers.at(0).macs == 2 * 4 * 16 * 12 * 3 * 9);
    CHECK(a.layers.at(0).shape_source == ShapeSource::kInferred);
  }
  SECTION("the batch defaults to 1 and is reported") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[batch,3,8,8] x) => (y) {
        y = Conv (x, w)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
    // An output with no type fails libonnx's checker; give it one of unknown dims.
    onnx::TypeProto_Tensor* type = model.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    for (int i = 0; i < 4; ++i) type->mutable_shape()->add_dim();
    const Analysis a = MustLoad(model).analysis;
    CHECK(a.defaulted_dims == std::vector<std::string>{"x[0] = 1 (batch 'batch')"});
    CHECK(a.input_shapes.at("x") == Dims{1, 3, 8, 8});
    CHECK(a.layers.at(0).macs == 1 * 4 * 6 * 6 * 3 * 9);
  }
  SECTION("a given shape of the wrong rank") {
    AnalyzeOptions options;
    options.input_shapes["x"] = {1, 3, 16};
    absl::Status status = LoadModel(Bytes(SymbolicConv()), options).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("input 'x' has rank 4"));
  }
  SECTION("a given shape that conflicts with a fixed dim") {
    AnalyzeOptions options;
    options.input_shapes["x"] = {1, 4, 16, 16};
    absl::Status status = LoadModel(Bytes(SymbolicConv()), options).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("dimension 1 is fixed at 3"));
  }
  SECTION("a shape for an input the model does not have") {
    AnalyzeOptions options;
    options.input_shapes["image"] = {1, 3, 16, 16};
    absl::Status status = LoadModel(Bytes(SymbolicConv()), options).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("names 'image', but the model's inputs are: x"));
  }
  SECTION("given shapes the graph's shapes do not add up with") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[1,3,H,W] x, float[1,3,8,8] z) => (float[1,4,H,W] y) {
        c = Concat <axis = 1> (x, z)
        y = Conv <pads = [1, 1, 1, 1]> (c, w)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 6, 3, 3}));
    AnalyzeOptions options;
    options.input_shapes["x"] = {1, 3, 9, 8};
    absl::Status status = LoadModel(Bytes(model), options).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("shape inference fails with inputs x=[1,3,9,8]"));
    CHECK_THAT(std::string(status.message()), Contains("Concat"));
    options.input_shapes["x"] = {1, 3, 8, 8};
    CHECK(MustLoad(model, options).analysis.layers.at(0).macs == 1 * 4 * 8 * 8 * 6 * 9);
  }
}

// x → <op libonnx 1.12 does not know> → Conv, at ai.onnx opset 18.
onnx::ModelProto MishThenConv() {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,3,8,8] x) => (float[1,4,6,6] y) {
      m = Mish (x)
      y = Conv (m, w)
    }
  )onnx");
  AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
  return model;
}

bool AnyContains(const std::vector<std::string>& lines, const std::string& part) {
  for (const std::string& line : lines) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("Models ONNX Runtime loads are accepted: unsorted nodes, an opset-18 Split inside an If", "[model]") {
  SECTION("nodes out of order are sorted, as ONNX Runtime sorts them") {
    onnx::ModelProto model = SmallCnn();
    const LoadedModel sorted = MustLoad(model);
    auto* nodes = model.mutable_graph()->mutable_node();
    std::reverse(nodes->begin(), nodes->end());
    const LoadedModel loaded = MustLoad(model);
    REQUIRE(loaded.analysis.layers.size() == sorted.analysis.layers.size());
    for (size_t i = 0; i < sorted.analysis.layers.size(); ++i) {
      CHECK(loaded.analysis.layers[i].macs == sorted.analysis.layers[i].macs);
    }
    CHECK(loaded.analysis.total_macs == sorted.analysis.total_macs);
    CHECK(AnyContains(loaded.analysis.warnings, "not in topological order"));
    // A graph that no order can run (a cycle) is still refused.
    onnx::ModelProto cyclic = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[1,3,8,8] x) => (float[1,3,8,8] y) {
        a = Add (x, b)
        b = Relu (a)
        y = Identity (b)
      }
    )onnx");
    const absl::Status cycle = LoadModel(Bytes(cyclic), AnalyzeOptions()).status();
    CHECK(cycle.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(cycle.message()), Contains("cycle"));
  }
  SECTION("an If whose branches use Split's opset-18 num_outputs") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 18]>
      g (float[1,2,4,4] x, bool c) => (float[1,3,4,4] y) {
        s = If (c) <
          then_branch = t () => (float[1,1,4,4] o) { a, b = Split <axis = 1, num_outputs = 2> (x)  o = Add (a, b) },
          else_branch = e () => (float[1,1,4,4] o2) { p, q = Split <axis = 1, num_outputs = 2> (x)  o2 = Sub (p, q) }
        >
        y = Conv (s, w)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {3, 1, 1, 1}));
    const LoadedModel loaded = MustLoad(model);
    // The Conv is found; the If's output shape is left to the shape probe (the server's), as
    // libonnx cannot follow the If it could not check.
    REQUIRE(loaded.analysis.layers.size() == 1);
    CHECK(loaded.analysis.layers[0].op_type == "Conv");
    CHECK(AnyContains(loaded.analysis.warnings, "libonnx cannot check node 'If_0'"));
  }
}

TEST_CASE("IR versions and opsets newer than libonnx knows", "[model]") {
  SECTION("IR 10, opset 21: checked as far as libonnx can") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 10, opset_import: ["" : 21]>
      g (float[1,3,8,8] x) => (float[1,4,6,6] y) {
        y = Conv (x, w)
      }
    )onnx");
    AddConstantNode(model.mutable_graph(), "w", FloatTensor("", {4, 3, 3, 3}, Encoding::kRaw));
    const LoadedModel loaded = MustLoad(model);
    const Analysis& a = loaded.analysis;
    CHECK_FALSE(a.fully_validated);
    CHECK(AnyContains(a.warnings, "IR version 10 is newer than libonnx knows (8)"));
    CHECK(AnyContains(a.warnings, "opset ai.onnx 21 is newer than libonnx knows (17)"));
    CHECK(a.ir_version == 10);
    CHECK(loaded.proto.ir_version() == 10);  // the canonical model keeps its version
    REQUIRE(a.layers.size() == 1);
    CHECK(a.layers[0].macs == 1 * 4 * 6 * 6 * 3 * 9);
  }
  SECTION("an op libonnx does not know, and no shape probe") {
    const Analysis a = MustLoad(MishThenConv()).analysis;
    CHECK_FALSE(a.fully_validated);
    CHECK(AnyContains(a.warnings, "libonnx cannot check node 'Mish_0' (Mish) at ai.onnx opset 18: No Op registered"));
    CHECK(AnyContains(a.warnings, "Conv 'Conv_1': the shape of its input 'm' is unknown"));
    CHECK(AnyContains(a.warnings, "no shape probe was given"));
    REQUIRE(a.layers.size() == 1);
    CHECK(a.layers[0].shape_source == ShapeSource::kUnknown);
    CHECK(a.layers[0].macs == 0);
    CHECK(a.layers[0].params == 108);  // the weight is analysed all the same
    CHECK(a.layers[0].stats.absmax.size() == 4);
  }
  SECTION("the shape probe fills in what inference cannot, and it is recorded") {
    std::vector<std::string> asked;
    std::map<std::string, Dims> given;
    AnalyzeOptions options;
    options.shape_probe = [&](const onnx::ModelProto& model, const std::map<std::string, Dims>& input_shapes,
                              const std::vector<std::string>& names) -> absl::StatusOr<std::map<std::string, Dims>> {
      CHECK(model.graph().node(0).op_type() == "Mish");  // the canonical model, not libonnx's copy
      CHECK(model.graph().node(0).domain().empty());
      asked = names;
      given = input_shapes;
      return std::map<std::string, Dims>{{"m", {1, 3, 8, 8}}};
    };
    const Analysis a = MustLoad(MishThenConv(), options).analysis;
    CHECK(asked == std::vector<std::string>{"m"});  // y is declared
    CHECK(given == std::map<std::string, Dims>{{"x", {1, 3, 8, 8}}});
    REQUIRE(a.layers.size() == 1);
    CHECK(a.layers[0].shape_source == ShapeSource::kOnnxRuntime);
    CHECK(a.layers[0].input_shape == Dims{1, 3, 8, 8});
    CHECK(a.layers[0].macs == 1 * 4 * 6 * 6 * 3 * 9);
    CHECK_FALSE(AnyContains(a.warnings, "unknown"));
  }
  SECTION("a failing probe is a warning") {
    AnalyzeOptions options;
    options.shape_probe = [](const onnx::ModelProto&, const std::map<std::string, Dims>&,
                             const std::vector<std::string>&) -> absl::StatusOr<std::map<std::string, Dims>> {
      return absl::UnavailableError("no runtime here");
    };
    const Analysis a = MustLoad(MishThenConv(), options).analysis;
    CHECK(AnyContains(a.warnings, "the shape probe failed: UNAVAILABLE: no runtime here"));
    CHECK(a.layers.at(0).shape_source == ShapeSource::kUnknown);
  }
  SECTION("an op whose definition changed after libonnx's opset is kept out of inference") {
    // ReduceMean takes its axes as an input from opset 18; libonnx 1.12 knows only the attribute.
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 18]>
      g (float[1,3,8,8] x) => (float[1,4,6,6] y) {
        axes = Constant <value = int64[1] {3}> ()
        r = ReduceMean <keepdims = 1> (x, axes)
        t = Tile (r, reps)
        y = Conv (t, w)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
    onnx::TensorProto reps;
    reps.set_name("reps");
    reps.set_data_type(onnx::TensorProto::INT64);
    reps.add_dims(4);
    for (int64_t r : {1, 1, 1, 8}) reps.add_int64_data(r);
    AddInitializer(model.mutable_graph(), reps);
    std::vector<std::string> asked;
    AnalyzeOptions options;
    options.shape_probe = [&](const onnx::ModelProto&, const std::map<std::string, Dims>&,
                              const std::vector<std::string>& names) -> absl::StatusOr<std::map<std::string, Dims>> {
      asked = names;
      return std::map<std::string, Dims>{{"t", {1, 3, 8, 8}}};
    };
    const Analysis a = MustLoad(model, options).analysis;
    CHECK(AnyContains(a.warnings, "libonnx cannot check node 'ReduceMean_1' (ReduceMean) at ai.onnx opset 18"));
    CHECK(asked == std::vector<std::string>{"t"});
    CHECK(a.layers.at(0).shape_source == ShapeSource::kOnnxRuntime);
  }
  SECTION("subgraph layers reading a main-graph value get it from the probe too") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 18]>
      g (float[1,3,8,8] x, bool cond) => (float[1,4,A,B] y) {
        m = Mish (x)
        y = If (cond) <
          then_branch = then_graph () => (float[1,4,A,B] ty) { ty = Conv (m, w) },
          else_branch = else_graph () => (float[1,4,A,B] ey) { e = Relu (m) ey = Conv (e, w) }>
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 3, 3, 3}));
    const Analysis without = MustLoad(model).analysis;
    CHECK(AnyContains(without.warnings,
                      "Conv 'If_1/then_branch/Conv_0': the shape of its input 'm' and output 'ty' is "
                      "unknown (libonnx cannot infer it; values inside subgraphs cannot be probed)"));

    std::vector<std::string> asked;
    AnalyzeOptions options;
    options.shape_probe = [&](const onnx::ModelProto&, const std::map<std::string, Dims>&,
                              const std::vector<std::string>& names) -> absl::StatusOr<std::map<std::string, Dims>> {
      asked = names;
      return std::map<std::string, Dims>{{"m", {1, 3, 8, 8}}};
    };
    const Analysis a = MustLoad(model, options).analysis;
    CHECK(asked == std::vector<std::string>{"m"});  // the branches' values are not the main graph's
    // Inference runs again from the measured 'm' and reaches into both branches.
    REQUIRE(a.layers.size() == 2);
    CHECK(a.layers[0].shape_source == ShapeSource::kOnnxRuntime);  // reads 'm' itself
    CHECK(a.layers[1].shape_source == ShapeSource::kInferred);     // reads Relu(m)
    for (const Layer& layer : a.layers) {
      INFO(layer.name);
      CHECK(layer.output_shape == Dims{1, 4, 6, 6});
      CHECK(layer.macs == 1 * 4 * 6 * 6 * 3 * 9);
    }
    CHECK_FALSE(AnyContains(a.warnings, "unknown"));
  }
  SECTION("an unknown op at an opset libonnx knows is an error") {
    onnx::ModelProto model = MishThenConv();
    model.mutable_opset_import(0)->set_version(17);
    absl::Status status = LoadModel(Bytes(model), {}).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("fails ONNX validation: No Op registered for Mish"));
  }
}

TEST_CASE("Bad models are rejected with a precise reason", "[model]") {
  auto expect = [](const std::string& bytes, const std::string& part, const AnalyzeOptions& options = {}) {
    absl::Status status = LoadModel(bytes, options).status();
    INFO(status.ToString());
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains(part));
  };
  const std::string good = Bytes(SmallCnn());
  MustLoad(good);

  SECTION("empty") { expect("", "the model is empty"); }
  SECTION("not ONNX") {
    expect("definitely not onnx", "not an ONNX model");
    expect(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\0'), "not an ONNX model");
    onnx::GraphProto graph = SmallCnn().graph();  // protobuf, but a GraphProto
    expect(graph.SerializeAsString(), "not an ONNX model: at byte 0, field 1 (ir_version) has wire type 2");
  }
  SECTION("truncated") {
    expect(good.substr(0, good.size() / 2), "the model is truncated: field 7 (graph)");
    expect(good.substr(0, good.size() - 1), "the model is truncated");
  }
  SECTION("a graph that fails validation") {
    onnx::ModelProto model = SmallCnn();
    model.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
    expect(Bytes(model), "the model fails ONNX validation: Nodes in a graph must be topologically sorted");
    model = SmallCnn();
    model.clear_ir_version();
    expect(Bytes(model), "the model fails ONNX validation");
    model = SmallCnn();
    model.mutable_graph()->mutable_node(1)->add_input("c");  // Flatten takes one input
    expect(Bytes(model), "has input size 2 not in range");
  }
  SECTION("NaN and Inf in weights") {
    onnx::ModelProto model = SmallCnn();
    model.mutable_graph()->mutable_initializer(0)->set_float_data(5, std::nanf(""));
    expect(Bytes(model), "tensor 'w1' (the weight of Conv 'Conv_0') holds non-finite values: 1 NaN");
    model = SmallCnn();
    model.mutable_graph()->mutable_initializer(3)->set_float_data(0, -INFINITY);  // b2, Gemm's bias
    expect(Bytes(model), "tensor 'b2' (the bias of Gemm 'Gemm_2') holds non-finite values: 1 infinite");
    model = SmallCnn();
    std::string* raw = model.mutable_graph()->mutable_initializer(2)->mutable_raw_data();  // w2, raw
    const float inf = INFINITY;
    raw->replace(4 * 7, 4, reinterpret_cast<const char*>(&inf), 4);
    expect(Bytes(model), "tensor 'w2' (the weight of Gemm 'Gemm_2') holds non-finite values: 1 infinite");
    // fp16 NaN in a Constant node.
    onnx::ModelProto half = MishThenConv();
    half.mutable_opset_import(0)->set_version(13);
    half.mutable_graph()->mutable_node(0)->set_op_type("Relu");
    half.mutable_graph()->clear_initializer();
    onnx::TensorProto w = HalfTensor("", {4, 3, 3, 3});
    w.set_int32_data(100, 0x7e00);
    AddConstantNode(half.mutable_graph(), "w", w);
    expect(Bytes(half), "tensor 'w' (the weight of Conv 'Conv_2') holds non-finite values: 1 NaN");
  }
  SECTION("NaN in another constant; Inf there is fine") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[1,4] x) => (float[1,4] y) {
        h = MatMul (x, w)
        y = Max (h, floor)
      }
    )onnx");
    AddInitializer(model.mutable_graph(), FloatTensor("w", {4, 4}));
    AddInitializer(model.mutable_graph(), FloatTensor("floor", {4}, Encoding::kTyped, {-INFINITY, 0, 1, 2}));
    MustLoad(model);
    model.mutable_graph()->mutable_initializer(1)->set_float_data(0, std::nanf(""));
    expect(Bytes(model), "tensor 'floor' holds non-finite values: 1 NaN");
  }
  SECTION("tensor data that does not match the shape") {
    onnx::ModelProto model = SmallCnn();
    model.mutable_graph()->mutable_initializer(2)->mutable_raw_data()->resize(2556);
    expect(Bytes(model), "tensor 'w2' has 2556 bytes of raw_data, but its shape [10,64] of float needs 2560");
    model = SmallCnn();
    model.mutable_graph()->mutable_initializer(0)->mutable_float_data()->RemoveLast();
    expect(Bytes(model), "tensor 'w1' has 107 values in float_data, but its shape [4,3,3,3] of float needs 108");
    model = SmallCnn();
    model.mutable_graph()->mutable_initializer(1)->add_dims(2);
    expect(Bytes(model), "tensor 'b1' has 4 values in float_data, but its shape [4,2] of float needs 8");
    onnx::ModelProto half = MishThenConv();
    half.mutable_graph()->clear_initializer();
    onnx::TensorProto w = HalfTensor("", {4, 3, 3, 3});
    w.add_int32_data(0);
    AddConstantNode(half.mutable_graph(), "w", w);
    expect(Bytes(half), "tensor 'w' has 109 values in int32_data, but its shape [4,3,3,3] of float16 needs 108");
  }
  SECTION("a tensor attribute of another op") {
    onnx::ModelProto model = SmallCnn();
    onnx::NodeProto* fill = model.mutable_graph()->add_node();
    fill->set_op_type("ConstantOfShape");
    fill->add_input("shape");
    fill->add_output("filled");
    onnx::AttributeProto* value = fill->add_attribute();
    value->set_name("value");
    value->set_type(onnx::AttributeProto::TENSOR);
    *value->mutable_t() = FloatTensor("", {1});
    value->mutable_t()->add_float_data(2);
    expect(Bytes(model), "tensor 'ConstantOfShape_4.value' has 2 values in float_data");
  }
  SECTION("weights in an external file") {
    onnx::ModelProto model = SmallCnn();
    onnx::TensorProto* w = model.mutable_graph()->mutable_initializer(0);
    w->clear_float_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    onnx::StringStringEntryProto* location = w->add_external_data();
    location->set_key("location");
    location->set_value("weights.bin");
    expect(Bytes(model), "tensor 'w1' keeps its data in an external file");
  }
  SECTION("no compressible layer") {
    onnx::ModelProto model = ParseModel(R"onnx(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[2,4] a, float[4,3] b) => (float[2,3] y) {
        p = MatMul (a, b)
        y = Relu (p)
      }
    )onnx");
    expect(Bytes(model), "the model has no compressible layer");
    expect(Bytes(model), "its ops: MatMul 1, Relu 1");
  }
  SECTION("a layer weight that cannot be one") {
    onnx::ModelProto model = SmallCnn();
    model.mutable_graph()->mutable_initializer(0)->clear_dims();
    model.mutable_graph()->mutable_initializer(0)->add_dims(4);
    model.mutable_graph()->mutable_initializer(0)->add_dims(27);
    expect(Bytes(model), "Conv 'Conv_0': weight 'w1' [4,27] has rank 2");
  }
  SECTION("negative threads") {
    AnalyzeOptions options;
    options.threads = -1;
    expect(good, "threads", options);
  }
}

TEST_CASE("Weight statistics do not depend on the thread count", "[model]") {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,32,16,16] x) => (float[1,256] y) {
      c = Conv <pads = [1, 1, 1, 1]> (x, wc)
      p = GlobalAveragePool (c)
      f = Flatten (p)
      y = MatMul (f, wm)
    }
  )onnx");
  std::mt19937 rng(20240601);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
  };
  const std::vector<float> wc = random(64 * 32 * 3 * 3);
  AddInitializer(model.mutable_graph(), FloatTensor("wc", {64, 32, 3, 3}, Encoding::kRaw, wc));
  AddInitializer(model.mutable_graph(), FloatTensor("wm", {64, 256}, Encoding::kRaw, random(64 * 256)));
  const std::string bytes = Bytes(model);

  std::vector<Analysis> runs;
  for (int threads : {1, 2, 0}) {
    AnalyzeOptions options;
    options.threads = threads;
    runs.push_back(MustLoad(bytes, options).analysis);
  }
  for (const Analysis& run : runs) {
    REQUIRE(run.layers.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(run.layers[i].stats.absmax == runs[0].layers[i].stats.absmax);
      CHECK(run.layers[i].stats.l2_norm == runs[0].layers[i].stats.l2_norm);
    }
  }
  const ChannelStats expected = RowStats(wc, 64);
  CHECK(runs[0].layers[0].stats.absmax == expected.absmax);
  CHECK(runs[0].layers[0].stats.l2_norm == expected.l2_norm);
  CHECK(runs[0].layers[1].stats.absmax.size() == 256);
}

TEST_CASE("ParseInputShape reads NAME=d0,d1,...", "[model]") {
  absl::StatusOr<std::pair<std::string, Dims>> parsed = ParseInputShape("x=1,3,640,640");
  REQUIRE(parsed.ok());
  CHECK(parsed->first == "x");
  CHECK(parsed->second == Dims{1, 3, 640, 640});
  parsed = ParseInputShape("input:0=1,224");  // names may hold anything but the last '='
  REQUIRE(parsed.ok());
  CHECK(parsed->first == "input:0");

  for (const char* bad : {"x", "=1,2", "x=", "x=1,,2", "x=1,0", "x=1,-3", "x=1,a"}) {
    INFO(bad);
    absl::Status status = ParseInputShape(bad).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("NAME=d0,d1,..."));
  }
}

}  // namespace
}  // namespace squeeze::model
