#include "common/clock.h"

namespace squeeze::common {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& Clock::System() {
  static const SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace squeeze::common
