// model/export.h: the structure of exported models (QDQ nodes, int8 values within the bit-width,
// fp16 weights, zeros of pruning, physically removed channels, metadata). Runs in ONNX Runtime are
// in tests/runtime/export_test.cc.
#include "model/export.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "model/activation_sites.h"
#include "model/batch_norm_folding.h"
#include "model/channel_pruning.h"
#include "model/conformance.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"
#include "model/quantized_region.h"
#include "tests/model/export_models.h"
#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;
using testing::AddConstantNode;
using testing::AddInitializer;
using testing::Encoding;
using testing::FloatTensor;
using testing::kSmallFirstHalf;
using testing::MustLoad;
using testing::ParseModel;
using testing::ResidualProto;

onnx::ModelProto Parse(const std::string& bytes) {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(bytes));
  return m;
}

const onnx::TensorProto* Initializer(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

const onnx::NodeProto* NodeNamed(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& n : g.node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

const onnx::NodeProto* Producer(const onnx::GraphProto& g, const std::string& value) {
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) {
      if (o == value) return &n;
    }
  }
  return nullptr;
}

int CountOps(const onnx::GraphProto& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.node()) n += node.op_type() == op;
  return n;
}

std::vector<int8_t> Int8Values(const onnx::TensorProto& t) {
  std::vector<int8_t> v(t.raw_data().size());
  std::memcpy(v.data(), t.raw_data().data(), v.size());
  return v;
}

// x → Conv(3→8, 3×3) → Relu → Conv(8→4, 1×1) → y; the first weight in a Constant node. The
// second conv's weight and bias are ramps unless given.
LoadedModel TwoConvs(std::vector<float> w2 = {}, std::vector<float> b2 = {}) {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    two (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
      r = Relu (a)
      y = Conv (r, w2, b2)
    }
  )onnx");
  AddConstantNode(proto.mutable_graph(), "w1", FloatTensor("", {8, 3, 3, 3}, Encoding::kRaw));
  AddInitializer(proto.mutable_graph(), FloatTensor("b1", {8}));
  AddInitializer(proto.mutable_graph(), FloatTensor("w2", {4, 8, 1, 1}, Encoding::kRaw, std::move(w2)));
  AddInitializer(proto.mutable_graph(), FloatTensor("b2", {4}, Encoding::kTyped, std::move(b2)));
  return MustLoad(proto);
}

std::map<std::string, TensorRange> Ranges(const LoadedModel& m, const std::vector<LayerPlan>& plan) {
  absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, plan, ExportFlavour::kOrtCpu);
  REQUIRE(names.ok());
  std::map<std::string, TensorRange> ranges;
  for (const std::string& n : *names) ranges[n] = {-2.f, 3.f};
  return ranges;
}

ExportedModel MustExport(const LoadedModel& m, const std::vector<LayerPlan>& plan) {
  absl::StatusOr<ExportedModel> out = ExportModel(m, plan, Ranges(m, plan));
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return *std::move(out);
}

TEST_CASE("w8a8 export: per-channel int8 weights, QDQ activations, int32 bias, metadata") {
  const LoadedModel m = TwoConvs();
  const std::vector<LayerPlan> plan = {{8, 8}, {8, 8}};
  absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, plan, ExportFlavour::kOrtCpu);
  REQUIRE(names.ok());
  // conv1's output is quantized after the Relu that alone reads it, which ONNX Runtime then folds
  // into the quantization: the two convs pass uint8 between them through one pair.
  CHECK(*names == std::vector<std::string>{"x", "r", "y"});
  const ExportedModel out = MustExport(m, plan);
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  CHECK(g.input_size() == 1);
  CHECK(g.input(0).name() == "x");
  CHECK(g.output(0).name() == "y");
  CHECK(CountOps(g, "QuantizeLinear") == 3);
  CHECK(CountOps(g, "DequantizeLinear") == 3 + 2 + 2);  // activations, weights, biases
  const onnx::NodeProto* conv = NodeNamed(g, m.analysis.layers[0].name);
  REQUIRE(conv != nullptr);
  const onnx::NodeProto* wdq = Producer(g, conv->input(1));
  REQUIRE(wdq != nullptr);
  CHECK(wdq->op_type() == "DequantizeLinear");
  REQUIRE(wdq->attribute_size() == 1);
  CHECK(wdq->attribute(0).name() == "axis");
  CHECK(wdq->attribute(0).i() == 0);
  const onnx::TensorProto* q = Initializer(g, wdq->input(0));
  REQUIRE(q != nullptr);
  CHECK(q->data_type() == onnx::TensorProto::INT8);
  CHECK(Initializer(g, wdq->input(1))->dims(0) == 8);
  // The input of the conv is dequantized, its output quantized: DQ → Conv → Q.
  CHECK(Producer(g, conv->input(0))->op_type() == "DequantizeLinear");
  CHECK(Producer(g, conv->input(2))->op_type() == "DequantizeLinear");
  CHECK(Initializer(g, Producer(g, conv->input(2))->input(0))->data_type() == onnx::TensorProto::INT32);
  // Conv → Relu → Q → DQ → Conv.
  const onnx::NodeProto* conv2 = NodeNamed(g, m.analysis.layers[1].name);
  REQUIRE(conv2 != nullptr);
  const onnx::NodeProto* between = Producer(g, conv2->input(0));
  REQUIRE(between != nullptr);
  CHECK(between->op_type() == "DequantizeLinear");
  const onnx::NodeProto* quantize = Producer(g, between->input(0));
  REQUIRE(quantize != nullptr);
  CHECK(quantize->op_type() == "QuantizeLinear");
  CHECK(Producer(g, quantize->input(0))->op_type() == "Relu");
  CHECK(Producer(g, Producer(g, quantize->input(0))->input(0)) == conv);
  // The Constant node holding w1 is gone; nothing else reads it.
  CHECK(CountOps(g, "Constant") == 0);
  bool has_plan = false;
  for (const auto& p : e.metadata_props()) {
    if (p.key() == "squeeze.plan") {
      has_plan = true;
      CHECK_THAT(p.value(), Contains("\"option\":\"w8a8\""));
    }
  }
  CHECK(has_plan);
  CHECK(out.report.layers.size() == 2);
  CHECK(out.report.quantized_activations == 3);
  CHECK(out.report.layers[0].packed_bytes == 8 * 27 + 4 * 8);
  CHECK(out.report.file_bytes == static_cast<int64_t>(out.bytes.size()));
  CHECK(out.report.layers[0].weight_distortion > 0);
  CHECK(out.report.layers[0].weight_distortion < 1e-3);
}

