// Calibration inputs: the real inputs a model's fidelity is measured on. Uploaded as ONNX
// TensorProto files (the ONNX test-data format, input_N.pb), or drawn from the input specs when
// none are given, and then marked synthetic so every result can say so. Pure functions: thread safe.
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
  std::map<std::string, double> input_values;  // synthetic: the inputs given one value (SyntheticCalibration)
  // sha256 over the samples' names, types, shapes and bytes: the sensitivity cache's key.
  std::string hash;
};

// `count` samples drawn with `seed` for the analysed input shapes: float inputs (fp32, fp16) from
// N(0, 1) (what normalised images and embeddings look like), token ids (int64 or int32 inputs
// that only index Gathers, model::Analysis::index_input_bounds) uniform over the table's rows,
// other integer and bool inputs 0, and the inputs `values` names that one value in every element (a sample rate, a
// state of zeros). Marked synthetic. The same seed gives the same bytes and hash on every platform. InvalidArgument for
// count < 1, an input without a concrete shape or of an element type sessions cannot feed, and a
// value naming no input, not finite, not whole for an integer input, not 0 or 1 for a bool one or
// outside its type's range.
absl::StatusOr<CalibrationSet> SyntheticCalibration(const model::Analysis& analysis,
                                                    const std::vector<TensorInfo>& inputs, int count, uint64_t seed,
                                                    const std::map<std::string, double>& values = {});

// Synthetic samples enough for a fidelity figure: each float graph output's relative error is
// taken over at least this many values, where samples allow (SyntheticSampleCount).
inline constexpr int kLeastOutputValues = 32;
inline constexpr int kMostSyntheticSamples = 8;

// How many synthetic samples (SyntheticCalibration) a model's fidelity figures need: `least`, or
// more, up to kMostSyntheticSamples, when its smallest float output holds fewer than
// kLeastOutputValues values over `least` samples. A 2-class classifier gives 2 logits per sample:
// on 2 samples its error is 4 numbers, in which one layer's error cancels another's, and plans
// rank by chance (PP-OCR's direction classifier: Spearman 0.88 on 2 lines, 0.94 on 8). Runs
// `original` once on one sample drawn with `seed` and `values`; `least` when that run fails
// (CheckModelRunsOn then says why, on the samples themselves). InvalidArgument as
// SyntheticCalibration gives it.
absl::StatusOr<int> SyntheticSampleCount(const model::Analysis& analysis, const Session& original, int least,
                                         uint64_t seed, const std::map<std::string, double>& values = {});

// Samples from serialized onnx::TensorProto files: files[k][j] is sample k's tensor for one
// input, named by the TensorProto's name or, when unnamed, by position j. Every element type a
// Session feeds is taken (fp32, fp16, int64, int32, int8, uint8, bool), raw or typed data.
// InvalidArgument naming the sample and input for: no samples, bytes that are not a TensorProto, a
// missing, unknown or repeated input, an element type or shape that does not match the input (the
// shape as analysed), data that does not fill the shape or lives in an external file.
absl::StatusOr<CalibrationSet> CalibrationFromTensorProtos(const model::Analysis& analysis,
                                                           const std::vector<TensorInfo>& inputs,
                                                           const std::vector<std::vector<std::string>>& files);

// OK when `original`, the model as it was uploaded, runs on every sample of `set`. Otherwise
// FailedPrecondition saying so: that the model itself (not a compressed variant) fails on these
// inputs, how they were made (for synthetic ones, which inputs got zeros) and how to give inputs
// it runs on (--calibration); ResourceExhausted or DeadlineExceeded as the run gave it when it ran
// out of memory or time (no input would help). A search or export checks this before anything else runs.
absl::Status CheckModelRunsOn(const Session& original, const CalibrationSet& set);

// Samples from 8-bit binary PPM/PGM images, one per sample, for a model with one image input
// [1, C, H, W] of the images' size, normalized with ImageNet's mean and std (PP-OCR's and most
// vision models' preprocessing; model/image_tensor.h), through CalibrationFromTensorProtos.
// InvalidArgument naming the image for an unreadable file or one ImageToTensor refuses, and for a
// model with other than one input.
absl::StatusOr<CalibrationSet> CalibrationFromImages(const model::Analysis& analysis,
                                                     const std::vector<TensorInfo>& inputs,
                                                     const std::vector<std::string>& image_paths);

// `count` draws from N(0, 1) for `seed`, the same on every platform and standard library
// (Box-Muller over mt19937_64, whose sequence the C++ standard fixes): synthetic inputs and the
// sensitivity noise, so both reproduce anywhere.
std::vector<float> StandardNormal(uint64_t seed, size_t count);

// The seed of item `index` (a sample, a layer) of a run seeded with `seed` (SplitMix64 of both),
// so each item draws the same numbers whatever order, or thread, it is drawn in.
uint64_t DeriveSeed(uint64_t seed, uint64_t index);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_CALIBRATION_H_
