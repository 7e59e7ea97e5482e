#include "server/search_pipeline.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "device_profiles/cost_model.h"
#include "runtime/calibration.h"
#include "runtime/layer_inputs.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
#include "search/engine/pareto.h"
#include "search/engine/polish.h"
#include "search/problem/plan.h"
#include "search/problem/problem.h"
#include "server/job_inputs.h"
#include "server/measure_picks.h"
#include "server/proto_conversion.h"
#include "server/recommend.h"
#include "server/search_spec.h"

namespace squeeze::server {
namespace {

namespace dp = device_profiles;

// The sensitivities' cache key names the measurement method and the outputs it weighs: a change to
// either must not reuse older figures.
std::string SensitivityKey(const runtime::SensitivityOptions& options) {
  std::string key = absl::StrCat(
      "method=8;noise=", options.noise_energy, ";bits=8,16", options.int8_symmetric ? ",int8-symmetric" : "",
      ";seed=1;ranges=", runtime::RangeMethodName(options.ranges.method), ":", options.ranges.percentile);
  for (const auto& [name, weight] : options.output_weights) absl::StrAppend(&key, ";output:", name, "=", weight);
  return key;
}

// What the front's latencies stand on, counted over its candidates' layers (each candidate carries
// its own count), and how a measured latency of the model corrected them.
std::string LatencyBasisSummary(const search::Problem& problem, const v1::DeviceFront& front) {
  int samples = 0, spec = 0, spec_candidates = 0;
  for (const v1::Candidate& c : front.candidates()) {
    samples += c.layers_size() - c.spec_layers();
    spec += c.spec_layers();
    if (c.spec_layers() > 0) ++spec_candidates;
  }
  std::string out = absl::StrCat(samples, " of ", samples + spec, " layer latencies of the ", front.candidates_size(),
                                 " candidates from measured samples, ", spec, " from the spec roofline");
  if (spec_candidates > 0) absl::StrAppend(&out, " (", spec_candidates, " candidates use spec figures)");
  if (!problem.latency_calibration.empty()) absl::StrAppend(&out, "; ", problem.latency_calibration);
  return out;
}

// Which limit no configuration can meet alone, judged on an unconstrained front.
std::string BindingConstraint(const search::Front& unconstrained, const search::Constraints& limits) {
  auto min_of = [&](double search::ObjectiveValues::*field) {
    double best = std::numeric_limits<double>::infinity();
    for (const search::Candidate& c : unconstrained.candidates) best = std::min(best, c.values.*field);
    return best;
  };
  std::vector<std::string> binding;
  if (limits.max_latency && min_of(&search::ObjectiveValues::latency) > *limits.max_latency) {
    binding.push_back(absl::StrFormat("max latency %.3g ms: the fastest candidate takes %.3g ms",
                                      *limits.max_latency * 1e3, min_of(&search::ObjectiveValues::latency) * 1e3));
  }
  if (limits.max_size && min_of(&search::ObjectiveValues::size) > *limits.max_size) {
    binding.push_back(absl::StrFormat("max size %.0f bytes: the smallest candidate is %.0f bytes", *limits.max_size,
                                      min_of(&search::ObjectiveValues::size)));
  }
  if (limits.max_error && min_of(&search::ObjectiveValues::error) > *limits.max_error) {
    binding.push_back(absl::StrFormat("min SQNR %.1f dB: the most accurate candidate reaches %.1f dB",
                                      search::SqnrDb(*limits.max_error),
                                      search::SqnrDb(min_of(&search::ObjectiveValues::error))));
  }
  if (limits.max_peak_memory && min_of(&search::ObjectiveValues::peak_memory) > *limits.max_peak_memory) {
    binding.push_back(absl::StrFormat("max peak memory %.0f bytes: the leanest candidate needs %.0f bytes",
                                      *limits.max_peak_memory, min_of(&search::ObjectiveValues::peak_memory)));
  }
  if (binding.empty()) return "the limits together: each can be met alone, but no candidate meets them all";
  return absl::StrJoin(binding, "; ");
}

// How a uniform baseline compares with the front: which candidate dominates it in latency, size
// and error, or why none does. `limits` are the spec's (not a floor a task floor raised).
std::string BaselineVerdict(const search::ObjectiveValues& b, const search::Front& front, bool constraints_met,
                            const search::Constraints& limits) {
  if (!constraints_met) return "no candidate meets the limits to compare with";
  if (limits.max_error && b.error > *limits.max_error) {
    return absl::StrFormat("outside the limits: %.1f dB SQNR < %.1f dB floor", search::SqnrDb(b.error),
                           search::SqnrDb(*limits.max_error));
  }
  if (limits.max_latency && b.latency > *limits.max_latency) {
    return absl::StrFormat("outside the limits: %.2f ms > %.2f ms", b.latency * 1e3, *limits.max_latency * 1e3);
  }
  if (limits.max_size && b.size > *limits.max_size) return "outside the limits: over the size cap";
  const std::vector<double> baseline = {b.latency, b.size, b.error};
  for (size_t i = 0; i < front.candidates.size(); ++i) {
    const search::ObjectiveValues& c = front.candidates[i].values;
    if (search::Dominates({c.latency, c.size, c.error}, baseline)) return absl::StrCat("dominated by #", i);
  }
  return "on the front: no candidate beats it in every objective";
}

absl::Status Cancelled() { return absl::CancelledError("cancelled"); }

}  // namespace

// What every device's search of one job shares.
struct SearchPipeline::Inputs {
  v1::SearchSpec spec;  // the stored one: the job's spec goes without the calibration bytes
  ModelRecord model;
  std::string bytes;
  model::LoadedModel loaded;
  std::vector<dp::Device> devices;  // the spec's, in its order, read once for the whole job
  runtime::CalibrationSet calibration;
  runtime::SensitivityReport sensitivity;
  model::LayerInputs layer_inputs;  // the rows GPTQ rounds block-wise options on
  // Filled by the first device's option table and read by the next ones' (devices run in turn).
  mutable search::DistortionCache distortions;
  search::OptionGrid grid;
  std::vector<search::Objective> objectives;
  bool exact = true;  // the exact engine (and its polish), else NSGA-II
  absl::Time deadline;
};

// One device's share of a job.
struct SearchPipeline::DeviceRun {
  dp::Device device;
  double base = 0, span = 0;  // the job's fraction when it starts, and its share
  std::unique_ptr<dp::DeviceCostModel> cost;
  search::Problem problem;
  search::SearchSpec engine_spec;
  search::Front front;
  v1::DeviceFront* out = nullptr;
  std::vector<std::string> notes;  // the host's timing and the error check's, as warnings
  ExportRun exports;               // exports of this device's plans, for the error check and the picks
};

SearchPipeline::SearchPipeline(StateStore& state, BlobStore& blobs, dp::ProfileStore& profiles,
                               SearchPipelineOptions options)
    : state_(state), blobs_(blobs), profiles_(profiles), options_(std::move(options)) {}

void EnterPhase(RunningSearch& run, v1::Phase phase, const std::string& device_id) {
  const absl::Time now = absl::Now();
  const int n = run.job.phase_times_size();
  if (n > 0) {
    v1::PhaseTime* last = run.job.mutable_phase_times(n - 1);
    last->set_seconds(last->seconds() + absl::ToDoubleSeconds(now - run.phase_started));
  }
  run.phase_started = now;
  if (phase == v1::PHASE_DONE) return;
  run.job.set_phase(phase);
  if (n > 0 && run.job.phase_times(n - 1).phase() == phase && run.job.phase_times(n - 1).device_id() == device_id) {
    return;  // the same phase again (a verification in rounds): its time adds up
  }
  v1::PhaseTime* next = run.job.add_phase_times();
  next->set_phase(phase);
  next->set_device_id(device_id);
}

absl::Status SearchPipeline::Run(RunningSearch& run) const {
  // The phases of this run (a job run again after a restart starts over).
  run.job.clear_phase_times();
  EnterPhase(run, v1::PHASE_ANALYZING);
  const absl::Status status = RunPhases(run);
  EnterPhase(run, v1::PHASE_DONE);
  return status;
}

absl::Status SearchPipeline::RunPhases(RunningSearch& run) const {
  Inputs in;
  if (absl::Status s = LoadInputs(run, &in); !s.ok()) return s;
  if (run.cancel) return Cancelled();
  if (absl::Status s = MeasureSensitivities(run, &in); !s.ok()) return s;
  if (run.cancel) return Cancelled();
  absl::StatusOr<search::OptionGrid> grid = GridOf(in.spec.option_space());
  if (!grid.ok()) return grid.status();
  in.grid = *std::move(grid);
  if (!in.grid.block_sizes.empty()) {
    // Block-wise options are rounded by GPTQ on the rows each MatMul reads, as their exports are.
    runtime::LayerInputOptions input_options;
    input_options.threads = options_.threads;
    absl::StatusOr<model::LayerInputs> rows = runtime::CollectLayerInputs(
        in.loaded, runtime::RowReadingLayers(in.loaded.analysis), in.calibration, input_options);
    if (!rows.ok()) return rows.status();
    in.layer_inputs = *std::move(rows);
  }
  for (int o : in.spec.objectives()) in.objectives.push_back(*ObjectiveOf(o));
  in.exact =
      in.spec.strategy() == v1::STRATEGY_EXACT ||
      (in.spec.strategy() == v1::STRATEGY_AUTO &&
       std::find(in.objectives.begin(), in.objectives.end(), search::Objective::kPeakMemory) == in.objectives.end());
  in.deadline = absl::Now() + absl::Seconds(in.spec.time_budget_seconds());
  run.job.clear_fronts();
  ErrorProbes probes;  // shared by the devices: an export's error is the same on each
  for (int d = 0; d < in.spec.device_ids_size(); ++d) {
    if (absl::Status s = SearchDevice(run, in, d, &probes); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SearchPipeline::LoadInputs(RunningSearch& run, Inputs* in) const {
  if (!in->spec.ParseFromString(run.record.spec)) return absl::DataLossError("the search's stored spec does not parse");
  absl::StatusOr<ModelRecord> model = state_.GetModel(run.record.team, run.record.model_id);
  if (!model.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", run.record.model_id, " is gone: ", model.status().message()));
  }
  in->model = *std::move(model);
  absl::StatusOr<std::string> bytes = blobs_.Read(in->model.sha256);
  if (!bytes.ok()) return bytes.status();
  in->bytes = *std::move(bytes);
  absl::StatusOr<model::LoadedModel> loaded = LoadJobModel(
      in->bytes, in->model.input_shapes, {options_.shape_probe, options_.max_activation_bytes, options_.threads});
  if (!loaded.ok()) return loaded.status();
  in->loaded = *std::move(loaded);
  for (const std::string& id : in->spec.device_ids()) {
    absl::StatusOr<dp::Device> device = profiles_.GetDevice(id);
    if (!device.ok()) return device.status();
    in->devices.push_back(*std::move(device));
  }
  return absl::OkStatus();
}

absl::Status SearchPipeline::MeasureSensitivities(RunningSearch& run, Inputs* in) const {
  EnterPhase(run, v1::PHASE_MEASURING_SENSITIVITY);
  run.job.set_fraction(0.05);
  run.publish(true);
  absl::StatusOr<std::unique_ptr<runtime::Session>> original = runtime::Session::Create(in->bytes);
  if (!original.ok()) return original.status();
  absl::StatusOr<runtime::CalibrationSet> calibration =
      JobCalibration(in->loaded, **original, in->spec.calibration(), in->spec.input_values(),
                     options_.calibration_samples, in->spec.seed());
  if (!calibration.ok()) return calibration.status();
  in->calibration = *std::move(calibration);
  run.job.set_synthetic_calibration(in->calibration.synthetic);
  if (in->calibration.synthetic) run.job.set_calibration_samples(static_cast<int>(in->calibration.samples.size()));
  runtime::SensitivityOptions options;
  options.threads = options_.threads;
  options.seed = 1;
  options.cancelled = &run.cancel;
  options.output_weights = OutputWeightsOf(in->spec);
  // A TensorRT device takes 8-bit activations int8 symmetric: their error is measured as such.
  for (const dp::Device& device : in->devices) {
    if (model::ActivationSchemeOf(model::FlavourForRuntime(device.runtime), 8) ==
        model::ActivationScheme::kSymmetricInt8) {
      options.int8_symmetric = true;
    }
  }
  const std::string key = SensitivityKey(options);
  absl::StatusOr<std::optional<std::string>> cached =
      state_.GetSensitivity(in->model.sha256, in->calibration.hash, key);
  v1::SensitivityReport stored;
  if (cached.ok() && cached->has_value() && stored.ParseFromString(**cached)) {
    in->sensitivity = FromProto(stored);
    return absl::OkStatus();
  }
  options.on_progress = [&run](double f) {
    run.job.set_fraction(0.05 + 0.45 * f);
    run.publish(false);
  };
  absl::StatusOr<runtime::SensitivityReport> measured =
      runtime::MeasureSensitivity(in->loaded, in->calibration, options);
  if (!measured.ok()) return measured.status();
  in->sensitivity = *std::move(measured);
  absl::Status s =
      state_.PutSensitivity(in->model.sha256, in->calibration.hash, key, ToProto(in->sensitivity).SerializeAsString());
  if (!s.ok()) common::LogWarning("search {}: sensitivities not cached: {}", run.record.id, s.ToString());
  return absl::OkStatus();
}

absl::Status SearchPipeline::SearchDevice(RunningSearch& run, const Inputs& in, int d, ErrorProbes* probes) const {
  DeviceRun dev;
  const int devices = in.spec.device_ids_size();
  dev.base = 0.5 + 0.5 * d / devices;
  dev.span = 0.5 / devices;
  dev.device = in.devices[static_cast<size_t>(d)];
  EnterPhase(run, v1::PHASE_BUILDING_TABLE, dev.device.id);
  run.job.set_fraction(dev.base);
  run.publish(true);
  if (absl::Status s = BuildProblem(run, in, &dev); !s.ok()) return s;
  dev.exports = ExportRun{&in.loaded,
                          in.bytes,
                          &in.calibration,
                          &dev.problem,
                          options_.threads,
                          options_.shape_probe,
                          &run.cancel,
                          OutputWeightsOf(in.spec),
                          model::FlavourForRuntime(dev.device.runtime),
                          &in.layer_inputs};
  if (absl::Status s = SearchAndCheck(run, in, &dev, probes); !s.ok()) return s;
  AddBaselines(in, dev);
  if (absl::Status s = MeasureHostPicks(run, in, &dev); !s.ok()) return s;
  v1::DeviceFront* out = dev.out;
  for (const std::string& w : dev.problem.warnings) out->add_warnings(w);
  for (const std::string& w : dev.notes) out->add_warnings(w);
  out->set_error_calibration(dev.problem.error_calibration);
  out->set_error_outputs(in.sensitivity.weighted_over);
  out->set_latency_basis(LatencyBasisSummary(dev.problem, *out));
  out->set_search_seconds(dev.front.stats.seconds);
  run.job.set_fraction(dev.base + dev.span);
  run.publish(true);
  return absl::OkStatus();
}

absl::Status SearchPipeline::BuildProblem(RunningSearch& run, const Inputs& in, DeviceRun* dev) const {
  const dp::Device& device = dev->device;
  absl::StatusOr<std::vector<dp::LatencySample>> samples = profiles_.GetSamples(device.id, device.version);
  if (!samples.ok()) return samples.status();
  absl::StatusOr<std::unique_ptr<dp::DeviceCostModel>> cost = dp::DeviceCostModel::Create(device, *samples);
  if (!cost.ok()) return cost.status();
  dev->cost = *std::move(cost);
  search::ProblemInputs inputs;
  inputs.model = &in.loaded;
  inputs.device = &device;
  inputs.cost_model = dev->cost.get();
  inputs.sensitivity = &in.sensitivity;
  inputs.layer_inputs = &in.layer_inputs;
  inputs.distortion_cache = &in.distortions;
  inputs.grid = in.grid;
  inputs.threads = options_.threads;
  inputs.cancelled = &run.cancel;
  inputs.model_sha256 = in.model.sha256;
  absl::StatusOr<std::vector<dp::ModelLatency>> model_latencies =
      profiles_.GetModelLatencies(device.id, device.version);
  if (!model_latencies.ok()) return model_latencies.status();
  inputs.model_latencies = *std::move(model_latencies);
  if (device.id == kHostDevice && options_.host_model_time_s > 0 &&
      std::none_of(inputs.model_latencies.begin(), inputs.model_latencies.end(),
                   [&](const dp::ModelLatency& m) { return m.model_sha256 == in.model.sha256; })) {
    // This machine, and its profile never timed the model: time it here first, so the
    // predictions calibrate to it as on a device profiled with the model.
    absl::StatusOr<std::vector<dp::ModelLatency>> here = MeasureModelHere(
        in.bytes, in.model.name, in.model.sha256, in.calibration.samples.front(), std::max(1, device.threads),
        search::ChannelAlignment(device), options_.host_model_time_s,
        [&](double f) {
          run.job.set_fraction(dev->base + dev->span * 0.15 * f);
          run.publish(false);
        },
        &dev->notes);
    if (run.cancel) return Cancelled();
    if (here.ok()) {
      inputs.model_latencies.insert(inputs.model_latencies.end(), here->begin(), here->end());
    } else {
      dev->notes.push_back(absl::StrCat("the model could not be timed on this machine before the search (",
                                        here.status().message(), "), so its predictions rest on the samples alone"));
    }
  }
  absl::StatusOr<search::Problem> problem = search::BuildProblem(inputs);
  if (!problem.ok()) return problem.status();
  dev->problem = *std::move(problem);
  return absl::OkStatus();
}

absl::StatusOr<search::Front> SearchPipeline::Solve(const Inputs& in, const DeviceRun& dev, absl::Duration budget,
                                                    const search::RunControl& control) const {
  if (in.exact) {
    absl::StatusOr<search::Front> front = search::SolveExact(dev.problem.table, dev.engine_spec, {}, control);
    // The DP plans integer layers at their conversions' bound; chains of them are found here.
    if (!front.ok()) return front;
    search::PolishOptions polish;
    polish.seed = in.spec.seed();
    return search::Polish(dev.problem.table, dev.engine_spec, *std::move(front), polish, control);
  }
  search::Nsga2Options nsga2;
  nsga2.seed = in.spec.seed();
  nsga2.time_budget = std::max(absl::Seconds(1), budget);
  return search::SolveNsga2(dev.problem.table, dev.engine_spec, nsga2, control);
}

absl::Status SearchPipeline::SearchAndCheck(RunningSearch& run, const Inputs& in, DeviceRun* dev,
                                            ErrorProbes* probes) const {
  EnterPhase(run, v1::PHASE_SEARCHING, dev->device.id);
  run.job.set_fraction(dev->base + 0.2 * dev->span);
  run.publish(true);
  dev->engine_spec.objectives = in.objectives;
  dev->engine_spec.constraints = FromProto(in.spec.constraints(), dev->device);
  dev->engine_spec.max_candidates = static_cast<size_t>(in.spec.max_candidates());
  search::RunControl control;
  control.cancel = &run.cancel;
  control.deadline = in.deadline;
  dev->out = run.job.add_fronts();
  dev->out->set_device_id(dev->device.id);
  dev->out->set_device_version(dev->device.version);
  // On this machine the last tenth of the device's share is measuring its picks.
  const double search_share = dev->device.id == kHostDevice ? 0.7 : 0.8;
  control.on_progress = [&](const search::Progress& p) {
    run.job.set_fraction(dev->base + dev->span * (0.2 + search_share * p.fraction));
    if (p.best_so_far != nullptr) {
      *dev->out = ToProto(dev->problem, *p.best_so_far, dev->device.id, dev->device.version, false);
    }
    run.publish(false);
  };
  // With the errors checked after it, NSGA-II's first run takes half the time; runs on the scaled
  // table share the rest.
  absl::StatusOr<search::Front> front =
      Solve(in, *dev, options_.measure_error ? (in.deadline - absl::Now()) / 2 : in.deadline - absl::Now(), control);
  if (!front.ok()) return front.status();
  if (run.cancel) return Cancelled();
  dev->front = *std::move(front);
  if (options_.measure_error) {
    search::RunControl quiet = control;  // a rerun's progress does not move the job's backwards
    quiet.on_progress = nullptr;
    if (absl::Status s = CheckPredictedErrors(run, in, dev, quiet, probes); !s.ok()) return s;
  }
  *dev->out = ToProto(dev->problem, dev->front, dev->device.id, dev->device.version, true);
  dev->out->set_constraints_met(!dev->front.candidates.empty());
  if (dev->front.candidates.empty()) AddClosest(in, dev);
  return absl::OkStatus();
}

absl::Status SearchPipeline::CheckPredictedErrors(RunningSearch& run, const Inputs& in, DeviceRun* dev,
                                                  const search::RunControl& control, ErrorProbes* probes) const {
  // Predicted = measured for the error too: candidates near the floor exported and run, the
  // table's errors scaled to them and the search run again (search::CheckErrors).
  const std::optional<double> max_error = dev->engine_spec.constraints.max_error;
  const double floor = max_error && *max_error > 0 ? search::SqnrDb(*max_error) : kDefaultMinSqnrDb;
  auto measure = [&](const std::vector<search::Candidate>& candidates) {
    EnterPhase(run, v1::PHASE_VERIFYING, dev->device.id);
    run.publish(true);
    return MeasureErrorProbes(dev->exports, candidates, probes);
  };
  auto rerun = [&](int round, double floor_sqnr_db) {
    EnterPhase(run, v1::PHASE_SEARCHING, dev->device.id);
    run.publish(true);
    // A task floor a probe missed raises the SQNR floor for this device's front.
    dev->engine_spec.constraints.max_error = search::ErrorOfSqnrDb(floor_sqnr_db);
    return Solve(in, *dev, round == 0 ? (in.deadline - absl::Now()) / 2 : in.deadline - absl::Now(), control);
  };
  absl::StatusOr<search::ErrorCheck> checked =
      search::CheckErrors(floor, TaskFloorsOf(in.spec.constraints()), measure, rerun, &dev->problem, &dev->front);
  if (run.cancel) return Cancelled();
  if (!checked.ok()) return checked.status();
  if (!checked->measurement.ok()) {
    dev->notes.push_back(absl::StrCat(
        "the predicted errors rest on the per-layer sensitivities",
        checked->factors.empty() ? " alone: " : " and what was measured before: ", checked->measurement.message()));
  }
  return absl::OkStatus();
}

void SearchPipeline::AddClosest(const Inputs& in, DeviceRun* dev) const {
  // Say which limit binds, and offer the closest candidates of the unconstrained front.
  search::SearchSpec free_spec = dev->engine_spec;
  free_spec.constraints = {};
  free_spec.max_candidates = 200;
  absl::StatusOr<search::Front> free =
      in.exact ? search::SolveExact(dev->problem.table, free_spec) : search::SolveNsga2(dev->problem.table, free_spec);
  if (!free.ok()) return;
  dev->out->set_binding_constraint(BindingConstraint(*free, dev->engine_spec.constraints));
  const v1::DeviceFront closest = ToProto(dev->problem, ClosestCandidates(*free, dev->engine_spec.constraints, 3),
                                          dev->device.id, dev->device.version, true);
  *dev->out->mutable_candidates() = closest.candidates();
}

void SearchPipeline::AddBaselines(const Inputs& in, const DeviceRun& dev) const {
  // Where the device's flavour has no fp16 compute, the fp16 reference is fp16 weights.
  const bool fp16_compute = search::UniformChoice(dev.problem, 16, 16).has_value();
  for (const auto& [w, a, name] :
       {std::make_tuple(32, 32, "fp32"),
        fp16_compute ? std::make_tuple(16, 16, "uniform fp16") : std::make_tuple(16, 32, "uniform fp16 weights"),
        std::make_tuple(8, 8, "uniform int8")}) {
    std::optional<search::Choice> choice = search::UniformChoice(dev.problem, w, a);
    if (!choice) continue;
    absl::StatusOr<search::ObjectiveValues> values = search::Evaluate(dev.problem.table, *choice);
    if (!values.ok()) continue;
    v1::Candidate baseline = ToProto(dev.problem, search::Candidate{*choice, *values}, false);
    baseline.add_tags(name);
    baseline.add_tags(
        BaselineVerdict(*values, dev.front, dev.out->constraints_met(), FromProto(in.spec.constraints(), dev.device)));
    *dev.out->add_baselines() = std::move(baseline);
  }
}

absl::Status SearchPipeline::MeasureHostPicks(RunningSearch& run, const Inputs& in, DeviceRun* dev) const {
  if (dev->device.id != kHostDevice || dev->out->candidates_size() == 0) return absl::OkStatus();
  // This machine: the picks are measured before they are named.
  EnterPhase(run, v1::PHASE_VERIFYING, dev->device.id);
  run.publish(true);
  MeasurePicksInputs measure;
  measure.run = dev->exports;
  measure.run.threads = std::max(1, dev->device.threads);  // timed as the profile's runs were
  measure.constraints = in.spec.constraints();
  measure.app_budget_bytes = dev->device.app_memory_budget_bytes;
  measure.on_progress = [&](double f) {
    run.job.set_fraction(dev->base + dev->span * (0.9 + 0.1 * f));
    run.publish(false);
  };
  if (absl::Status measured = MeasurePicks(measure, dev->out); !measured.ok()) {
    if (run.cancel) return Cancelled();
    dev->out->add_warnings(absl::StrCat(
        "the picks could not be measured on this machine, so they rest on predictions: ", measured.message()));
  }
  return absl::OkStatus();
}

}  // namespace squeeze::server