TEST_CASE("A channel whose bias would overflow int32 gets the weight scale at which it fits") {
  // conv2's channel 0 has weights ~1e-9 and bias 100: at the input scale (5 / 255) and the weight
  // scale its weights ask for, the bias would be ~1e15 in int32. Left float, the layer would not
  // fuse into the integer kernel the search priced.
  std::vector<float> w2(32, 0.5f);
  for (int k = 0; k < 8; ++k) w2[k] = 1e-9f * static_cast<float>(k + 1);
  const LoadedModel m = TwoConvs(w2, {100.f, 0.1f, 0.2f, 0.3f});
  const ExportedModel out = MustExport(m, {{8, 8}, {8, 8}});
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  const onnx::NodeProto* conv2 = NodeNamed(g, m.analysis.layers[1].name);
  REQUIRE(conv2 != nullptr);
  const onnx::NodeProto* bias = Producer(g, conv2->input(2));
  REQUIRE(bias != nullptr);
  CHECK(bias->op_type() == "DequantizeLinear");
  const onnx::TensorProto* q = Initializer(g, bias->input(0));
  REQUIRE(q != nullptr);
  CHECK(q->data_type() == onnx::TensorProto::INT32);
  CHECK_THAT(out.report.layers[1].note, Contains("weight scale raised on 1 channel"));
  // Channel 0's scale is what its bias needs; its weights, far below it, quantize to 0. The other
  // channels keep the scales their weights ask for.
  const onnx::NodeProto* wdq = Producer(g, conv2->input(1));
  const std::vector<float> scales = internal::DecodeFloats(*Initializer(g, wdq->input(1)));
  const double sx = 5.0 / 255;
  CHECK(scales[0] >= 100 / (sx * 2147483647.0));
  CHECK(scales[0] < 1.01 * 100 / (sx * 2147483647.0));
  CHECK(scales[1] < 0.5f / 100);
  const std::vector<int8_t> weights = Int8Values(*Initializer(g, wdq->input(0)));
  for (int k = 0; k < 8; ++k) CHECK(weights[static_cast<size_t>(k)] == 0);
  CHECK(weights[8] != 0);
}

TEST_CASE("Activation sites: who writes and reads each tensor an integer layer would quantize") {
  // x → conv1 → a → Relu → r → conv2 → y (the graph output).
  const LoadedModel m = TwoConvs();
  const std::vector<ActivationSite> sites = ActivationSites(m);
  std::map<std::string, const ActivationSite*> by_tensor;
  for (const ActivationSite& s : sites) by_tensor[s.tensor] = &s;
  REQUIRE(by_tensor.size() == 3);
  REQUIRE(by_tensor.count("x") == 1);
  CHECK(by_tensor["x"]->producer == -1);
  CHECK(by_tensor["x"]->readers == std::vector<int>{0});
  CHECK_FALSE(by_tensor["x"]->float_readers);
  REQUIRE(by_tensor.count("r") == 1);  // after the Relu, which the quantization absorbs
  CHECK(by_tensor["r"]->producer == 0);
  CHECK(by_tensor["r"]->readers == std::vector<int>{1});
  CHECK_FALSE(by_tensor["r"]->float_readers);
  CHECK(by_tensor["r"]->elements > 0);
  REQUIRE(by_tensor.count("y") == 1);
  CHECK(by_tensor["y"]->producer == 1);
  CHECK(by_tensor["y"]->readers.empty());
  CHECK(by_tensor["y"]->float_readers);  // a graph output
}

