// Which candidates of a front are named, and what a measurement changes about it.
#include "server/recommend.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_join.h"
#include "search/problem/error_calibration.h"
#include "server/search_spec.h"

namespace squeeze::server {
namespace {

v1::Candidate Candidate(int index, double latency_ms, double sqnr_db, int64_t bytes) {
  v1::Candidate c;
  c.set_index(index);
  c.set_predicted_latency_ms(latency_ms);
  c.set_predicted_sqnr_db(sqnr_db);
  c.set_predicted_error(std::pow(10.0, -sqnr_db / 10));
  c.set_predicted_size_bytes(bytes);
  return c;
}

void Measure(v1::Candidate* c, double latency_ms, double sqnr_db) {
  c->mutable_measured()->set_latency_measured(true);
  c->mutable_measured()->set_latency_ms(latency_ms);
  c->mutable_measured()->set_sqnr_db(sqnr_db);
}

const v1::Recommendation* Named(const std::vector<v1::Recommendation>& picks, const std::string& name) {
  for (const v1::Recommendation& r : picks) {
    // Each name once, in `names`; `name` joins them for display.
    if (std::find(r.names().begin(), r.names().end(), name) == r.names().end()) continue;
    CHECK(r.name() == absl::StrJoin(r.names(), ", "));
    return &r;
  }
  return nullptr;
}

TEST_CASE("An export measured below the SQNR floor is not recommended, whatever was predicted", "[recommend]") {
  v1::DeviceFront front;
  *front.add_candidates() = Candidate(0, 1.0, 10.5, 1000);  // predicted fastest, measures 2.3 dB
  *front.add_candidates() = Candidate(1, 1.2, 12.0, 1500);
  *front.add_candidates() = Candidate(2, 2.0, 40.0, 4000);
  Measure(front.mutable_candidates(0), 1.1, 2.3);
  Measure(front.mutable_candidates(1), 1.3, 15.0);
  v1::Constraints limits;
  limits.set_min_sqnr_db(10);
  CHECK_FALSE(MeetsConstraints(front.candidates(0), limits, 0));
  CHECK(MeetsConstraints(front.candidates(1), limits, 0));
  CHECK(MeetsConstraints(front.candidates(2), limits, 0));  // predicted only: the prediction holds
  const std::vector<v1::Recommendation> picks = Recommend(front, limits, 0);
  REQUIRE(Named(picks, "fastest") != nullptr);
  CHECK(Named(picks, "fastest")->candidate().index() == 1);
  for (const v1::Recommendation& r : picks) CHECK(r.candidate().index() != 0);
  // Without a floor the measurement excludes nothing.
  CHECK(MeetsConstraints(front.candidates(0), v1::Constraints{}, 0));
}

// An output's measured task metric, with its weight.
void AddOutput(v1::Candidate* c, const std::string& name, double weight, const std::string& metric, double value) {
  v1::OutputFidelity* o = c->mutable_measured()->add_outputs();
  o->set_name(name);
  o->set_weight(weight);
  v1::TaskMetric* m = o->add_metrics();
  m->set_name(metric);
  m->set_value(value);
}

TEST_CASE("A task floor holds on the measured outputs that count", "[recommend]") {
  v1::DeviceFront front;
  *front.add_candidates() = Candidate(0, 1.0, 20.0, 1000);  // argmax agreement 0.95: below the floor
  *front.add_candidates() = Candidate(1, 1.2, 25.0, 1500);  // 0.995
  *front.add_candidates() = Candidate(2, 1.1, 21.0, 1200);  // 0.9 on an output that weighs nothing
  *front.add_candidates() = Candidate(3, 2.0, 40.0, 4000);  // not measured
  for (int i = 0; i < 3; ++i) Measure(front.mutable_candidates(i), 1.0 + 0.1 * i, 30);
  AddOutput(front.mutable_candidates(0), "scores", 1, "argmax agreement", 0.95);
  AddOutput(front.mutable_candidates(1), "scores", 1, "argmax agreement", 0.995);
  AddOutput(front.mutable_candidates(2), "scores", 1, "argmax agreement", 0.999);
  AddOutput(front.mutable_candidates(2), "aux", 0, "argmax agreement", 0.9);
  v1::Constraints limits;
  limits.set_min_argmax_agreement(0.99);
  CHECK_FALSE(MeetsConstraints(front.candidates(0), limits, 0));
  CHECK(MeetsConstraints(front.candidates(1), limits, 0));
  CHECK(MeetsConstraints(front.candidates(2), limits, 0));
  CHECK(MeetsConstraints(front.candidates(3), limits, 0));  // nothing measured, nothing to hold
  // Another metric's floor does not apply to these outputs.
  v1::Constraints top1;
  top1.set_min_top1_agreement(0.99);
  CHECK(MeetsConstraints(front.candidates(0), top1, 0));
  // Figures from before weights (every weight 0): every output counts.
  v1::Candidate old = front.candidates(1);
  old.mutable_measured()->mutable_outputs(0)->set_weight(0);
  old.mutable_measured()->mutable_outputs(0)->mutable_metrics(0)->set_value(0.5);
  CHECK_FALSE(MeetsConstraints(old, limits, 0));
  const std::vector<v1::Recommendation> picks = Recommend(front, limits, 0);
  for (const v1::Recommendation& r : picks) CHECK(r.candidate().index() != 0);
}

TEST_CASE("A per-output SQNR floor holds every counted output, however small, on what exports measured",
          "[recommend]") {
  v1::DeviceFront front;
  *front.add_candidates() = Candidate(0, 1.0, 20.0, 1000);  // boxes 22 dB, scores 7 dB: the model 20 dB
  *front.add_candidates() = Candidate(1, 1.2, 19.0, 1500);  // boxes 19 dB, scores 14 dB
  for (int i = 0; i < 2; ++i) Measure(front.mutable_candidates(i), 1.0 + 0.1 * i, 20);
  for (const auto& [c, boxes, scores] : {std::make_tuple(0, 22.0, 7.0), std::make_tuple(1, 19.0, 14.0)}) {
    for (const auto& [name, sqnr] : {std::make_pair("boxes", boxes), std::make_pair("scores", scores)}) {
      v1::OutputFidelity* o = front.mutable_candidates(c)->mutable_measured()->add_outputs();
      o->set_name(name);
      o->set_weight(0.5);
      o->set_sqnr_db(sqnr);
    }
  }
  v1::Constraints limits;
  limits.set_min_sqnr_db(10);
  CHECK(MeetsConstraints(front.candidates(0), limits, 0));  // the pooled figure hides the score head
  limits.set_min_output_sqnr_db(10);
  CHECK_FALSE(MeetsConstraints(front.candidates(0), limits, 0));
  CHECK(MeetsConstraints(front.candidates(1), limits, 0));
  // An output that does not count is not held.
  v1::Candidate boxes_only = front.candidates(0);
  boxes_only.mutable_measured()->mutable_outputs(0)->set_weight(1);
  boxes_only.mutable_measured()->mutable_outputs(1)->set_weight(0);
  CHECK(MeetsConstraints(boxes_only, limits, 0));
  const std::vector<v1::Recommendation> picks = Recommend(front, limits, 0);
  REQUIRE_FALSE(picks.empty());
  for (const v1::Recommendation& r : picks) CHECK(r.candidate().index() == 1);
  // The error check's probes carry it as a floor of their own.
  const std::vector<search::TaskFloor> floors = TaskFloorsOf(limits);
  REQUIRE(floors.size() == 1);
  CHECK(floors[0].metric == search::kOutputSqnrMetric);
  CHECK(floors[0].min == 10);
}

}  // namespace
}  // namespace squeeze::server
