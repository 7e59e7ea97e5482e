// The search problem of one model on one device: the OptionTable the engine searches, built from
// the model's real weights, the device's cost model and the measured sensitivities
// (DESIGN.md §3), with what every option is and how its numbers were found.
//
//   latency_i(o) = the cost model's prediction (options the device cannot run are left out)
//   bytes_i(o)   = what the exported file holds for the layer (model::LayerFileBytes: the weight
//                  as stored, scales, zero points, a rewritten bias's difference) and the structure
//                  its export adds, less the constants of the ops its removed channels pass through;
//                  of which narrowable_bytes_i(o) (model::NarrowableFileBytes) go with the input
//                  channels other layers' pruning removes
//   error_i(o)   = s_i · D_i(o) + the layer's measured activation error at o's activation bits,
//                  D_i = ||W - Ŵ||² / ||W||² on the real weights (prune, then quantize survivors)
//   activation_bytes_i(o) = activations alive while the layer runs, its own in/out at o's width
// Fixed cost: the other ops — those ONNX Runtime fuses into a layer cost nothing, shape-only ops
// their dispatch, the rest memory-bound elementwise work (the device's elementwise samples, else
// bytes / bandwidth + per-op overhead) — the other constants, and the largest live activation
// set outside the layers.
// A measured latency of the model as it is on the device (ModelLatency, matched by sha256) then
// corrects what single ops cannot see: the float options (and, when the model runs slower than
// predicted, the other ops with them) are scaled to the measurement. Measured uniform exports of
// the model ("uniform w8a8", ...) then scale each precision class's options to theirs. Output-
// channel pruning is offered only where the exporter removes the channels, and is credited with
// the time and bytes of the layers it narrows (model/channel_pruning.h). A whole-graph flavour
// (qnn) stores the float constants of the ops between layers in uint8 where a layer bordering them
// runs integer: the fixed bytes count them float, and the table's region_savings take off what each
// region saves (model::QuantizableRegionsOf).
#ifndef SQUEEZE_SEARCH_PROBLEM_PROBLEM_H_
#define SQUEEZE_SEARCH_PROBLEM_PROBLEM_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "device_profiles/cost_model.h"
#include "device_profiles/device.h"
#include "model/loader.h"
#include "runtime/sensitivity.h"
#include "search/engine/option_table.h"
#include "search/problem/option_grid.h"

namespace squeeze::search {

// What one option of one layer is, beside its numbers in the OptionTable.
struct OptionDetail {
  device_profiles::CompressionOption option;
  device_profiles::LatencyPrediction latency;
  double distortion = 0;        // D_i(o)
  double params = 0;            // the layer's weight count (for summaries)
  double activation_error = 0;  // the activation term of error_i(o)
  double pruning_error = 0;     // the pruning term of error_i(o) (the rest is the weights' quantization)
};

struct Problem {
  OptionTable table;                               // what the engine searches
  std::vector<std::vector<OptionDetail>> details;  // parallel to table.layers[i].options
  std::vector<double> sensitivity;                 // s_i per layer
  bool synthetic_calibration = false;
  std::vector<std::string> warnings;
  // How a measured whole-model latency corrected the predictions; empty when none applied.
  std::string latency_calibration;
  // How measured exports corrected the predicted errors (CalibrateError); empty when none did.
  std::string error_calibration;
};

// The distortions D_i of a model's options, by layer index and (weight bits, pattern, prune
// ratio, block size): they depend on the weights, the option and the calibration rows, not on the
// device, so the devices of one search compute each once. BuildProblem reads and fills it.
struct DistortionCache {
  std::vector<std::map<std::tuple<int, int, double, int>, double>> layers;
};

struct ProblemInputs {
  const model::LoadedModel* model = nullptr;
  const device_profiles::Device* device = nullptr;
  const device_profiles::CostModel* cost_model = nullptr;
  const runtime::SensitivityReport* sensitivity = nullptr;  // nullptr: every s_i = 1, with a warning
  // The rows each layer reads on the calibration inputs (runtime::CollectLayerInputs): a block-wise
  // option of a layer that has them is rounded by GPTQ, as the exporter rounds it (model/rounding.h),
  // and its distortion is round-to-nearest's scaled by how much less the layer's output errs.
  // nullptr: every option rounds to nearest.
  const model::LayerInputs* layer_inputs = nullptr;
  // Where given, the distortions an earlier device's problem computed for this model, sensitivity
  // and layer inputs (and where this one's go); nullptr: computed for this problem alone.
  DistortionCache* distortion_cache = nullptr;
  OptionGrid grid;
  // Output-channel pruning keeps multiples of this many channels (DeviceRealization); 0: the
  // device's (ChannelAlignment). The export flavour comes from the device's runtime.
  int channel_alignment = 0;
  // The uploaded file's sha256 and the device version's measured model latencies: one of this
  // model as it is (variant "") corrects the latencies.
  std::string model_sha256;
  std::vector<device_profiles::ModelLatency> model_latencies;
  int threads = 0;                               // oneTBB threads for the distortions; 0 = its default
  std::function<void(double)> on_progress;       // fraction of layers done
  const std::atomic<bool>* cancelled = nullptr;  // Cancelled status when it turns true
};

// The channel count a device's float kernels block by, which output-channel pruning keeps to:
// ONNX Runtime's CPU provider runs fp32 convs in NCHWc blocks of 16 channels with AVX-512 and of 8
// with AVX2 (a count between two blocks costs the next block); 8 elsewhere.
int ChannelAlignment(const device_profiles::Device& device);

// InvalidArgument for a bad grid or missing inputs; FailedPrecondition naming the layer when the
// device can run none of its options; Cancelled when asked to stop.
absl::StatusOr<Problem> BuildProblem(const ProblemInputs& inputs);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_PROBLEM_PROBLEM_H_