TEST_CASE("Activation sites: which layer's layout each carries and which layers it reaches") {
  // x → c1 → LeakyRelu → MaxPool → m → c2 → y2 → {c3 → y3 (output), Flatten → f (output)}; the
  // second conv's input comes from c1 through layout-neutral ops only.
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    three (float[1, 3, 8, 8] x) => (float[1, 4, 4, 4] y3, float[1, 64] f) {
      a = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
      l = LeakyRelu (a)
      m = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (l)
      y2 = Conv (m, w2, b2)
      y3 = Conv (y2, w3, b3)
      f = Flatten (y2)
    }
  )onnx");
  AddInitializer(proto.mutable_graph(), FloatTensor("w1", {8, 3, 3, 3}, Encoding::kRaw));
  AddInitializer(proto.mutable_graph(), FloatTensor("b1", {8}));
  AddInitializer(proto.mutable_graph(), FloatTensor("w2", {4, 8, 1, 1}, Encoding::kRaw));
  AddInitializer(proto.mutable_graph(), FloatTensor("b2", {4}));
  AddInitializer(proto.mutable_graph(), FloatTensor("w3", {4, 4, 1, 1}, Encoding::kRaw));
  AddInitializer(proto.mutable_graph(), FloatTensor("b3", {4}));
  const LoadedModel m = MustLoad(proto);
  REQUIRE(m.analysis.layers.size() == 3);
  std::map<std::string, const ActivationSite*> by_tensor;
  const std::vector<ActivationSite> sites = ActivationSites(m);
  for (const ActivationSite& s : sites) by_tensor[s.tensor] = &s;
  REQUIRE(by_tensor.count("x") == 1);
  CHECK(by_tensor["x"]->layout_producer == -1);  // a graph input: the float layout
  CHECK(by_tensor["x"]->layout_readers == std::vector<int>{0});
  REQUIRE(by_tensor.count("a") == 1);  // c1's own output (a LeakyRelu is not folded)
  CHECK(by_tensor["a"]->layout_producer == 0);
  CHECK(by_tensor["a"]->layout_readers == std::vector<int>{1});  // through LeakyRelu and MaxPool
  CHECK_FALSE(by_tensor["a"]->float_layout_reader);
  REQUIRE(by_tensor.count("m") == 1);  // c2's input: no layer writes it, c1's layout reaches it
  CHECK(by_tensor["m"]->producer == -1);
  CHECK(by_tensor["m"]->layout_producer == 0);
  // A max pool writes it, the only reader of its input: it runs on uint8 where c2 does.
  CHECK(by_tensor["m"]->pool == "MaxPool_2");
  CHECK(by_tensor["m"]->pool_reads == 8 * 4 * 4 * 4);  // output values x the 2x2 window
  CHECK(by_tensor["a"]->pool.empty());
  CHECK(by_tensor["y2"]->pool.empty());
  REQUIRE(by_tensor.count("y2") == 1);
  CHECK(by_tensor["y2"]->layout_producer == 1);
  CHECK(by_tensor["y2"]->layout_readers == std::vector<int>{2});
  CHECK(by_tensor["y2"]->float_layout_reader);  // the Flatten reads the float layout
  REQUIRE(by_tensor.count("y3") == 1);
  CHECK(by_tensor["y3"]->float_layout_reader);  // a graph output
  CHECK(by_tensor["y3"]->layout_readers.empty());
}

TEST_CASE(
    "4-bit weight-only weights are INT4 within ±7, behind com.microsoft DequantizeLinear, with no activation QDQ") {
  const LoadedModel m = TwoConvs();
  const ExportedModel out = MustExport(m, {{4, 32}, {16, 32}});
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  CHECK(CountOps(g, "QuantizeLinear") == 0);
  const onnx::NodeProto* conv = NodeNamed(g, m.analysis.layers[0].name);
  const onnx::NodeProto* dq = Producer(g, conv->input(1));
  REQUIRE(dq != nullptr);
  CHECK(dq->domain() == "com.microsoft");
  CHECK(std::any_of(e.opset_import().begin(), e.opset_import().end(), [](const onnx::OperatorSetIdProto& o) {
    return o.domain() == "com.microsoft" && o.version() == 1;
  }));
  const onnx::TensorProto* q = Initializer(g, dq->input(0));
  REQUIRE(q != nullptr);
  CHECK(q->data_type() == 22);  // INT4
  CHECK(q->raw_data().size() == (8 * 27 + 1) / 2);
  int max_abs = 0;
  const std::vector<int64_t> levels = internal::DecodeIntegers(*q);
  CHECK(levels.size() == 8 * 27);
  for (int64_t v : levels) max_abs = std::max(max_abs, static_cast<int>(std::abs(v)));
  CHECK(max_abs <= 7);
  CHECK(max_abs >= 4);
  // With 8-bit activations the same weights stay int8, which ONNX Runtime fuses into QLinearConv.
  absl::StatusOr<ExportedModel> fused = ExportModel(m, {{4, 8}, {16, 32}}, Ranges(m, {{4, 8}, {16, 32}}));
  REQUIRE(fused.ok());
  const onnx::ModelProto f = Parse(fused->bytes);
  const onnx::NodeProto* fdq = Producer(f.graph(), NodeNamed(f.graph(), m.analysis.layers[0].name)->input(1));
  REQUIRE(fdq != nullptr);
  CHECK(fdq->domain().empty());
  CHECK(Initializer(f.graph(), fdq->input(0))->data_type() == onnx::TensorProto::INT8);
  // fp16 weight: an fp16 initializer cast back to float.
  const onnx::NodeProto* conv2 = NodeNamed(g, m.analysis.layers[1].name);
  const onnx::NodeProto* cast = Producer(g, conv2->input(1));
  REQUIRE(cast != nullptr);
  CHECK(cast->op_type() == "Cast");
  CHECK(Initializer(g, cast->input(0))->data_type() == onnx::TensorProto::FLOAT16);
  CHECK(out.report.layers[0].packed_bytes == (8 * 27 * 4 + 7) / 8 + 4 * 8);
  CHECK(out.report.layers[1].packed_bytes == 32 * 2);
}

TEST_CASE("2:4 and unstructured pruning are zeros in the stored weights") {
  const LoadedModel m = TwoConvs();
  const ExportedModel out = MustExport(m, {{8, 32, Sparsity::kTwoFour, 0.5}, {32, 32, Sparsity::kUnstructured, 0.5}});
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  const onnx::NodeProto* conv = NodeNamed(g, m.analysis.layers[0].name);
  const std::vector<int8_t> q = Int8Values(*Initializer(g, Producer(g, conv->input(1))->input(0)));
  for (size_t row = 0; row < 8; ++row) {
    for (size_t group = 0; group * 4 < 27; ++group) {
      int nonzero = 0;
      for (size_t k = group * 4; k < std::min<size_t>(group * 4 + 4, 27); ++k) nonzero += q[row * 27 + k] != 0;
      CHECK(nonzero <= 2);
    }
  }
  const onnx::NodeProto* conv2 = NodeNamed(g, m.analysis.layers[1].name);
  const std::vector<float> w2 = internal::DecodeFloats(*Initializer(g, conv2->input(1)));
  int zeros = 0;
  for (float v : w2) zeros += v == 0;
  CHECK(zeros >= 16);
  CHECK(out.report.layers[1].kept_params == 16);
}

