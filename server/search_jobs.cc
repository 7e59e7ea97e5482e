#include "server/search_jobs.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "device_profiles/cost_model.h"
#include "model/output_weights.h"
#include "runtime/calibration.h"
#include "runtime/sensitivity.h"
#include "runtime/session.h"
#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
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

constexpr int kDefaultListLimit = 50;
// A search that was running when the process died this many times is failed, not run again.
constexpr int kMaxCrashedAttempts = 2;
constexpr double kRecommendTimeBudgetS = 30;

bool Final(int state) { return state >= v1::JOB_STATE_SUCCEEDED; }

v1::SearchJob JobOf(const JobRecord& record) {
  v1::SearchJob job;
  if (!record.result.empty()) job.ParseFromString(record.result);
  job.set_id(record.id);
  job.mutable_spec()->ParseFromString(record.spec);
  // Calibration samples can be megabytes each: answers and progress updates say how many there
  // were, not what they held.
  job.set_calibration_samples(job.spec().calibration_size());
  job.mutable_spec()->clear_calibration();
  job.set_state(static_cast<v1::JobState>(record.state));
  job.set_phase(static_cast<v1::Phase>(record.phase));
  job.set_fraction(record.fraction);
  job.set_error(record.error);
  job.set_created_at(record.created_at);
  job.set_started_at(record.started_at);
  job.set_finished_at(record.finished_at);
  return job;
}

// The engine's limits for one device.
search::Constraints LimitsOf(const v1::Constraints& c, const dp::Device& device) {
  search::Constraints limits;
  if (c.max_latency_ms() > 0) limits.max_latency = c.max_latency_ms() / 1000;
  if (c.max_model_bytes() > 0) limits.max_size = static_cast<double>(c.max_model_bytes());
  if (c.min_sqnr_db() > 0) limits.max_error = search::ErrorOfSqnrDb(c.min_sqnr_db());
  if (c.max_peak_memory_bytes() > 0) {
    limits.max_peak_memory = static_cast<double>(c.max_peak_memory_bytes());
  } else if (c.peak_memory_within_app_budget()) {
    limits.max_peak_memory = static_cast<double>(device.app_memory_budget_bytes);
  }
  return limits;
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
  std::vector<std::string> binding;
  auto min_of = [&](auto get) {
    double best = std::numeric_limits<double>::infinity();
    for (const search::Candidate& c : unconstrained.candidates) best = std::min(best, get(c.values));
    return best;
  };
  if (limits.max_latency) {
    const double best = min_of([](const search::ObjectiveValues& v) { return v.latency; });
    if (best > *limits.max_latency) {
      binding.push_back(absl::StrFormat("max latency %.3g ms: the fastest candidate takes %.3g ms",
                                        *limits.max_latency * 1e3, best * 1e3));
    }
  }
  if (limits.max_size) {
    const double best = min_of([](const search::ObjectiveValues& v) { return v.size; });
    if (best > *limits.max_size) {
      binding.push_back(
          absl::StrFormat("max size %.0f bytes: the smallest candidate is %.0f bytes", *limits.max_size, best));
    }
  }
  if (limits.max_error) {
    const double best = min_of([](const search::ObjectiveValues& v) { return v.error; });
    if (best > *limits.max_error) {
      binding.push_back(absl::StrFormat("min SQNR %.1f dB: the most accurate candidate reaches %.1f dB",
                                        search::SqnrDb(*limits.max_error), search::SqnrDb(best)));
    }
  }
  if (limits.max_peak_memory) {
    const double best = min_of([](const search::ObjectiveValues& v) { return v.peak_memory; });
    if (best > *limits.max_peak_memory) {
      binding.push_back(absl::StrFormat("max peak memory %.0f bytes: the leanest candidate needs %.0f bytes",
                                        *limits.max_peak_memory, best));
    }
  }
  if (binding.empty()) return "the limits together: each can be met alone, but no candidate meets them all";
  return absl::StrJoin(binding, "; ");
}

// How a uniform baseline compares with the front: which candidate dominates it, or why none does.
std::string BaselineVerdict(const v1::Candidate& b, const v1::DeviceFront& front, const v1::Constraints& limits) {
  if (!front.constraints_met()) return "no candidate meets the limits to compare with";
  if (limits.min_sqnr_db() > 0 && b.predicted_sqnr_db() < limits.min_sqnr_db()) {
    return absl::StrFormat("outside the limits: %.1f dB SQNR < %.1f dB floor", b.predicted_sqnr_db(),
                           limits.min_sqnr_db());
  }
  if (limits.max_latency_ms() > 0 && b.predicted_latency_ms() > limits.max_latency_ms()) {
    return absl::StrFormat("outside the limits: %.2f ms > %.2f ms", b.predicted_latency_ms(), limits.max_latency_ms());
  }
  if (limits.max_model_bytes() > 0 && b.predicted_size_bytes() > limits.max_model_bytes()) {
    return "outside the limits: over the size cap";
  }
  for (const v1::Candidate& c : front.candidates()) {
    const bool no_worse = c.predicted_latency_ms() <= b.predicted_latency_ms() &&
                          c.predicted_size_bytes() <= b.predicted_size_bytes() &&
                          c.predicted_error() <= b.predicted_error();
    const bool better = c.predicted_latency_ms() < b.predicted_latency_ms() ||
                        c.predicted_size_bytes() < b.predicted_size_bytes() ||
                        c.predicted_error() < b.predicted_error();
    if (no_worse && better) return absl::StrCat("dominated by #", c.index());
  }
  return "on the front: no candidate beats it in every objective";
}

}  // namespace

