// What the engine's non-additive tests (boundaries, narrowings) check of every strategy: exact
// values in every answer, and the brute-force front reached after the polish and by NSGA-II.
#ifndef SQUEEZE_TESTS_SEARCH_STRATEGY_CHECKS_H_
#define SQUEEZE_TESTS_SEARCH_STRATEGY_CHECKS_H_

#include <catch2/catch.hpp>

#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
#include "search/engine/polish.h"
#include "tests/search/test_tables.h"

namespace squeeze::search::testing {

inline SearchSpec LatencyError(Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = {Objective::kLatency, Objective::kError};
  spec.constraints = constraints;
  return spec;
}

// Every candidate of `front` carries the exact values of its choice.
inline void CheckExactValues(const OptionTable& table, const Front& front) {
  for (const Candidate& c : front.candidates) {
    const ObjectiveValues v = Evaluate(table, c.choice).value();
    CHECK(v.latency == c.values.latency);
    CHECK(v.size == c.values.size);
    CHECK(v.error == c.values.error);
    CHECK(v.peak_memory == c.values.peak_memory);
  }
}

// The exact strategy (its values exact), polished, and NSGA-II after `generations` all reach the
// brute-force front of `spec`.
inline void CheckStrategiesReachTheFront(const OptionTable& table, int generations, const SearchSpec& spec) {
  const BruteForce expected = BruteForceFront(table, spec);
  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  CheckExactValues(table, *exact);
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  CheckExactValues(table, *polished);
  CHECK(polished->Points() == expected.points);
  Nsga2Options nsga2;
  nsga2.generations = generations;
  absl::StatusOr<Front> evolved = SolveNsga2(table, spec, nsga2);
  REQUIRE(evolved.ok());
  CheckExactValues(table, *evolved);
  CHECK(evolved->Points() == expected.points);
}

// The same on (latency, error) under `constraints`.
inline void CheckStrategiesReachTheFront(const OptionTable& table, int generations, Constraints constraints = {}) {
  CheckStrategiesReachTheFront(table, generations, LatencyError(constraints));
}

// A size limit on (latency, error) that only plans the options' own bytes do not show can meet
// (narrowed inputs, region savings): the exact search, planning with the options' byte credits,
// finds plans within it, and polished they are the brute-force front.
inline void CheckSizeLimitIsMet(const OptionTable& table, double max_size) {
  Constraints limit;
  limit.max_size = max_size;
  const SearchSpec spec = LatencyError(limit);
  const BruteForce expected = BruteForceFront(table, spec);
  REQUIRE_FALSE(expected.points.empty());
  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  CHECK_FALSE(exact->candidates.empty());  // without the credits the DP finds nothing below the limit
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  REQUIRE_FALSE(polished->candidates.empty());
  for (const Candidate& c : polished->candidates) CHECK(Evaluate(table, c.choice)->size <= max_size);
  CHECK(polished->Points() == expected.points);
}

}  // namespace squeeze::search::testing

#endif  // SQUEEZE_TESTS_SEARCH_STRATEGY_CHECKS_H_
