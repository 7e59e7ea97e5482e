// The search job core without a server, for the tests of server/search_jobs.h and what is built on
// it: real state.db and device database files, a real FairQueue on a real WorkQueue, and runners
// that stand in for the pipeline (the seam SearchJobs takes): they succeed with a front, fail, wait
// for a cancel or block until released.
#ifndef SQUEEZE_TESTS_SERVER_JOB_FIXTURES_H_
#define SQUEEZE_TESTS_SERVER_JOB_FIXTURES_H_

#include <oneapi/tbb/global_control.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/search_jobs.h"
#include "server/work_queue.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::server::testing_jobs {

using squeeze::testing::TempDir;

inline constexpr char kTeam[] = "alpha";
inline constexpr char kDevice[] = "galaxy-s24";

// A runner's view of what happened, and the means to hold it.
struct Script {
  enum class Ends { kSucceeds, kFails, kWaitsForCancel, kWaitsForRelease };
  Ends ends = Ends::kSucceeds;
  int64_t device_version = 0;  // of the front it ends with
  absl::Notification release;
  absl::Mutex mutex;
  std::vector<std::string> ran;  // job ids, in start order
  int running = 0;

  SearchRunner Runner() {
    return [this](RunningSearch& run) -> absl::Status {
      {
        absl::MutexLock lock(&mutex);
        ran.push_back(run.record.id);
        ++running;
      }
      run.job.set_phase(v1::PHASE_SEARCHING);
      run.job.set_fraction(0.5);
      run.publish(true);
      absl::Status status = absl::OkStatus();
      if (ends == Ends::kWaitsForCancel) {
        while (!run.cancel) absl::SleepFor(absl::Milliseconds(2));
        status = absl::CancelledError("cancelled");
      } else if (ends == Ends::kWaitsForRelease) {
        while (!run.cancel && !release.HasBeenNotified()) absl::SleepFor(absl::Milliseconds(2));
        if (run.cancel) status = absl::CancelledError("cancelled");
      } else if (ends == Ends::kFails) {
        status = absl::FailedPreconditionError("the model does not run on its calibration inputs");
      }
      if (status.ok()) {
        // As the pipeline says it for a model of small outputs without calibration samples.
        run.job.set_synthetic_calibration(true);
        run.job.set_calibration_samples(8);
        v1::DeviceFront* front = run.job.add_fronts();
        front->set_device_id(kDevice);
        front->set_device_version(device_version);
        v1::Candidate* candidate = front->add_candidates();
        candidate->set_predicted_latency_ms(1.5);
        candidate->set_predicted_size_bytes(1000);
        candidate->set_predicted_sqnr_db(25);
      }
      absl::MutexLock lock(&mutex);
      --running;
      return status;
    };
  }
  size_t Ran() {
    absl::MutexLock lock(&mutex);
    return ran.size();
  }
  bool Running() {
    absl::MutexLock lock(&mutex);
    return running > 0;
  }
};

// The stores and queues a server holds, under one temporary directory that outlives restarts.
class Stores {
 public:
  Stores() : threads_(tbb::global_control::max_allowed_parallelism, 4) {
    OpenState();
    absl::StatusOr<std::unique_ptr<device_profiles::ProfileStore>> profiles =
        device_profiles::ProfileStore::Open(dir_.File("devices.db"));
    REQUIRE(profiles.ok());
    profiles_ = *std::move(profiles);
    ModelRecord model;
    model.team = kTeam;
    model.name = "tiny.onnx";
    model.sha256 = std::string(64, 'a');
    model.size_bytes = 1000;
    model.input_shapes = "x=1,3,8,8";
    absl::StatusOr<ModelRecord> stored = state_->InsertModel(model);
    REQUIRE(stored.ok());
    model_id_ = stored->id;
  }

  // Closes state.db and opens it again, as a restarted server does.
  void Reopen() {
    state_.reset();
    OpenState();
  }

  v1::SearchSpec Spec(uint64_t seed = 7) const {
    v1::SearchSpec spec;
    spec.set_model_id(model_id_);
    spec.add_device_ids(kDevice);
    spec.set_seed(seed);
    return spec;
  }

  StateStore& state() { return *state_; }
  device_profiles::ProfileStore& profiles() { return *profiles_; }

 private:
  void OpenState() {
    absl::StatusOr<std::unique_ptr<StateStore>> state = StateStore::Open(dir_.File("state.db"));
    REQUIRE(state.ok());
    state_ = *std::move(state);
  }

  tbb::global_control threads_;  // as squeezed raises it: a thread for every slot
  TempDir dir_;
  std::unique_ptr<StateStore> state_;
  std::unique_ptr<device_profiles::ProfileStore> profiles_;
  std::string model_id_;
};

// SearchJobs as the server wires it: a FairQueue on a WorkQueue with `slots` threads.
struct Jobs {
  Jobs(Stores& stores, Script& script, int slots = 1)
      : workers(slots), queue(workers, slots, 0), jobs(stores.state(), stores.profiles(), queue, {}, script.Runner()) {}
  // As the server stops: running jobs asked to stop, and what the workers hold finished, before
  // the lifecycle goes (a job's last steps run after its final state is stored).
  ~Jobs() {
    jobs.Stop();
    workers.Drain();
  }
  WorkQueue workers;
  FairQueue queue;
  SearchJobs jobs;
};

// Polls until the job is in `state` (or 10 s have passed) and returns it as stored.
inline v1::SearchJob AwaitState(SearchJobs& jobs, const std::string& id, v1::JobState state) {
  const absl::Time until = absl::Now() + absl::Seconds(10);
  absl::StatusOr<v1::SearchJob> job = jobs.Get(kTeam, id);
  while (job.ok() && job->state() != state && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(2));
    job = jobs.Get(kTeam, id);
  }
  REQUIRE(job.ok());
  return *job;
}

}  // namespace squeeze::server::testing_jobs

#endif  // SQUEEZE_TESTS_SERVER_JOB_FIXTURES_H_