std::string SearchCacheKey(const std::string& model_sha256, const std::vector<std::pair<std::string, int64_t>>& devices,
                           const v1::SearchSpec& spec) {
  v1::SearchSpec keyed = spec;
  keyed.clear_model_id();
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    keyed.SerializeToCodedStream(&coded);
  }
  common::Sha256 hash;
  // The option-space and error methods: a stored front from an older one (e.g. with fp16 compute
  // options the export flavour does not realize, or errors pooled over outputs rather than weighed
  // per output) must not answer a new search.
  hash.Update("options=realized-2|errors=output-weighted|");
  hash.Update(model_sha256);
  for (const auto& [id, version] : devices) hash.Update(absl::StrCat("|", id, "@", version));
  hash.Update("|");
  hash.Update(bytes);
  return hash.HexDigest();
}

SearchJobs::SearchJobs(StateStore& state, BlobStore& blobs, dp::ProfileStore& profiles, FairQueue& queue,
                       SearchJobsOptions options)
    : state_(state), blobs_(blobs), profiles_(profiles), queue_(queue), options_(std::move(options)) {
  queue_.set_on_change([this] { NotifyQueued(); });
}

void SearchJobs::Enqueue(const JobRecord& record) {
  FairQueue::Job job;
  job.id = record.id;
  job.team = record.team;
  v1::SearchSpec spec;
  // Estimates: the search phase runs for its time budget on each device; analysis, calibration
  // and sensitivities before it take a few seconds more.
  if (spec.ParseFromString(record.spec)) {
    job.expected = absl::Seconds(spec.time_budget_seconds() * std::max(1, spec.device_ids_size()) + 15);
  }
  // Memory, estimated: ONNX Runtime sessions, calibration runs and weight copies are a few times
  // the model's bytes and its activations at their peak.
  absl::StatusOr<ModelRecord> model = state_.GetModel(record.team, record.model_id);
  v1::ModelAnalysis analysis;
  if (model.ok() && analysis.ParseFromString(model->analysis)) {
    job.memory_bytes = 4 * (model->size_bytes + analysis.peak_activation_bytes());
  }
  job.run = [this, record] { Run(record); };
  queue_.Submit(std::move(job));
}

void SearchJobs::AddPlace(v1::SearchJob* job) {
  if (job->state() != v1::JOB_STATE_QUEUED) return;
  if (std::optional<FairQueue::Place> place = queue_.PlaceOf(job->id())) SetPlace(*place, job);
}

void SearchJobs::SetPlace(const FairQueue::Place& place, v1::SearchJob* job) {
  job->set_queue_position(place.position);
  job->set_expected_wait_seconds(absl::ToDoubleSeconds(place.expected_wait));
}

void SearchJobs::NotifyQueued() {
  struct Call {
    std::string team, id;
    Watcher watcher;
  };
  std::vector<Call> to_call;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [handle, entry] : watchers_) to_call.push_back({entry.team, entry.job_id, entry.watcher});
  }
  for (const auto& [team, id, watcher] : to_call) {
    std::optional<FairQueue::Place> place = queue_.PlaceOf(id);
    if (!place) continue;  // not queued: its own progress reaches its watchers
    absl::StatusOr<JobRecord> record = state_.GetJob(team, id);
    if (!record.ok() || record->state != v1::JOB_STATE_QUEUED) continue;
    v1::SearchJob job = JobOf(*record);
    SetPlace(*place, &job);
    watcher(job);
  }
}

SearchJobs::~SearchJobs() {
  Stop();
  queue_.set_on_change(nullptr);
}

void SearchJobs::Stop() {
  std::vector<std::function<void()>> stopped;
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    for (auto& [id, live] : live_) {
      live->shutting_down = true;
      live->cancel = true;
    }
    // Watchers hear now that their job will not end in this process, rather than wait for ever.
    for (auto& [handle, entry] : watchers_) {
      if (entry.on_stop) stopped.push_back(std::move(entry.on_stop));
    }
    watchers_.clear();
  }
  for (const auto& f : stopped) f();
}

absl::Status SearchJobs::Recover() {
  absl::StatusOr<std::vector<JobRecord>> unfinished = state_.UnfinishedJobs();
  if (!unfinished.ok()) return unfinished.status();
  for (JobRecord& record : *unfinished) {
    if (record.attempts >= kMaxCrashedAttempts) {
      // Poison: twice this search was running when the process died (out of memory, most likely).
      v1::SearchJob job = JobOf(record);
      job.set_state(v1::JOB_STATE_FAILED);
      job.set_error(absl::StrCat(
          "this search was running when the server died, ", record.attempts,
          " times (the server's log or the kernel's may say why: out of memory is the likely cause); it is "
          "not run again. Start it again with a smaller --input-shape, fewer --max-candidates or a "
          "shorter --time-budget, or ask the operator for more memory"));
      common::LogWarning("search {} was running when the server died {} times: marked failed, not run again", record.id,
                         record.attempts);
      Publish(record, job, true).IgnoreError();  // logged by Publish
      continue;
    }
    common::LogInfo("search {} was {} when the server stopped: running it again", record.id,
                    record.state == v1::JOB_STATE_RUNNING ? "running" : "queued");
    record.state = v1::JOB_STATE_QUEUED;
    record.phase = v1::PHASE_QUEUED;
    record.fraction = 0;
    Enqueue(record);
  }
  return absl::OkStatus();
}

