// How long a watched search has left, at the pace of its current phase. A search reports one
// overall fraction; its phases run at different paces (measuring sensitivities is slow, the exact
// search fast), so the estimate restarts with each phase and says it is at that phase's pace.
#ifndef SQUEEZE_CLIENT_PROGRESS_ETA_H_
#define SQUEEZE_CLIENT_PROGRESS_ETA_H_

#include <optional>
#include <string>

#include "absl/time/time.h"

namespace squeeze::client {

class ProgressEta {
 public:
  // A snapshot of the job (`phase` names the phase and device) seen at `now`. The seconds left,
  // or nullopt while the phase is too young to say: under 2 s old, or under half a percent on.
  std::optional<double> Update(const std::string& phase, double fraction, absl::Time now);

 private:
  std::string phase_;
  double start_fraction_ = 0;
  absl::Time start_;
};

// "45 s", "3 min", "1 h 05 min".
std::string FormatRemaining(double seconds);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_PROGRESS_ETA_H_
