#include "server/search_jobs.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "model/output_weights.h"
#include "server/proto_conversion.h"
#include "server/search_spec.h"

namespace squeeze::server {
namespace {

namespace dp = device_profiles;

constexpr int kDefaultListLimit = 50;
// A search that was running when the process died this many times is failed, not run again.
constexpr int kMaxCrashedAttempts = 2;

bool Final(int state) { return state >= v1::JOB_STATE_SUCCEEDED; }

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
  hash.Update(kSearchMethod);  // a front of an older method answers no new search
  hash.Update("|");
  hash.Update(model_sha256);
  for (const auto& [id, version] : devices) hash.Update(absl::StrCat("|", id, "@", version));
  hash.Update("|");
  hash.Update(bytes);
  return hash.HexDigest();
}

SearchJobs::SearchJobs(StateStore& state, dp::ProfileStore& profiles, FairQueue& queue, SearchJobsOptions options,
                       SearchRunner runner)
    : state_(state), profiles_(profiles), queue_(queue), options_(std::move(options)), runner_(std::move(runner)) {
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
    v1::SearchJob job = ToProto(*record);
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
      v1::SearchJob job = ToProto(record);
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
    v1::SearchJob result = ToProto(**cached);
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
  v1::SearchJob job = ToProto(*record);
  AddPlace(&job);
  return job;
}

absl::StatusOr<std::vector<v1::SearchJob>> SearchJobs::List(const std::string& team, int limit) {
  absl::StatusOr<std::vector<JobRecord>> records = state_.ListJobs(team, limit > 0 ? limit : kDefaultListLimit);
  if (!records.ok()) return records.status();
  std::vector<v1::SearchJob> jobs;
  for (const JobRecord& r : *records) {
    v1::SearchJob job = ToProto(r);
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
  if (Final(record->state)) return ToProto(*record);
  if (queue_.Remove(id)) {  // still waiting: it never runs
    v1::SearchJob job = ToProto(*record);
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
  int64_t handle;
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; watch the search again when it is back");
    handle = next_watcher_++;
    watchers_[handle] = WatcherEntry{team, id, watcher, std::move(on_stop)};
  }
  // Read once registered: a state the job stores from now on reaches the watcher too, so a job
  // waiting in a state stored before this read is not seen stuck in an older one.
  absl::StatusOr<v1::SearchJob> job = Get(team, id);
  if (!job.ok()) {
    Unwatch(handle);
    return job.status();
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
    // How many synthetic samples were drawn (uploaded ones are counted from the spec).
    if (job.synthetic_calibration()) result.set_calibration_samples(job.calibration_samples());
    result.set_from_cache(job.from_cache());
    result.set_method(job.method());
    *result.mutable_phase_times() = job.phase_times();
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
    if (reread.ok()) snapshot = ToProto(*reread);
  }
  for (const Watcher& w : to_call) w(snapshot);
  return stored;
}

std::shared_ptr<SearchJobs::Live> SearchJobs::Claim(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = live_.find(id);
  if (it != live_.end() && it->second->cancel) {
    live_.erase(it);  // cancelled while queued; already stored as cancelled
    return nullptr;
  }
  if (stopping_) return nullptr;  // stays queued for the next start
  auto live = std::make_shared<Live>();
  live_[id] = live;
  return live;
}

void SearchJobs::Run(JobRecord record) {
  const std::shared_ptr<Live> live = Claim(record.id);
  if (live == nullptr) return;
  v1::SearchJob job = ToProto(record);
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_phase(v1::PHASE_ANALYZING);
  job.set_method(std::string(kSearchMethod));
  ++record.attempts;                         // stored with the running state; a clean end or shutdown takes it back
  Publish(record, job, true).IgnoreError();  // logged by Publish
  const auto start = absl::Now();
  RunningSearch running{record, job, [&](bool persist) { Publish(record, job, persist).IgnoreError(); }, live->cancel};
  const absl::Status status = runner_(running);  // Publish logs what it cannot store
  Conclude(record, job, *live, status);
  if (job.state() == v1::JOB_STATE_SUCCEEDED) {
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

void SearchJobs::Conclude(JobRecord& record, v1::SearchJob& job, const Live& live, const absl::Status& status) {
  if (live.shutting_down) {
    --record.attempts;  // interrupted by a clean shutdown, not a crash
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_phase(v1::PHASE_QUEUED);
    job.set_fraction(0);
    job.clear_fronts();
  } else if (live.cancel) {
    job.set_state(v1::JOB_STATE_CANCELLED);
    job.set_error("cancelled");
  } else if (!status.ok()) {
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(status.ToString());
    job.clear_fronts();
    common::LogWarning("search {} failed: {}", record.id, status.ToString());
  } else {
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    job.set_phase(v1::PHASE_DONE);
    job.set_fraction(1);
    absl::Status stored = Publish(record, job, true);
    if (stored.ok()) return;
    // Nothing is reported done that is not stored: the job ends failed, saying why.
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(absl::StrCat("the search finished but its result could not be stored: ", stored.message()));
    job.clear_fronts();
  }
  Publish(record, job, true).IgnoreError();  // logged by Publish
}

}  // namespace squeeze::server
