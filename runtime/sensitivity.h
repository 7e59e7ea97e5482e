// Per-layer output sensitivity, measured in ONNX Runtime on calibration inputs (DESIGN.md §5).
//
// Weight sensitivity s_i: add Gaussian noise of relative energy ε = ||N||²/||W||² to layer i's
// weights, run the model, and divide the relative output error Σ_o w_o·||Y'_o - Y_o||²/||Y_o||²
// (each output's error relative to its own energy over the samples, weighted as
// model/output_weights.h says) by ε. Quantization sensitivities: the same with the layer's own
// per-channel quantization error at 8, 4 and 2 bits (model::Compress) in place of the noise, at its
// own size: quantization errors are not Gaussian — each channel's is as large as its own scale,
// where noise of one variance swamps the small channels a following BatchNormalization amplifies —
// and a layer's response to them can be orders of magnitude from its response to noise (PP-OCRv4
// det: from 1/60 to 3 times). Pruning sensitivities: the same with what its magnitude masks remove
// (kPruningShapes). The search predicts an option's error as the quantization sensitivity of the
// nearest shape times the distortion quantization adds, plus the pruning sensitivity of its shape
// times what pruning removes (the two errors lie on disjoint weights, so their energies add).
// Activation error: the relative output error when the values an export quantizes for layer i at
// integer activations — its input and its output (model::ActivationTensorsOf) — are each
// fake-quantized alone at each activation bit-width (model::FakeQuantize, with the range calibrated
// on the same inputs), summed, and linearized as the weights' is: the error q(x) − x is fed scaled
// down to relative energy ε where it is larger, and the output error scaled back up, so that every
// term adds the way the predictor adds them. A value two such layers share (one's output, the
// other's input) counts in both, where an export quantizes it once: the sum errs on the safe side.
// All are measured where the response is linear; compressions large enough to leave that regime
// (or to saturate the outputs) err more or less than the sum says.
//
// Two sessions do all the work: the model with every layer input and quantized output exposed (the
// calibrated ranges and the unperturbed values) and the model with every layer's weight a graph
// input and an Add(x, delta) on every value an export may quantize (model/surgery.h), which runs
// every perturbation, with the original weights and a one-element zero delta fed wherever nothing
// is perturbed. The reference outputs are that second model's own unperturbed ones, so ONNX
// Runtime's rounding cancels out.
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
#include "model/weight_math.h"
#include "runtime/calibration.h"
#include "runtime/verify.h"

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
  // Weight bits b -> relative output error per unit of relative distortion when the layer's
  // weights carry their own b-bit per-channel quantization error (b in kQuantizationShapes; an
  // error below ε scaled up to it); empty: not measured (the search then takes `weight`).
  std::map<int, double> quantization;
  // Pruning shape (PruningShapeOf) -> relative output error per unit of relative distortion when
  // the layer's weights lose what that magnitude mask removes (an error below ε scaled up to it);
  // empty: not measured (the search then takes `weight`).
  std::map<std::string, double> pruning;
  // For a Conv: what removing output channels does. Pruning a channel removes its whole value —
  // bias and BatchNormalization shift included, and those of the depthwise Convs and per-channel
  // ops it passes through — from the layers that read it, which no weight distortion measures (a
  // channel of large weights may be dead after its ReLU, one of small weights carry a large shift).
  // `channel_energy`: each output channel's share of the energy where the exporter takes it out
  // (the input of the one layer reading the channels as they are), or else of the value the
  // export quantizes as the layer's output (model::ActivationTensorsOf), over the samples;
  // `channel_removal`: the relative output error per unit of that share removed — the larger of
  // the channels its magnitude mask removes at 10% and at 50% zeroed where the exporter removes
  // them, at their own size (PP-OCRv4 rec: 4 to 10^7 times what a linear probe showed); where the
  // exporter removes none of them (they stay as zeros), the value scaled down channel-wise at ε,
  // each channel with its own random sign. An option's error is channel_removal times the share
  // of the channels it removes. Empty, unset: not measured (the search then takes `weight` times
  // the weight distortion).
  std::vector<double> channel_energy;
  std::optional<double> channel_removal;
  // Activation bits -> relative output error when the layer's input and output are quantized to
  // them; empty: unmeasured.
  std::map<int, double> activation_error;
  // The same for 8-bit activations in int8 symmetric (SensitivityOptions::int8_symmetric); unset:
  // not measured.
  std::optional<double> int8_symmetric_activation_error;
  ActivationRange input_range;  // calibrated range of the layer's input
};