TEST_CASE("channel pruning removes channels through a residual Add, BN, depthwise conv and Concat") {
  const LoadedModel m = MustLoad(ResidualProto(kSmallFirstHalf, kSmallFirstHalf));
  REQUIRE(m.analysis.layers.size() == 4);
  std::vector<LayerPlan> plan(4);
  plan[0] = {32, 32, Sparsity::kOutputChannel, 0.5};
  plan[1] = {32, 32, Sparsity::kOutputChannel, 0.5};
  const ExportedModel out = MustExport(m, plan);
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  CHECK(g.output(0).name() == "y");
  CHECK(out.report.removed_channels == 8);
  CHECK(out.report.layers[0].kept_out_channels == 4);
  CHECK(out.report.layers[0].zeroed_out_channels == 0);
  CHECK(out.report.layers[1].kept_out_channels == 4);
  CHECK(out.report.layers[1].removed_in_channels == 4);
  CHECK(out.report.layers[2].kept_out_channels == 4);    // the depthwise conv follows
  CHECK(out.report.layers[3].removed_in_channels == 8);  // both halves of the concat
  const onnx::NodeProto* d = NodeNamed(g, m.analysis.layers[2].name);
  REQUIRE(d != nullptr);
  for (const auto& a : d->attribute()) {
    if (a.name() == "group") CHECK(a.i() == 4);
  }
  const onnx::NodeProto* bn = Producer(g, "bn");
  REQUIRE(bn != nullptr);
  CHECK(Initializer(g, bn->input(1))->dims(0) == 4);
  CHECK(Initializer(g, Producer(g, "s")->input(1))->dims(0) == 4);
  CHECK(Initializer(g, NodeNamed(g, m.analysis.layers[3].name)->input(1))->dims(1) == 8);
}

TEST_CASE("channels an Add partner keeps are zeroed, not removed, and the report says why") {
  const LoadedModel m = MustLoad(ResidualProto(kSmallFirstHalf, {1, 1, 1, 1, 0.001f, 0.001f, 0.001f, 0.001f}));
  std::vector<LayerPlan> plan(4);
  plan[0] = {32, 32, Sparsity::kOutputChannel, 0.5};
  const ExportedModel out = MustExport(m, plan);
  CHECK(out.report.removed_channels == 0);
  CHECK(out.report.layers[0].zeroed_out_channels == 4);
  CHECK_THAT(out.report.layers[0].note, Contains("keeps it"));
  const onnx::ModelProto e = Parse(out.bytes);
  const onnx::GraphProto& g = e.graph();
  const std::vector<float> wa =
      internal::DecodeFloats(*Initializer(g, NodeNamed(g, m.analysis.layers[0].name)->input(1)));
  REQUIRE(wa.size() == 8 * 27);
  for (size_t k = 0; k < 4 * 27; ++k) CHECK(wa[k] == 0);
}

TEST_CASE("channels reaching a graph output stay, as zeros") {
  const LoadedModel m = TwoConvs();
  const ExportedModel out = MustExport(m, {{32, 32}, {32, 32, Sparsity::kOutputChannel, 0.5}});
  CHECK(out.report.removed_channels == 0);
  CHECK(out.report.layers[1].zeroed_out_channels == 2);
  CHECK_THAT(out.report.layers[1].note, Contains("graph output"));
}

TEST_CASE("weights inside an If branch are exported in their subgraph") {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    branchy (bool cond, float[2, 4] x) => (float[2, 4] y) {
      y = If (cond) <
        then_branch = then_graph () => (float[2, 4] t) { t = MatMul (x, wt) },
        else_branch = else_graph () => (float[2, 4] e) { e = Identity (x) }>
    }
  )onnx");
  onnx::GraphProto* then_branch = testing::Subgraph(&proto, 0, "then_branch");
  AddConstantNode(then_branch, "wt", FloatTensor("", {4, 4}, Encoding::kRaw));
  const LoadedModel m = MustLoad(proto);
  REQUIRE(m.analysis.layers.size() == 1);
  const ExportedModel out = MustExport(m, {{6, 8}});
  CHECK_THAT(out.report.layers[0].note, Contains("subgraph"));
  const onnx::ModelProto e = Parse(out.bytes);
  int dq = 0;
  internal::ForEachGraph(e.graph(), "", "",
                         [&](const onnx::GraphProto& g, const std::string& path, const std::string&) {
                           if (!path.empty()) dq += CountOps(g, "DequantizeLinear");
                         });
  CHECK(dq == 1);
}