namespace {

// The spec's output weights name outputs of the model, float ones, and do not all weigh 0
// (model::ResolveOutputWeights). A model analysed before its outputs were recorded is checked
// when the search loads it.
absl::Status ValidateOutputWeights(const v1::SearchSpec& spec, const ModelRecord& model) {
  if (spec.output_weights().empty()) return absl::OkStatus();
  v1::ModelAnalysis analysis;
  if (!analysis.ParseFromString(model.analysis))
    return absl::DataLossError("the model's stored analysis does not parse");
  if (analysis.outputs_size() == 0) return absl::OkStatus();
  absl::StatusOr<std::vector<double>> weights = model::ResolveOutputWeights(OutputsOf(analysis), OutputWeightsOf(spec));
  if (!weights.ok()) return absl::InvalidArgumentError(absl::StrCat("--output: ", weights.status().message()));
  return absl::OkStatus();
}

// The spec's input values name inputs of the model, are finite, and stand for drawn inputs only.
// Whether an input's type holds its value is checked when the inputs are drawn.
absl::Status ValidateInputValues(const v1::SearchSpec& spec, const ModelRecord& model) {
  if (spec.input_values().empty()) return absl::OkStatus();
  if (spec.calibration_size() > 0) {
    return absl::InvalidArgumentError(
        "input values set drawn inputs, and this search has calibration samples, which give every input: drop "
        "--input-value or put the value in the samples");
  }
  v1::ModelAnalysis analysis;
  if (!analysis.ParseFromString(model.analysis))
    return absl::DataLossError("the model's stored analysis does not parse");
  std::vector<std::string> names;
  for (const v1::InputShape& input : analysis.input_shapes()) names.push_back(input.name());
  for (const auto& [name, value] : spec.input_values()) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--input-value names '", name, "', which is no input of model ",
                                                     model.id, "; its inputs are ", absl::StrJoin(names, ", ")));
    }
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat("--input-value ", name, ": not a finite number"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::SearchJob> SearchJobs::Start(const std::string& team, const v1::SearchSpec& requested) {
  const v1::SearchSpec spec = NormalizedSpec(requested, options_.max_candidates, options_.default_time_budget_s);
  if (absl::Status s = ValidateSpec(spec); !s.ok()) return s;
  absl::StatusOr<ModelRecord> model = state_.GetModel(team, spec.model_id());
  if (!model.ok()) return model.status();
  if (spec.calibration_size() > 0) {
    absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes = ParseShapes(model->input_shapes);
    if (!shapes.ok()) return shapes.status();
    if (absl::Status s = ValidateCalibration(spec, *shapes); !s.ok()) return s;
  }
  if (absl::Status s = ValidateInputValues(spec, *model); !s.ok()) return s;
  if (absl::Status s = ValidateOutputWeights(spec, *model); !s.ok()) return s;
  std::vector<std::pair<std::string, int64_t>> versions;
  for (const std::string& id : spec.device_ids()) {
    absl::StatusOr<dp::Device> device = profiles_.GetDevice(id);
    if (!device.ok()) return device.status();
    versions.emplace_back(id, device->version);
  }
  JobRecord record;
  record.team = team;
  record.model_id = spec.model_id();
  record.cache_key = SearchCacheKey(model->sha256, versions, spec);
  record.spec = spec.SerializeAsString();

  absl::StatusOr<std::optional<JobRecord>> cached = state_.FindFinishedJob(team, record.cache_key);
  if (!cached.ok()) return cached.status();
  if (cached->has_value()) {
    v1::SearchJob result = JobOf(**cached);
    result.set_from_cache(true);
    record.state = v1::JOB_STATE_SUCCEEDED;
    record.phase = v1::PHASE_DONE;
    record.fraction = 1;
    record.result = result.SerializeAsString();
    record.from_cache = true;
    absl::StatusOr<JobRecord> stored = state_.InsertJob(record);
    if (!stored.ok()) return stored.status();
    if (absl::Status s = state_.UpdateJob(*stored); !s.ok()) return s;  // stamps started/finished
    common::LogInfo("search {} answered from {}'s stored result", stored->id, (*cached)->id);
    if (spec.verify_recommended() && options_.verify_recommended) options_.verify_recommended(team, stored->id);
    return Get(team, stored->id);
  }

  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; start the search again shortly");
  }
  absl::StatusOr<JobRecord> stored = state_.InsertJob(record, options_.quota);
  if (!stored.ok()) return stored.status();
  common::LogInfo("search {} queued: model {} on {} team={}", stored->id, spec.model_id(),
                  absl::StrJoin(spec.device_ids(), ", "), team);
  Enqueue(*stored);
  return Get(team, stored->id);
}

absl::StatusOr<v1::SearchJob> SearchJobs::Get(const std::string& team, const std::string& id) {
  absl::StatusOr<JobRecord> record = state_.GetJob(team, id);
  if (!record.ok()) return record.status();
  v1::SearchJob job = JobOf(*record);
  AddPlace(&job);
  return job;
}

