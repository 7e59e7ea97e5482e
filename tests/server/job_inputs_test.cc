// What a search and an export measure on: the calibration set a job takes, for a real model.
#include "server/job_inputs.h"

#include <catch2/catch.hpp>

#include "tests/model/test_models.h"

namespace squeeze::server {
namespace {

TEST_CASE("A job without calibration samples draws enough synthetic ones for its smallest output", "[job-inputs]") {
  // PP-OCR's direction classifier: two logits per line.
  const std::string bytes = model::testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  INFO("ch_ppocr_mobile_v2.0_cls_infer.onnx from .cache/models (deploy/install-deps.sh)");
  REQUIRE_FALSE(bytes.empty());
  absl::StatusOr<model::LoadedModel> loaded = LoadJobModel(bytes, "x=1,3,48,192", JobModelOptions{});
  REQUIRE(loaded.ok());
  absl::StatusOr<std::unique_ptr<runtime::Session>> original = runtime::Session::Create(bytes);
  REQUIRE(original.ok());
  const google::protobuf::RepeatedPtrField<v1::CalibrationSample> none;
  const google::protobuf::Map<std::string, double> no_values;
  absl::StatusOr<runtime::CalibrationSet> set = JobCalibration(*loaded, **original, none, no_values, 2, 1);
  REQUIRE(set.ok());
  CHECK(set->synthetic);
  // 2 logits x 8 samples: 16 values for its error, where 2 samples would give 4.
  CHECK(set->samples.size() == runtime::kMostSyntheticSamples);
  // The same job drawn again is the same set (its sensitivities are cached by the hash).
  absl::StatusOr<runtime::CalibrationSet> again = JobCalibration(*loaded, **original, none, no_values, 2, 1);
  REQUIRE(again.ok());
  CHECK(again->hash == set->hash);

  SECTION("uploaded samples are taken as they are, however few") {
    google::protobuf::RepeatedPtrField<v1::CalibrationSample> uploaded;
    onnx::TensorProto t;
    t.set_name("x");
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : {1, 3, 48, 192}) t.add_dims(d);
    t.set_raw_data(std::string(3 * 48 * 192 * sizeof(float), '\0'));
    uploaded.Add()->add_tensors(t.SerializeAsString());
    absl::StatusOr<runtime::CalibrationSet> given = JobCalibration(*loaded, **original, uploaded, no_values, 2, 1);
    REQUIRE(given.ok());
    CHECK_FALSE(given->synthetic);
    CHECK(given->samples.size() == 1);
  }
}

}  // namespace
}  // namespace squeeze::server
