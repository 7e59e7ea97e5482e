// Closing the loop on a device this server runs on (DESIGN.md §3, §5): before a front's picks are
// named, the candidates Recommend would name, the next predicted-fastest ones and the uniform fp32
// and int8 baselines are exported through runtime::ExportAndVerify (outputs compared with the
// original) and timed here with their runs interleaved, so a machine whose speed drifts weighs on
// all alike. The figures go into the front (Candidate.measured, DeviceFront.measured_picks); a
// baseline that measures faster than every measured candidate and keeps the search's limits (its
// SQNR as measured) joins the candidates, so the "fastest" pick never measures slower than a
// uniform baseline the user could have taken.
#ifndef SQUEEZE_SERVER_MEASURE_PICKS_H_
#define SQUEEZE_SERVER_MEASURE_PICKS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "device_profiles/device.h"
#include "model/export_flavour.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "search/problem/error_calibration.h"
#include "search/problem/problem.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

// The device id of the machine the server runs on: the one device whose picks are measured.
inline constexpr char kHostDevice[] = "host";

// What exporting a front's plans through runtime::ExportAndVerify and running them needs.
struct ExportRun {
  const model::LoadedModel* model = nullptr;
  absl::string_view model_bytes;  // what `model` was loaded from
  const runtime::CalibrationSet* calibration = nullptr;
  const search::Problem* problem = nullptr;  // the front's problem: baselines and plans come from it
  int threads = 1;                           // ONNX Runtime threads
  model::ShapeProbe shape_probe;
  const std::atomic<bool>* cancelled = nullptr;
  std::map<std::string, double> output_weights;  // the search's (SearchSpec.output_weights)
  // The device's export flavour (model::FlavourForRuntime of its runtime): probes and picks are
  // exported as the device's file is, so every option its front offers can be.
  model::ExportFlavour flavour = model::ExportFlavour::kOrtCpu;
  // The rows GPTQ rounds block-wise layers on, collected once by the search; null: each export
  // collects them again (runtime::ExportCalibrated).
  const model::LayerInputs* layer_inputs = nullptr;
};

struct MeasurePicksInputs {
  ExportRun run;                // its threads: the device profile's, as they are timed
  v1::Constraints constraints;  // the search's, for the picks Recommend names
  int64_t app_budget_bytes = 0;
  int extra_fastest = 2;                    // predicted-fastest candidates measured beyond the picks
  std::function<void(double)> on_progress;  // fraction of the exports and timing done
};

// Before a search on this machine whose device profile holds no latency of the model: the model
// as it is and its uniform exports (fp16 weights, int8 weights, int8, fp32 with half its output
// channels pruned at multiples of `channel_alignment`, the device's), timed here in turns as
// `squeeze-profile --model` would time them, so the predictions calibrate to them
// (search::ProblemInputs::model_latencies) as on a device profiled with the model. It runs on
// `inputs` (a calibration sample, so a mode input keeps the value the search gave it) with
// `threads`, the profile's ONNX Runtime threads; each variant is timed for at least `min_time_s`
// (squeeze-profile --quick: 1 s), in at least five turns; why the uniform exports could not be
// timed, when only the model as it is was, goes to `notes`. The rows carry `sha256` and say in
// their source that they were measured before the search.
absl::StatusOr<std::vector<device_profiles::ModelLatency>> MeasureModelHere(
    absl::string_view model_bytes, absl::string_view model_name, const std::string& sha256,
    const std::vector<runtime::Tensor>& inputs, int threads, int channel_alignment, double min_time_s,
    const std::function<void(double)>& on_progress, std::vector<std::string>* notes);

// After a search on any device: `candidates` of its front (search::ErrorProbeCandidates) exported
// and run on `run.calibration`, their predicted and measured relative errors for
// search::ErrorFactor, and the worst value of each task metric over the outputs that count
// (weight > 0) for task floors. A plan already in `measured` (keyed by its export plan; the devices
// of one search share it, as the same plan is the same file) is not exported again; new ones are
// added. Cancelled when asked to stop; an export that fails is named in the status.
absl::StatusOr<std::vector<search::ErrorProbe>> MeasureErrorProbes(const ExportRun& run,
                                                                   const std::vector<search::Candidate>& candidates,
                                                                   std::map<std::string, search::ErrorProbe>* measured);

// Measures `front`'s picks and baselines as above. Cancelled when asked to stop; an export or a
// run that fails is named in the returned status (the front keeps what was measured before it).
absl::Status MeasurePicks(const MeasurePicksInputs& inputs, v1::DeviceFront* front);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_MEASURE_PICKS_H_
