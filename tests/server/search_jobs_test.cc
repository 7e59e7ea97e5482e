// The search job lifecycle (server/search_jobs.h) without a server (tests/server/job_fixtures.h):
// every state a job can reach, and what a restart does to it.
#include "server/search_jobs.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tests/server/job_fixtures.h"

namespace squeeze::server {
namespace {

using Catch::Matchers::Contains;
using testing_jobs::AwaitState;
using testing_jobs::Jobs;
using testing_jobs::kDevice;
using testing_jobs::kTeam;
using testing_jobs::Script;
using testing_jobs::Stores;

TEST_CASE("A search goes from queued to running to succeeded, and its watcher sees each state once stored",
          "[search-jobs]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kWaitsForRelease;
  Jobs jobs(stores, script);
  absl::StatusOr<v1::SearchJob> started = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(started.ok());
  // What the watcher saw, owned by the watcher too: a job thread may still be calling it after the
  // job's last state is stored (as the service's watchers, it holds what it writes to).
  struct Seen {
    absl::Mutex mutex;
    std::vector<v1::JobState> states;
  };
  auto seen = std::make_shared<Seen>();
  absl::StatusOr<int64_t> handle = jobs.jobs.Watch(kTeam, started->id(), [seen](const v1::SearchJob& job) {
    absl::MutexLock lock(&seen->mutex);
    if (seen->states.empty() || seen->states.back() != job.state()) seen->states.push_back(job.state());
  });
  REQUIRE(handle.ok());
  const v1::SearchJob running = AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_RUNNING);
  CHECK_FALSE(running.started_at().empty());
  CHECK(running.finished_at().empty());
  script.release.Notify();
  const v1::SearchJob done = AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_SUCCEEDED);
  CHECK(done.phase() == v1::PHASE_DONE);
  CHECK(done.fraction() == 1);
  REQUIRE(done.fronts_size() == 1);
  CHECK(done.fronts(0).candidates(0).predicted_latency_ms() == 1.5);
  CHECK_FALSE(done.finished_at().empty());
  jobs.workers.Drain();  // the job's last steps, its final call to the watcher among them
  absl::MutexLock lock(&seen->mutex);
  const std::vector<v1::JobState>& states = seen->states;
  REQUIRE_FALSE(states.empty());
  CHECK(states.front() != v1::JOB_STATE_SUCCEEDED);
  CHECK(states.back() == v1::JOB_STATE_SUCCEEDED);
  CHECK(std::find(states.begin(), states.end(), v1::JOB_STATE_RUNNING) != states.end());
}

TEST_CASE("A search whose runner fails ends failed with the reason and no front", "[search-jobs]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kFails;
  Jobs jobs(stores, script);
  absl::StatusOr<v1::SearchJob> started = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(started.ok());
  const v1::SearchJob failed = AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_FAILED);
  CHECK_THAT(failed.error(), Contains("does not run on its calibration inputs"));
  CHECK(failed.fronts_size() == 0);
  // A failed search is no stored result: the same spec runs again.
  absl::StatusOr<v1::SearchJob> again = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(again.ok());
  CHECK_FALSE(again->from_cache());
  AwaitState(jobs.jobs, again->id(), v1::JOB_STATE_FAILED);
  CHECK(script.Ran() == 2);
}

TEST_CASE("A running search that is cancelled ends cancelled, a queued one never runs", "[search-jobs]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kWaitsForCancel;
  Jobs jobs(stores, script, /*slots=*/1);
  absl::StatusOr<v1::SearchJob> first = jobs.jobs.Start(kTeam, stores.Spec(1));
  REQUIRE(first.ok());
  AwaitState(jobs.jobs, first->id(), v1::JOB_STATE_RUNNING);
  absl::StatusOr<v1::SearchJob> second = jobs.jobs.Start(kTeam, stores.Spec(2));
  REQUIRE(second.ok());
  CHECK(second->state() == v1::JOB_STATE_QUEUED);
  CHECK(second->queue_position() == 1);

  absl::StatusOr<v1::SearchJob> cancelled_queued = jobs.jobs.Cancel(kTeam, second->id());
  REQUIRE(cancelled_queued.ok());
  CHECK(cancelled_queued->state() == v1::JOB_STATE_CANCELLED);
  REQUIRE(jobs.jobs.Cancel(kTeam, first->id()).ok());
  const v1::SearchJob cancelled_running = AwaitState(jobs.jobs, first->id(), v1::JOB_STATE_CANCELLED);
  CHECK(cancelled_running.error() == "cancelled");
  // Cancelling a finished search changes nothing.
  absl::StatusOr<v1::SearchJob> again = jobs.jobs.Cancel(kTeam, first->id());
  REQUIRE(again.ok());
  CHECK(again->state() == v1::JOB_STATE_CANCELLED);
  CHECK(script.Ran() == 1);
}

