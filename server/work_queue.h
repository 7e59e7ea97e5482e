// WorkQueue: long work (analyses now, searches later) on a bounded oneTBB arena, off the gRPC
// threads. Submit never blocks; Drain waits until everything submitted has run. Thread safe.
#ifndef SQUEEZE_SERVER_WORK_QUEUE_H_
#define SQUEEZE_SERVER_WORK_QUEUE_H_

#include <oneapi/tbb/task_arena.h>

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace squeeze::server {

class WorkQueue {
 public:
  // No slot is reserved for an outside thread (oneTBB reserves one by default): enqueued work
  // gets all `threads`.
  explicit WorkQueue(int threads) : arena_(threads, /*reserved_for_masters=*/0) {}
  ~WorkQueue() { Drain(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Runs `work` on the arena as soon as a thread is free. `work` must not throw.
  void Submit(std::function<void()> work) {
    {
      absl::MutexLock lock(&mutex_);
      ++pending_;
    }
    arena_.enqueue([this, work = std::move(work)] {
      work();
      absl::MutexLock lock(&mutex_);
      --pending_;
    });
  }

  // Blocks until every submitted piece of work has finished.
  void Drain() {
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(
        +[](int* pending) { return *pending == 0; }, &pending_));
  }

  int pending() {
    absl::MutexLock lock(&mutex_);
    return pending_;
  }

  // For parallel algorithms that should stay within the arena's threads.
  tbb::task_arena& arena() { return arena_; }

 private:
  tbb::task_arena arena_;
  absl::Mutex mutex_;
  int pending_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_WORK_QUEUE_H_
