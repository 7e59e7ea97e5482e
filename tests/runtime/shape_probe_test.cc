#include "runtime/shape_probe.h"

#include <onnx/defs/parser.h>

#include <catch2/catch.hpp>

#include "model/loader.h"
#include "tests/model/test_models.h"

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;
using Dims = std::vector<int64_t>;
using model::testing::AddConstantNode;
using model::testing::FloatTensor;
using model::testing::ParseModel;

// x → CenterCropPad (ai.onnx opset 18, which libonnx 1.12 does not know) → Conv, H and W symbolic:
// libonnx cannot tell the Conv's shapes; ONNX Runtime can.
onnx::ModelProto CropThenConv() {
  onnx::ModelProto model = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[N,3,H,W] x) => (float[N,4,A,B] y) {
      size = Constant <value = int64[2] {6, 7}> ()
      m = CenterCropPad <axes = [2, 3]> (x, size)
      y = Conv (m, w)
    }
  )onnx");
  AddConstantNode(model.mutable_graph(), "w", FloatTensor("", {4, 3, 3, 3}));
  return model;
}

TEST_CASE("The ONNX Runtime probe finds the shapes libonnx cannot, and they are recorded", "[runtime]") {
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 10, 10};
  options.shape_probe = OnnxRuntimeShapeProbe();
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(CropThenConv().SerializeAsString(), options);
  INFO(loaded.status().ToString());
  REQUIRE(loaded.ok());
  const model::Analysis& a = loaded->analysis;
  CHECK_FALSE(a.fully_validated);
  REQUIRE(a.layers.size() == 1);
  const model::Layer& conv = a.layers[0];
  CHECK(conv.shape_source == model::ShapeSource::kOnnxRuntime);
  CHECK(conv.input_shape == Dims{1, 3, 6, 7});
  CHECK(conv.output_shape == Dims{1, 4, 4, 5});
  CHECK(conv.macs == 1 * 4 * 4 * 5 * 3 * 9);
  CHECK(a.total_macs == conv.macs);
  for (const std::string& warning : a.warnings) CHECK_THAT(warning, !Contains("unknown"));

  // Without the probe the same layer is left unknown.
  options.shape_probe = nullptr;
  loaded = model::LoadModel(CropThenConv().SerializeAsString(), options);
  REQUIRE(loaded.ok());
  CHECK(loaded->analysis.layers[0].shape_source == model::ShapeSource::kUnknown);
}

TEST_CASE("PP-OCR mobile cls: ONNX Runtime gives the classifier's MatMul its shapes", "[runtime][pp-ocr]") {
  const std::string bytes = model::testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  REQUIRE_FALSE(bytes.empty());
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 192};
  options.shape_probe = OnnxRuntimeShapeProbe();
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(bytes, options);
  INFO(loaded.status().ToString());
  REQUIRE(loaded.ok());
  const model::Analysis& a = loaded->analysis;
  CHECK(a.warnings.empty());
  REQUIRE(a.layers.size() == 54);
  int64_t macs = 0;
  for (const model::Layer& layer : a.layers) {
    CHECK(layer.macs > 0);
    macs += layer.macs;
  }
  CHECK(macs == a.total_macs);
  const model::Layer& fc = a.layers.back();
  CHECK(fc.op_type == "MatMul");
  CHECK(fc.shape_source == model::ShapeSource::kOnnxRuntime);
  CHECK(fc.input_shape == Dims{1, 200});
  CHECK(fc.output_shape == Dims{1, 2});
  CHECK(fc.macs == 200 * 2);
}

TEST_CASE("ProbeShapes reports bad requests as statuses", "[runtime]") {
  const onnx::ModelProto model = CropThenConv();
  SECTION("an input without a shape") {
    absl::Status status = ProbeShapes(model, {}, {"m"}).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("no shape given for input 'x'"));
  }
  SECTION("a value the model does not have") {
    absl::Status status = ProbeShapes(model, {{"x", {1, 3, 10, 10}}}, {"nowhere"}).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("nowhere"));
  }
  SECTION("a graph input is answered from its shape, an existing output is not added twice") {
    absl::StatusOr<std::map<std::string, Dims>> shapes = ProbeShapes(model, {{"x", {2, 3, 12, 12}}}, {"x", "y", "m"});
    INFO(shapes.status().ToString());
    REQUIRE(shapes.ok());
    CHECK(shapes->at("x") == Dims{2, 3, 12, 12});
    CHECK(shapes->at("m") == Dims{2, 3, 6, 7});
    CHECK(shapes->at("y") == Dims{2, 4, 4, 5});
  }
}

}  // namespace
}  // namespace squeeze::runtime