TEST_CASE("A search interrupted by a clean shutdown is queued again and runs after the restart", "[search-jobs]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kWaitsForRelease;
  std::string id;
  {
    Jobs jobs(stores, script);
    absl::StatusOr<v1::SearchJob> started = jobs.jobs.Start(kTeam, stores.Spec());
    REQUIRE(started.ok());
    id = started->id();
    AwaitState(jobs.jobs, id, v1::JOB_STATE_RUNNING);
    jobs.jobs.Stop();
    while (script.Running()) absl::SleepFor(absl::Milliseconds(2));
  }
  stores.Reopen();
  absl::StatusOr<JobRecord> stored = stores.state().GetJob(kTeam, id);
  REQUIRE(stored.ok());
  CHECK(stored->state == v1::JOB_STATE_QUEUED);
  CHECK(stored->attempts == 0);  // a clean shutdown is no crash

  Script after;
  Jobs restarted(stores, after);
  REQUIRE(restarted.jobs.Recover().ok());
  const v1::SearchJob done = AwaitState(restarted.jobs, id, v1::JOB_STATE_SUCCEEDED);
  CHECK(done.fronts_size() == 1);
  CHECK(after.Ran() == 1);
}

TEST_CASE("A search that was running when the process died runs again once, and is failed after a second death",
          "[search-jobs]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kWaitsForRelease;
  Jobs jobs(stores, script);
  absl::StatusOr<v1::SearchJob> started = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(started.ok());
  AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_RUNNING);
  // What a process that died mid-run leaves: the row running, its attempt counted.
  absl::StatusOr<JobRecord> crashed = stores.state().GetJob(kTeam, started->id());
  REQUIRE(crashed.ok());
  CHECK(crashed->state == v1::JOB_STATE_RUNNING);
  CHECK(crashed->attempts == 1);
  script.release.Notify();
  AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_SUCCEEDED);

  SECTION("one death: run again") {
    REQUIRE(stores.state().UpdateJob(*crashed).ok());
    Script after;
    Jobs restarted(stores, after);
    REQUIRE(restarted.jobs.Recover().ok());
    AwaitState(restarted.jobs, started->id(), v1::JOB_STATE_SUCCEEDED);
    CHECK(after.Ran() == 1);
  }
  SECTION("two deaths: failed, saying why, never run a third time") {
    crashed->attempts = 2;
    REQUIRE(stores.state().UpdateJob(*crashed).ok());
    Script after;
    Jobs restarted(stores, after);
    REQUIRE(restarted.jobs.Recover().ok());
    const v1::SearchJob failed = AwaitState(restarted.jobs, started->id(), v1::JOB_STATE_FAILED);
    CHECK_THAT(failed.error(), Contains("running when the server died, 2 times"));
    CHECK(after.Ran() == 0);
  }
}

TEST_CASE("The same search again is answered from the stored result without running", "[search-jobs]") {
  Stores stores;
  Script script;
  Jobs jobs(stores, script);
  absl::StatusOr<v1::SearchJob> first = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(first.ok());
  // Stored with the method that made its fronts: a front of another method answers no recommendation.
  const v1::SearchJob done = AwaitState(jobs.jobs, first->id(), v1::JOB_STATE_SUCCEEDED);
  CHECK(done.method() == kSearchMethod);
  // So is how many synthetic samples its fidelity stands on.
  CHECK(done.synthetic_calibration());
  CHECK(done.calibration_samples() == 8);
  absl::StatusOr<v1::SearchJob> second = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(second.ok());
  CHECK(second->id() != first->id());
  CHECK(second->state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(second->from_cache());
  CHECK(second->fronts_size() == 1);
  CHECK(second->calibration_samples() == 8);
  CHECK(script.Ran() == 1);
  // Another seed is another search.
  absl::StatusOr<v1::SearchJob> third = jobs.jobs.Start(kTeam, stores.Spec(99));
  REQUIRE(third.ok());
  CHECK_FALSE(third->from_cache());
  AwaitState(jobs.jobs, third->id(), v1::JOB_STATE_SUCCEEDED);
  CHECK(script.Ran() == 2);
}

TEST_CASE("Another team sees none of a team's searches, and bad starts queue nothing", "[search-jobs]") {
  Stores stores;
  Script script;
  Jobs jobs(stores, script);
  absl::StatusOr<v1::SearchJob> started = jobs.jobs.Start(kTeam, stores.Spec());
  REQUIRE(started.ok());
  CHECK(jobs.jobs.Get("beta", started->id()).status().code() == absl::StatusCode::kNotFound);
  CHECK(jobs.jobs.Cancel("beta", started->id()).status().code() == absl::StatusCode::kNotFound);
  CHECK(jobs.jobs.Start("beta", stores.Spec()).status().code() == absl::StatusCode::kNotFound);  // not its model
  v1::SearchSpec unknown_device = stores.Spec();
  unknown_device.set_device_ids(0, "no-such-phone");
  CHECK(jobs.jobs.Start(kTeam, unknown_device).status().code() == absl::StatusCode::kNotFound);
  v1::SearchSpec bad = stores.Spec();
  bad.set_max_candidates(-1);
  CHECK(jobs.jobs.Start(kTeam, bad).status().code() == absl::StatusCode::kInvalidArgument);
  AwaitState(jobs.jobs, started->id(), v1::JOB_STATE_SUCCEEDED);
  absl::StatusOr<std::vector<v1::SearchJob>> listed = jobs.jobs.List(kTeam, 10);
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
  CHECK(script.Ran() == 1);
}

}  // namespace
}  // namespace squeeze::server
