#include "server/export_jobs.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/sha256.h"
#include "model/export.h"
#include "runtime/calibration.h"
#include "runtime/session.h"
#include "runtime/verify.h"
#include "search/problem/plan.h"
#include "server/job_inputs.h"
#include "server/measure_picks.h"
#include "server/proto_conversion.h"
#include "server/recommend.h"
#include "server/search_spec.h"

namespace squeeze::server {
namespace {

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

v1::ExportProgress Phase(const std::string& phase, const std::string& detail) {
  v1::ExportProgress p;
  p.set_phase(phase);
  p.set_detail(detail);
  return p;
}

// Export failures that come from the model and plan, not from the request, are preconditions.
absl::Status AsPrecondition(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    return absl::FailedPreconditionError(absl::StrCat("cannot export this candidate: ", status.message()));
  }
  return status;
}

}  // namespace

ExportJobs::ExportJobs(StateStore& state, BlobStore& blobs, device_profiles::ProfileStore& profiles, WorkQueue& workers,
                       ExportJobsOptions options)
    : state_(state), blobs_(blobs), profiles_(profiles), workers_(workers), options_(std::move(options)) {}

namespace {

// The candidate `request` names: its index, or the one recommended under its name.
absl::StatusOr<int> CandidateIndex(const ExportRequest& request, const v1::DeviceFront& front,
                                   const v1::Constraints& constraints, int64_t app_budget_bytes) {
  if (request.candidate.has_value()) return *request.candidate;
  std::vector<std::string> names;
  for (const v1::Recommendation& r : Recommend(front, constraints, app_budget_bytes)) {
    for (const std::string& name : r.names()) {
      if (name == request.recommendation) return r.candidate().index();
      names.push_back(name);
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no candidate of '", front.device_id(), "' is recommended as '", request.recommendation,
                   "'; the recommendations: ", names.empty() ? "none" : absl::StrJoin(names, ", ")));
}

// A range method as the cache key has always named it (squeeze.v1.RangeMethod's names).
absl::string_view RangeMethodKey(runtime::RangeMethod method) {
  return method == runtime::RangeMethod::kMinMax ? "RANGE_METHOD_MINMAX" : "RANGE_METHOD_PERCENTILE";
}

// The cache key of an export: model bytes and shapes, the plan, the calibration set, and the options;
// its version moves whenever the exporter writes other bytes for the same key, or the report
// measures them otherwise (v5: INT4 weights; v6: a softmax output's error on its logits; v7: as
// many synthetic samples as the model's smallest output needs, runtime::SyntheticSampleCount; v8:
// synthetic token ids drawn over their embedding table, model::Analysis::index_input_bounds; v9:
// block-wise weights rounded by GPTQ, model/rounding.h).
std::string ExportCacheKey(const ExportTarget& t, int synthetic_samples) {
  std::string key = absl::StrCat("export-v9|", model::FlavourName(t.flavour), "|", t.model.sha256, "|",
                                 t.model.input_shapes, "|", RangeMethodKey(t.range_method), "|");
  for (const v1::LayerChoice& c : t.candidate.layers()) {
    absl::StrAppend(&key, c.layer(), ":", c.weight_bits(), ",", c.activation_bits(), ",", c.pattern(), ",",
                    c.pattern() == v1::SPARSITY_PATTERN_DENSE ? 0.0 : c.prune_ratio(),
                    c.block_size() > 0 ? absl::StrCat(",b", c.block_size()) : "", ";");
  }
  if (t.spec.calibration_size() > 0) {
    std::string samples;
    for (const v1::CalibrationSample& s : t.spec.calibration()) absl::StrAppend(&samples, s.SerializeAsString());
    absl::StrAppend(&key, "|calibration:", common::Sha256Hex(samples));
  } else {
    absl::StrAppend(&key, "|synthetic:", synthetic_samples, ":", t.spec.seed());
  }
  for (const auto& [name, weight] : OutputWeightsOf(t.spec)) absl::StrAppend(&key, "|output:", name, "=", weight);
  if (t.device_id == kHostDevice) {
    absl::StrAppend(&key, "|latency:", t.device_id, ":", t.device_version, ":", t.device_threads);
  }
  return common::Sha256Hex(key);
}

// The flavour the request names, else the device's; InvalidArgument when a layer of `candidate`
// is at a precision that flavour does not write.
absl::StatusOr<model::ExportFlavour> FlavourOf(const ExportRequest& request, model::ExportFlavour device_flavour,
                                               const v1::Candidate& candidate) {
  if (!request.flavour.has_value()) return device_flavour;
  const model::ExportFlavour flavour = *request.flavour;
  for (const v1::LayerChoice& l : candidate.layers()) {
    if (!model::Realizes(flavour, l.weight_bits(), l.activation_bits())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", l.layer(), "' is ", l.option(), ", which the ", model::FlavourName(flavour),
          " flavour does not write (", model::RealizationNote(device_flavour, l.weight_bits(), l.activation_bits()),
          " on this device); export in the device's flavour (", model::FlavourName(device_flavour),
          ") or pick a candidate without it"));
    }
  }
  return flavour;
}

}  // namespace

