// SearchJobs: the lifecycle of search jobs, from start to stored result (DESIGN.md §1, §7).
//
// A job is validated and stored queued, waits in the FairQueue and runs on the WorkQueue, never on a gRPC thread: its
// runner (a SearchPipeline in the server, server/search_pipeline.h) does the work and reports progress, and the job
// ends succeeded, failed (with the reason), or cancelled. Every change of phase is persisted; a job queued or running
// when the process died is run again by Recover() with the same seed, so it ends with the same result, unless it was
// running at two such deaths (then it is failed, not run a third time). A search of the same model bytes, device
// profile versions and spec is answered from the stored result.
//
// Thread safe. Watchers are called from job threads; they must not block.
#ifndef SQUEEZE_SERVER_SEARCH_JOBS_H_
#define SQUEEZE_SERVER_SEARCH_JOBS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "device_profiles/profile_store.h"
#include "server/fair_queue.h"
#include "server/search_pipeline.h"
#include "server/state_store.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

struct SearchJobsOptions {
  double default_time_budget_s = 60;
  int max_candidates = 200;
  TeamQuota quota;  // concurrent searches and searches per hour, per team
  // Called from the job thread for a succeeded job whose spec asks for verify_recommended.
  std::function<void(const std::string& team, const std::string& job_id)> verify_recommended;
};

class SearchJobs {
 public:
  using Watcher = std::function<void(const v1::SearchJob&)>;

  // `runner` does each job's work (SearchPipeline::Run in the server).
  SearchJobs(StateStore& state, device_profiles::ProfileStore& profiles, FairQueue& queue, SearchJobsOptions options,
             SearchRunner runner);
  // Asks running jobs to stop; they are left queued in state.db and run again on restart.
  ~SearchJobs();

  // Runs again every job left queued or running by a process that died.
  absl::Status Recover();

  // NotFound for another team's or an unknown model or device, InvalidArgument for a bad spec,
  // ResourceExhausted when the team is at a search quota.
  absl::StatusOr<v1::SearchJob> Start(const std::string& team, const v1::SearchSpec& spec);
  absl::StatusOr<v1::SearchJob> Get(const std::string& team, const std::string& id);
  absl::StatusOr<std::vector<v1::SearchJob>> List(const std::string& team, int limit);
  absl::StatusOr<v1::SearchJob> Cancel(const std::string& team, const std::string& id);

  // Calls `watcher` with the job now and after every change until it ends; returns a handle for
  // Unwatch. When the server stops first (the job stays queued for the next start), `on_stop` is
  // called once instead of a final snapshot. NotFound as Get; Unavailable once stopping.
  absl::StatusOr<int64_t> Watch(const std::string& team, const std::string& id, Watcher watcher,
                                std::function<void()> on_stop = nullptr);
  void Unwatch(int64_t handle);

  // Stops taking new jobs and asks running ones to stop (they stay queued for a restart).
  void Stop();

 private:
  struct Live {
    std::atomic<bool> cancel{false};
    std::atomic<bool> shutting_down{false};
  };

  void Run(JobRecord record);
  // The running job's cancel flags, registered; nullptr when it was cancelled while queued or the
  // server is stopping (it stays queued for the next start).
  std::shared_ptr<Live> Claim(const std::string& id);
  // Ends `job` as its run went (queued again at a clean shutdown, cancelled, failed with
  // `status`, or succeeded) and stores it; a success that cannot be stored ends failed.
  void Conclude(JobRecord& record, v1::SearchJob& job, const Live& live, const absl::Status& status);
  // Queues a stored job on the FairQueue with its estimated run time and memory.
  void Enqueue(const JobRecord& record);
  // A queued job's place in the queue, filled into `job`.
  void AddPlace(v1::SearchJob* job);
  static void SetPlace(const FairQueue::Place& place, v1::SearchJob* job);
  // Tells the watchers of queued jobs their new places.
  void NotifyQueued();
  // Persists `job`'s state into `record` and tells the watchers; returns whether it was stored (a
  // failure is logged here).
  absl::Status Publish(JobRecord& record, const v1::SearchJob& job, bool persist);

  StateStore& state_;
  device_profiles::ProfileStore& profiles_;
  FairQueue& queue_;
  const SearchJobsOptions options_;
  const SearchRunner runner_;

  absl::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::map<std::string, std::shared_ptr<Live>> live_ ABSL_GUARDED_BY(mutex_);
  struct WatcherEntry {
    std::string team;
    std::string job_id;
    Watcher watcher;
    std::function<void()> on_stop;
  };
  std::map<int64_t, WatcherEntry> watchers_ ABSL_GUARDED_BY(mutex_);
  int64_t next_watcher_ ABSL_GUARDED_BY(mutex_) = 1;
};

// The search method: a stored front from an older one (e.g. with fp16 compute options the export
// flavour does not realize, int8 options for ONNX Runtime's CoreML provider, errors pooled over
// outputs rather than weighed per output, TensorRT's activations priced as uint8, or sizes of
// weights at their bit-widths rather than as the file stores them, or errors measured on 2
// synthetic samples whatever the outputs' size, or token ids all 0, or block-wise weights rounded to
// nearest) answers no new search or
// recommendation. Change it whenever the same search would give other fronts.
inline constexpr absl::string_view kSearchMethod =
    "options=realized-4|errors=output-weighted|sizes=as-stored|synthetic=sized-to-outputs|token-ids=drawn|"
    "blocks=gptq";

// The cache key of a search: the method, model bytes, device profile versions, and the spec.
std::string SearchCacheKey(const std::string& model_sha256, const std::vector<std::pair<std::string, int64_t>>& devices,
                           const v1::SearchSpec& spec);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SEARCH_JOBS_H_
