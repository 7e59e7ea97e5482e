// The time left a watched search shows (client/progress_eta.h).
#include "client/progress_eta.h"

#include <catch2/catch.hpp>

namespace squeeze::client {
namespace {

TEST_CASE("The time left is extrapolated from the current phase's pace, and restarts with each phase", "[eta]") {
  ProgressEta eta;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  CHECK_FALSE(eta.Update("measuring sensitivity", 0.05, t0).has_value());  // a phase's first snapshot
  CHECK_FALSE(eta.Update("measuring sensitivity", 0.06, t0 + absl::Seconds(1)).has_value());  // too young
  // 10% in 20 s: the 85% left take 170 s at that pace.
  const std::optional<double> left = eta.Update("measuring sensitivity", 0.15, t0 + absl::Seconds(20));
  REQUIRE(left.has_value());
  CHECK(*left == Approx(170));
  // A new phase (or device) starts a new estimate: its pace is its own.
  CHECK_FALSE(eta.Update("building table pixel-8", 0.50, t0 + absl::Seconds(200)).has_value());
  const std::optional<double> fast = eta.Update("building table pixel-8", 0.75, t0 + absl::Seconds(205));
  REQUIRE(fast.has_value());
  CHECK(*fast == Approx(5));
  // No progress since the phase began: nothing to extrapolate from; done: nothing left to say.
  ProgressEta stalled;
  stalled.Update("searching", 0.3, t0);
  CHECK_FALSE(stalled.Update("searching", 0.3, t0 + absl::Seconds(60)).has_value());
  CHECK_FALSE(stalled.Update("searching", 1.0, t0 + absl::Seconds(70)).has_value());
  // A fraction that goes back (a restarted job) starts over.
  ProgressEta back;
  back.Update("searching", 0.5, t0);
  CHECK_FALSE(back.Update("searching", 0.2, t0 + absl::Seconds(10)).has_value());
}

TEST_CASE("Times left read in the unit that fits", "[eta]") {
  CHECK(FormatRemaining(0.2) == "1 s");
  CHECK(FormatRemaining(44.6) == "45 s");
  CHECK(FormatRemaining(190) == "3 min");
  CHECK(FormatRemaining(3900) == "1 h 05 min");
}

}  // namespace
}  // namespace squeeze::client
