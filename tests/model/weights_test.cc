#include "model/weights.h"

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

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