// The weight widths a layer's quantization is probed at, each at its own size: below 8 bits a
// layer's response grows faster than its distortion (PP-OCRv4 rec: one 5-bit layer measured 10
// dB below what a 4-bit probe scaled to ε predicted), so the low widths are probed as they are.
// Three widths, not every one: each costs a run of the model per layer and sample.
inline constexpr int kQuantizationShapes[] = {8, 4, 2};

// The magnitude masks a layer's weights are probed with, each at its own size (model::PruneMask).
// What a mask removes is not noise: a layer-wide magnitude threshold takes most of a channel of
// small weights and little of a large one, and 2:4 half of every channel, while noise of the same
// energy lands mostly on the large channels; a BatchNormalization after the layer then amplifies
// the small ones (face liveness: 2:4 measured up to 21x, unstructured 50% up to 6.7x what noise
// predicted). The response per unit of distortion grows with the ratio, so two ratios.
struct PruningShape {
  model::Sparsity pattern = model::Sparsity::kUnstructured;
  double ratio = 0;
};
inline constexpr PruningShape kPruningShapes[] = {
    {model::Sparsity::kUnstructured, 0.5}, {model::Sparsity::kUnstructured, 0.9}, {model::Sparsity::kTwoFour, 0.5}};

// The name of the probed shape a pruning option takes its response from ("unstructured 50%",
// "unstructured 90%", "2:4"): for unstructured the probed ratio at or above its own (its response
// per unit no smaller: the safe side), the widest above them all; empty for output channels (their
// own measurement, channel_removal) and for no pruning.
std::string PruningShapeOf(model::Sparsity pattern, double ratio);

// The probed width an option at `weight_bits` takes its quantization sensitivity from: the widest
// at or below it (its distortion at least the option's, its response per unit of distortion no
// smaller: the safe side), the narrowest below them all; 0 for fp16 and fp32 weights, whose
// rounding is noise-like (LayerSensitivity::weight).
int QuantizationShapeOf(int weight_bits);

// The predicted relative output error of a layer's weights at `weight_bits` where quantization
// adds relative distortion `quantized` (pruned weights apart: the two lie on disjoint weights, so
// their energies add): the sensitivity measured for the bits' quantization shape, or Gaussian noise
// (`weight`) for fp16 rounding and wherever the shape was not measured. `sensitivity` null: s = 1.
double PredictedQuantizationError(const LayerSensitivity* sensitivity, int weight_bits, double quantized);

// The predicted relative output error of removing relative distortion `pruned` of a layer's weights
// with `pattern` at `ratio`: the sensitivity measured for its pruning shape (PruningShapeOf), or
// `weight` where none was; output-channel pruning with `removed_energy` (RemovedEnergyShare) costs
// channel_removal times it. `sensitivity` null: s = 1.
double PredictedPruningError(const LayerSensitivity* sensitivity, model::Sparsity pattern, double ratio, double pruned,
                             std::optional<double> removed_energy = std::nullopt);

// The share of the layer's output energy in the output channels a pruning mask removes, given the
// channels it keeps (ascending, as model::KeptChannels gives them); nullopt when channel removal
// was not measured or a kept channel is past the measured ones.
std::optional<double> RemovedEnergyShare(const LayerSensitivity& sensitivity, const std::vector<int64_t>& kept);

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
  // The activation ranges the exports will calibrate (runtime::CalibrateRanges): the activation
  // errors are measured over the same ranges, so that they are the exports' (on PP-OCRv4 det,
  // 99.999th-percentile ranges give some layers 10 to 20 times the error of min/max ones).
  RangeOptions ranges;
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