absl::StatusOr<ExportTarget> ExportJobs::Resolve(const std::string& team, const ExportRequest& request) {
  ExportTarget t;
  t.team = team;
  absl::StatusOr<JobRecord> job = state_.GetJob(team, request.job_id);
  if (!job.ok()) return job.status();
  t.job = *std::move(job);
  if (t.job.state != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat("search '", t.job.id, "' is ", v1::JobState_Name(t.job.state),
                                                      ": only a succeeded search's candidates can be exported"));
  }
  v1::SearchJob result;
  if (!result.ParseFromString(t.job.result) || !t.spec.ParseFromString(t.job.spec)) {
    return absl::DataLossError(absl::StrCat("search '", t.job.id, "': its stored result cannot be read"));
  }
  const v1::DeviceFront* front = nullptr;
  std::vector<std::string> devices;
  for (const v1::DeviceFront& f : result.fronts()) {
    devices.push_back(f.device_id());
    if (f.device_id() == request.device_id) front = &f;
  }
  if (front == nullptr) {
    return absl::NotFoundError(absl::StrCat("search '", t.job.id, "' has no front for device '", request.device_id,
                                            "'; its devices: ", absl::StrJoin(devices, ", ")));
  }
  t.device_id = front->device_id();
  t.device_version = front->device_version();
  absl::StatusOr<device_profiles::Device> device = profiles_.GetDevice(t.device_id, t.device_version);
  if (!device.ok()) return device.status();
  t.device_threads = std::max(1, device->threads);
  t.device_flavour = model::FlavourForRuntime(device->runtime);
  absl::StatusOr<int> index = CandidateIndex(request, *front, t.spec.constraints(), device->app_memory_budget_bytes);
  if (!index.ok()) return index.status();
  for (const v1::Candidate& c : front->candidates()) {
    if (c.index() == *index) t.candidate = c;
  }
  if (t.candidate.layers_size() == 0) {
    return absl::NotFoundError(absl::StrCat("device '", t.device_id, "' of search '", t.job.id, "' has no candidate ",
                                            *index, " (", front->candidates_size(), " candidates, numbered from 0)"));
  }
  t.candidate.set_index(*index);
  absl::StatusOr<model::ExportFlavour> flavour = FlavourOf(request, t.device_flavour, t.candidate);
  if (!flavour.ok()) return flavour.status();
  t.flavour = *flavour;
  absl::StatusOr<ModelRecord> model = state_.GetModel(team, t.job.model_id);
  if (!model.ok()) {
    return model.status().code() == absl::StatusCode::kNotFound
               ? absl::FailedPreconditionError(absl::StrCat("the model of search '", t.job.id, "' has been deleted"))
               : model.status();
  }
  t.model = *std::move(model);
  t.range_method = request.range_method;
  t.cache_key = ExportCacheKey(t, options_.calibration_samples);
  return t;
}

