// FairQueue: which search runs next, and when a queued one may expect to start.
//
// Searches wait here, not in oneTBB's FIFO, and are handed to the WorkQueue one per free slot:
// the next is the oldest search of the team with the fewest running, and between teams running
// as many, of the one that started a search least recently (teams share the slots in turn, so
// one team's long search never holds another team's back; a team's own searches run in order),
// and a search whose memory estimate does not fit beside the running ones waits for them unless
// nothing runs. A queued search's position and start time are estimated by playing the same
// rule forward over the running searches' expected ends (their time budgets).
//
// Thread safe.
#ifndef SQUEEZE_SERVER_FAIR_QUEUE_H_
#define SQUEEZE_SERVER_FAIR_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/work_queue.h"

namespace squeeze::server {

class FairQueue {
 public:
  struct Job {
    std::string id;
    std::string team;
    int64_t memory_bytes = 0;                     // estimated; 0 when unknown
    absl::Duration expected = absl::Seconds(60);  // estimated run time
    std::function<void()> run;
  };
  struct Place {
    int position = 0;              // 1 = next to start
    absl::Duration expected_wait;  // estimated from the expected run times ahead of it
  };
  struct Counts {
    int running = 0;
    int queued = 0;
    int64_t running_memory_bytes = 0;
  };

  // `slots` searches at once on `workers`; `memory_budget` bytes for all of them (0: no limit);
  // expected waits on `clock`.
  FairQueue(WorkQueue& workers, int slots, int64_t memory_budget, const common::Clock& clock = common::Clock::System())
      : workers_(workers), slots_(slots), memory_budget_(memory_budget), clock_(clock) {}

  void Submit(Job job);
  // Takes a queued job out; false when it is not queued (running, finished or unknown).
  bool Remove(const std::string& id);
  // Where a queued job stands; nullopt when it is not queued.
  std::optional<Place> PlaceOf(const std::string& id);
  Counts counts();
  // Called (from any thread, no lock held) whenever queued jobs' places may have changed.
  void set_on_change(std::function<void()> on_change);

 private:
  struct Running {
    std::string id, team;
    int64_t memory_bytes = 0;
    absl::Time expected_end;
  };
  // Starts every job the slots and the memory budget allow; returns whether any started.
  bool DispatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The index in queued_ of the job the rule picks next, given the teams' running counts and the
  // memory in use; -1 when none may start now.
  int PickLocked(const std::vector<Running>& running) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Finished(const std::string& id);
  // When the team last started a search (a count of starts), 0 for never.
  int64_t LastStartLocked(const std::string& team) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Changed();

  WorkQueue& workers_;
  const int slots_;
  const int64_t memory_budget_;
  const common::Clock& clock_;
  absl::Mutex mutex_;
  std::vector<Job> queued_ ABSL_GUARDED_BY(mutex_);  // in arrival order
  std::vector<Running> running_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, int64_t> last_start_ ABSL_GUARDED_BY(mutex_);
  int64_t starts_ ABSL_GUARDED_BY(mutex_) = 0;
  std::function<void()> on_change_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_FAIR_QUEUE_H_
