// model/surgery.h, checked by running the edited models in ONNX Runtime.
#include "model/surgery.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "model/weight_math.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "tests/model/test_models.h"

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;
using model::testing::Encoding;
using model::testing::FloatTensor;
using model::testing::HalfTensor;
using model::testing::MustLoad;
using model::testing::ParseModel;

std::vector<Tensor> Run(const onnx::ModelProto& m, const std::vector<Tensor>& inputs,
                        const std::vector<std::string>& outputs = {}) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(m.SerializeAsString());
  INFO(session.status().ToString());
  REQUIRE(session.ok());
  absl::StatusOr<std::vector<Tensor>> out = (*session)->Run(inputs, outputs);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return *std::move(out);
}

std::vector<float> Floats(const Tensor& t) {
  absl::Span<const float> f = t.floats();
  return {f.begin(), f.end()};
}

std::vector<float> Ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(static_cast<int>(i % 13) - 6);
  return v;
}

// x → MatMul(w1) → Relu → MatMul(w2) → y, and w1 read by a second MatMul too (z = x · w1).
model::LoadedModel TwoLayers() {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    two (float[2, 4] x) => (float[2, 4] y, float[2, 4] z) {
      h = MatMul (x, w1)
      r = Relu (h)
      y = MatMul (r, w2)
      z = MatMul (x, w1)
    }
  )onnx");
  model::testing::AddInitializer(proto.mutable_graph(), FloatTensor("w1", {4, 4}, Encoding::kRaw, Ramp(16, 0.25f)));
  model::testing::AddConstantNode(proto.mutable_graph(), "w2",
                                  FloatTensor("", {4, 4}, Encoding::kTyped, Ramp(16, 0.5f)));
  return MustLoad(proto);
}

Tensor Input() { return Tensor::Float("x", {2, 4}, {1, -2, 3, 0.5f, -1, 0.25f, 2, -3}); }

