// GPTQ on a real transformer graph in ONNX Runtime: the rows each MatMul reads are collected from
// the calibration inputs, and a 4-bit block-wise export rounded by GPTQ measures better than one
// rounded to nearest, on those inputs and on inputs it never saw.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>

#include "bench/models/transformer_model.h"
#include "model/export.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/layer_inputs.h"
#include "runtime/session.h"
#include "runtime/verify.h"

namespace squeeze::runtime {
namespace {

struct Built {
  std::string bytes;
  model::LoadedModel loaded;
  CalibrationSet calibration, held_out;
};

Built BuildPreset(const char* preset, int samples) {
  Built b;
  absl::StatusOr<onnx::ModelProto> proto = bench::BuildTransformer(*bench::TransformerPreset(preset));
  REQUIRE(proto.ok());
  b.bytes = proto->SerializeAsString();
  absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(b.bytes, {});
  REQUIRE(loaded.ok());
  b.loaded = *std::move(loaded);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(b.bytes);
  REQUIRE(session.ok());
  absl::StatusOr<CalibrationSet> calibration =
      SyntheticCalibration(b.loaded.analysis, (*session)->inputs(), samples, 1);
  absl::StatusOr<CalibrationSet> held_out = SyntheticCalibration(b.loaded.analysis, (*session)->inputs(), samples, 2);
  REQUIRE(calibration.ok());
  REQUIRE(held_out.ok());
  b.calibration = *std::move(calibration);
  b.held_out = *std::move(held_out);
  return b;
}

TEST_CASE("Each MatMul's calibration rows are its input's rows, shared by the layers reading one value", "[rounding]") {
  const Built b = BuildPreset("tiny-lm", 3);
  const std::vector<std::string> layers = RowReadingLayers(b.loaded.analysis);
  REQUIRE(layers.size() == 12);  // Q, K, V, O and the MLP's two in each of 2 blocks
  absl::StatusOr<model::LayerInputs> inputs = CollectLayerInputs(b.loaded, layers, b.calibration);
  REQUIRE(inputs.ok());
  REQUIRE(inputs->size() == layers.size());
  std::set<const model::LayerInputRows*> distinct;
  for (const model::Layer& layer : b.loaded.analysis.layers) {
    const auto it = inputs->find(layer.name);
    REQUIRE(it != inputs->end());
    CHECK(it->second->k == layer.weight_shape[0]);
    CHECK(it->second->rows() == 3 * 16);  // 3 samples of 16 tokens
    distinct.insert(it->second.get());
  }
  CHECK(distinct.size() == 8);  // Q, K and V read one value in each block

  LayerInputOptions capped;
  capped.max_rows = 10;
  absl::StatusOr<model::LayerInputs> few = CollectLayerInputs(b.loaded, layers, b.calibration, capped);
  REQUIRE(few.ok());
  for (const auto& [layer, rows] : *few) CHECK(rows->rows() == 10);  // every 5th of 48

  CHECK(CollectLayerInputs(b.loaded, layers, CalibrationSet{}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A 4-bit block-wise export rounded by GPTQ errs less than one rounded to nearest, also on other inputs",
          "[rounding]") {
  const Built b = BuildPreset("tiny-speech", 8);
  std::vector<model::LayerPlan> plan(b.loaded.analysis.layers.size());
  int block_wise = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!model::WritesMatMulNBits(b.loaded.analysis.layers[i], model::ExportFlavour::kOrtCpu, 4, 32)) continue;
    plan[i] = model::LayerPlan{4, 32};
    plan[i].block_size = 32;
    ++block_wise;
  }
  REQUIRE(block_wise == 12);
  std::map<model::WeightRounding, VerifiedExport> exports;
  std::map<model::WeightRounding, double> held_out_sqnr;
  for (model::WeightRounding rounding : {model::WeightRounding::kErrorCompensating, model::WeightRounding::kNearest}) {
    ExportCheckOptions options;
    options.export_options.rounding = rounding;
    absl::StatusOr<VerifiedExport> out = ExportAndVerify(b.loaded, b.bytes, plan, b.calibration, options);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    int compensated = 0;
    for (const model::LayerExport& l : out->exported.report.layers) compensated += l.compensated ? 1 : 0;
    CHECK(compensated == (rounding == model::WeightRounding::kNearest ? 0 : 12));
    absl::StatusOr<Verification> other = VerifyExport(b.bytes, out->exported.bytes, b.held_out, {});
    REQUIRE(other.ok());
    held_out_sqnr[rounding] = other->sqnr_db;
    exports.emplace(rounding, *std::move(out));
  }
  const VerifiedExport& gptq = exports.at(model::WeightRounding::kErrorCompensating);
  const VerifiedExport& nearest = exports.at(model::WeightRounding::kNearest);
  INFO("calibration inputs: " << gptq.verification.sqnr_db << " dB vs " << nearest.verification.sqnr_db
                              << "; held out: " << held_out_sqnr[model::WeightRounding::kErrorCompensating] << " vs "
                              << held_out_sqnr[model::WeightRounding::kNearest]);
  CHECK(gptq.verification.sqnr_db > nearest.verification.sqnr_db + 3);
  CHECK(held_out_sqnr[model::WeightRounding::kErrorCompensating] > held_out_sqnr[model::WeightRounding::kNearest] + 2);
  CHECK(gptq.verification.integer_ops.count("MatMulNBits") == 1);
  // The same bytes: the codes and scales differ, the storage does not.
  CHECK(gptq.exported.report.file_bytes == nearest.exported.report.file_bytes);

  // The same calibration gives the same file: what the search predicted is what ships.
  absl::StatusOr<VerifiedExport> again = ExportAndVerify(b.loaded, b.bytes, plan, b.calibration, {});
  REQUIRE(again.ok());
  CHECK(again->exported.bytes == gptq.exported.bytes);
}

}  // namespace
}  // namespace squeeze::runtime