absl::StatusOr<std::vector<v1::SearchJob>> SearchJobs::List(const std::string& team, int limit) {
  absl::StatusOr<std::vector<JobRecord>> records = state_.ListJobs(team, limit > 0 ? limit : kDefaultListLimit);
  if (!records.ok()) return records.status();
  std::vector<v1::SearchJob> jobs;
  for (const JobRecord& r : *records) {
    v1::SearchJob job = JobOf(r);
    AddPlace(&job);
    for (v1::DeviceFront& front : *job.mutable_fronts()) {
      for (v1::Candidate& c : *front.mutable_candidates()) c.clear_layers();
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

absl::StatusOr<v1::SearchJob> SearchJobs::Cancel(const std::string& team, const std::string& id) {
  absl::StatusOr<JobRecord> record = state_.GetJob(team, id);
  if (!record.ok()) return record.status();
  if (Final(record->state)) return JobOf(*record);
  if (queue_.Remove(id)) {  // still waiting: it never runs
    v1::SearchJob job = JobOf(*record);
    job.set_state(v1::JOB_STATE_CANCELLED);
    job.set_error("cancelled");
    Publish(*record, job, true).IgnoreError();  // logged by Publish
    {
      absl::MutexLock lock(&mutex_);
      for (auto it = watchers_.begin(); it != watchers_.end();) {
        it = it->second.job_id == id ? watchers_.erase(it) : std::next(it);
      }
    }
    common::LogInfo("search {} cancelled while queued", id);
    return Get(team, id);
  }
  absl::MutexLock lock(&mutex_);
  auto live = live_.find(id);
  if (live != live_.end()) {
    live->second->cancel = true;  // the running job ends itself as cancelled
  } else {
    record->state = v1::JOB_STATE_CANCELLED;
    if (absl::Status s = state_.UpdateJob(*record); !s.ok()) return s;
    live_[id] = std::make_shared<Live>();  // handed to a worker already: it sees this when it starts
    live_[id]->cancel = true;
  }
  common::LogInfo("search {} cancel requested", id);
  return Get(team, id);
}

absl::StatusOr<int64_t> SearchJobs::Watch(const std::string& team, const std::string& id, Watcher watcher,
                                          std::function<void()> on_stop) {
  absl::StatusOr<v1::SearchJob> job = Get(team, id);
  if (!job.ok()) return job.status();
  int64_t handle;
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; watch the search again when it is back");
    handle = next_watcher_++;
    watchers_[handle] = WatcherEntry{team, id, watcher, std::move(on_stop)};
  }
  watcher(*job);
  return handle;
}

void SearchJobs::Unwatch(int64_t handle) {
  absl::MutexLock lock(&mutex_);
  watchers_.erase(handle);
}

absl::Status SearchJobs::Publish(JobRecord& record, const v1::SearchJob& job, bool persist) {
  record.state = job.state();
  record.phase = job.phase();
  record.fraction = job.fraction();
  record.error = job.error();
  absl::Status stored;
  if (persist) {
    v1::SearchJob result;
    *result.mutable_fronts() = job.fronts();
    result.set_synthetic_calibration(job.synthetic_calibration());
    result.set_from_cache(job.from_cache());
    record.result = result.SerializeAsString();
    stored = state_.UpdateJob(record);
    if (!stored.ok()) common::LogWarning("search {}: cannot store its progress: {}", record.id, stored.ToString());
  }
  std::vector<Watcher> to_call;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [handle, entry] : watchers_) {
      if (entry.job_id == record.id) to_call.push_back(entry.watcher);
    }
  }
  // Watchers see the job as stored; when it could not be stored (a full disk), as it is in memory.
  v1::SearchJob snapshot = job;
  if (persist && stored.ok()) {
    absl::StatusOr<JobRecord> reread = state_.GetJob(record.team, record.id);
    if (reread.ok()) snapshot = JobOf(*reread);
  }
  for (const Watcher& w : to_call) w(snapshot);
  return stored;
}

void SearchJobs::Run(JobRecord record) {
  std::shared_ptr<Live> live;
  {
    absl::MutexLock lock(&mutex_);
    auto it = live_.find(record.id);
    if (it != live_.end() && it->second->cancel) {
      live_.erase(it);  // cancelled while queued; already stored as cancelled
      return;
    }
    live = std::make_shared<Live>();
    if (stopping_) return;  // stays queued for the next start
    live_[record.id] = live;
  }
  v1::SearchJob job = JobOf(record);
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_phase(v1::PHASE_ANALYZING);
  ++record.attempts;                         // stored with the running state; a clean end or shutdown takes it back
  Publish(record, job, true).IgnoreError();  // logged by Publish
  const auto start = absl::Now();
  absl::Status status = Execute(record, job, *live);
  if (live->shutting_down) {
    --record.attempts;  // interrupted by a clean shutdown, not a crash
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_phase(v1::PHASE_QUEUED);
    job.set_fraction(0);
    job.clear_fronts();
    Publish(record, job, true).IgnoreError();  // logged by Publish
  } else if (live->cancel) {
    job.set_state(v1::JOB_STATE_CANCELLED);
    job.set_error("cancelled");
    Publish(record, job, true).IgnoreError();  // logged by Publish
  } else if (!status.ok()) {
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(status.ToString());
    job.clear_fronts();
    Publish(record, job, true).IgnoreError();  // logged by Publish
    common::LogWarning("search {} failed: {}", record.id, status.ToString());
  } else {
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    job.set_phase(v1::PHASE_DONE);
    job.set_fraction(1);
    if (absl::Status stored = Publish(record, job, true); !stored.ok()) {
      // Nothing is reported done that is not stored: the job ends failed, saying why.
      job.set_state(v1::JOB_STATE_FAILED);
      job.set_error(absl::StrCat("the search finished but its result could not be stored: ", stored.message()));
      job.clear_fronts();
      Publish(record, job, true).IgnoreError();  // logged by Publish
    }
    common::LogInfo("search {} finished in {:.1f} s", record.id, absl::ToDoubleSeconds(absl::Now() - start));
    if (job.spec().verify_recommended() && options_.verify_recommended) {
      options_.verify_recommended(record.team, record.id);
    }
  }
  absl::MutexLock lock(&mutex_);
  live_.erase(record.id);
  // Every watcher has seen the final snapshot: none is called again.
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    it = it->second.job_id == record.id ? watchers_.erase(it) : std::next(it);
  }
}

