#include "server/job_inputs.h"

#include <map>
#include <vector>

#include "server/search_spec.h"

namespace squeeze::server {

absl::StatusOr<model::LoadedModel> LoadJobModel(const std::string& bytes, const std::string& input_shapes,
                                                const JobModelOptions& options) {
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes = ParseShapes(input_shapes);
  if (!shapes.ok()) return shapes.status();
  model::AnalyzeOptions analyze;
  analyze.input_shapes = *std::move(shapes);
  analyze.shape_probe = options.shape_probe;
  analyze.max_activation_bytes = options.max_activation_bytes;
  analyze.threads = options.threads;
  return model::LoadModel(bytes, analyze);
}

absl::StatusOr<runtime::CalibrationSet> JobCalibration(
    const model::LoadedModel& model, const runtime::Session& original,
    const google::protobuf::RepeatedPtrField<v1::CalibrationSample>& uploaded,
    const google::protobuf::Map<std::string, double>& input_values, int synthetic, uint64_t seed) {
  absl::StatusOr<runtime::CalibrationSet> calibration;
  if (!uploaded.empty()) {
    std::vector<std::vector<std::string>> files;
    for (const v1::CalibrationSample& s : uploaded) files.emplace_back(s.tensors().begin(), s.tensors().end());
    calibration = runtime::CalibrationFromTensorProtos(model.analysis, original.inputs(), files);
  } else {
    const std::map<std::string, double> values(input_values.begin(), input_values.end());
    // More samples for a model whose outputs are small (a classifier's few logits).
    absl::StatusOr<int> count = runtime::SyntheticSampleCount(model.analysis, original, synthetic, seed, values);
    if (!count.ok()) return count.status();
    calibration = runtime::SyntheticCalibration(model.analysis, original.inputs(), *count, seed, values);
  }
  if (!calibration.ok()) return calibration.status();
  // A model that does not run on these inputs would leave every sensitivity unmeasured and fail
  // an export for no fault of the candidate: say so now.
  if (absl::Status runs = runtime::CheckModelRunsOn(original, *calibration); !runs.ok()) return runs;
  return calibration;
}

}  // namespace squeeze::server