namespace {

// The record of an export of `t`, as state.db keeps it.
ExportRecord RecordOf(const ExportTarget& t) {
  ExportRecord record;
  record.team = t.team;
  record.job_id = t.job.id;
  record.device_id = t.device_id;
  record.candidate = t.candidate.index();
  record.cache_key = t.cache_key;
  return record;
}

// `result` as an answer for `t`: which search, device and candidate, and what it predicted.
ExportResult Stamped(ExportResult result, const ExportTarget& t) {
  v1::ExportReport& r = result.report;
  r.set_job_id(t.job.id);
  r.set_model_id(t.model.id);
  r.set_device_id(t.device_id);
  r.set_candidate(t.candidate.index());
  r.set_plan_summary(t.candidate.plan_summary());
  r.set_predicted_latency_ms(t.candidate.predicted_latency_ms());
  r.set_predicted_size_bytes(t.candidate.predicted_size_bytes());
  r.set_predicted_sqnr_db(t.candidate.predicted_sqnr_db());
  return result;
}

// The answer to the request: where it overrode the device's flavour, the report says what its
// predicted figures are then (said to the caller only; the stored report is the file's).
absl::StatusOr<ExportResult> Answered(absl::StatusOr<ExportResult> result, const ExportTarget& t) {
  if (result.ok() && t.flavour != t.device_flavour) {
    result->report.add_warnings(absl::StrCat("exported in the ", model::FlavourName(t.flavour), " flavour, not ",
                                             t.device_id, "'s ", model::FlavourName(t.device_flavour),
                                             ": the predicted figures are for the device's flavour"));
  }
  return result;
}

}  // namespace

void ExportJobs::Run(ExportTarget target, Progress progress, Done done) {
  workers_.Submit([this, target = std::move(target), progress = std::move(progress), done = std::move(done)] {
    done(Answered(Execute(target, progress), target));
  });
}

absl::StatusOr<std::optional<ExportResult>> ExportJobs::FromStoredExport(const ExportTarget& t,
                                                                         const Progress& progress) {
  absl::StatusOr<std::optional<ExportRecord>> cached = state_.FindExport(t.team, t.cache_key);
  if (!cached.ok()) return cached.status();
  if (!cached->has_value()) return std::nullopt;
  progress(Phase("loading", "from an earlier export of the same model and plan"));
  absl::StatusOr<std::string> bytes = blobs_.Read((*cached)->blob_sha256);
  v1::ExportReport report;
  if (!bytes.ok() || !report.ParseFromString((*cached)->report)) return std::nullopt;  // lost: export again
  ExportResult result{*std::move(bytes), std::move(report)};
  result.report.set_from_cache(true);
  result = Stamped(std::move(result), t);
  ExportRecord record = RecordOf(t);
  record.blob_sha256 = (*cached)->blob_sha256;
  record.report = result.report.SerializeAsString();
  if (absl::Status s = state_.PutExport(record); !s.ok()) return s;
  return result;
}

namespace {

// How `t` is exported and measured: its ranges, flavour and metadata; its outputs weighed as its
// search weighed them; latency too on 'host', with the device profile's threads.
runtime::ExportCheckOptions CheckOptions(const ExportTarget& t, const ExportJobsOptions& options,
                                         const ExportJobs::Progress& progress) {
  const bool on_host = t.device_id == kHostDevice;
  runtime::ExportCheckOptions check;
  check.ranges.method = t.range_method;
  check.ranges.threads = t.device_threads;
  check.export_options.shape_probe = options.shape_probe;
  check.export_options.flavour = t.flavour;
  check.export_options.metadata = {{"squeeze.job", t.job.id},
                                   {"squeeze.device", t.device_id},
                                   {"squeeze.candidate", absl::StrCat(t.candidate.index())},
                                   {"squeeze.model_sha256", t.model.sha256}};
  check.verify.threads = on_host ? t.device_threads : options.threads;
  check.verify.measure_latency = on_host;
  check.verify.repeats = options.latency_repeats;
  check.verify.output_weights = OutputWeightsOf(t.spec);
  // Called within ExportAndVerify, while `t` and `progress` live.
  check.on_stage = [&t, &progress, on_host](absl::string_view stage, const std::string& detail) {
    if (stage == "exporting") {
      progress(Phase("exporting", t.candidate.plan_summary()));
    } else if (stage == "verifying") {
      progress(Phase("verifying", on_host ? absl::StrCat("outputs and latency, ", t.device_threads, " threads")
                                          : std::string("outputs (latency is measured on 'host' only)")));
    } else {
      progress(Phase(std::string(stage), detail));
    }
  };
  return check;
}

}  // namespace