TEST_CASE("bad plans and missing ranges are InvalidArgument") {
  const LoadedModel m = TwoConvs();
  CHECK(ExportModel(m, {{8, 8}}, {}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ExportModel(m, {{9, 32}, {32, 32}}, {}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ExportModel(m, {{32, 8}, {32, 32}}, {}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ExportModel(m, {{8, 32, Sparsity::kUnstructured, 1.0}, {32, 32}}, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  const absl::Status missing = ExportModel(m, {{8, 8}, {32, 32}}, {}).status();
  CHECK(missing.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(missing.message()), Contains("no calibrated range"));
}

TEST_CASE("an opset-9 model the version converter cannot follow is refused with the reason") {
  const std::string bytes = testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  REQUIRE_FALSE(bytes.empty());
  AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 192};
  const LoadedModel m = MustLoad(bytes, options);
  std::vector<LayerPlan> plan(m.analysis.layers.size(), LayerPlan{8, 32});
  const absl::Status s = ExportModel(m, plan, {}).status();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Contains("opset 9") && Contains("Softmax"));
  // Without integer weights no conversion is needed: fp16 weights export at opset 9.
  std::vector<LayerPlan> half(m.analysis.layers.size(), LayerPlan{16, 32});
  absl::StatusOr<ExportedModel> out = ExportModel(m, half, {});
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  CHECK(out->report.opset == 9);
  CHECK(out->report.file_bytes < static_cast<int64_t>(bytes.size()) * 6 / 10);
}

TEST_CASE("The CPU flavour writes no 16-bit activations, the plan in the file says what each layer does") {
  const LoadedModel m = TwoConvs();
  const absl::Status refused = ExportModel(m, {{8, 32}, {16, 16}}, {}).status();
  CHECK(refused.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.message()),
             Contains("w16a16 is not written by the ort-cpu export") && Contains("search again"));
  const ExportedModel out = MustExport(m, {{8, 32}, {16, 32}});
  const onnx::ModelProto e = Parse(out.bytes);
  std::string plan, flavour;
  for (const onnx::StringStringEntryProto& kv : e.metadata_props()) {
    if (kv.key() == "squeeze.plan") plan = kv.value();
    if (kv.key() == "squeeze.flavour") flavour = kv.value();
  }
  CHECK(flavour == "ort-cpu");
  CHECK_THAT(plan, Contains("\"file\":\"fp16 weights cast to float at load; float activations: computes in fp32\"") &&
                       Contains("8-bit weights stored in int8 with a per-channel DequantizeLinear"));
  // ONNX Runtime's CoreML provider converts no Q/DQ: its file is float, fp16 layers fp16 on the
  // Neural Engine; integer weights are refused.
  ExportOptions coreml;
  coreml.flavour = ExportFlavour::kRuntimePrecision;
  absl::StatusOr<ExportedModel> half = ExportModel(m, {{32, 32}, {16, 16}}, {}, coreml);
  REQUIRE(half.ok());
  CHECK_THAT(half->report.conformance, Contains("runtime-precision: 1 rules held on 0"));
  CHECK_THAT(PlanJson(m.analysis, {{32, 32}, {16, 16}}, ExportFlavour::kRuntimePrecision),
             Contains("fp16 when the runtime is built for fp16"));
  const absl::Status integer = ExportModel(m, {{8, 32}, {16, 16}}, {}, coreml).status();
  CHECK(integer.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(integer.message()), Contains("w8a32 is not written by the runtime-precision export"));
}

TEST_CASE("What an export writes for each layer is what LayerFileBytes predicts, whatever the plan and flavour") {
  const LoadedModel m = MustLoad(ResidualProto(kSmallFirstHalf, kSmallFirstHalf));
  const size_t n = m.analysis.layers.size();
  struct Case {
    std::vector<LayerPlan> plan;
    ExportFlavour flavour;
  };
  const std::vector<Case> cases = {
      {std::vector<LayerPlan>(n, LayerPlan{32, 32}), ExportFlavour::kOrtCpu},
      {std::vector<LayerPlan>(n, LayerPlan{16, 32}), ExportFlavour::kOrtCpu},
      {std::vector<LayerPlan>(n, LayerPlan{8, 32}), ExportFlavour::kOrtCpu},
      {std::vector<LayerPlan>(n, LayerPlan{3, 32}), ExportFlavour::kOrtCpu},  // INT4 storage
      {std::vector<LayerPlan>(n, LayerPlan{6, 8}), ExportFlavour::kOrtCpu},   // int8 storage, int32 biases
      {std::vector<LayerPlan>(n, LayerPlan{8, 8, Sparsity::kUnstructured, 0.5}), ExportFlavour::kOrtCpu},
      {{{8, 8, Sparsity::kOutputChannel, 0.5}, {8, 8}, {8, 8}, {8, 8}}, ExportFlavour::kOrtCpu},
      {std::vector<LayerPlan>(n, LayerPlan{8, 8}), ExportFlavour::kTensorRt},  // float biases
      {std::vector<LayerPlan>(n, LayerPlan{4, 16}), ExportFlavour::kQnn},
      {std::vector<LayerPlan>(n, LayerPlan{16, 16}), ExportFlavour::kRuntimePrecision},
  };
  const std::vector<BatchNormFold> folds = BatchNormFolds(m);
  CHECK(folds[1].folds);  // Conv b's BatchNormalization, when b's weights are integers
  CHECK(folds[1].structure_bytes > 0);
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, c.plan, c.flavour);
    REQUIRE(names.ok());
    std::map<std::string, TensorRange> ranges;
    for (const std::string& t : *names) ranges[t] = {-2.f, 3.f};
    ExportOptions options;
    options.flavour = c.flavour;
    absl::StatusOr<ExportedModel> out = ExportModel(m, c.plan, ranges, options);
    INFO(FlavourName(c.flavour) << " " << LayerPlanLabel(c.plan[0]) << ": " << out.status().ToString());
    REQUIRE(out.ok());
    // The file holds the model's other constants and what each layer's export wrote for it.
    const onnx::ModelProto file = Parse(out->bytes);
    int64_t constants = 0;
    for (const internal::NamedTensor& t : internal::AllConstants(file)) constants += internal::StoredBytes(*t.tensor);
    int64_t predicted = m.analysis.other_initializer_bytes;
    for (const LayerExport& le : out->report.layers) predicted += le.file_bytes;
    // Besides: each quantized activation's scale and zero point (4 + 1 bytes, 4 + 2 in uint16),
    // and a whole-graph flavour's constants in uint8 (this model's 8-value Mul scale: 8 + 5 bytes
    // for 32).
    const int64_t pair = c.flavour == ExportFlavour::kQnn && c.plan[0].activation_bits == 16 ? 6 : 5;
    CHECK(constants - predicted ==
          out->report.quantized_activations * pair + out->report.quantized_constants * (8 + 5 - 32));
    for (size_t i = 0; i < n; ++i) {
      const LayerExport& le = out->report.layers[i];
      INFO(le.layer << " " << le.option);
      CHECK(le.file_bytes ==
            LayerFileBytes(m.analysis.layers[i], c.plan[i], c.flavour, le.kept_out_channels, folds[i].folds));
    }
  }
}

