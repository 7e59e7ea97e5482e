// The time, as the job core reads it: the system's in the server, one a test sets and advances
// by hand in its tests — the clock half of an Env seam (LevelDB's Env), so time-dependent
// estimates are tested exactly rather than against the wall clock.
#ifndef SQUEEZE_COMMON_CLOCK_H_
#define SQUEEZE_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace squeeze::common {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // absl::Now(); lives for the whole process.
  static const Clock& System();
};

// A clock that stands still until told to move. Thread safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mutex_);
    return now_;
  }
  void Advance(absl::Duration by) {
    absl::MutexLock lock(&mutex_);
    now_ += by;
  }

 private:
  mutable absl::Mutex mutex_;
  absl::Time now_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace squeeze::common

#endif  // SQUEEZE_COMMON_CLOCK_H_