absl::Status SearchJobs::Execute(JobRecord& record, v1::SearchJob& job, Live& live) {
  v1::SearchSpec spec;  // the stored one: job.spec() goes without the calibration bytes
  if (!spec.ParseFromString(record.spec)) return absl::DataLossError("the search's stored spec does not parse");
  absl::StatusOr<ModelRecord> model_record = state_.GetModel(record.team, record.model_id);
  if (!model_record.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", record.model_id, " is gone: ", model_record.status().message()));
  }
  absl::StatusOr<std::string> bytes = blobs_.Read(model_record->sha256);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<model::LoadedModel> loaded = LoadJobModel(
      *bytes, model_record->input_shapes, {options_.shape_probe, options_.max_activation_bytes, options_.threads});
  if (!loaded.ok()) return loaded.status();
  if (live.cancel) return absl::CancelledError("cancelled");

  // Calibration and sensitivities (cached per model bytes and calibration set).
  job.set_phase(v1::PHASE_MEASURING_SENSITIVITY);
  job.set_fraction(0.05);
  Publish(record, job, true).IgnoreError();  // logged by Publish
  absl::StatusOr<std::unique_ptr<runtime::Session>> original = runtime::Session::Create(*bytes);
  if (!original.ok()) return original.status();
  absl::StatusOr<runtime::CalibrationSet> calibration = JobCalibration(
      *loaded, **original, spec.calibration(), spec.input_values(), options_.calibration_samples, spec.seed());
  if (!calibration.ok()) return calibration.status();
  job.set_synthetic_calibration(calibration->synthetic);
  runtime::SensitivityOptions sensitivity_options;
  sensitivity_options.threads = options_.threads;
  sensitivity_options.seed = 1;
  sensitivity_options.cancelled = &live.cancel;
  sensitivity_options.output_weights = OutputWeightsOf(spec);
  // The key names the measurement method and the outputs it weighs: a change to either must not
  // reuse older figures.
  std::string sensitivity_key = absl::StrCat("method=6;noise=", sensitivity_options.noise_energy, ";bits=8,16;seed=1");
  for (const auto& [name, weight] : sensitivity_options.output_weights) {
    absl::StrAppend(&sensitivity_key, ";output:", name, "=", weight);
  }
  runtime::SensitivityReport sensitivity;
  absl::StatusOr<std::optional<std::string>> cached =
      state_.GetSensitivity(model_record->sha256, calibration->hash, sensitivity_key);
  v1::SensitivityReport stored;
  if (cached.ok() && cached->has_value() && stored.ParseFromString(**cached)) {
    sensitivity = FromProto(stored);
  } else {
    sensitivity_options.on_progress = [&](double f) {
      job.set_fraction(0.05 + 0.45 * f);
      Publish(record, job, false).IgnoreError();  // not stored: cannot fail
    };
    absl::StatusOr<runtime::SensitivityReport> measured =
        runtime::MeasureSensitivity(*loaded, *calibration, sensitivity_options);
    if (!measured.ok()) return measured.status();
    sensitivity = *std::move(measured);
    absl::Status s = state_.PutSensitivity(model_record->sha256, calibration->hash, sensitivity_key,
                                           ToProto(sensitivity).SerializeAsString());
    if (!s.ok()) common::LogWarning("search {}: sensitivities not cached: {}", record.id, s.ToString());
  }
  if (live.cancel) return absl::CancelledError("cancelled");

  absl::StatusOr<search::OptionGrid> grid = GridOf(spec.option_space());
  if (!grid.ok()) return grid.status();
  std::vector<search::Objective> objectives;
  for (int o : spec.objectives()) objectives.push_back(*ObjectiveOf(o));
  const bool exact =
      spec.strategy() == v1::STRATEGY_EXACT ||
      (spec.strategy() == v1::STRATEGY_AUTO &&
       std::find(objectives.begin(), objectives.end(), search::Objective::kPeakMemory) == objectives.end());
  const absl::Time deadline = absl::Now() + absl::Seconds(spec.time_budget_seconds());
  job.clear_fronts();
  const int devices = spec.device_ids_size();
  std::map<std::string, search::ErrorProbe> probe_errors;  // export plan -> what it measured, for every device
  for (int d = 0; d < devices; ++d) {
    const double base = 0.5 + 0.5 * d / devices, span = 0.5 / devices;
    job.set_phase(v1::PHASE_BUILDING_TABLE);
    job.set_fraction(base);
    Publish(record, job, true).IgnoreError();  // logged by Publish
    absl::StatusOr<dp::Device> device = profiles_.GetDevice(spec.device_ids(d));
    if (!device.ok()) return device.status();
    std::vector<std::string> host_notes;
    absl::StatusOr<std::vector<dp::LatencySample>> samples = profiles_.GetSamples(device->id, device->version);
    if (!samples.ok()) return samples.status();
    absl::StatusOr<std::unique_ptr<dp::DeviceCostModel>> cost = dp::DeviceCostModel::Create(*device, *samples);
    if (!cost.ok()) return cost.status();
    search::ProblemInputs problem_inputs;
    problem_inputs.model = &*loaded;
    problem_inputs.device = &*device;
    problem_inputs.cost_model = cost->get();
    problem_inputs.sensitivity = &sensitivity;
    problem_inputs.grid = *grid;
    problem_inputs.threads = options_.threads;
    problem_inputs.cancelled = &live.cancel;
    problem_inputs.model_sha256 = model_record->sha256;
    absl::StatusOr<std::vector<dp::ModelLatency>> model_latencies =
        profiles_.GetModelLatencies(device->id, device->version);
    if (!model_latencies.ok()) return model_latencies.status();
    problem_inputs.model_latencies = *std::move(model_latencies);
    if (device->id == kHostDevice && options_.host_model_time_s > 0 &&
        std::none_of(problem_inputs.model_latencies.begin(), problem_inputs.model_latencies.end(),
                     [&](const dp::ModelLatency& m) { return m.model_sha256 == model_record->sha256; })) {
      // This machine, and its profile never timed the model: time it here first, so the
      // predictions calibrate to it as on a device profiled with the model.
      absl::StatusOr<std::vector<dp::ModelLatency>> here = MeasureModelHere(
          *bytes, model_record->name, model_record->sha256, calibration->samples.front(), std::max(1, device->threads),
          search::ChannelAlignment(*device), options_.host_model_time_s,
          [&](double f) {
            job.set_fraction(base + span * 0.15 * f);
            Publish(record, job, false).IgnoreError();  // not stored: cannot fail
          },
          &host_notes);
      if (live.cancel) return absl::CancelledError("cancelled");
      if (here.ok()) {
        problem_inputs.model_latencies.insert(problem_inputs.model_latencies.end(), here->begin(), here->end());
      } else {
        host_notes.push_back(absl::StrCat("the model could not be timed on this machine before the search (",
                                          here.status().message(), "), so its predictions rest on the samples alone"));
      }
    }
    absl::StatusOr<search::Problem> problem = search::BuildProblem(problem_inputs);
    if (!problem.ok()) return problem.status();
    std::vector<std::string> error_notes;
    // Exports of this device's plans, for the error check and the picks on host.
    const ExportRun exports{&*loaded,         *bytes,
                            &*calibration,    &*problem,
                            options_.threads, options_.shape_probe,
                            &live.cancel,     OutputWeightsOf(spec)};

    job.set_phase(v1::PHASE_SEARCHING);
    job.set_fraction(base + 0.2 * span);
    Publish(record, job, true).IgnoreError();  // logged by Publish
    search::SearchSpec engine_spec;
    engine_spec.objectives = objectives;
    engine_spec.constraints = LimitsOf(spec.constraints(), *device);
    engine_spec.max_candidates = static_cast<size_t>(spec.max_candidates());
    search::RunControl control;
    control.cancel = &live.cancel;
    control.deadline = deadline;
    v1::DeviceFront* out = job.add_fronts();
    out->set_device_id(device->id);
    out->set_device_version(device->version);
    // On this machine the last tenth of the device's share is measuring its picks.
    const double search_share = device->id == kHostDevice ? 0.7 : 0.8;
    control.on_progress = [&](const search::Progress& p) {
      job.set_fraction(base + span * (0.2 + search_share * p.fraction));
      if (p.best_so_far != nullptr) *out = ToProto(*problem, *p.best_so_far, device->id, device->version, false);
      Publish(record, job, false).IgnoreError();  // not stored: cannot fail
    };
    auto run_search = [&](absl::Duration budget, const search::RunControl& run) -> absl::StatusOr<search::Front> {
      if (exact) {
        absl::StatusOr<search::Front> f = search::SolveExact(problem->table, engine_spec, {}, run);
        // The DP plans integer layers at their conversions' bound; chains of them are found here.
        if (!f.ok()) return f;
        search::PolishOptions polish;
        polish.seed = spec.seed();
        return search::Polish(problem->table, engine_spec, *std::move(f), polish, run);
      }
      search::Nsga2Options nsga2;
      nsga2.seed = spec.seed();
      nsga2.time_budget = std::max(absl::Seconds(1), budget);
      return search::SolveNsga2(problem->table, engine_spec, nsga2, run);
    };
    // With the errors checked after it, NSGA-II's first run takes half the time; runs on the scaled
    // table share the rest.
    absl::StatusOr<search::Front> front =
        run_search(options_.measure_error ? (deadline - absl::Now()) / 2 : deadline - absl::Now(), control);
    if (!front.ok()) return front.status();
    if (live.cancel) return absl::CancelledError("cancelled");
    if (options_.measure_error) {
      // Predicted = measured for the error too: candidates near the floor exported and run, the
      // table's errors scaled to them and the search run again (search::CheckErrors).
      const std::optional<double> max_error = engine_spec.constraints.max_error;
      const double floor = max_error && *max_error > 0 ? search::SqnrDb(*max_error) : kDefaultMinSqnrDb;
      search::RunControl quiet = control;  // a rerun's progress does not move the job's backwards
      quiet.on_progress = nullptr;
      auto measure = [&](const std::vector<search::Candidate>& candidates) {
        job.set_phase(v1::PHASE_VERIFYING);
        Publish(record, job, true).IgnoreError();  // logged by Publish
        return MeasureErrorProbes(exports, candidates, &probe_errors);
      };
      auto rerun = [&](int round, double floor_sqnr_db) {
        job.set_phase(v1::PHASE_SEARCHING);
        Publish(record, job, true).IgnoreError();  // logged by Publish
        // A task floor a probe missed raises the SQNR floor for this device's front.
        engine_spec.constraints.max_error = search::ErrorOfSqnrDb(floor_sqnr_db);
        return run_search(round == 0 ? (deadline - absl::Now()) / 2 : deadline - absl::Now(), quiet);
      };
      absl::StatusOr<search::ErrorCheck> checked =
          search::CheckErrors(floor, TaskFloorsOf(spec.constraints()), measure, rerun, &*problem, &*front);
      if (live.cancel) return absl::CancelledError("cancelled");
      if (!checked.ok()) return checked.status();
      if (!checked->measurement.ok()) {
        error_notes.push_back(absl::StrCat(
            "the predicted errors rest on the per-layer sensitivities",
            checked->factors.empty() ? " alone: " : " and what was measured before: ", checked->measurement.message()));
      }
    }
    *out = ToProto(*problem, *front, device->id, device->version, true);
    out->set_constraints_met(!front->candidates.empty());
    if (front->candidates.empty()) {
      // Say which limit binds, and offer the closest candidates of the unconstrained front.
      search::SearchSpec free_spec = engine_spec;
      free_spec.constraints = {};
      free_spec.max_candidates = 200;
      absl::StatusOr<search::Front> free =
          exact ? search::SolveExact(problem->table, free_spec) : search::SolveNsga2(problem->table, free_spec);
      if (free.ok()) {
        out->set_binding_constraint(BindingConstraint(*free, engine_spec.constraints));
        const v1::DeviceFront closest =
            ToProto(*problem, ClosestCandidates(*free, engine_spec.constraints, 3), device->id, device->version, true);
        *out->mutable_candidates() = closest.candidates();
      }
    }
    // Where the device's flavour has no fp16 compute, the fp16 reference is fp16 weights.
    const bool fp16_compute = search::UniformChoice(*problem, 16, 16).has_value();
    for (const auto& [w, a, name] :
         {std::make_tuple(32, 32, "fp32"),
          fp16_compute ? std::make_tuple(16, 16, "uniform fp16") : std::make_tuple(16, 32, "uniform fp16 weights"),
          std::make_tuple(8, 8, "uniform int8")}) {
      std::optional<search::Choice> choice = search::UniformChoice(*problem, w, a);
      if (!choice) continue;
      absl::StatusOr<search::ObjectiveValues> values = search::Evaluate(problem->table, *choice);
      if (!values.ok()) continue;
      v1::Candidate baseline = ToProto(*problem, search::Candidate{*choice, *values}, false);
      baseline.add_tags(name);
      baseline.add_tags(BaselineVerdict(baseline, *out, spec.constraints()));
      *out->add_baselines() = std::move(baseline);
    }
    if (device->id == kHostDevice && out->candidates_size() > 0) {
      // This machine: the picks are measured before they are named.
      job.set_phase(v1::PHASE_VERIFYING);
      Publish(record, job, true).IgnoreError();  // logged by Publish
      MeasurePicksInputs measure;
      measure.run = exports;
      measure.run.threads = std::max(1, device->threads);  // timed as the profile's runs were
      measure.constraints = spec.constraints();
      measure.app_budget_bytes = device->app_memory_budget_bytes;
      measure.on_progress = [&](double f) {
        job.set_fraction(base + span * (0.9 + 0.1 * f));
        Publish(record, job, false).IgnoreError();  // not stored: cannot fail
      };
      if (absl::Status measured = MeasurePicks(measure, out); !measured.ok()) {
        if (live.cancel) return absl::CancelledError("cancelled");
        out->add_warnings(absl::StrCat("the picks could not be measured on this machine, so they rest on predictions: ",
                                       measured.message()));
      }
    }
    for (const std::string& w : problem->warnings) out->add_warnings(w);
    for (const std::string& w : host_notes) out->add_warnings(w);
    for (const std::string& w : error_notes) out->add_warnings(w);
    out->set_error_calibration(problem->error_calibration);
    out->set_error_outputs(sensitivity.weighted_over);
    out->set_latency_basis(LatencyBasisSummary(*problem, *out));
    out->set_search_seconds(front->stats.seconds);
    job.set_fraction(base + span);
    Publish(record, job, true).IgnoreError();  // logged by Publish
  }
  return absl::OkStatus();
}

