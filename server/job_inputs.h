// What a search and an export of a stored model both start from: the model loaded at its stored
// input shapes, and the calibration set the job measures on, checked to run on the model as
// uploaded. One set-up for both, so an export calibrates on what its search measured.
#ifndef SQUEEZE_SERVER_JOB_INPUTS_H_
#define SQUEEZE_SERVER_JOB_INPUTS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/session.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

struct JobModelOptions {
  model::ShapeProbe shape_probe;
  int64_t max_activation_bytes = 0;  // 0: not checked (model::AnalyzeOptions)
  int threads = 2;
};

// `bytes` loaded and analysed at `input_shapes` (a model record's canonical text, ParseShapes).
// DataLoss when the stored shapes do not parse; otherwise as model::LoadModel.
absl::StatusOr<model::LoadedModel> LoadJobModel(const std::string& bytes, const std::string& input_shapes,
                                                const JobModelOptions& options);

// The uploaded samples, or at least `synthetic` samples drawn with `seed` when there are none
// (with the spec's `input_values`; more for small outputs, runtime::SyntheticSampleCount), for
// `original` (the model as uploaded); FailedPrecondition when it does
// not run on them (runtime::CheckModelRunsOn), InvalidArgument for samples or values that do not
// fit its inputs.
absl::StatusOr<runtime::CalibrationSet> JobCalibration(
    const model::LoadedModel& model, const runtime::Session& original,
    const google::protobuf::RepeatedPtrField<v1::CalibrationSample>& uploaded,
    const google::protobuf::Map<std::string, double>& input_values, int synthetic, uint64_t seed);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_JOB_INPUTS_H_
