#include "client/progress_eta.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace squeeze::client {

std::optional<double> ProgressEta::Update(const std::string& phase, double fraction, absl::Time now) {
  if (phase != phase_ || fraction < start_fraction_) {
    phase_ = phase;
    start_fraction_ = fraction;
    start_ = now;
    return std::nullopt;
  }
  const double elapsed = absl::ToDoubleSeconds(now - start_);
  const double done = fraction - start_fraction_;
  if (elapsed < 2 || done < 0.005 || fraction >= 1) return std::nullopt;
  return (1 - fraction) * elapsed / done;
}

std::string FormatRemaining(double seconds) {
  if (seconds < 60) return fmt::format("{:.0f} s", std::max(1.0, std::round(seconds)));
  const long minutes = std::lround(seconds / 60);
  if (minutes < 60) return fmt::format("{} min", minutes);
  return fmt::format("{} h {:02d} min", minutes / 60, static_cast<int>(minutes % 60));
}

}  // namespace squeeze::client
