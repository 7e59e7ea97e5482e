// Calibration inputs: the real inputs a model's fidelity is measured on. Uploaded as ONNX
// TensorProto files (the ONNX test-data format, input_N.pb), or drawn from the input specs when
// none are given, and then marked synthetic so every result can say so.
#ifndef SQUEEZE_RUNTIME_CALIBRATION_H_
#define SQUEEZE_RUNTIME_CALIBRATION_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/analysis.h"
#include "runtime/session.h"

namespace squeeze::runtime {

struct CalibrationSet {
  // samples[k] holds one tensor per model input (matched by name).
  std::vector<std::vector<Tensor>> samples;
  bool synthetic = false;
  // sha256 over the samples' names, types, shapes and bytes: the sensitivity cache's key.
  std::string hash;
};

// `count` samples drawn with `seed` for the analysed input shapes: float inputs from N(0, 1)
// (what normalised images and embeddings look like), integer inputs 0. Marked synthetic.
absl::StatusOr<CalibrationSet> SyntheticCalibration(const model::Analysis& analysis,
                                                    const std::vector<TensorInfo>& inputs, int count,
                                                    uint64_t seed);

// Samples from serialized onnx::TensorProto files: files[k][j] is sample k's tensor for one
// input, named by the TensorProto's name or, when unnamed, by position j. InvalidArgument naming
// the sample and input for bytes that are not a TensorProto, a missing or unknown input, a type
// or shape that does not match the analysed input shape, or data that does not fill the shape.
absl::StatusOr<CalibrationSet> CalibrationFromTensorProtos(const model::Analysis& analysis,
                                                           const std::vector<TensorInfo>& inputs,
                                                           const std::vector<std::vector<std::string>>& files);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_CALIBRATION_H_
