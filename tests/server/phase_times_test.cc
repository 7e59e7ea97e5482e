// A search's phases and their wall times (search_pipeline.h's EnterPhase), without a server.
#include <catch2/catch.hpp>

#include "server/search_pipeline.h"

namespace squeeze::server {
namespace {

TEST_CASE("Each phase ends with its wall time when the next begins, and a phase entered again in a row adds up",
          "[search-jobs]") {
  JobRecord record;
  v1::SearchJob job;
  std::atomic<bool> cancel{false};
  RunningSearch run{record, job, [](bool) {}, cancel};
  const absl::Time start = absl::Now();

  EnterPhase(run, v1::PHASE_ANALYZING);
  run.phase_started = start - absl::Seconds(2);  // as if analysis had taken 2 s
  EnterPhase(run, v1::PHASE_MEASURING_SENSITIVITY);
  CHECK(job.phase() == v1::PHASE_MEASURING_SENSITIVITY);
  REQUIRE(job.phase_times_size() == 2);
  CHECK(job.phase_times(0).phase() == v1::PHASE_ANALYZING);
  CHECK(job.phase_times(0).seconds() >= 2);
  CHECK(job.phase_times(0).seconds() < 60);
  CHECK(job.phase_times(1).seconds() == 0);  // running

  run.phase_started -= absl::Seconds(5);
  EnterPhase(run, v1::PHASE_SEARCHING, "host");
  run.phase_started -= absl::Seconds(1);
  EnterPhase(run, v1::PHASE_SEARCHING, "host");  // a second round: the same entry
  run.phase_started -= absl::Seconds(1);
  EnterPhase(run, v1::PHASE_SEARCHING, "pixel-8");  // another device: its own
  run.phase_started -= absl::Seconds(3);
  EnterPhase(run, v1::PHASE_DONE);
  CHECK(job.phase() == v1::PHASE_SEARCHING);  // DONE is the job core's to set
  REQUIRE(job.phase_times_size() == 4);
  CHECK(job.phase_times(1).seconds() >= 5);
  CHECK(job.phase_times(2).device_id() == "host");
  CHECK(job.phase_times(2).seconds() >= 2);
  CHECK(job.phase_times(2).seconds() < 3);
  CHECK(job.phase_times(3).device_id() == "pixel-8");
  CHECK(job.phase_times(3).seconds() >= 3);
}

}  // namespace
}  // namespace squeeze::server
