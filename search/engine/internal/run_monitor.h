// Watches a RunControl for one search: throttles progress reports, keeps their fractions from
// going backwards, and answers whether the search was cancelled or ran past its deadline.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_RUN_MONITOR_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_RUN_MONITOR_H_

#include <algorithm>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "search/engine/front.h"
#include "search/engine/run_control.h"

namespace squeeze::search::internal {

class RunMonitor {
 public:
  explicit RunMonitor(const RunControl& control) : control_(control), start_(absl::Now()) {}

  bool cancelled() const { return control_.cancel != nullptr && control_.cancel->load(); }
  bool past_deadline() const { return absl::Now() >= control_.deadline; }
  double seconds() const { return absl::ToDoubleSeconds(absl::Now() - start_); }
  absl::Duration elapsed() const { return absl::Now() - start_; }

  // Whether a throttled report would be delivered now (so callers build best-so-far fronts only
  // when someone will see them).
  bool ReportDue() const {
    return control_.on_progress &&
           (!reported_ || absl::Now() - last_report_ >= std::max(control_.progress_interval, min_interval_));
  }

  // Spaces reports at least ten times what preparing one cost, so that building best-so-far
  // fronts never takes more than a tenth of the search.
  void NoteReportCost(absl::Duration cost) { min_interval_ = 10 * cost; }

  // Delivers a report when due (always when `force`).
  void Report(absl::string_view phase, double fraction, const Front* best, bool force = false) {
    if (!control_.on_progress || (!force && !ReportDue())) return;
    fraction_ = std::max(fraction_, std::clamp(fraction, 0.0, 1.0));
    reported_ = true;
    last_report_ = absl::Now();
    control_.on_progress(Progress{phase, fraction_, best});
  }

 private:
  const RunControl& control_;
  absl::Time start_;
  absl::Time last_report_;
  absl::Duration min_interval_ = absl::ZeroDuration();
  bool reported_ = false;
  double fraction_ = 0;
};

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_RUN_MONITOR_H_
