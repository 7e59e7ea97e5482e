// FairQueue on a real WorkQueue: which search starts next (teams in turn, a team's own in order),
// the memory budget, and the places and waits it reports for queued searches.
#include "server/fair_queue.h"

#include <oneapi/tbb/global_control.h>

#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace squeeze::server {
namespace {

// oneTBB's pool has one thread fewer than the cores (a single one on 2 cores); the server raises
// it as squeezed does here, so that every slot of a WorkQueue gets a thread on any machine.
tbb::global_control ThreadsForSlots() { return tbb::global_control(tbb::global_control::max_allowed_parallelism, 4); }

// Jobs that record their start and run until released.
class Jobs {
 public:
  FairQueue::Job Make(const std::string& id, const std::string& team, int64_t memory = 0,
                      absl::Duration expected = absl::Seconds(60)) {
    FairQueue::Job job;
    job.id = id;
    job.team = team;
    job.memory_bytes = memory;
    job.expected = expected;
    auto* release = &releases_.emplace_back();
    job.run = [this, id, release] {
      {
        absl::MutexLock lock(&mutex_);
        started_.push_back(id);
      }
      release->WaitForNotification();
    };
    ids_.push_back(id);
    return job;
  }
  void Release(const std::string& id) {
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == id) releases_[i].Notify();
    }
  }
  // Waits until `n` jobs have started and returns them in start order.
  std::vector<std::string> Started(size_t n) {
    absl::MutexLock lock(&mutex_);
    wanted_ = n;
    mutex_.AwaitWithTimeout(absl::Condition(this, &Jobs::Enough), absl::Seconds(20));
    return started_;
  }
  void ReleaseAll() {
    for (auto& r : releases_) {
      if (!r.HasBeenNotified()) r.Notify();
    }
  }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return started_.size() >= wanted_; }

  absl::Mutex mutex_;
  std::vector<std::string> started_ ABSL_GUARDED_BY(mutex_);
  size_t wanted_ ABSL_GUARDED_BY(mutex_) = 0;
  std::deque<absl::Notification> releases_;
  std::vector<std::string> ids_;
};

TEST_CASE("Teams take the search slots in turn and a team's own searches run in order", "[fair_queue]") {
  const tbb::global_control threads = ThreadsForSlots();
  WorkQueue workers(2);
  Jobs jobs;
  {
    FairQueue queue(workers, 1, 0);
    queue.Submit(jobs.Make("a1", "alpha"));
    REQUIRE(jobs.Started(1) == std::vector<std::string>{"a1"});
    queue.Submit(jobs.Make("a2", "alpha"));
    queue.Submit(jobs.Make("a3", "alpha"));
    queue.Submit(jobs.Make("b1", "beta"));
    // beta has not started anything yet: it goes next, although alpha's two came first.
    CHECK(queue.PlaceOf("b1")->position == 1);
    CHECK(queue.PlaceOf("a2")->position == 2);
    CHECK(queue.PlaceOf("a3")->position == 3);
    CHECK_FALSE(queue.PlaceOf("a1").has_value());  // running, not queued
    jobs.Release("a1");
    CHECK(jobs.Started(2).back() == "b1");
    jobs.Release("b1");
    CHECK(jobs.Started(3).back() == "a2");
    jobs.Release("a2");
    CHECK(jobs.Started(4).back() == "a3");
    jobs.ReleaseAll();
    workers.Drain();
  }
  {
    // Two slots: while one team's long search runs, the other slot serves the rest at once.
    Jobs more;
    FairQueue queue(workers, 2, 0);
    queue.Submit(more.Make("big", "alpha"));
    queue.Submit(more.Make("small", "alpha"));
    CHECK(more.Started(2).size() == 2);
    CHECK(queue.counts().running == 2);
    queue.Submit(more.Make("b", "beta"));
    CHECK(queue.counts().queued == 1);
    // A queued search can be taken out: it never runs.
    CHECK(queue.Remove("b"));
    CHECK_FALSE(queue.Remove("b"));
    CHECK(queue.counts().queued == 0);
    more.ReleaseAll();
    workers.Drain();
  }
}

TEST_CASE("A search waits while its memory would pass the budget beside the running ones", "[fair_queue]") {
  const tbb::global_control threads = ThreadsForSlots();
  WorkQueue workers(2);
  Jobs jobs;
  FairQueue queue(workers, 2, 100);
  queue.Submit(jobs.Make("heavy", "alpha", 80));
  REQUIRE(jobs.Started(1).size() == 1);
  queue.Submit(jobs.Make("medium", "beta", 50));
  // A slot is free, but 80 + 50 passes 100: it waits.
  CHECK(queue.counts().running == 1);
  CHECK(queue.counts().queued == 1);
  CHECK(queue.counts().running_memory_bytes == 80);
  jobs.Release("heavy");
  CHECK(jobs.Started(2).back() == "medium");
  // Alone, a search over the whole budget still runs (one always does).
  queue.Submit(jobs.Make("huge", "gamma", 500));
  jobs.Release("medium");
  CHECK(jobs.Started(3).back() == "huge");
  jobs.ReleaseAll();
  workers.Drain();
}

TEST_CASE("A queued search's expected wait adds up the expected runs ahead of it", "[fair_queue]") {
  const tbb::global_control threads = ThreadsForSlots();
  WorkQueue workers(1);
  Jobs jobs;
  common::ManualClock clock;
  FairQueue queue(workers, 1, 0, clock);
  queue.Submit(jobs.Make("running", "alpha", 0, absl::Seconds(100)));
  REQUIRE(jobs.Started(1).size() == 1);
  queue.Submit(jobs.Make("next", "beta", 0, absl::Seconds(30)));
  queue.Submit(jobs.Make("after", "gamma", 0, absl::Seconds(10)));
  const FairQueue::Place next = *queue.PlaceOf("next");
  const FairQueue::Place after = *queue.PlaceOf("after");
  CHECK(next.position == 1);
  CHECK(after.position == 2);
  // Estimates from the expected run times: 100 s, then 100 + 30 s.
  CHECK(next.expected_wait == absl::Seconds(100));
  CHECK(after.expected_wait == absl::Seconds(130));
  // Time passing shortens them; a run that overstays its estimate leaves the next one due now.
  clock.Advance(absl::Seconds(40));
  CHECK(queue.PlaceOf("next")->expected_wait == absl::Seconds(60));
  CHECK(queue.PlaceOf("after")->expected_wait == absl::Seconds(90));
  clock.Advance(absl::Seconds(500));
  CHECK(queue.PlaceOf("next")->expected_wait == absl::ZeroDuration());
  CHECK(queue.PlaceOf("after")->expected_wait == absl::Seconds(30));
  jobs.ReleaseAll();
  workers.Drain();
}

}  // namespace
}  // namespace squeeze::server