namespace {

// A stored front answers a request when its limits keep every candidate the request would keep.
bool NoStricter(const v1::Constraints& stored, const v1::Constraints& wanted) {
  auto covers = [](double stored_limit, double wanted_limit) {
    return stored_limit == 0 || (wanted_limit > 0 && stored_limit >= wanted_limit);
  };
  const double stored_sqnr = stored.min_sqnr_db(), wanted_sqnr = wanted.min_sqnr_db();
  return covers(stored.max_latency_ms(), wanted.max_latency_ms()) &&
         covers(static_cast<double>(stored.max_model_bytes()), static_cast<double>(wanted.max_model_bytes())) &&
         covers(static_cast<double>(stored.max_peak_memory_bytes()),
                static_cast<double>(wanted.max_peak_memory_bytes())) &&
         !stored.peak_memory_within_app_budget() && stored_sqnr <= std::max(wanted_sqnr, kDefaultMinSqnrDb) &&
         // A task floor shapes the front through the error check: only the same floors answer.
         stored.min_top1_agreement() == wanted.min_top1_agreement() &&
         stored.min_argmax_agreement() == wanted.min_argmax_agreement() &&
         stored.min_mask_iou() == wanted.min_mask_iou();
}

v1::RecommendResponse Answer(const v1::SearchJob& job, const std::string& device_id, const v1::Constraints& limits,
                             int64_t app_budget, bool stored) {
  v1::RecommendResponse response;
  response.set_search_id(job.id());
  response.set_from_stored_front(stored);
  response.set_synthetic_calibration(job.synthetic_calibration());
  for (const v1::DeviceFront& front : job.fronts()) {
    if (front.device_id() != device_id) continue;
    for (v1::Recommendation& r : Recommend(front, limits, app_budget)) *response.add_recommendations() = std::move(r);
    response.set_constraints_met(response.recommendations_size() > 0);
    if (!response.constraints_met()) {
      response.set_binding_constraint(front.binding_constraint().empty() ? "no stored candidate meets the limits"
                                                                         : front.binding_constraint());
      // The closest candidates, so the answer is never empty.
      for (const v1::Candidate& c : front.candidates()) {
        v1::Recommendation* r = response.add_recommendations();
        r->set_name("closest");
        r->set_why("nearest to meeting the limits");
        *r->mutable_candidate() = c;
        if (response.recommendations_size() >= 3) break;
      }
    }
  }
  return response;
}

}  // namespace

