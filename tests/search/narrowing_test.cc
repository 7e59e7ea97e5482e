// Channel pruning that narrows the layers reading the removed channels (OptionTable::narrowings):
// exact values at the readers' chosen options, what the strategies plan with, and the
// brute-force oracle.
#include <catch2/catch.hpp>

#include "tests/search/strategy_checks.h"

namespace squeeze::search {
namespace {

using testing::CheckStrategiesReachTheFront;
using testing::LatencyError;

// A chain of `n` layers, each with four options: fp32 (10, error 0), fp32 with half its output
// channels removed (6, error 1), w8a8 (4, error 0.5) and w8a8 with half removed (2.5, error 1.5).
// Layer i's pruning halves layer i+1's input. Each pruning option is credited (for planning) at
// the reader's option of its own precision, as the problem builder does: 0.5 x 10 float, 0.5 x 4
// integer. No boundaries: only the narrowing is not additive.
OptionTable NarrowingChain(int n) {
  OptionTable table;
  table.fixed.latency = 1;
  for (int i = 0; i < n; ++i) {
    Layer layer;
    layer.name = "layer" + std::to_string(i);
    LayerOption fp32{"fp32", 10, 40, 0, 0}, pruned{"fp32 channel 50%", 6, 20, 1, 0};
    LayerOption int8{"w8a8", 4, 10, 0.5, 0}, int8_pruned{"w8a8 channel 50%", 2.5, 5, 1.5, 0};
    int8.integer_activations = int8_pruned.integer_activations = true;
    pruned.removed_channels = int8_pruned.removed_channels = 0.5;
    if (i + 1 < n) {
      pruned.narrowing_credit = 0.5 * 10;
      int8_pruned.narrowing_credit = 0.5 * 4;
      table.narrowings.push_back({i, i + 1, 1.0});
    }
    layer.options = {fp32, pruned, int8, int8_pruned};
    table.layers.push_back(std::move(layer));
  }
  return table;
}

TEST_CASE("A narrowed layer takes less by what its chosen option takes", "[narrowing]") {
  const OptionTable table = NarrowingChain(3);
  REQUIRE(ValidateOptionTable(table).ok());
  // Nothing pruned: every layer its own time.
  CHECK(Evaluate(table, {0, 0, 0})->latency == Approx(1 + 30));
  // Layer 0 pruned: layer 1 (fp32, 10) reads half its channels, 5 less.
  CHECK(Evaluate(table, {1, 0, 0})->latency == Approx(1 + 6 + 10 + 10 - 5));
  // Layer 0 pruned in float while layer 1 runs int8 (4): 2 less, not the 5 it was credited with.
  CHECK(Evaluate(table, {1, 2, 0})->latency == Approx(1 + 6 + 4 + 10 - 2));
  // The reader's own pruning and its narrowed input compound: 6 x (1 - 0.5).
  CHECK(Evaluate(table, {1, 1, 0})->latency == Approx(1 + 6 + 6 + 10 - 3 - 5));
  absl::StatusOr<PlanConversions> conversions = ConversionsOf(table, {1, 1, 0});
  REQUIRE(conversions.ok());
  CHECK(conversions->narrowed_latency == std::vector<double>{0, 3, 5});
}

TEST_CASE("Narrowings are validated", "[narrowing]") {
  OptionTable bad = NarrowingChain(3);
  bad.narrowings.push_back({2, 2, 0.5});  // a layer narrowing itself
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = NarrowingChain(3);
  bad.narrowings.push_back({0, 3, 0.5});  // no layer 3
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = NarrowingChain(3);
  bad.narrowings.push_back({0, 2, 0.5});  // layer 2 now narrowed by shares summing to 1.5
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = NarrowingChain(3);
  bad.narrowings[0].share = 0;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = NarrowingChain(3);
  bad.layers[0].options[1].narrowing_credit = -1;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
}

TEST_CASE("Strategies report exact values and reach the front the credits only estimate", "[narrowing]") {
  const OptionTable table = NarrowingChain(6);
  REQUIRE(NeedsPolish(table));
  CheckStrategiesReachTheFront(table, 150);
}

TEST_CASE("A latency limit met only thanks to narrowed inputs is met", "[narrowing]") {
  // Every layer pruned in int8: 1 + 6 x 2.5 - 5 x 0.5 x 2.5 = 9.75, below the 1 + 6 x 2.5 = 16 the
  // options alone sum to at their cheapest. A limit between the two keeps only plans that prune.
  const OptionTable table = NarrowingChain(6);
  REQUIRE(Evaluate(table, {3, 3, 3, 3, 3, 3})->latency == Approx(9.75));
  Constraints limit;
  limit.max_latency = 12;
  const SearchSpec spec = LatencyError(limit);
  const testing::BruteForce expected = testing::BruteForceFront(table, spec);
  REQUIRE_FALSE(expected.points.empty());
  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  REQUIRE_FALSE(polished->candidates.empty());
  for (const Candidate& c : polished->candidates) CHECK(Evaluate(table, c.choice)->latency <= 12);
  CHECK(polished->Points() == expected.points);
}

TEST_CASE("Nothing to polish where no narrowing's pruner removes channels", "[narrowing]") {
  OptionTable table = NarrowingChain(3);
  for (Layer& layer : table.layers) {
    for (LayerOption& o : layer.options) o.integer_activations = false;
  }
  CHECK(NeedsPolish(table));
  for (Layer& layer : table.layers) {
    for (LayerOption& o : layer.options) o.removed_channels = o.narrowing_credit = 0;
  }
  CHECK_FALSE(NeedsPolish(table));
}

}  // namespace
}  // namespace squeeze::search
