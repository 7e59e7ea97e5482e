// model/quantized_region.h's QuantizableRegionsOf: which layers decide whether the constants
// between them are stored in uint8, and what that saves, held against what the exporter writes.
#include "model/quantized_region.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>

#include "model/export.h"
#include "tests/model/export_models.h"
#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using testing::MustLoad;
using testing::ParseModel;

// testing::ScaledBiasProto at 8 channels on 8×8: one region between the two layers, holding two
// float constants.
LoadedModel ScaledBias() { return MustLoad(testing::ScaledBiasProto(8, 8)); }

ExportedModel ExportQnn(const LoadedModel& m, const std::vector<LayerPlan>& plan) {
  absl::StatusOr<std::vector<std::string>> names = ActivationsToCalibrate(m, plan, ExportFlavour::kQnn);
  REQUIRE(names.ok());
  std::map<std::string, TensorRange> ranges;
  for (const std::string& n : *names) ranges[n] = {-2.f, 3.f};
  ExportOptions options;
  options.flavour = ExportFlavour::kQnn;
  absl::StatusOr<ExportedModel> out = ExportModel(m, plan, ranges, options);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return *std::move(out);
}

// What the exported file `bytes` would weigh with its uint8 copies of `constants` (names in the
// source model `m`) stored float again: each DequantizeLinear of such a copy, its values, scale and
// zero point removed, its readers reading the source's float constant.
int64_t BytesWithFloatConstants(const std::string& bytes, const LoadedModel& m,
                                const std::set<std::string>& constants) {
  onnx::ModelProto file;
  REQUIRE(file.ParseFromString(bytes));
  onnx::GraphProto* g = file.mutable_graph();
  std::map<std::string, std::string> restored;  // DequantizeLinear output -> source constant
  std::set<std::string> dropped;                // its inputs
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (const onnx::NodeProto& n : g->node()) {
    bool copy = n.op_type() != "DequantizeLinear";
    for (const std::string& c : constants) {
      if (copy || n.input(0).rfind(c + "_squeeze_u8", 0) != 0) continue;
      restored[n.output(0)] = c;
      dropped.insert(n.input().begin(), n.input().end());
    }
    if (copy || !restored.count(n.output(0))) *nodes.Add() = n;
  }
  REQUIRE(restored.size() == constants.size());
  for (onnx::NodeProto& n : nodes) {
    for (int k = 0; k < n.input_size(); ++k) {
      if (auto it = restored.find(n.input(k)); it != restored.end()) n.set_input(k, it->second);
    }
  }
  *g->mutable_node() = std::move(nodes);
  google::protobuf::RepeatedPtrField<onnx::TensorProto> initializers;
  for (const onnx::TensorProto& t : g->initializer()) {
    if (!dropped.count(t.name())) *initializers.Add() = t;
  }
  for (const onnx::TensorProto& t : m.proto.graph().initializer()) {
    if (constants.count(t.name())) *initializers.Add() = t;
  }
  *g->mutable_initializer() = std::move(initializers);
  return static_cast<int64_t>(file.ByteSizeLong());
}

}  // namespace

TEST_CASE("A quantizable region's layers and saved bytes are what the QNN exporter writes", "[region]") {
  const LoadedModel m = ScaledBias();
  REQUIRE(m.analysis.layers.size() == 2);
  CHECK(QuantizableRegionsOf(m, ExportFlavour::kOrtCpu).empty());
  const std::vector<QuantizableRegion> regions = QuantizableRegionsOf(m, ExportFlavour::kQnn);
  REQUIRE(regions.size() == 1);
  const QuantizableRegion& region = regions[0];
  CHECK(region.layers == std::vector<int>{0, 1});
  REQUIRE(region.constants.size() == 2);
  CHECK(region.constants[0].second == 1);
  CHECK(region.constants[1].second == 1);
  // 8 + 512 float values stored as bytes: 3 x 520 less, less two scales, zero points and
  // DequantizeLinear nodes.
  CHECK(region.saved_bytes > 3 * 520 - 2 * 300);
  CHECK(region.saved_bytes < 3 * 520);

  const std::set<std::string> constants = {"s", "bias"};
  SECTION("quantized when any layer bordering it runs integer") {
    for (const std::vector<LayerPlan>& plan : std::vector<std::vector<LayerPlan>>{
             {{8, 8}, {8, 8}}, {{16, 16}, {8, 8}}, {{8, 8}, {16, 16}}, {{16, 16}, {8, 16}}}) {
      INFO(LayerPlanLabel(plan[0]) << ", " << LayerPlanLabel(plan[1]));
      const ExportedModel out = ExportQnn(m, plan);
      CHECK(out.report.quantized_constants == 2);
      CHECK(BytesWithFloatConstants(out.bytes, m, constants) - static_cast<int64_t>(out.bytes.size()) ==
            region.saved_bytes);
    }
  }
  SECTION("float when every layer bordering it is fp16") {
    const ExportedModel out = ExportQnn(m, {{16, 16}, {16, 16}});
    CHECK(out.report.quantized_constants == 0);
    onnx::ModelProto file;
    REQUIRE(file.ParseFromString(out.bytes));
    std::set<std::string> floats;
    for (const onnx::TensorProto& t : file.graph().initializer()) {
      if (t.data_type() == onnx::TensorProto::FLOAT) floats.insert(t.name());
    }
    CHECK(floats.count("s") == 1);
    CHECK(floats.count("bias") == 1);
  }
}

}  // namespace squeeze::model