TEST_CASE("A narrowed layer's export is LayerFileBytes less the narrowed share of NarrowableFileBytes") {
  // a (3>8) and b (8>8) lose half their output channels: b reads 4 of 8 input channels, the
  // depthwise d keeps 4 of its 8 channels, and the last Conv reads 4 of 8.
  const LoadedModel m = MustLoad(testing::NarrowingProto(8));
  const size_t n = m.analysis.layers.size();
  REQUIRE(n == 4);
  REQUIRE(m.analysis.layers[2].depthwise);
  const std::vector<ChannelPruningReach> reach = AnalyzeChannelPruning(m);
  REQUIRE(reach[0].removable);
  REQUIRE(reach[1].removable);
  const std::vector<BatchNormFold> folds = BatchNormFolds(m);
  REQUIRE(folds[1].folds);
  REQUIRE(folds[2].folds);
  struct Case {
    LayerPlan precision;
    ExportFlavour flavour;
  };
  const std::vector<Case> cases = {
      {{32, 32}, ExportFlavour::kOrtCpu}, {{16, 32}, ExportFlavour::kOrtCpu},
      {{8, 32}, ExportFlavour::kOrtCpu},  {{3, 32}, ExportFlavour::kOrtCpu},  // INT4 storage
      {{6, 8}, ExportFlavour::kOrtCpu},                                       // int32 biases
      {{8, 8}, ExportFlavour::kTensorRt},                                     // float biases
      {{4, 16}, ExportFlavour::kQnn},     {{16, 16}, ExportFlavour::kRuntimePrecision},
  };
  for (const Case& c : cases) {
    std::vector<LayerPlan> plan(n, c.precision);
    for (size_t i : {0, 1}) {
      plan[i].pattern = Sparsity::kOutputChannel;
      plan[i].prune_ratio = 0.5;
    }
    absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, plan, c.flavour);
    REQUIRE(names.ok());
    std::map<std::string, TensorRange> ranges;
    for (const std::string& t : *names) ranges[t] = {-2.f, 3.f};
    ExportOptions options;
    options.flavour = c.flavour;
    absl::StatusOr<ExportedModel> out = ExportModel(m, plan, ranges, options);
    INFO(FlavourName(c.flavour) << " " << LayerPlanLabel(c.precision) << ": " << out.status().ToString());
    REQUIRE(out.ok());
    // The share of each layer's input channels the pruned layers before it remove.
    std::vector<double> narrowed(n, 0);
    for (size_t i : {0, 1}) {
      for (const auto& [j, share] : reach[i].readers) narrowed[j] += share * plan[i].prune_ratio;
    }
    CHECK(narrowed == std::vector<double>{0, 0.5, 0.5, 0.5});
    CHECK(out->report.layers[1].removed_in_channels == 4);
    CHECK(out->report.layers[2].kept_out_channels == 4);
    CHECK(out->report.layers[3].removed_in_channels == 4);
    for (size_t i = 0; i < n; ++i) {
      const Layer& layer = m.analysis.layers[i];
      const LayerExport& le = out->report.layers[i];
      INFO(le.layer << " " << le.option);
      const int64_t kept = layer.out_channels - std::llround(layer.out_channels * plan[i].prune_ratio);
      const int64_t narrowable = NarrowableFileBytes(layer, plan[i], c.flavour, kept, folds[i].folds);
      // The BatchNormalization after a float depthwise Conv narrows with it but is not the layer's:
      // the model's other constants hold it.
      const bool float_weights = plan[i].weight_bits > 8;
      const int64_t batch_norm = layer.depthwise && folds[i].folds && float_weights ? 4 * 4 * kept : 0;
      CHECK(narrowable > batch_norm);
      const double predicted = static_cast<double>(LayerFileBytes(layer, plan[i], c.flavour, kept, folds[i].folds)) -
                               narrowed[i] * static_cast<double>(narrowable - batch_norm);
      // To the byte, but for INT4's rounding up to whole bytes.
      CHECK(static_cast<double>(le.file_bytes) == Approx(predicted).margin(1));
    }
  }
}

// The tensors a region lists, by name, with their bits.
std::map<std::string, int> RegionTensors(const QuantizedRegion& region) {
  std::map<std::string, int> out;
  for (const QuantizedTensor& t : region.tensors) out[t.name] = t.bits;
  return out;
}