TEST_CASE("Weights made inputs give the model's outputs when fed back", "[surgery]") {
  const model::LoadedModel m = TwoLayers();
  onnx::ModelProto edited = m.proto;
  absl::StatusOr<std::vector<model::WeightInput>> lifted = model::WeightsToInputs(&edited, m.analysis, {0, 1});
  REQUIRE(lifted.ok());
  REQUIRE(lifted->size() == 2);
  std::vector<Tensor> feeds = {Input()};
  for (const model::WeightInput& w : *lifted) {
    REQUIRE(w.status.ok());
    CHECK(w.elem_type == onnx::TensorProto::FLOAT);
    CHECK(w.dims == std::vector<int64_t>{4, 4});
    feeds.push_back(Tensor::Float(w.name, w.dims, w.values));
  }
  CHECK((*lifted)[0].values == Ramp(16, 0.25f));
  CHECK((*lifted)[1].values == Ramp(16, 0.5f));
  // w1 is still read by the third MatMul; w2's Constant node is gone.
  bool w1_kept = false, w2_kept = false;
  for (const auto& t : edited.graph().initializer()) w1_kept |= t.name() == "w1";
  for (const auto& n : edited.graph().node()) w2_kept |= n.op_type() == "Constant";
  CHECK(w1_kept);
  CHECK_FALSE(w2_kept);

  const std::vector<Tensor> want = Run(m.proto, {Input()});
  const std::vector<Tensor> got = Run(edited, feeds);
  CHECK(Floats(got[0]) == Floats(want[0]));
  CHECK(Floats(got[1]) == Floats(want[1]));
  // Other values fed for w2 change y only.
  feeds[2] = Tensor::Float(feeds[2].name, {4, 4}, std::vector<float>(16, 0.f));
  const std::vector<Tensor> zeroed = Run(edited, feeds);
  CHECK(Floats(zeroed[0]) == std::vector<float>(8, 0.f));
  CHECK(Floats(zeroed[1]) == Floats(want[1]));

  SECTION("a bad layer index") {
    onnx::ModelProto again = m.proto;
    CHECK(model::WeightsToInputs(&again, m.analysis, {7}).status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("a model that is not the analysed one") {
    onnx::ModelProto other = m.proto;
    other.mutable_graph()->mutable_node(1)->set_name("renamed");
    CHECK(model::WeightsToInputs(&other, m.analysis, {0, 1}).status().code() == absl::StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("An fp16 weight becomes an fp16 input and is replaced in fp16", "[surgery]") {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    half (float16[2, 4] x) => (float16[2, 3] y) {
      y = MatMul (x, w)
    }
  )onnx");
  model::testing::AddInitializer(proto.mutable_graph(), HalfTensor("w", {4, 3}, Encoding::kRaw));
  const model::LoadedModel m = MustLoad(proto);
  onnx::ModelProto edited = m.proto;
  absl::StatusOr<std::vector<model::WeightInput>> lifted = model::WeightsToInputs(&edited, m.analysis, {0});
  REQUIRE(lifted.ok());
  REQUIRE((*lifted)[0].status.ok());
  CHECK((*lifted)[0].elem_type == onnx::TensorProto::FLOAT16);
  CHECK((*lifted)[0].values == model::testing::Ramp(12));
  bool half_input = false;
  for (const auto& input : edited.graph().input()) {
    if (input.name() == (*lifted)[0].name) {
      half_input = input.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT16;
    }
  }
  CHECK(half_input);

  onnx::ModelProto replaced = m.proto;
  const std::vector<float> values(12, 0.3f);
  REQUIRE(model::ReplaceWeights(&replaced, m.analysis, {{0, values}}).ok());
  const onnx::TensorProto& w = replaced.graph().initializer(0);
  CHECK(w.data_type() == onnx::TensorProto::FLOAT16);
  REQUIRE(w.raw_data().size() == 24);
  uint16_t first;
  std::memcpy(&first, w.raw_data().data(), 2);
  CHECK(first == model::FloatToHalfBits(0.3f));
}

TEST_CASE("Replaced weights change only their layer, shared ones copied", "[surgery]") {
  const model::LoadedModel m = TwoLayers();
  onnx::ModelProto edited = m.proto;
  // Layer 0 (h = x · w1) gets zeros; z = x · w1 reads the original w1.
  REQUIRE(model::ReplaceWeights(&edited, m.analysis, {{0, std::vector<float>(16, 0.f)}}).ok());
  const std::vector<Tensor> want = Run(m.proto, {Input()});
  const std::vector<Tensor> got = Run(edited, {Input()});
  CHECK(Floats(got[0]) == std::vector<float>(8, 0.f));
  CHECK(Floats(got[1]) == Floats(want[1]));

  SECTION("values that do not fill the weight") {
    onnx::ModelProto again = m.proto;
    CHECK(model::ReplaceWeights(&again, m.analysis, {{1, std::vector<float>(3, 0.f)}}).code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Value deltas perturb a value for every reader, zero leaves the model as it was", "[surgery]") {
  const model::LoadedModel m = TwoLayers();
  const std::vector<Tensor> want = Run(m.proto, {Input()});
  const std::vector<float> w1 = Ramp(16, 0.25f), w2 = Ramp(16, 0.5f);
  // Σ_k w[k][col]: what a delta of ones adds to each row of x · w.
  auto column_sum = [](const std::vector<float>& w, int col) {
    float sum = 0;
    for (int k = 0; k < 4; ++k) sum += w[k * 4 + col];
    return sum;
  };

  SECTION("a computed value: renamed at its node, the Add writes it") {
    onnx::ModelProto edited = m.proto;
    const std::vector<model::ValueDelta> deltas =
        model::InsertValueDeltas(&edited, {{"r", onnx::TensorProto::FLOAT}, {"r", onnx::TensorProto::FLOAT}});
    REQUIRE(deltas.size() == 2);
    const model::ValueDelta& d = deltas[0];
    REQUIRE(d.status.ok());
    CHECK(d.value == "r");
    CHECK(deltas[1].name == d.name);  // the same value twice: one delta
    // A one-element zero broadcasts.
    const std::vector<Tensor> same = Run(edited, {Input(), Tensor::Float(d.name, {1}, {0.f})});
    CHECK(Floats(same[0]) == Floats(want[0]));
    CHECK(Floats(same[1]) == Floats(want[1]));
    // A full delta of ones adds the column sums of w2 to every row of y; z does not read r.
    const std::vector<Tensor> moved = Run(edited, {Input(), Tensor::Float(d.name, {2, 4}, std::vector<float>(8, 1.f))});
    for (int row = 0; row < 2; ++row) {
      for (int col = 0; col < 4; ++col) {
        CHECK(Floats(moved[0])[row * 4 + col] == Approx(Floats(want[0])[row * 4 + col] + column_sum(w2, col)));
      }
    }
    CHECK(Floats(moved[1]) == Floats(want[1]));
  }

  SECTION("a graph input: every node reading it reads the Add") {
    onnx::ModelProto edited = m.proto;
    const std::vector<model::ValueDelta> deltas = model::InsertValueDeltas(&edited, {{"x", onnx::TensorProto::FLOAT}});
    REQUIRE(deltas[0].status.ok());
    const std::vector<Tensor> moved = Run(edited, {Input(), Tensor::Float(deltas[0].name, {1}, {1.f})});
    // z = (x + 1) · w1 reads it as y's branch does.
    for (int row = 0; row < 2; ++row) {
      for (int col = 0; col < 4; ++col) {
        CHECK(Floats(moved[1])[row * 4 + col] == Approx(Floats(want[1])[row * 4 + col] + column_sum(w1, col)));
      }
    }
  }

  SECTION("a graph output is perturbed where the graph hands it out") {
    onnx::ModelProto edited = m.proto;
    const std::vector<model::ValueDelta> deltas = model::InsertValueDeltas(&edited, {{"y", onnx::TensorProto::FLOAT}});
    REQUIRE(deltas[0].status.ok());
    const std::vector<Tensor> moved = Run(edited, {Input(), Tensor::Float(deltas[0].name, {1}, {2.f})});
    for (size_t i = 0; i < 8; ++i) CHECK(Floats(moved[0])[i] == Approx(Floats(want[0])[i] + 2));
  }

  SECTION("a value the main graph does not compute is refused on its own") {
    onnx::ModelProto edited = m.proto;
    const std::vector<model::ValueDelta> deltas = model::InsertValueDeltas(
        &edited,
        {{"w1", onnx::TensorProto::FLOAT}, {"nope", onnx::TensorProto::FLOAT}, {"h", onnx::TensorProto::FLOAT}});
    CHECK(deltas[0].status.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(deltas[1].status.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(deltas[1].status.message()), Contains("nope"));
    REQUIRE(deltas[2].status.ok());
    CHECK(Floats(Run(edited, {Input(), Tensor::Float(deltas[2].name, {1}, {0.f})})[0]) == Floats(want[0]));
  }
}

TEST_CASE("Exposed values can be fetched, unknown names are refused", "[surgery]") {
  const model::LoadedModel m = TwoLayers();
  onnx::ModelProto edited = m.proto;
  REQUIRE(model::ExposeValues(&edited, {"h", "r", "y"}).ok());
  const std::vector<Tensor> out = Run(edited, {Input()}, {"h", "r"});
  for (size_t i = 0; i < 8; ++i) CHECK(Floats(out[1])[i] == std::max(0.f, Floats(out[0])[i]));
  const absl::Status bad = model::ExposeValues(&edited, {"nope"});
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(bad.message()), Contains("nope"));
  CHECK(model::ExposeValues(&edited, {"x"}).code() == absl::StatusCode::kInvalidArgument);
}

// y = x · I: the output is the layer's input as the layer sees it.
model::LoadedModel Identity(int opset) {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 7, opset_import: ["" : 13]>
    identity (float[1, 64] x) => (float[1, 64] y) {
      y = MatMul (x, w)
    }
  )onnx");
  proto.mutable_opset_import(0)->set_version(opset);
  std::vector<float> eye(64 * 64, 0.f);
  for (int i = 0; i < 64; ++i) eye[i * 64 + i] = 1.f;
  model::testing::AddInitializer(proto.mutable_graph(), FloatTensor("w", {64, 64}, Encoding::kRaw, eye));
  return MustLoad(proto);
}

TEST_CASE("In-graph fake quantization is the quantizer the measurement uses", "[surgery]") {
  const int opset = GENERATE(9, 13);
  INFO("opset " << opset);
  const model::LoadedModel m = Identity(opset);
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = 0.137f * static_cast<float>(i) - 3.1f + 0.01f * std::sin(static_cast<float>(i));
  const model::ActivationQuantizer q =
      model::ActivationQuantizerOf(model::ActivationScheme::kAsymmetricUint8, -3.0f, 5.5f);
  for (int bits : {8, 16, 32}) {
    INFO("bits " << bits);
    onnx::ModelProto edited = m.proto;
    REQUIRE(model::InsertActivationFakeQuant(&edited, m.analysis,
                                             {{0, {bits, q.scale, static_cast<uint8_t>(q.zero_point)}}})
                .ok());
    const std::vector<float> y = Floats(Run(edited, {Tensor::Float("x", {1, 64}, x)})[0]);
    int differ = 0;
    for (int i = 0; i < 64; ++i) {
      CHECK(y[i] == Approx(model::FakeQuantize(x[i], bits, q)).margin(1e-6));
      differ += y[i] != x[i];
    }
    CHECK((bits == 32 ? differ == 0 : differ > 32));
  }
  onnx::ModelProto bad = m.proto;
  CHECK(model::InsertActivationFakeQuant(&bad, m.analysis, {{0, {4, 1.f, 0}}}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(model::InsertActivationFakeQuant(&bad, m.analysis, {{0, {8, 0.f, 0}}}).code() ==
        absl::StatusCode::kInvalidArgument);
}

// x → If(cond) { then: MatMul(x, w_then), else: x } with cond computed from x (always true for
// the inputs here): a layer inside a subgraph, its weight in the branch.
model::LoadedModel LayerInIf() {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    branch (float[2, 8] x) => (float[2, 8] y) {
      s = ReduceSum <keepdims = 0> (x)
      low = Constant <value = float {-1000000.0}> ()
      cond = Greater (s, low)
      y = If (cond) <
        then_branch = then_g () => (float[2, 8] t) {
          t = MatMul (x, w_then)
        },
        else_branch = else_g () => (float[2, 8] e) {
          e = Identity (x)
        }
      >
    }
  )onnx");
  onnx::GraphProto* then_branch = model::testing::Subgraph(&proto, 3, "then_branch");
  model::testing::AddInitializer(then_branch, FloatTensor("w_then", {8, 8}, Encoding::kRaw, Ramp(64, 0.1f)));
  return MustLoad(proto);
}

TEST_CASE("A weight inside an If branch is fed from the outer scope", "[surgery]") {
  const model::LoadedModel m = LayerInIf();
  REQUIRE(m.analysis.layers.size() == 1);
  REQUIRE_FALSE(m.analysis.layers[0].subgraph.empty());
  onnx::ModelProto edited = m.proto;
  absl::StatusOr<std::vector<model::WeightInput>> lifted = model::WeightsToInputs(&edited, m.analysis, {0});
  REQUIRE(lifted.ok());
  REQUIRE((*lifted)[0].status.ok());
  const model::WeightInput& w = (*lifted)[0];
  const Tensor x = Tensor::Float("x", {2, 8}, Ramp(16, 0.3f));
  const std::vector<Tensor> want = Run(m.proto, {x});
  CHECK(Floats(Run(edited, {x, Tensor::Float(w.name, w.dims, w.values)})[0]) == Floats(want[0]));

  // Its activation is not a value of the main graph: it cannot be perturbed from outside.
  onnx::ModelProto deltas = m.proto;
  CHECK(model::InsertValueDeltas(&deltas, {{"t", onnx::TensorProto::FLOAT}})[0].status.code() ==
        absl::StatusCode::kFailedPrecondition);

  // Replaced weights and fake quantization work inside the branch.
  onnx::ModelProto replaced = m.proto;
  REQUIRE(model::ReplaceWeights(&replaced, m.analysis, {{0, std::vector<float>(64, 0.f)}}).ok());
  REQUIRE(model::InsertActivationFakeQuant(&replaced, m.analysis, {{0, {16, 1.f, 0}}}).ok());
  CHECK(Floats(Run(replaced, {x})[0]) == std::vector<float>(16, 0.f));
}

}  // namespace
}  // namespace squeeze::runtime
