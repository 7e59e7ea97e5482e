#include "model/weights.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

TEST_CASE("Layer weights read back in channel-major order with their statistics", "[weights]") {
  AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 640, 640};
  const LoadedModel loaded = testing::MustLoad(testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx"), options);
  absl::StatusOr<std::vector<ChannelMatrix>> weights = ReadLayerWeights(loaded);
  REQUIRE(weights.ok());
  REQUIRE(weights->size() == loaded.analysis.layers.size());
  for (size_t i = 0; i < weights->size(); ++i) {
    const Layer& layer = loaded.analysis.layers[i];
    const ChannelMatrix& m = (*weights)[i];
    INFO(layer.name);
    CHECK(m.channels == layer.out_channels);
    CHECK(m.channels * m.per_channel == layer.params);
    // Row c's largest magnitude is the analysis' absmax of channel c.
    for (int64_t c = 0; c < m.channels; c += std::max<int64_t>(1, m.channels / 7)) {
      float absmax = 0;
      for (float v : m.Row(c)) absmax = std::max(absmax, std::fabs(v));
      CHECK(absmax == layer.stats.absmax[c]);
    }
  }
  // The first conv is [16, 3, 3, 3]: 16 rows of 27.
  CHECK((*weights)[0].channels == 16);
  CHECK((*weights)[0].per_channel == 27);
}

}  // namespace
}  // namespace squeeze::model

namespace squeeze::model {
namespace {

TEST_CASE("Activation liveness follows the execution order", "[activations]") {
  // x -> Conv -> a; a -> Relu -> b; Add(a, b) -> y: `a` stays alive across the Relu.
  const LoadedModel loaded = testing::MustLoad(testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    skip (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
      w = Constant <value = float[3, 2, 1, 1] w_init {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
      a = Conv (x, w)
      b = Relu (a)
      y = Add (a, b)
    }
  )onnx"));
  const Analysis& an = loaded.analysis;
  REQUIRE(an.nodes.size() == 4);
  const int64_t x = 2 * 16 * 4, t = 3 * 16 * 4;  // bytes of x and of every 1x3x4x4 value
  CHECK(an.nodes[0].live_bytes == x);            // the Constant: only x is alive
  CHECK(an.nodes[1].layer == 0);
  CHECK(an.nodes[1].input_bytes == x);  // the weight is a constant, not an activation
  CHECK(an.nodes[1].output_bytes == t);
  CHECK(an.nodes[1].live_bytes == x + t);  // x dies after the Conv
  CHECK(an.nodes[2].live_bytes == 2 * t);  // a and b
  CHECK(an.nodes[3].live_bytes == 3 * t);  // a, b and y
  CHECK(an.peak_activation_bytes == 3 * t);
}

}  // namespace
}  // namespace squeeze::model
