// How a caller watches and stops a running search: progress reports, cancellation and a deadline.
// Shared by every strategy.
#ifndef SQUEEZE_SEARCH_ENGINE_RUN_CONTROL_H_
#define SQUEEZE_SEARCH_ENGINE_RUN_CONTROL_H_

#include <atomic>
#include <functional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace squeeze::search {

struct Front;

struct Progress {
  absl::string_view phase;  // "prepare", "dp", "reconstruct", "evolve", "sample", "done"
  double fraction = 0;      // of the whole search, 0 to 1, never decreasing
  // The best front found so far, or null when there is none yet; valid only during the call.
  const Front* best_so_far = nullptr;
};

using ProgressCallback = std::function<void(const Progress&)>;

struct RunControl {
  // Called on the thread that called the search, at most once per progress_interval plus once at
  // the end (fraction 1). It must not call back into the search.
  ProgressCallback on_progress;
  absl::Duration progress_interval = absl::Milliseconds(100);
  // When it becomes true the search stops soon (within one DP layer or one generation) and
  // returns Cancelled. Not owned; must outlive the call.
  const std::atomic<bool>* cancel = nullptr;
  // Past it the search stops soon and returns the best front found so far, marked
  // StopReason::kDeadline, instead of an error.
  absl::Time deadline = absl::InfiniteFuture();
};

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_RUN_CONTROL_H_
