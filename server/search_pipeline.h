// SearchPipeline: what one search job does once it runs (DESIGN.md §1, §7), phase by phase —
// load the model at its stored shapes, calibrate (uploaded samples or synthetic ones), measure
// the per-layer sensitivities (cached in state.db per model bytes, calibration set and method),
// then per device: build the option table from the device's profile, search it, check the
// predicted errors against exports of candidates near the floor, add the uniform baselines and,
// on this machine, measure the picks.
//
// The job's lifecycle (queue, states, cancel, restart) is SearchJobs'; a pipeline only reports
// progress through the RunningSearch it is given and honours its cancel flag. Thread safe: one
// pipeline runs any number of jobs at once.
#ifndef SQUEEZE_SERVER_SEARCH_PIPELINE_H_
#define SQUEEZE_SERVER_SEARCH_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "device_profiles/profile_store.h"
#include "model/loader.h"
#include "search/engine/front.h"
#include "search/engine/run_control.h"
#include "search/problem/error_calibration.h"
#include "server/blob_store.h"
#include "server/state_store.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

// A search job while it runs, as its lifecycle hands it to a runner.
struct RunningSearch {
  const JobRecord& record;  // as stored: its spec holds the calibration samples
  v1::SearchJob& job;       // what watchers see: phase, fraction, fronts, synthetic_calibration
  // Tells the watchers of `job`; `persist` stores it too (a failure to store is logged, not fatal).
  std::function<void(bool persist)> publish;
  const std::atomic<bool>& cancel;         // turns true when the job is cancelled or the server stops
  absl::Time phase_started = absl::Now();  // when the last of job.phase_times began
};

// Ends the running phase of `run.job.phase_times` (its wall time measured now) and, unless
// `phase` is PHASE_DONE, starts `phase` (for `device_id`, empty for the job's own) as the job's
// phase.
void EnterPhase(RunningSearch& run, v1::Phase phase, const std::string& device_id = "");

// What runs a job: a SearchPipeline in the server; anything with the same contract in the job
// lifecycle's tests. OK when the job's fronts are complete; Cancelled when it stopped on `cancel`.
using SearchRunner = std::function<absl::Status(RunningSearch&)>;

struct SearchPipelineOptions {
  int calibration_samples = 2;  // synthetic samples when none are uploaded
  int threads = 2;              // ONNX Runtime and distortion threads inside one job
  model::ShapeProbe shape_probe;
  int64_t max_activation_bytes = 0;  // per model; 0: not checked (model::AnalyzeOptions)
  // On host, a model its profile never timed is timed first (MeasureModelHere), each variant for
  // at least this long; 0: never, the predictions rest on the profile alone.
  double host_model_time_s = 1.0;
  // After each device's search, candidates near the SQNR floor are exported and run on the
  // calibration inputs, and where they measure more than 1 dB off, the predicted errors are scaled
  // to them and the search runs again (MeasureErrorProbes, search::CheckErrors); false: the
  // predicted errors rest on the per-layer sensitivities alone.
  bool measure_error = true;
};

class SearchPipeline {
 public:
  SearchPipeline(StateStore& state, BlobStore& blobs, device_profiles::ProfileStore& profiles,
                 SearchPipelineOptions options);

  // Runs `run.record`'s search, filling `run.job`'s fronts. FailedPrecondition when its model is
  // gone; otherwise what a phase answers (a model that does not run on its calibration inputs, a
  // device that is gone, an option space the grid refuses, ...).
  absl::Status Run(RunningSearch& run) const;

 private:
  struct Inputs;
  struct DeviceRun;
  using ErrorProbes = std::map<std::string, search::ErrorProbe>;  // export plan -> what it measured

  absl::Status RunPhases(RunningSearch& run) const;
  absl::Status LoadInputs(RunningSearch& run, Inputs* in) const;
  absl::Status MeasureSensitivities(RunningSearch& run, Inputs* in) const;
  absl::Status SearchDevice(RunningSearch& run, const Inputs& in, int d, ErrorProbes* probes) const;
  absl::Status BuildProblem(RunningSearch& run, const Inputs& in, DeviceRun* dev) const;
  absl::Status SearchAndCheck(RunningSearch& run, const Inputs& in, DeviceRun* dev, ErrorProbes* probes) const;
  // The device's search engine on its table: the exact DP and its polish, or NSGA-II for `budget`.
  absl::StatusOr<search::Front> Solve(const Inputs& in, const DeviceRun& dev, absl::Duration budget,
                                      const search::RunControl& control) const;
  absl::Status CheckPredictedErrors(RunningSearch& run, const Inputs& in, DeviceRun* dev,
                                    const search::RunControl& control, ErrorProbes* probes) const;
  // For a front no candidate of which meets the limits: the binding limit and the closest candidates.
  void AddClosest(const Inputs& in, DeviceRun* dev) const;
  void AddBaselines(const Inputs& in, const DeviceRun& dev) const;
  absl::Status MeasureHostPicks(RunningSearch& run, const Inputs& in, DeviceRun* dev) const;

  StateStore& state_;
  BlobStore& blobs_;
  device_profiles::ProfileStore& profiles_;
  const SearchPipelineOptions options_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SEARCH_PIPELINE_H_
