// Predicted errors checked against measured exports: which candidates are probed, the factor, and
// what it does to the table.
#include "search/problem/error_calibration.h"

#include <catch2/catch.hpp>

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

TEST_CASE("The probes are the candidates nearest at or above the floor, 10 and 20 dB above it", "[error-calibration]") {
  Front front;
  for (double db : {5.0, 10.5, 12.0, 19.0, 21.0, 33.0, 45.0})
    front.candidates.push_back(At(db, static_cast<uint16_t>(db)));
  front.candidates.push_back(At(std::numeric_limits<double>::infinity(), 99));  // lossless: nothing to learn
  std::vector<Candidate> probes = ErrorProbeCandidates(front, 10);
  REQUIRE(probes.size() == 3);
  CHECK(probes[0].choice[0] == 10);  // 10.5 dB
  CHECK(probes[1].choice[0] == 21);  // nearest at or above 20
  CHECK(probes[2].choice[0] == 33);  // nearest at or above 30
  // Each once: with a high floor the targets share candidates.
  probes = ErrorProbeCandidates(front, 40);
  REQUIRE(probes.size() == 1);
  CHECK(probes[0].choice[0] == 45);
  CHECK(ErrorProbeCandidates(Front{}, 10).empty());
}

TEST_CASE("The factor is the largest measured / predicted, bounded; scaling moves every option",
          "[error-calibration]") {
  CHECK(ErrorFactor({}) == 1);
  CHECK(ErrorFactor({{"a", 0.01, 0.05}, {"b", 0.001, 0.002}}) == Approx(5));
  CHECK(ErrorFactor({{"a", 0.01, 0.001}}) == Approx(0.1));
  CHECK(ErrorFactor({{"a", 0.01, 0}}) == Approx(0.1));  // exact: held to the bound
  CHECK(ErrorFactor({{"a", 1e-9, 1}}) == Approx(1000));
  CHECK(ErrorFactor({{"exact", 0, 0.5}}) == 1);  // predicted exact: no ratio

  Problem problem;
  problem.table.layers.resize(2);
  problem.table.layers[0].options = {LayerOption{}, LayerOption{}};
  problem.table.layers[0].options[1].error = 0.02;
  problem.table.layers[1].options = {LayerOption{}};
  problem.table.layers[1].options[0].error = 0.5;
  ScaleErrors(4, &problem);
  CHECK(problem.table.layers[0].options[0].error == 0);
  CHECK(problem.table.layers[0].options[1].error == Approx(0.08));
  CHECK(problem.table.layers[1].options[0].error == Approx(2));
}

TEST_CASE("The calibration says what was measured against what was predicted", "[error-calibration]") {
  CHECK(DescribeErrorCalibration({}, {}).empty());
  const std::string text = DescribeErrorCalibration(
      {7.8, 1.5}, {{"16×fp16, 15×int8", ErrorOfSqnrDb(10.2), ErrorOfSqnrDb(1.3)}, {"58×int8", 0.1, 0.1}});
  CHECK_THAT(text, Contains("x 7.8, then x 1.5") && Contains("2 candidates") &&
                       Contains("16×fp16, 15×int8 measured 1.3 dB (predicted 10.2)") &&
                       Contains("58×int8 measured 10.0 dB"));
  CHECK_THAT(DescribeErrorCalibration({}, {{"58×int8", 0.1, 0.1}}),
             Contains("predicted errors kept") && Contains("1 candidate near") && Contains("within 1 dB"));
}

}  // namespace
}  // namespace squeeze::search