TEST_CASE("The QNN HTP's region: every float tensor joined to integer layers through quantizable ops") {
  // Layers a, b, d, y; b's BatchNormalization folds, a's Relu folds into its output quantization.
  const LoadedModel m = MustLoad(ResidualProto(kSmallFirstHalf, kSmallFirstHalf));
  REQUIRE(m.analysis.layers.size() == 4);
  const std::vector<LayerPlan> a8(4, LayerPlan{8, 8});
  // ONNX Runtime's CPU provider quantizes only the layers' own inputs and outputs.
  const std::map<std::string, int> cpu = RegionTensors(QuantizedRegionOf(m, a8, ExportFlavour::kOrtCpu));
  CHECK(cpu == std::map<std::string, int>{{"x", 8}, {"ar", 8}, {"bn", 8}, {"s", 8}, {"d", 8}, {"c", 8}, {"y", 8}});
  // The HTP also quantizes the Add between them, and the Mul's constant; not the tensors inside a
  // layer's folded chain (a before its Relu, b before its BatchNormalization).
  const QuantizedRegion npu = QuantizedRegionOf(m, a8, ExportFlavour::kQnn);
  CHECK(RegionTensors(npu) ==
        std::map<std::string, int>{{"x", 8}, {"ar", 8}, {"bn", 8}, {"r", 8}, {"s", 8}, {"d", 8}, {"c", 8}, {"y", 8}});
  REQUIRE(npu.constants.size() == 1);
  CHECK(npu.constants[0].second == 1);  // Mul(r, chscale)

  SECTION("a uint16 layer widens the region it touches") {
    std::vector<LayerPlan> plan = a8;
    plan[2] = LayerPlan{8, 16};  // d
    const std::map<std::string, int> bits = RegionTensors(QuantizedRegionOf(m, plan, ExportFlavour::kQnn));
    CHECK(bits.at("s") == 16);
    CHECK(bits.at("r") == 16);
    CHECK(bits.at("y") == 8);  // y's output is its own region
  }
  SECTION("an fp16 layer's output stays float; what it reads is dequantized where others quantize it") {
    std::vector<LayerPlan> plan = a8;
    plan[3] = LayerPlan{16, 16};  // y
    const std::map<std::string, int> bits = RegionTensors(QuantizedRegionOf(m, plan, ExportFlavour::kQnn));
    CHECK(bits.count("y") == 0);
    CHECK(bits.count("c") == 1);
    plan[0] = LayerPlan{16, 16};  // a: x and a's output float
    const std::map<std::string, int> first = RegionTensors(QuantizedRegionOf(m, plan, ExportFlavour::kQnn));
    CHECK(first.count("x") == 0);
    CHECK(first.count("a") == 0);
  }
  SECTION("the export holds the region: no float op between quantized tensors, the output dequantized") {
    absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, a8, ExportFlavour::kQnn);
    REQUIRE(names.ok());
    std::map<std::string, TensorRange> ranges;
    for (const std::string& n : *names) ranges[n] = {-2.f, 3.f};
    ExportOptions options;
    options.flavour = ExportFlavour::kQnn;
    absl::StatusOr<ExportedModel> out = ExportModel(m, a8, ranges, options);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    INFO(out->report.conformance);
    CHECK(out->report.quantized_activations == 8);
    CHECK(out->report.quantized_constants == 1);
    CHECK(out->report.float_ops_between_quantized == 0);
    const onnx::ModelProto e = Parse(out->bytes);
    bool output_dequantized = false;
    for (const onnx::NodeProto& n : e.graph().node())
      output_dequantized |= n.op_type() == "DequantizeLinear" && n.output(0) == "y";
    CHECK(output_dequantized);
    // The ort-cpu file of the plan leaves the Add float between its quantized inputs, and the last
    // Conv, which writes the graph's float output itself.
    const ExportedModel cpu_file = MustExport(m, a8);
    CHECK(cpu_file.report.float_ops_between_quantized == 2);
    CHECK_THAT(cpu_file.report.conformance,
               Contains("2 ops read dequantized activations and write float values (Add '") && Contains("Conv '"));
    const ConformanceReport as_npu = CheckConformance(Parse(cpu_file.bytes), ExportFlavour::kQnn);
    CHECK_FALSE(as_npu.ok());
    CHECK_THAT(as_npu.Summary(), Contains("whole-graph QDQ: Add '") && Contains("writes a float value"));
  }
}

// x [2, 40] -> MatMul (w [40, 6]) -> y: K = 40 is no multiple of the blocks (a short last block),
// and the first half of each column of w is 100x smaller than the second.
LoadedModel OneMatMul() {
  onnx::ModelProto proto = ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 13]>
    mm (float[2, 40] x) => (float[2, 6] y) {
      y = MatMul (x, w)
    }
  )onnx");
  std::vector<float> w = testing::Ramp(40 * 6, 0.1f);
  for (int64_t k = 0; k < 20; ++k) {
    for (int64_t n = 0; n < 6; ++n) w[k * 6 + n] *= 0.01f;
  }
  AddInitializer(proto.mutable_graph(), FloatTensor("w", {40, 6}, Encoding::kRaw, w));
  return MustLoad(proto);
}

// The weights a MatMulNBits holds, decoded as its kernel reads them: (code − 2^(bits−1)) · scale,
// column n's K values in order, as a [K, N] matrix.
std::vector<float> DecodeMatMulNBits(const onnx::GraphProto& g, const onnx::NodeProto& n) {
  const int64_t k = internal::IntAttribute(n, "K", 0), cols = internal::IntAttribute(n, "N", 0);
  const int64_t bits = internal::IntAttribute(n, "bits", 0), block = internal::IntAttribute(n, "block_size", 0);
  const int64_t blocks = (k + block - 1) / block, blob = block * bits / 8;
  const std::string& codes = Initializer(g, n.input(1))->raw_data();
  const std::vector<float> scales = internal::DecodeFloats(*Initializer(g, n.input(2)));
  std::vector<float> w(static_cast<size_t>(k * cols));
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t b = j / block, bit = (j % block) * bits;
      const int code =
          (static_cast<uint8_t>(codes[(c * blocks + b) * blob + bit / 8]) >> (bit % 8)) & ((1 << bits) - 1);
      w[j * cols + c] = static_cast<float>(code - (1 << (bits - 1))) * scales[c * blocks + b];
    }
  }
  return w;
}

