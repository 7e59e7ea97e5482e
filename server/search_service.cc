#include "server/search_service.h"

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/caller.h"
#include "server/status.h"

namespace squeeze::server {
namespace {

bool Final(const v1::SearchJob& job) { return job.state() >= v1::JOB_STATE_SUCCEEDED; }

template <typename Response>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, absl::StatusOr<Response> result,
                                 Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

// The caller's team, or the call answered with why there is none.
#define SQUEEZE_TEAM_OR_FINISH(team, context)                       \
  absl::StatusOr<std::string> team = CallerTeam(*(context));        \
  if (!team.ok()) {                                                 \
    grpc::ServerUnaryReactor* failed = (context)->DefaultReactor(); \
    failed->Finish(ToGrpcStatus(team.status()));                    \
    return failed;                                                  \
  }

}  // namespace

// Streams the newest snapshot of a job: while a write is in flight, later snapshots replace each
// other, so a slow client sees fewer updates but always the latest, and always the final one.
class SearchService::WatchReactor final : public grpc::ServerWriteReactor<v1::SearchJob> {
 public:
  WatchReactor(SearchJobs& jobs, const absl::StatusOr<std::string>& team, const std::string& id) : jobs_(jobs) {
    // The watcher may outlive this reactor by a moment (a job thread calling it while the call
    // ends), so it reaches the reactor through a link that OnDone cuts.
    link_ = std::make_shared<Link>();
    link_->reactor = this;
    if (!team.ok()) {
      absl::MutexLock lock(&link_->mutex);
      finished_ = true;
      Finish(ToGrpcStatus(team.status()));
      return;
    }
    std::shared_ptr<Link> link = link_;
    absl::StatusOr<int64_t> handle = jobs_.Watch(
        *team, id,
        [link](const v1::SearchJob& job) {
          absl::MutexLock lock(&link->mutex);
          if (link->reactor != nullptr) link->reactor->Offer(job);
        },
        [link] {
          absl::MutexLock lock(&link->mutex);
          if (link->reactor != nullptr) link->reactor->ServerStopping();
        });
    if (!handle.ok()) {
      absl::MutexLock lock(&link_->mutex);
      finished_ = true;
      Finish(ToGrpcStatus(handle.status()));
      return;
    }
    absl::MutexLock lock(&link_->mutex);
    handle_ = *handle;
    constructed_ = true;
    // The job may have ended (and its last snapshot been written), or the server begun to stop,
    // before Watch returned.
    if (finish_deferred_) FinishOnce(deferred_status_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&link_->mutex);
    writing_ = false;
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped watching"));
      return;
    }
    if (stop_requested_) {
      FinishOnce(StoppingStatus());
      return;
    }
    if (has_pending_) {
      WriteLocked();
    } else if (Final(current_)) {
      // Finishing ends the call and frees this reactor: not before the constructor is done.
      if (constructed_) {
        FinishOnce(grpc::Status::OK);
      } else {
        finish_deferred_ = true;
      }
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&link_->mutex);
    if (!writing_) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&link_->mutex);
      link_->reactor = nullptr;
    }
    if (handle_ != 0) jobs_.Unwatch(handle_);
    delete this;
  }

 private:
  struct Link {
    absl::Mutex mutex;
    WatchReactor* reactor = nullptr;
  };

  static grpc::Status StoppingStatus() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the server is shutting down; the search stays queued and runs again when it is back: "
                        "watch it again then");
  }

  // The server stops before the job ends: the call ends now with UNAVAILABLE. Called with
  // link_->mutex held.
  void ServerStopping() {
    if (finished_) return;
    if (!constructed_) {
      finish_deferred_ = true;
      deferred_status_ = StoppingStatus();
    } else if (writing_) {
      stop_requested_ = true;  // finished when the write in flight is done
    } else {
      FinishOnce(StoppingStatus());
    }
  }

  // Called with link_->mutex held.
  void Offer(const v1::SearchJob& job) {
    if (finished_) return;
    pending_ = job;
    has_pending_ = true;
    if (!writing_) WriteLocked();
  }

  void WriteLocked() {
    current_ = std::move(pending_);
    has_pending_ = false;
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishOnce(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  SearchJobs& jobs_;
  std::shared_ptr<Link> link_;
  int64_t handle_ = 0;
  v1::SearchJob current_;
  v1::SearchJob pending_;
  bool has_pending_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool constructed_ = false;
  bool finish_deferred_ = false;
  grpc::Status deferred_status_;  // OK: the job ended
  bool stop_requested_ = false;
};

grpc::ServerUnaryReactor* SearchService::StartSearch(grpc::CallbackServerContext* context,
                                                     const v1::SearchSpec* request, v1::SearchJob* response) {
  SQUEEZE_TEAM_OR_FINISH(team, context);
  return Answer(context, jobs_.Start(*team, *request), response);
}

grpc::ServerWriteReactor<v1::SearchJob>* SearchService::WatchSearch(grpc::CallbackServerContext* context,
                                                                    const v1::WatchSearchRequest* request) {
  return new WatchReactor(jobs_, CallerTeam(*context), request->id());
}

grpc::ServerUnaryReactor* SearchService::GetSearch(grpc::CallbackServerContext* context,
                                                   const v1::GetSearchRequest* request, v1::SearchJob* response) {
  SQUEEZE_TEAM_OR_FINISH(team, context);
  absl::StatusOr<v1::SearchJob> job = jobs_.Get(*team, request->id());
  if (job.ok() && exports_ != nullptr) {
    if (absl::Status s = exports_->AttachMeasurements(*team, &*job); !s.ok()) job = s;
  }
  return Answer(context, std::move(job), response);
}

grpc::ServerUnaryReactor* SearchService::ListSearches(grpc::CallbackServerContext* context,
                                                      const v1::ListSearchesRequest* request,
                                                      v1::ListSearchesResponse* response) {
  SQUEEZE_TEAM_OR_FINISH(team, context);
  absl::StatusOr<std::vector<v1::SearchJob>> jobs = jobs_.List(*team, request->limit());
  absl::StatusOr<v1::ListSearchesResponse> out;
  if (jobs.ok()) {
    v1::ListSearchesResponse list;
    for (v1::SearchJob& job : *jobs) *list.add_jobs() = std::move(job);
    out = std::move(list);
  } else {
    out = jobs.status();
  }
  return Answer(context, std::move(out), response);
}

grpc::ServerUnaryReactor* SearchService::CancelSearch(grpc::CallbackServerContext* context,
                                                      const v1::CancelSearchRequest* request, v1::SearchJob* response) {
  SQUEEZE_TEAM_OR_FINISH(team, context);
  return Answer(context, jobs_.Cancel(*team, request->id()), response);
}

grpc::ServerUnaryReactor* SearchService::Recommend(grpc::CallbackServerContext* context,
                                                   const v1::RecommendRequest* request,
                                                   v1::RecommendResponse* response) {
  SQUEEZE_TEAM_OR_FINISH(team, context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Answered now from a stored front, or later from the job thread that finishes a new search.
  recommender_.Recommend(*team, *request, [reactor, response](absl::StatusOr<v1::RecommendResponse> result) {
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

}  // namespace squeeze::server
