// Which layers' output channels pruning can remove on its own, and which layers read them: the
// channel flow the exporter removes channels by, asked per layer.
#include "model/channel_pruning.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>

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
  CHECK(reach[a].nodes[0].share == 1.0);
  const onnx::NodeProto& relu = m.proto.graph().node(1);
  CHECK(relu.op_type() == "Relu");
  CHECK(reach[a].nodes[0].name == relu.name());
  // b's channels run through the depthwise Conv into c: both narrow with it.
  CHECK(reach[b].removable);
  CHECK(reach[b].readers == std::vector<std::pair<size_t, double>>{{d, 1.0}, {c, 1.0}});
  // The depthwise Conv's channels are b's; the last Conv's are the graph output.
  CHECK_FALSE(reach[d].removable);
  CHECK_FALSE(reach[c].removable);
  CHECK_THAT(reach[c].why_not, Contains("graph output 'y'"));
}

TEST_CASE("The constants the channels pass through are sliced with them", "[channel-pruning]") {
  // a > Relu > b > BN > Relu > depthwise d > BN > Relu > Mul (per-channel scale) > c, 8 channels.
  const LoadedModel m = MustLoad(testing::NarrowingProto(8));
  const std::vector<ChannelPruningReach> reach = AnalyzeChannelPruning(m);
  REQUIRE(reach.size() == 4);
  REQUIRE(reach[1].removable);
  CHECK(reach[1].readers == std::vector<std::pair<size_t, double>>{{2, 1.0}, {3, 1.0}});
  std::map<std::string, int64_t> constants;
  for (const ReachedNode& node : reach[1].nodes) {
    CHECK(node.share == 1.0);
    constants[node.name] = node.channel_constant_bytes;
  }
  // By the nodes' outputs: two BatchNormalizations (four vectors of 8 floats each), the Relus
  // (none), the Mul (its 8 scales).
  auto writer = [&](const std::string& value) {
    for (const onnx::NodeProto& node : m.proto.graph().node()) {
      if (node.output(0) == value) return node.name();
    }
    return std::string();
  };
  CHECK(constants == std::map<std::string, int64_t>{{writer("bn"), 4 * 8 * 4},
                                                    {writer("br"), 0},
                                                    {writer("dn"), 4 * 8 * 4},
                                                    {writer("dr"), 0},
                                                    {writer("s"), 8 * 4}});
  // a's channels reach only b, through a Relu.
  REQUIRE(reach[0].nodes.size() == 1);
  CHECK(reach[0].nodes[0].channel_constant_bytes == 0);
}

TEST_CASE("The channels one layer's pruning removes are named in every value that loses them", "[channel-pruning]") {
  const LoadedModel m = MustLoad(testing::ChainProto());
  // Layers in graph order: a, b, d, c. b's channels 2 and 5 go from b, the depthwise d and the
  // last Conv's input, at the same indices.
  std::vector<uint8_t> rows(8, 0);
  rows[2] = rows[5] = 1;
  const std::map<std::string, std::set<int64_t>> removed = ChannelsRemovedBy(m, 1, rows);
  CHECK(removed == std::map<std::string, std::set<int64_t>>{{"b", {2, 5}}, {"d", {2, 5}}});
  // a's run through the Relu into b.
  CHECK(ChannelsRemovedBy(m, 0, rows) == std::map<std::string, std::set<int64_t>>{{"a", {2, 5}}, {"ar", {2, 5}}});
  // The last Conv's channels are the graph output: nothing goes (its rows would stay as zeros).
  CHECK(ChannelsRemovedBy(m, 3, std::vector<uint8_t>(4, 1)).empty());
  CHECK(ChannelsRemovedBy(m, 1, std::vector<uint8_t>(8, 0)).empty());
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

TEST_CASE("A classifier head's channels are named as what the task reads", "[channel-pruning]") {
  // A MatMul head whose class scores reach the output through a Softmax, and a hidden MatMul.
  onnx::ModelProto proto = testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    head (float[1, 4, 8] x) => (float[1, 4, 6] probs) {
      h = MatMul (x, w1)
      r = Relu (h)
      logits = MatMul (r, w2)
      probs = Softmax <axis = -1> (logits)
    }
  )onnx");
  testing::AddInitializer(proto.mutable_graph(),
                          testing::FloatTensor("w1", {8, 8}, testing::Encoding::kRaw, testing::Ramp(64)));
  testing::AddInitializer(proto.mutable_graph(),
                          testing::FloatTensor("w2", {8, 6}, testing::Encoding::kRaw, testing::Ramp(48)));
  const LoadedModel m = MustLoad(proto);
  const std::vector<ChannelPruningReach> reach = AnalyzeChannelPruning(m);
  REQUIRE(reach.size() == 2);
  CHECK_FALSE(reach[1].removable);
  CHECK_THAT(reach[1].why_not, Contains("its channels reach graph output 'probs'"));
  CHECK_FALSE(reach[0].removable);
  CHECK(reach[0].why_not == "only an ungrouped Conv's channels can be removed");
}

TEST_CASE("Pruning keeps an aligned channel count below the whole", "[channel-pruning]") {
  // 8 channels at multiples of 4: half keeps 4; a quarter (6 kept) rounds to 8, which is all, so 4.
  CHECK(AlignedChannelRatio(8, 0.5, 4) == 0.5);
  CHECK(AlignedChannelRatio(8, 0.25, 4) == 0.5);
  CHECK(AlignedChannelRatio(8, 0.25, 2) == 0.25);
  // 24 at 16: 12 kept rounds to 16.
  CHECK(*AlignedChannelRatio(24, 0.5, 16) == Approx(8.0 / 24));
  // At least one multiple is kept: 90% of 64 at 16 keeps 16.
  CHECK(AlignedChannelRatio(64, 0.9, 16) == 0.75);
  // No multiple below the whole, or nothing to prune: none.
  CHECK_FALSE(AlignedChannelRatio(16, 0.5, 16).has_value());
  CHECK_FALSE(AlignedChannelRatio(8, 0, 1).has_value());
}

TEST_CASE("A uniform channel plan prunes the layers that can lose channels, the rest stay dense", "[channel-pruning]") {
  const LoadedModel m = MustLoad(testing::ChainProto());
  const std::vector<LayerPlan> plan =
      UniformChannelPlan(AnalyzeChannelPruning(m), m, LayerPlan{8, 8, Sparsity::kTwoFour, 0.5}, 0.5, 4);
  REQUIRE(plan.size() == 4);
  for (const LayerPlan& p : plan) {
    CHECK(p.weight_bits == 8);
    CHECK(p.activation_bits == 8);
  }
  // a and b: half of 8 channels; the depthwise d is grouped and c writes the graph output.
  CHECK(plan[0].pattern == Sparsity::kOutputChannel);
  CHECK(plan[0].prune_ratio == 0.5);
  CHECK(plan[1].pattern == Sparsity::kOutputChannel);
  CHECK(plan[2].pattern == Sparsity::kDense);
  CHECK(plan[2].prune_ratio == 0);
  CHECK(plan[3].pattern == Sparsity::kDense);
  // At a multiple of 8, 8 channels cannot be pruned at all.
  for (const LayerPlan& p : UniformChannelPlan(AnalyzeChannelPruning(m), m, LayerPlan{}, 0.5, 8)) {
    CHECK(p.pattern == Sparsity::kDense);
  }
}

}  // namespace
}  // namespace squeeze::model
