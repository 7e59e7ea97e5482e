// Which layers' output channels pruning can remove on its own, and which layers read them: the
// channel flow the exporter removes channels by, asked per layer.
#include "model/channel_pruning.h"

#include <catch2/catch.hpp>

#include "tests/model/export_models.h"
#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;
using testing::MustLoad;

TEST_CASE("A chain's Convs can lose channels on their own and narrow the layers that read them", "[channel-pruning]") {
  const LoadedModel m = MustLoad(testing::ChainProto());
  const std::vector<ChannelPruningReach> reach = AnalyzeChannelPruning(m);
  REQUIRE(reach.size() == m.analysis.layers.size());
  // Layers in graph order: a, b, d, c.
  REQUIRE(m.analysis.layers.size() == 4);
  const size_t a = 0, b = 1, d = 2, c = 3;
  CHECK(m.analysis.layers[d].depthwise);
  CHECK(reach[a].removable);
  REQUIRE(reach[a].readers.size() == 1);
  CHECK(reach[a].readers[0] == std::make_pair(b, 1.0));
  // ...and the Relu between them shrinks with it.
  REQUIRE(reach[a].nodes.size() == 1);
  CHECK(reach[a].nodes[0].second == 1.0);
  const onnx::NodeProto& relu = m.proto.graph().node(1);
  CHECK(relu.op_type() == "Relu");
  CHECK(reach[a].nodes[0].first == relu.name());
  // b's channels run through the depthwise Conv into c: both narrow with it.
  CHECK(reach[b].removable);
  CHECK(reach[b].readers == std::vector<std::pair<size_t, double>>{{d, 1.0}, {c, 1.0}});
  // The depthwise Conv's channels are b's; the last Conv's are the graph output.
  CHECK_FALSE(reach[d].removable);
  CHECK_FALSE(reach[c].removable);
  CHECK_THAT(reach[c].why_not, Contains("graph output 'y'"));
}

TEST_CASE("Channels an Add or Concat partner also produces are not removable by one layer alone", "[channel-pruning]") {
  const LoadedModel m = MustLoad(testing::ResidualProto(testing::kSmallFirstHalf, testing::kSmallFirstHalf));
  const std::vector<ChannelPruningReach> reach = AnalyzeChannelPruning(m);
  // Layers in graph order: a, b (Add partners through the residual), the depthwise d, y.
  for (size_t layer : {0, 1}) {
    const ChannelPruningReach& r = reach[layer];
    INFO(m.analysis.layers[layer].name << ": " << r.why_not);
    CHECK_FALSE(r.removable);
    CHECK_THAT(r.why_not, Contains("produces the same channels"));
  }
}

}  // namespace
}  // namespace squeeze::model