absl::StatusOr<ExportResult> ExportJobs::Execute(const ExportTarget& t, const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::optional<ExportResult>> stored = FromStoredExport(t, progress);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) return **std::move(stored);

  progress(Phase("loading", absl::StrCat("model ", t.model.id)));
  absl::StatusOr<std::string> bytes = blobs_.Read(t.model.sha256);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<model::LoadedModel> loaded = LoadJobModel(
      *bytes, t.model.input_shapes, {options_.shape_probe, options_.max_activation_bytes, options_.threads});
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<std::vector<model::LayerPlan>> plan = ExportPlanFromProto(t.candidate, loaded->analysis);
  if (!plan.ok()) return absl::FailedPreconditionError(plan.status().message());

  absl::StatusOr<std::unique_ptr<runtime::Session>> original = runtime::Session::Create(*bytes);
  if (!original.ok()) return AsPrecondition(original.status());
  absl::StatusOr<runtime::CalibrationSet> calibration = JobCalibration(
      *loaded, **original, t.spec.calibration(), t.spec.input_values(), options_.calibration_samples, t.spec.seed());
  if (!calibration.ok()) return calibration.status();

  const runtime::ExportCheckOptions check = CheckOptions(t, options_, progress);
  absl::StatusOr<runtime::VerifiedExport> verified =
      runtime::ExportAndVerify(*loaded, loaded->proto.SerializeAsString(), *plan, *calibration, check);
  if (!verified.ok()) return AsPrecondition(verified.status());

  ExportResult result;
  result.report = ToProto(verified->exported.report, verified->verification, verified->range_method);
  result.bytes = std::move(verified->exported.bytes);
  absl::StatusOr<std::string> sha = blobs_.Put(result.bytes);
  if (!sha.ok()) return sha.status();
  result.report.set_file_sha256(*sha);
  result.report.set_export_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  result.report.set_created_at(UtcNow());
  result = Stamped(std::move(result), t);
  ExportRecord record = RecordOf(t);
  record.blob_sha256 = *sha;
  record.report = result.report.SerializeAsString();
  if (absl::Status s = state_.PutExport(record); !s.ok()) return s;
  return result;
}

void ExportJobs::VerifyRecommended(const std::string& team, const std::string& job_id) {
  workers_.Submit([this, team, job_id] {
    absl::StatusOr<JobRecord> job = state_.GetJob(team, job_id);
    v1::SearchJob result;
    v1::SearchSpec spec;
    if (!job.ok() || !result.ParseFromString(job->result) || !spec.ParseFromString(job->spec)) {
      common::LogWarning("verifying search {}: its stored result cannot be read", job_id);
      return;
    }
    for (const v1::DeviceFront& front : result.fronts()) {
      absl::StatusOr<device_profiles::Device> device = profiles_.GetDevice(front.device_id(), front.device_version());
      if (!device.ok()) continue;
      for (const v1::Recommendation& pick : Recommend(front, spec.constraints(), device->app_memory_budget_bytes)) {
        ExportRequest request;
        request.job_id = job_id;
        request.device_id = front.device_id();
        request.candidate = pick.candidate().index();
        absl::StatusOr<ExportTarget> target = Resolve(team, request);
        absl::StatusOr<ExportResult> done = target.ok() ? Execute(*target, [](const v1::ExportProgress&) {})
                                                        : absl::StatusOr<ExportResult>(target.status());
        if (done.ok()) {
          common::LogInfo("search {}: {} candidate {} ({}) measured: {:.2f} dB", job_id, front.device_id(),
                          pick.candidate().index(), pick.name(), done->report.measured().sqnr_db());
        } else {
          common::LogWarning("search {}: {} candidate {} ({}) not verified: {}", job_id, front.device_id(),
                             pick.candidate().index(), pick.name(), done.status().ToString());
        }
      }
    }
  });
}

absl::Status ExportJobs::AttachMeasurements(const std::string& team, v1::SearchJob* job) {
  absl::StatusOr<std::vector<ExportRecord>> exports = state_.ListExports(team, job->id());
  if (!exports.ok()) return exports.status();
  for (const ExportRecord& e : *exports) {
    v1::ExportReport report;
    if (!report.ParseFromString(e.report)) continue;
    for (v1::DeviceFront& front : *job->mutable_fronts()) {
      if (front.device_id() != e.device_id) continue;
      for (v1::Candidate& c : *front.mutable_candidates()) {
        if (c.index() == e.candidate) *c.mutable_measured() = MeasuredFiguresOf(report);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace squeeze::server
