// Per-layer output sensitivity, measured in ONNX Runtime on calibration inputs (DESIGN.md §5).
//
// Weight sensitivity s_i: add Gaussian noise of relative energy ε = ||N||²/||W||² to layer i's
// weights, run the model, and divide the relative output error Σ_o w_o·||Y'_o - Y_o||²/||Y_o||²
// (each output's error relative to its own energy over the samples, weighted as
// model/output_weights.h says) by ε. The predicted error of an option is then s_i · D_i(o).
// Activation error: the relative output error when layer i's input alone is fake-quantized at each
// activation bit-width (model::FakeQuantize, with the range calibrated on the same inputs), linearized as
// the weights' is: the error q(x) − x is fed scaled down to relative energy ε where it is larger,
// and the output error scaled back up, so that every term adds the way the predictor adds them.
// Both are measured where the response is linear; compressions large enough to leave that regime
// (or to saturate the outputs) err more or less than the sum says.
//
// Two sessions do all the work: the model with every layer input exposed (the calibrated ranges
// and the unperturbed inputs) and the model with every layer's weight a graph input and an
// Add(x, delta) before its activation (model/surgery.h), which runs every perturbation, with the
// original weights and a one-element zero delta fed wherever nothing is perturbed. The reference
// outputs are that second model's own unperturbed ones, so ONNX Runtime's rounding cancels out.
//
// A model ONNX Runtime cannot run, or whose perturbation graph it rejects, still gets a report:
// every s_i = 1, unmeasured, with a warning — unless it ran out of memory or time
// (ResourceExhausted, DeadlineExceeded: runtime::LimitRunMemory, LimitRunTime), which fails the
// measurement. A layer that alone cannot be
// perturbed (its weight not fp32/fp16, its input in a subgraph) stays unmeasured there, with a warning.
//
// Thread safe: a measurement builds its own sessions and shares nothing with another.
#ifndef SQUEEZE_RUNTIME_SENSITIVITY_H_
#define SQUEEZE_RUNTIME_SENSITIVITY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/loader.h"
#include "runtime/calibration.h"

namespace squeeze::runtime {

struct ActivationRange {
  float min = 0;
  float max = 0;
};

struct LayerSensitivity {
  std::string layer;      // model::Layer::name
  double weight = 1;      // s_i
  bool measured = false;  // false: s_i = 1 by default
  // False when noise in its weights, even at the saturation probe's energy, moved no output at all
  // on the calibration inputs: it never ran on them (a branch they do not take, a path they leave
  // dead). Its s_i is a floor, not a measurement; the search keeps it conservative.
  bool exercised = true;
  std::map<int, double> activation_error;  // activation bits -> relative output error; empty: unmeasured
  // The same for 8-bit activations in int8 symmetric (SensitivityOptions::int8_symmetric); unset:
  // not measured.
  std::optional<double> int8_symmetric_activation_error;
  ActivationRange input_range;  // calibrated range of the layer's input
};

struct SensitivityReport {
  std::vector<LayerSensitivity> layers;  // in model::Analysis::layers order
  bool synthetic_calibration = false;
  int samples = 0;
  double noise_energy = 0;    // ε asked for (fp16 weights get what fp16 rounding leaves)
  std::string weighted_over;  // the outputs the errors are taken over (model::DescribeOutputWeights)
  std::vector<std::string> warnings;
  double seconds = 0;  // wall time of the measurement
};

struct SensitivityOptions {
  // ε: small enough for the linear response, far above fp32 rounding (fp16 layers: at least 1e-3).
  double noise_energy = 1e-5;
  // Each of 8 (asymmetric uint8 over the calibrated range), 16 (fp16 rounding), 32 (exact: 0).
  std::vector<int> activation_bits = {8, 16};
  // Also 8-bit activations as TensorRT takes them (int8 symmetric, model::ActivationScheme), into
  // LayerSensitivity::int8_symmetric_activation_error: for a search of a TensorRT device.
  bool int8_symmetric = false;
  // Runs in flight at once, each on one ONNX Runtime thread: whole runs side by side use cores
  // better than one run's ops split between them. Results do not depend on it.
  int threads = 2;
  // The outputs the relative output error is taken over, by graph output name, and their weights
  // (model/output_weights.h); empty: every float output weighs the same.
  std::map<std::string, double> output_weights;
  uint64_t seed = 1;  // noise draws: one stream per layer; results are deterministic for a seed
  // Called with the fraction done (0..1) after each layer, from the measuring threads, one call
  // at a time.
  std::function<void(double)> on_progress;
  const std::atomic<bool>* cancelled = nullptr;  // Cancelled status when it turns true
};

// Measures every layer of `model` (LoadedModel::analysis order) on `calibration`. InvalidArgument
// for options out of range (noise_energy not positive, activation bits other than 8/16/32,
// threads < 1), an empty calibration set or output weights model::ResolveOutputWeights refuses; Cancelled when
// options.cancelled turns true. Anything ONNX Runtime refuses gives an unmeasured report with a warning, not an error.
absl::StatusOr<SensitivityReport> MeasureSensitivity(const model::LoadedModel& model, const CalibrationSet& calibration,
                                                     const SensitivityOptions& options);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_SENSITIVITY_H_
