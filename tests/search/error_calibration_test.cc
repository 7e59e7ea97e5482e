// Predicted errors checked against measured exports: which candidates are probed, the factor, and
// what it does to the table.
#include "search/problem/error_calibration.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "search/problem/plan.h"

namespace squeeze::search {
namespace {

using Catch::Matchers::Contains;

Candidate At(double sqnr_db, uint16_t tag) {
  Candidate c;
  c.choice = {tag};
  c.values.error = std::isinf(sqnr_db) ? 0 : ErrorOfSqnrDb(sqnr_db);
  return c;
}

TEST_CASE("The probes are the candidates nearest at or above the floor, 5, 10 and 20 dB above it",
          "[error-calibration]") {
  Front front;
  for (double db : {5.0, 10.5, 12.0, 16.0, 19.0, 21.0, 33.0, 45.0})
    front.candidates.push_back(At(db, static_cast<uint16_t>(db)));
  front.candidates.push_back(At(std::numeric_limits<double>::infinity(), 99));  // lossless: nothing to learn
  std::vector<Candidate> probes = ErrorProbeCandidates(front, 10);
  REQUIRE(probes.size() == 4);
  CHECK(probes[0].choice[0] == 10);  // 10.5 dB
  CHECK(probes[1].choice[0] == 16);  // nearest at or above 15
  CHECK(probes[2].choice[0] == 21);  // nearest at or above 20
  CHECK(probes[3].choice[0] == 33);  // nearest at or above 30
  // Each once: with a high floor the targets share candidates.
  probes = ErrorProbeCandidates(front, 40);
  REQUIRE(probes.size() == 1);
  CHECK(probes[0].choice[0] == 45);
  CHECK(ErrorProbeCandidates(Front{}, 10).empty());
}

TEST_CASE("The factor is the largest measured / predicted, bounded, scaling moves every option",
          "[error-calibration]") {
  CHECK(ErrorFactor({}) == 1);
  CHECK(ErrorFactor({{"a", 0.01, 0.05, {}}, {"b", 0.001, 0.002, {}}}) == Approx(5));
  CHECK(ErrorFactor({{"a", 0.01, 0.001, {}}}) == Approx(0.1));
  CHECK(ErrorFactor({{"a", 0.01, 0, {}}}) == Approx(0.1));  // exact: held to the bound
  CHECK(ErrorFactor({{"a", 1e-9, 1, {}}}) == Approx(1000));
  CHECK(ErrorFactor({{"exact", 0, 0.5, {}}}) == 1);  // predicted exact: no ratio

  Problem problem;
  problem.table.layers.resize(2);
  problem.table.layers[0].options = {LayerOption{}, LayerOption{}};
  problem.table.layers[0].options[1].error = 0.02;
  problem.table.layers[1].options = {LayerOption{}};
  problem.table.layers[1].options[0].error = 0.5;
  problem.details = {{OptionDetail{}, OptionDetail{}}, {OptionDetail{}}};
  problem.details[1][0].activation_error = 0.1;
  problem.details[1][0].pruning_error = 0.3;
  ScaleErrors(4, &problem);
  CHECK(problem.table.layers[0].options[0].error == 0);
  CHECK(problem.table.layers[0].options[1].error == Approx(0.08));
  CHECK(problem.table.layers[1].options[0].error == Approx(2));
  // Its terms with it.
  CHECK(problem.details[1][0].activation_error == Approx(0.4));
  CHECK(problem.details[1][0].pruning_error == Approx(1.2));
}

TEST_CASE("The calibration says what was measured against what was predicted", "[error-calibration]") {
  CHECK(DescribeErrorCalibration({}, {}).empty());
  const std::string text = DescribeErrorCalibration(
      {7.8, 1.5}, {{"16×fp16, 15×int8", ErrorOfSqnrDb(10.2), ErrorOfSqnrDb(1.3), {}}, {"58×int8", 0.1, 0.1, {}}});
  CHECK_THAT(text, Contains("x 7.8, then x 1.5") && Contains("2 candidates") &&
                       Contains("16×fp16, 15×int8 measured 1.3 dB (predicted 10.2)") &&
                       Contains("58×int8 measured 10.0 dB"));
  CHECK_THAT(DescribeErrorCalibration({}, {{"58×int8", 0.1, 0.1, {}}}),
             Contains("predicted errors kept") && Contains("1 candidate near") && Contains("within 1 dB"));
}

// One layer of two options, the second at relative error 0.01.
Problem OneLayerProblem() {
  Problem problem;
  problem.table.layers.resize(1);
  problem.table.layers[0].options = {LayerOption{}, LayerOption{}};
  problem.table.layers[0].options[1].error = 0.01;
  return problem;
}

// A front of one candidate per predicted SQNR.
Front FrontAt(const std::vector<double>& sqnr_db) {
  Front front;
  for (double db : sqnr_db) front.candidates.push_back(At(db, static_cast<uint16_t>(db)));
  return front;
}

TEST_CASE("The check scales the errors and searches again until the probes measure as predicted",
          "[error-calibration]") {
  Problem problem = OneLayerProblem();
  Front front = FrontAt({11.0, 22.0, 35.0});
  // The "network": each probe measures `worse` x its predicted error in round r.
  std::vector<double> worse;
  int measured_rounds = 0, reruns = 0;
  const MeasureProbes measure = [&](const std::vector<Candidate>& candidates) {
    std::vector<ErrorProbe> out;
    for (const Candidate& c : candidates) {
      out.push_back({"plan", c.values.error, worse[static_cast<size_t>(measured_rounds)] * c.values.error, {}});
    }
    ++measured_rounds;
    return absl::StatusOr<std::vector<ErrorProbe>>(out);
  };
  const Rerun rerun = [&](int round, double) {
    CHECK(round == reruns);
    ++reruns;
    return absl::StatusOr<Front>(front);
  };
  SECTION("4x worse, then within 1 dB: one scaling, one rerun") {
    worse = {4, 1.1};
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {}, measure, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(check->factors == std::vector<double>{4});
    CHECK(check->probes.size() == 6);
    CHECK(reruns == 1);
    CHECK(problem.table.layers[0].options[1].error == Approx(0.04));
    CHECK_THAT(problem.error_calibration, Contains("x 4 to match 6 candidates"));
  }
  SECTION("worse in every round: scaled three times; better in the second round: left on the safe side") {
    worse = {4, 2, 1.5};
    REQUIRE(CheckErrors(10, {}, measure, rerun, &problem, &front).ok());
    CHECK(measured_rounds == 3);
    CHECK(reruns == 3);
    CHECK(problem.table.layers[0].options[1].error == Approx(0.12));
    Problem other = problem;
    measured_rounds = reruns = 0;
    worse = {4, 0.25};
    REQUIRE(CheckErrors(10, {}, measure, rerun, &other, &front).ok());
    CHECK(reruns == 1);
    CHECK(other.table.layers[0].options[1].error == Approx(0.48));
  }
  SECTION("within 1 dB at once: nothing scaled, nothing searched again, and the front says so") {
    worse = {0.9};
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {}, measure, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(check->factors.empty());
    CHECK(reruns == 0);
    CHECK(problem.table.layers[0].options[1].error == Approx(0.01));
    CHECK_THAT(problem.error_calibration, Contains("predicted errors kept"));
  }
  SECTION("a failed export ends the check with its reason; a failed rerun fails it") {
    const MeasureProbes broken = [](const std::vector<Candidate>&) {
      return absl::StatusOr<std::vector<ErrorProbe>>(absl::InternalError("export failed"));
    };
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {}, broken, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(check->measurement.message() == "export failed");
    CHECK(problem.error_calibration.empty());
    worse = {4};
    const Rerun failing = [](int, double) { return absl::StatusOr<Front>(absl::CancelledError("cancelled")); };
    CHECK(CheckErrors(10, {}, measure, failing, &problem, &front).status().code() == absl::StatusCode::kCancelled);
  }
}

TEST_CASE("A probe below a task floor raises the SQNR floor above it, and the search runs again",
          "[error-calibration]") {
  Problem problem = OneLayerProblem();
  Front front = FrontAt({11.0, 22.0, 35.0});
  // Measured as predicted; top-1 agreement is 0.95 below 20 dB, 0.995 above.
  std::vector<double> floors_asked;
  const MeasureProbes measure = [&](const std::vector<Candidate>& candidates) {
    std::vector<ErrorProbe> out;
    for (const Candidate& c : candidates) {
      const double db = SqnrDb(c.values.error);
      out.push_back({absl::StrCat(db, " dB plan"),
                     c.values.error,
                     c.values.error,
                     {{"top-1 agreement", db < 20 ? 0.95 : 0.995}}});
    }
    return absl::StatusOr<std::vector<ErrorProbe>>(out);
  };
  const Rerun rerun = [&](int, double floor_sqnr_db) {
    floors_asked.push_back(floor_sqnr_db);
    Front kept;
    for (const Candidate& c : front.candidates) {
      if (SqnrDb(c.values.error) >= floor_sqnr_db) kept.candidates.push_back(c);
    }
    return absl::StatusOr<Front>(kept);
  };

  CHECK(MissedFloors({"p", 0.1, 0.1, {{"top-1 agreement", 0.95}}}, {{"top-1 agreement", 0.99}}) ==
        std::vector<std::string>{"top-1 agreement 0.950 < 0.99"});
  CHECK(MissedFloors({"p", 0.1, 0.1, {{"mask IoU", 0.5}}}, {{"top-1 agreement", 0.99}}).empty());

  SECTION("the 11 dB probe misses 0.99: the floor goes to 12 dB and the 11 dB candidate is gone") {
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {{"top-1 agreement", 0.99}}, measure, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(check->factors.empty());  // the errors measured as predicted
    CHECK(check->floor_sqnr_db == Approx(12.0));
    REQUIRE(floors_asked.size() == 1);
    CHECK(floors_asked[0] == Approx(12.0));
    REQUIRE(front.candidates.size() == 2);
    CHECK(SqnrDb(front.candidates[0].values.error) == Approx(22.0));
    CHECK_THAT(problem.error_calibration, Contains("the SQNR floor raised to 12.0 dB") &&
                                              Contains("top-1 agreement 0.950 < 0.99") &&
                                              Contains("top-1 agreement 0.995"));
  }
  SECTION("a floor every probe keeps changes nothing") {
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {{"top-1 agreement", 0.9}}, measure, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(floors_asked.empty());
    CHECK(check->floor_sqnr_db == 10);
    CHECK(front.candidates.size() == 3);
    CHECK(check->unmeasured_floors.empty());
  }
  SECTION("a floor on a metric no export measured (an empty mask) is said not to have been checked") {
    absl::StatusOr<ErrorCheck> check = CheckErrors(10, {{"mask IoU", 0.9}}, measure, rerun, &problem, &front);
    REQUIRE(check.ok());
    CHECK(floors_asked.empty());
    CHECK(check->unmeasured_floors == std::vector<std::string>{"mask IoU"});
    CHECK_THAT(problem.error_calibration, Contains("the floor on mask IoU was not checked"));
  }
}

}  // namespace
}  // namespace squeeze::search
