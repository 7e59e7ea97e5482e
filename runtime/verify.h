// Verifying compressed exports in ONNX Runtime (DESIGN.md §5, §6): activation ranges calibrated on
// the calibration inputs for the QDQ export, then the exported model run beside the original on
// the same inputs — measured output SQNR and cosine similarity, measured latency with the same
// thread count for both, and which integer kernels ONNX Runtime really fused the QDQ nodes into.
//
// Thread safe: every call builds its own sessions.
#ifndef SQUEEZE_RUNTIME_VERIFY_H_
#define SQUEEZE_RUNTIME_VERIFY_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/export.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/output_fidelity.h"
#include "runtime/session.h"

namespace squeeze::runtime {

enum class RangeMethod {
  kMinMax,      // the extremes seen over every sample
  kPercentile,  // per sample, the values at `percentile` and 100 − `percentile`, averaged; values a
                // graph output follows from through elementwise ops alone keep min/max
};

struct RangeOptions {
  RangeMethod method = RangeMethod::kPercentile;
  double percentile = 99.999;  // in (50, 100]
  int threads = 1;             // ONNX Runtime intra-op threads
};

// "minmax" / "percentile".
absl::string_view RangeMethodName(RangeMethod method);

// The ranges of main-graph values `names` (graph inputs included) over `calibration`.
// InvalidArgument for an empty calibration set, a percentile out of range or a name the main graph
// does not have; what ONNX Runtime refuses comes back with its message.
absl::StatusOr<std::map<std::string, model::TensorRange>> CalibrateRanges(const model::LoadedModel& model,
                                                                          const std::vector<std::string>& names,
                                                                          const CalibrationSet& calibration,
                                                                          const RangeOptions& options);

struct VerifyOptions {
  int threads = 1;               // intra-op threads of both sessions (the device profile's)
  bool measure_latency = false;  // time both models (meaningful when the device is this machine)
  int warmup = 2;
  int repeats = 10;  // timed runs per model; the median is reported
  // When set, ONNX Runtime's optimized form of the exported model is kept there (for inspection).
  std::string keep_optimized_model;
  // The outputs the SQNR is taken over and their weights (model/output_weights.h), as the
  // sensitivities were measured; empty: every float output weighs the same.
  std::map<std::string, double> output_weights;
};

struct Verification {
  // Over the outputs by their weights w_o (model/output_weights.h): relative_error =
  // Σ_o w_o·Σ(y'_o − y_o)²/Σy_o² over the samples, sqnr_db = −10·log10(relative_error) (+inf when
  // exact), cosine = Σ_o w_o·cosine_o. With one float output, that output's own figures. An output
  // that is 0 on every sample weighs 0 and the others share its weight. A softmax output's figures
  // are taken on its logits (OutputFidelity::error_on), where the sensitivities take them.
  double sqnr_db = 0;
  double cosine = 0;
  double relative_error = 0;
  std::string weighted_over;  // the outputs they are taken over (model::DescribeOutputWeights)
  // Each graph output on its own, in the model's order, with its task metrics.
  std::vector<OutputFidelity> outputs;
  int samples = 0;
  bool synthetic_calibration = false;
  bool latency_measured = false;
  int threads = 0;
  // On the first sample, the two models' runs interleaved (warm-up runs discarded).
  Timing original_latency;
  Timing exported_latency;
  // Op types of ONNX Runtime's optimized exported graph that run integer arithmetic
  // (QLinearConv, QLinearMatMul, MatMulInteger, ...) or read packed integer weights in their kernel
  // (MatMulNBits, which computes in float), with counts; and the QuantizeLinear / DequantizeLinear
  // nodes it left standing.
  std::map<std::string, int> integer_ops;
  int remaining_qdq = 0;
};

// Runs `original` and `exported` (serialized ONNX with the same inputs and outputs) on every
// calibration sample. InvalidArgument for an empty calibration set, models whose outputs do not
// match in names and shapes, or output weights model::ResolveOutputWeights refuses; ONNX Runtime's refusals come back
// with its message.
absl::StatusOr<Verification> VerifyExport(absl::string_view original, absl::string_view exported,
                                          const CalibrationSet& calibration, const VerifyOptions& options);

struct VerifiedExport {
  model::ExportedModel exported;
  Verification verification;
  RangeMethod range_method = RangeMethod::kPercentile;
};

// Called as each stage of an export starts: "calibrating" (with "N activations on M synthetic|
// uploaded samples"), "exporting" and "verifying" (with "").
using StageCallback = std::function<void(absl::string_view stage, const std::string& detail)>;

// ActivationsToCalibrate → CalibrateRanges → (for block-wise layers rounded by GPTQ, unless
// `export_options` brings them: CollectLayerInputs) → ExportModel, with ONNX Runtime's shape probe unless
// `export_options` gives one: the file `plan` makes of `model` with ranges from `calibration`.
// Errors as those functions.
absl::StatusOr<model::ExportedModel> ExportCalibrated(const model::LoadedModel& model,
                                                      const std::vector<model::LayerPlan>& plan,
                                                      const CalibrationSet& calibration, const RangeOptions& ranges,
                                                      model::ExportOptions export_options,
                                                      const StageCallback& on_stage = {});

struct ExportCheckOptions {
  RangeOptions ranges;
  VerifyOptions verify;
  model::ExportOptions export_options;
  StageCallback on_stage;
};

// ActivationsToCalibrate → CalibrateRanges → ExportModel → VerifyExport, with `original_bytes` the
// bytes `model` was loaded from (or its proto serialized): what the server's exports and the
// benches run. Errors as those functions.
absl::StatusOr<VerifiedExport> ExportAndVerify(const model::LoadedModel& model, absl::string_view original_bytes,
                                               const std::vector<model::LayerPlan>& plan,
                                               const CalibrationSet& calibration, const ExportCheckOptions& options);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_VERIFY_H_
