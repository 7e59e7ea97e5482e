// Boundary conversions between activation domains (OptionTable::boundaries): exact values, what
// the strategies plan with, and the brute-force oracle.
#include <catch2/catch.hpp>

#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
#include "search/engine/polish.h"
#include "tests/search/test_tables.h"

namespace squeeze::search {
namespace {

constexpr double kQuantize = 3, kDequantize = 2;

// A chain of `n` layers, each float (latency 10, error 0) or integer (latency 4, error 1): the
// input is a graph input, each layer reads the one before, the last output is read as float.
// Alone, an integer layer costs 4 + 3 + 2 = 9 against float's 10; in a chain, 4.
OptionTable Chain(int n) {
  OptionTable table;
  table.fixed.latency = 1;
  for (int i = 0; i < n; ++i) {
    Layer layer;
    layer.name = "layer" + std::to_string(i);
    layer.options.push_back({"fp32", 10, 40, 0, 0});
    LayerOption integer{"w8a8", 4, 10, 1, 0};
    integer.integer_activations = true;
    integer.boundary_latency = kQuantize + kDequantize;
    layer.options.push_back(integer);
    table.layers.push_back(std::move(layer));
  }
  for (int i = 0; i <= n; ++i) {
    ActivationBoundary b;
    b.producer = i - 1;
    if (i < n) b.readers = {i};
    b.float_readers = i == n;
    b.quantize_latency = kQuantize;
    b.dequantize_latency = kDequantize;
    table.boundaries.push_back(b);
  }
  return table;
}

SearchSpec LatencyError(Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = {Objective::kLatency, Objective::kError};
  spec.constraints = constraints;
  return spec;
}

TEST_CASE("A conversion is paid only where the two sides of a tensor differ in domain", "[boundary]") {
  const OptionTable table = Chain(4);
  REQUIRE(ValidateOptionTable(table).ok());
  CHECK(Evaluate(table, {0, 0, 0, 0})->latency == Approx(1 + 40));
  // All integer: one quantization in, one dequantization out.
  CHECK(Evaluate(table, {1, 1, 1, 1})->latency == Approx(1 + 16 + kQuantize + kDequantize));
  // Alternating: every tensor crosses.
  CHECK(Evaluate(table, {1, 0, 1, 0})->latency == Approx(1 + 28 + 2 * (kQuantize + kDequantize)));
  // A float reader besides an integer one: the producer still dequantizes.
  OptionTable shared = table;
  shared.boundaries[1].float_readers = true;
  CHECK(Evaluate(shared, {1, 1, 1, 1})->latency == Approx(1 + 16 + kQuantize + 2 * kDequantize));
}

TEST_CASE("A bound below what an option's boundaries can cost is refused", "[boundary]") {
  OptionTable table = Chain(2);
  table.layers[1].options[1].boundary_latency = kQuantize;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(table)));
  table = Chain(2);
  table.boundaries[0].readers = {7};
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(table)));
}

TEST_CASE("Strategies report exact values and find the integer chain the bound hides", "[boundary]") {
  const OptionTable table = Chain(6);
  const SearchSpec spec = LatencyError();
  const testing::BruteForce expected = testing::BruteForceFront(table, spec);
  // The fastest plan is all integer (1 + 24 + 5 = 30), though each integer option is planned at 9.
  REQUIRE(expected.points.front()[0] == Approx(30));

  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  for (const Candidate& c : exact->candidates) CHECK(Evaluate(table, c.choice)->latency == c.values.latency);
  REQUIRE(NeedsPolish(table));
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  CHECK(polished->strategy == Strategy::kExact);
  CHECK(polished->epsilon == exact->epsilon);
  CHECK(polished->Points() == expected.points);

  Nsga2Options nsga2;
  nsga2.generations = 100;
  absl::StatusOr<Front> evolved = SolveNsga2(table, spec, nsga2);
  REQUIRE(evolved.ok());
  CHECK(evolved->Points() == expected.points);
}

TEST_CASE("A latency limit holds with conversions counted", "[boundary]") {
  const OptionTable table = Chain(5);
  Constraints limit;
  limit.max_latency = 40;
  const SearchSpec spec = LatencyError(limit);
  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  REQUIRE_FALSE(polished->candidates.empty());
  for (const Candidate& c : polished->candidates) CHECK(Evaluate(table, c.choice)->latency <= 40);
  CHECK(polished->Points() == testing::BruteForceFront(table, spec).points);
}

TEST_CASE("Nothing to polish without integer options or costly boundaries", "[boundary]") {
  OptionTable table = Chain(3);
  for (ActivationBoundary& b : table.boundaries) b.quantize_latency = b.dequantize_latency = 0;
  CHECK_FALSE(NeedsPolish(table));
  table = testing::RandomTable(4, 3, 7);
  CHECK_FALSE(NeedsPolish(table));
}

}  // namespace
}  // namespace squeeze::search
