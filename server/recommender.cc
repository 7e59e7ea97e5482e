#include "server/recommender.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/proto_conversion.h"
#include "server/recommend.h"
#include "server/search_spec.h"

namespace squeeze::server {

namespace dp = device_profiles;

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
         stored.min_top1_agreement() == wanted.min_top1_agreement() &&
         stored.min_argmax_agreement() == wanted.min_argmax_agreement() &&
         stored.min_mask_iou() == wanted.min_mask_iou() && stored.min_output_sqnr_db() == wanted.min_output_sqnr_db();
}

namespace {

// The picks of `job`'s front for `device_id` under `limits`; when none meets them, the binding
// constraint and the closest candidates, so the answer is never empty.
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
    if (response.constraints_met()) continue;
    response.set_binding_constraint(front.binding_constraint().empty() ? "no stored candidate meets the limits"
                                                                       : front.binding_constraint());
    for (const v1::Candidate& c : front.candidates()) {
      v1::Recommendation* r = response.add_recommendations();
      r->set_name("closest");
      r->set_why("nearest to meeting the limits");
      *r->mutable_candidate() = c;
      if (response.recommendations_size() >= 3) break;
    }
  }
  return response;
}

// The search a recommendation runs when no stored front answers it.
v1::SearchSpec SpecFor(const v1::RecommendRequest& request, const v1::Constraints& limits) {
  v1::SearchSpec spec;
  spec.set_model_id(request.model_id());
  spec.add_device_ids(request.device_id());
  *spec.mutable_constraints() = limits;
  *spec.mutable_option_space() = request.option_space();
  *spec.mutable_output_weights() = request.output_weights();
  spec.set_time_budget_seconds(request.time_budget_seconds() > 0 ? request.time_budget_seconds()
                                                                 : kRecommendTimeBudgetS);
  return spec;
}

// `done` called at most once, whichever of a search's end and the server's stop comes first.
class OnceDone {
 public:
  explicit OnceDone(Recommender::Done done) : done_(std::move(done)) {}
  void operator()(absl::StatusOr<v1::RecommendResponse> answer) {
    {
      absl::MutexLock lock(&mutex_);
      if (answered_) return;
      answered_ = true;
    }
    done_(std::move(answer));
  }
  bool answered() {
    absl::MutexLock lock(&mutex_);
    return answered_;
  }

 private:
  const Recommender::Done done_;
  absl::Mutex mutex_;
  bool answered_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace

void Recommender::Recommend(const std::string& team, const v1::RecommendRequest& request, Done done) {
  // Checked before a stored front can answer, as a search started for it would be.
  if (absl::Status s = ValidateRecommendRequest(request); !s.ok()) return done(s);
  absl::StatusOr<ModelRecord> model = state_.GetModel(team, request.model_id());
  if (!model.ok()) return done(model.status());
  absl::StatusOr<dp::Device> device = profiles_.GetDevice(request.device_id());
  if (!device.ok()) return done(device.status());
  v1::Constraints limits = request.constraints();
  if (limits.min_sqnr_db() == 0) limits.set_min_sqnr_db(kDefaultMinSqnrDb);

  absl::StatusOr<std::optional<v1::RecommendResponse>> stored = StoredAnswer(team, request, limits, *device);
  if (!stored.ok()) return done(stored.status());
  if (stored->has_value()) return done(**stored);
  SearchAndAnswer(team, request, limits, *device, std::move(done));
}

absl::StatusOr<std::optional<v1::RecommendResponse>> Recommender::StoredAnswer(const std::string& team,
                                                                               const v1::RecommendRequest& request,
                                                                               const v1::Constraints& limits,
                                                                               const dp::Device& device) {
  absl::StatusOr<std::vector<JobRecord>> jobs = state_.ListJobs(team, 200);
  if (!jobs.ok()) return jobs.status();
  const std::string wanted_space = request.option_space().SerializeAsString();
  const std::map<std::string, double> wanted_outputs(request.output_weights().begin(), request.output_weights().end());
  for (const JobRecord& record : *jobs) {
    if (record.state != v1::JOB_STATE_SUCCEEDED || record.model_id != request.model_id()) continue;
    const v1::SearchJob job = ToProto(record);
    if (job.method() != kSearchMethod) continue;  // predicted by an older method
    if (job.spec().option_space().SerializeAsString() != wanted_space) continue;
    if (OutputWeightsOf(job.spec()) != wanted_outputs) continue;
    if (!NoStricter(job.spec().constraints(), limits)) continue;
    for (const v1::DeviceFront& front : job.fronts()) {
      if (front.device_id() != device.id || front.device_version() != device.version) continue;
      v1::RecommendResponse answer = Answer(job, device.id, limits, device.app_memory_budget_bytes, true);
      if (answer.constraints_met()) return answer;
    }
  }
  return std::nullopt;
}

void Recommender::SearchAndAnswer(const std::string& team, const v1::RecommendRequest& request,
                                  const v1::Constraints& limits, const dp::Device& device, Done done) {
  absl::StatusOr<v1::SearchJob> started = jobs_.Start(team, SpecFor(request, limits));
  if (!started.ok()) return done(started.status());
  auto once = std::make_shared<OnceDone>(std::move(done));
  auto on_update = [once, limits, budget = device.app_memory_budget_bytes,
                    device_id = device.id](const v1::SearchJob& job) {
    if (job.state() < v1::JOB_STATE_SUCCEEDED) return;
    if (job.state() == v1::JOB_STATE_SUCCEEDED) return (*once)(Answer(job, device_id, limits, budget, false));
    (*once)(absl::AbortedError(
        absl::StrCat("search ", job.id(), " ended ",
                     job.state() == v1::JOB_STATE_CANCELLED ? "cancelled" : "failed: " + job.error())));
  };
  auto on_stop = [once, id = started->id()] {
    (*once)(absl::UnavailableError(absl::StrCat("the server is shutting down; search ", id,
                                                " stays queued and runs again when it is back: ask again then")));
  };
  absl::StatusOr<int64_t> handle = jobs_.Watch(team, started->id(), on_update, on_stop);
  if (!handle.ok()) return (*once)(handle.status());
  // Answered already (the search was cached or had finished): stop watching; otherwise the
  // search's end removes the watcher (SearchJobs::Run).
  if (once->answered()) jobs_.Unwatch(*handle);
}

}  // namespace squeeze::server