TEST_CASE("2..4-bit MatMul weights become a MatMulNBits of block-wise codes whose bytes the size predictor knows") {
  const LoadedModel m = OneMatMul();
  REQUIRE(m.analysis.layers.size() == 1);
  const Layer& layer = m.analysis.layers[0];
  CHECK(WritesMatMulNBits(layer, ExportFlavour::kOrtCpu, 4, 32));
  CHECK_FALSE(WritesMatMulNBits(layer, ExportFlavour::kOrtCpu, 4, 8));   // integer activations: QLinearMatMul
  CHECK_FALSE(WritesMatMulNBits(layer, ExportFlavour::kOrtCpu, 8, 32));  // 8 bits: int8 per channel
  CHECK_FALSE(WritesMatMulNBits(layer, ExportFlavour::kTensorRt, 4, 32));
  const std::vector<float> w = internal::DecodeFloats(*Initializer(m.proto.graph(), "w"));

  for (const auto& [bits, block, codes] : {std::tuple{4, 16, 4}, std::tuple{3, 32, 4}, std::tuple{2, 16, 2}}) {
    DYNAMIC_SECTION("w" << bits << " block " << block) {
      LayerPlan plan{bits, 32};
      plan.block_size = block;
      const ExportedModel out = MustExport(m, {plan});
      const onnx::ModelProto e = Parse(out.bytes);
      const onnx::GraphProto& g = e.graph();
      REQUIRE(g.node_size() == 1);
      const onnx::NodeProto& n = g.node(0);
      CHECK(n.op_type() == "MatMulNBits");
      CHECK(n.domain() == "com.microsoft");
      CHECK(n.input(0) == "x");
      CHECK(n.output(0) == "y");
      CHECK(internal::IntAttribute(n, "K", 0) == 40);
      CHECK(internal::IntAttribute(n, "N", 0) == 6);
      CHECK(internal::IntAttribute(n, "bits", 0) == codes);
      CHECK(internal::IntAttribute(n, "block_size", 0) == block);
      const int64_t blocks = (40 + block - 1) / block;
      const onnx::TensorProto* q = Initializer(g, n.input(1));
      REQUIRE(q != nullptr);
      CHECK(q->data_type() == onnx::TensorProto::UINT8);
      CHECK(std::vector<int64_t>(q->dims().begin(), q->dims().end()) ==
            std::vector<int64_t>{6, blocks, block * codes / 8});
      CHECK(g.initializer_size() == 2);  // the codes and the scales: the float weight is gone
      // What the file holds is what the report says it holds, decoded as ONNX Runtime decodes it.
      const std::vector<float> held = DecodeMatMulNBits(g, n);
      CHECK(out.report.layers[0].weight_distortion == Approx(RelativeDistortion(w, held)).epsilon(1e-6));
      // Within ±(2^(bits-1) − 1) levels of each block's scale.
      int max_level = 0;
      const std::vector<float> scales = internal::DecodeFloats(*Initializer(g, n.input(2)));
      for (int64_t c = 0; c < 6; ++c) {
        for (int64_t j = 0; j < 40; ++j) {
          max_level = std::max(
              max_level, static_cast<int>(std::lround(std::abs(held[j * 6 + c]) / scales[c * blocks + j / block])));
        }
      }
      CHECK(max_level == (1 << (bits - 1)) - 1);
      // Block-wise scales follow each run's own range closer than one scale per column.
      LayerPlan per_channel{bits, 32};
      const ExportedModel int4 = MustExport(m, {per_channel});
      INFO("distortion block-wise " << out.report.layers[0].weight_distortion << ", per channel "
                                    << int4.report.layers[0].weight_distortion);
      CHECK(out.report.layers[0].weight_distortion < int4.report.layers[0].weight_distortion);
      // The predicted bytes are the file's, and the file conforms to ONNX Runtime's rules.
      CHECK(out.report.layers[0].file_bytes == LayerFileBytes(layer, plan, ExportFlavour::kOrtCpu, 6, false));
      CHECK(out.report.layers[0].file_bytes == 6 * blocks * (block * codes / 8 + 4));
      const ConformanceReport conformance = CheckConformance(e, ExportFlavour::kOrtCpu);
      INFO(conformance.Summary());
      CHECK(conformance.ok());
      CHECK(conformance.checked_nodes == 1);
      CHECK(LayerPlanLabel(plan) == absl::StrCat("w", bits, "a32 block ", block));
      // Another runtime takes no MatMulNBits.
      CHECK_FALSE(CheckConformance(e, ExportFlavour::kTensorRt).ok());
    }
  }
}

TEST_CASE("A block size is refused where no MatMulNBits is written, and where MatMulNBits takes none") {
  const LoadedModel mm = OneMatMul();
  LayerPlan plan{4, 32};
  plan.block_size = 24;
  absl::StatusOr<ExportedModel> odd = ExportModel(mm, {plan}, {});
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(odd.status().message()), Contains("block size 24 (a power of two from 16 to 256)"));
  plan = LayerPlan{8, 32};
  plan.block_size = 32;
  absl::StatusOr<ExportedModel> eight = ExportModel(mm, {plan}, {});
  REQUIRE_FALSE(eight.ok());
  CHECK_THAT(std::string(eight.status().message()), Contains("not w8a32 of a MatMul in ort-cpu"));
  const LoadedModel convs = TwoConvs();
  plan = LayerPlan{4, 32};
  plan.block_size = 32;
  absl::StatusOr<ExportedModel> conv = ExportModel(convs, {plan, LayerPlan{}}, {});
  REQUIRE_FALSE(conv.ok());
  CHECK_THAT(std::string(conv.status().message()), Contains("of a Conv in ort-cpu"));
}

}  // namespace
}  // namespace squeeze::model
