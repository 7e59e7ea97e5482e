// Per-layer output sensitivity, measured in ONNX Runtime on calibration inputs (DESIGN.md §5).
//
// Weight sensitivity s_i: add Gaussian noise of relative energy ε = ||N||²/||W||² to layer i's
// weights, run the model, and divide the relative output error ||Y' - Y||²/||Y||² (summed over
// outputs and samples) by ε. The predicted error of an option is then s_i · D_i(o).
// Activation sensitivity: the relative output error when layer i's input is fake-quantized at each
// activation bit-width with a range calibrated on the same inputs.
//
// A model ONNX Runtime cannot run still gets a report: every s_i = 1, unmeasured, with a warning.
#ifndef SQUEEZE_RUNTIME_SENSITIVITY_H_
#define SQUEEZE_RUNTIME_SENSITIVITY_H_

#include <atomic>
#include <functional>
#include <map>
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
  std::string layer;                        // model::Layer::name
  double weight = 1;                        // s_i
  bool measured = false;                    // false: s_i = 1 by default
  std::map<int, double> activation_error;   // activation bits -> relative output error
  ActivationRange input_range;              // calibrated range of the layer's input
};

struct SensitivityReport {
  std::vector<LayerSensitivity> layers;     // in model::Analysis::layers order
  bool synthetic_calibration = false;
  int samples = 0;
  double noise_energy = 0;                  // ε used
  std::vector<std::string> warnings;
  double seconds = 0;                       // wall time of the measurement
};

struct SensitivityOptions {
  double noise_energy = 1e-3;
  std::vector<int> activation_bits = {8, 16};
  int threads = 2;      // ONNX Runtime intra-op threads
  uint64_t seed = 1;    // noise draws; results are deterministic for a seed
  // Called with the fraction done (0..1) after each layer.
  std::function<void(double)> on_progress;
  const std::atomic<bool>* cancelled = nullptr;  // Cancelled status when it turns true
};

absl::StatusOr<SensitivityReport> MeasureSensitivity(const model::LoadedModel& model,
                                                     const CalibrationSet& calibration,
                                                     const SensitivityOptions& options);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_SENSITIVITY_H_