void SearchJobs::Recommend(const std::string& team, const v1::RecommendRequest& request, RecommendDone done) {
  // Checked before a stored front can answer, as a search started for it would be.
  if (absl::Status s = ValidateRecommendRequest(request); !s.ok()) return done(s);
  absl::StatusOr<ModelRecord> model = state_.GetModel(team, request.model_id());
  if (!model.ok()) return done(model.status());
  absl::StatusOr<dp::Device> device = profiles_.GetDevice(request.device_id());
  if (!device.ok()) return done(device.status());
  v1::Constraints limits = request.constraints();
  if (limits.min_sqnr_db() == 0) limits.set_min_sqnr_db(kDefaultMinSqnrDb);

  // A stored front that covers the request.
  absl::StatusOr<std::vector<JobRecord>> jobs = state_.ListJobs(team, 200);
  if (!jobs.ok()) return done(jobs.status());
  const std::string wanted_space = request.option_space().SerializeAsString();
  const std::map<std::string, double> wanted_outputs(request.output_weights().begin(), request.output_weights().end());
  for (const JobRecord& record : *jobs) {
    if (record.state != v1::JOB_STATE_SUCCEEDED || record.model_id != request.model_id()) continue;
    const v1::SearchJob job = JobOf(record);
    if (job.spec().option_space().SerializeAsString() != wanted_space) continue;
    if (OutputWeightsOf(job.spec()) != wanted_outputs) continue;
    if (!NoStricter(job.spec().constraints(), limits)) continue;
    for (const v1::DeviceFront& front : job.fronts()) {
      if (front.device_id() != device->id || front.device_version() != device->version) continue;
      v1::RecommendResponse answer = Answer(job, device->id, limits, device->app_memory_budget_bytes, true);
      if (answer.constraints_met()) return done(answer);
    }
  }

  // Otherwise a search now.
  v1::SearchSpec spec;
  spec.set_model_id(request.model_id());
  spec.add_device_ids(request.device_id());
  *spec.mutable_constraints() = limits;
  *spec.mutable_option_space() = request.option_space();
  *spec.mutable_output_weights() = request.output_weights();
  spec.set_time_budget_seconds(request.time_budget_seconds() > 0 ? request.time_budget_seconds()
                                                                 : kRecommendTimeBudgetS);
  absl::StatusOr<v1::SearchJob> started = Start(team, spec);
  if (!started.ok()) return done(started.status());
  struct Pending {
    absl::Mutex mutex;
    bool answered = false;
  };
  auto pending = std::make_shared<Pending>();
  const int64_t budget = device->app_memory_budget_bytes;
  const std::string device_id = device->id;
  auto on_update = [this, pending, done, limits, budget, device_id](const v1::SearchJob& job) {
    if (job.state() < v1::JOB_STATE_SUCCEEDED) return;
    {
      absl::MutexLock lock(&pending->mutex);
      if (pending->answered) return;
      pending->answered = true;
    }
    if (job.state() == v1::JOB_STATE_SUCCEEDED) {
      done(Answer(job, device_id, limits, budget, false));
    } else {
      done(absl::AbortedError(
          absl::StrCat("search ", job.id(), " ended ",
                       job.state() == v1::JOB_STATE_CANCELLED ? "cancelled" : "failed: " + job.error())));
    }
  };
  auto on_stop = [pending, done, id = started->id()] {
    {
      absl::MutexLock lock(&pending->mutex);
      if (pending->answered) return;
      pending->answered = true;
    }
    done(absl::UnavailableError(absl::StrCat("the server is shutting down; search ", id,
                                             " stays queued and runs again when it is back: ask again then")));
  };
  absl::StatusOr<int64_t> handle = Watch(team, started->id(), on_update, on_stop);
  if (!handle.ok()) return done(handle.status());
  // Answered already (the job was cached or finished): stop watching; otherwise the job's end
  // removes the watcher (see Run).
  bool answered;
  {
    absl::MutexLock lock(&pending->mutex);
    answered = pending->answered;
  }
  if (answered) Unwatch(*handle);
}

}  // namespace squeeze::server
