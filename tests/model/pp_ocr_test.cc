// The real PaddleOCR models (deploy/install-deps.sh puts them in .cache/models): weights in
// Constant nodes, dynamic H and W.
#include <catch2/catch.hpp>
#include <chrono>
#include <set>

#include "model/loader.h"
#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;
using Dims = std::vector<int64_t>;

int64_t Product(const Dims& dims, size_t begin = 0) {
  int64_t p = 1;
  for (size_t i = begin; i < dims.size(); ++i) p *= dims[i];
  return p;
}

// The MAC formulas of DESIGN.md, written out per op from the layer's own shapes.
int64_t ExpectedMacs(const Layer& layer) {
  const Dims& in = layer.input_shape;
  const Dims& out = layer.output_shape;
  const Dims& w = layer.weight_shape;
  if (layer.op_type == "Conv") {
    return out[0] * layer.out_channels * Product(out, 2) * (layer.in_channels / layer.groups) * Product(w, 2);
  }
  if (layer.op_type == "ConvTranspose") {
    return in[0] * layer.in_channels * Product(in, 2) * (layer.out_channels / layer.groups) * Product(w, 2);
  }
  return Product(out, 0) / layer.out_channels * layer.in_channels * layer.out_channels;  // MatMul
}

TEST_CASE("PP-OCRv4 det at 1x3x640x640: 62 Conv and 2 ConvTranspose layers", "[model][pp-ocr]") {
  const std::string bytes = testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx");
  REQUIRE_FALSE(bytes.empty());

  SECTION("H and W must be given") {
    absl::Status status = LoadModel(bytes, {}).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("--input-shape x=d0,d1,d2,d3"));
  }

  AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 640, 640};
  const LoadedModel loaded = testing::MustLoad(bytes, options);
  const Analysis& a = loaded.analysis;
  CHECK(a.fully_validated);
  CHECK(a.warnings.empty());
  CHECK(a.op_histogram.at("Conv") == 62);
  CHECK(a.op_histogram.at("ConvTranspose") == 2);
  REQUIRE(a.layers.size() == 64);

  int64_t convs = 0, transposed = 0, grouped = 0, depthwise = 0, macs = 0, params = 0;
  for (const Layer& layer : a.layers) {
    INFO(layer.name);
    convs += layer.op_type == "Conv";
    transposed += layer.op_type == "ConvTranspose";
    grouped += layer.grouped;
    depthwise += layer.depthwise;
    CHECK(layer.grouped == (layer.groups > 1));
    CHECK(layer.weight_storage == WeightStorage::kConstantNode);
    CHECK(layer.shape_source == ShapeSource::kInferred);
    CHECK(layer.macs > 0);
    CHECK(layer.macs == ExpectedMacs(layer));
    CHECK(layer.params == Product(layer.weight_shape));
    CHECK(static_cast<int64_t>(layer.stats.absmax.size()) == layer.out_channels);
    macs += layer.macs;
    params += layer.params;
  }
  CHECK(convs == 62);
  CHECK(transposed == 2);
  CHECK(grouped > 0);
  CHECK(depthwise > 0);
  CHECK(macs == a.total_macs);
  CHECK(params == a.total_params);
  CHECK(a.layers.back().output_shape.size() == 4);
  CHECK(a.uncompressed_ops.count("Conv") == 0);
  CHECK(a.uncompressed_ops.count("Constant") == 0);
  // Every node named, uniquely.
  std::set<std::string> names;
  for (const onnx::NodeProto& node : loaded.proto.graph().node()) names.insert(node.name());
  CHECK(static_cast<int>(names.size()) == loaded.proto.graph().node_size());
  CHECK(names.count("") == 0);
}

TEST_CASE("PP-OCR mobile cls at 1x3x48x192: libonnx cannot follow its Reshape", "[model][pp-ocr]") {
  const std::string bytes = testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  REQUIRE_FALSE(bytes.empty());
  AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 192};
  const Analysis a = testing::MustLoad(bytes, options).analysis;
  REQUIRE(a.layers.size() == 54);
  for (const Layer& layer : a.layers) {
    INFO(layer.name);
    if (layer.op_type == "Conv") {
      CHECK(layer.shape_source == ShapeSource::kInferred);
      CHECK(layer.macs == ExpectedMacs(layer));
    } else {
      // The classifier's MatMul reads a Reshape whose target is computed through Cast, which
      // libonnx's data propagation does not follow; ONNX Runtime has to tell (runtime tests).
      CHECK(layer.op_type == "MatMul");
      CHECK(layer.shape_source == ShapeSource::kUnknown);
      CHECK(layer.out_channels == 2);
    }
  }
  bool warned = false;
  for (const std::string& w : a.warnings) warned |= w.find("no shape probe was given") != std::string::npos;
  CHECK(warned);
}

}  // namespace
}  // namespace squeeze::model
