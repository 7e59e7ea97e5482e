// Channel pruning that narrows the layers reading the removed channels (OptionTable::narrowings):
// exact latencies and sizes at the readers' chosen options, what the strategies plan with, and
// the brute-force oracle.
#include <catch2/catch.hpp>
#include <limits>

#include "tests/search/strategy_checks.h"

namespace squeeze::search {
namespace {

using testing::CheckStrategiesReachTheFront;
using testing::LatencyError;

// A chain of `n` layers, each with four options: fp32 (10, 40 bytes, error 0), fp32 with half its
// output channels removed (6, 20 bytes, error 1), w8a8 (4, 10 bytes, error 0.5) and w8a8 with half
// removed (2.5, 5 bytes, error 1.5); of its bytes, 4/5 are weight values, which shrink with its
// input channels (32, 16, 8, 4). Layer i's pruning halves layer i+1's input. Each pruning option is
// credited (for planning) at the reader's option of its own precision, as the problem builder
// does: 0.5 x 10 and 0.5 x 32 bytes float, 0.5 x 4 and 0.5 x 8 bytes integer. No boundaries: only
// the narrowing is not additive.
OptionTable NarrowingChain(int n) {
  OptionTable table;
  table.fixed.latency = 1;
  table.fixed.bytes = 100;
  for (int i = 0; i < n; ++i) {
    Layer layer;
    layer.name = "layer" + std::to_string(i);
    LayerOption fp32{"fp32", 10, 40, 0, 0}, pruned{"fp32 channel 50%", 6, 20, 1, 0};
    LayerOption int8{"w8a8", 4, 10, 0.5, 0}, int8_pruned{"w8a8 channel 50%", 2.5, 5, 1.5, 0};
    int8.integer_activations = int8_pruned.integer_activations = true;
    pruned.removed_channels = int8_pruned.removed_channels = 0.5;
    fp32.narrowable_bytes = 32;
    pruned.narrowable_bytes = 16;
    int8.narrowable_bytes = 8;
    int8_pruned.narrowable_bytes = 4;
    if (i + 1 < n) {
      pruned.narrowing_credit = 0.5 * 10;
      int8_pruned.narrowing_credit = 0.5 * 4;
      pruned.bytes_credit = 0.5 * 32;
      int8_pruned.bytes_credit = 0.5 * 8;
      table.narrowings.push_back({i, i + 1, 1.0});
    }
    layer.options = {fp32, pruned, int8, int8_pruned};
    table.layers.push_back(std::move(layer));
  }
  return table;
}

SearchSpec Spec(std::vector<Objective> objectives, Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = std::move(objectives);
  spec.constraints = constraints;
  return spec;
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

TEST_CASE("A narrowed layer stores less by what its chosen option holds per input channel", "[narrowing]") {
  const OptionTable table = NarrowingChain(3);
  REQUIRE(ValidateOptionTable(table).ok());
  // Nothing pruned: every layer its own bytes.
  CHECK(Evaluate(table, {0, 0, 0})->size == 100 + 120);
  // Layer 0 pruned: layer 1 (fp32) stores half of its 32 bytes of weight values less.
  CHECK(Evaluate(table, {1, 0, 0})->size == 100 + 20 + 40 + 40 - 16);
  // Layer 0 pruned in float while layer 1 is int8: 4 less, not the 16 it was credited with.
  CHECK(Evaluate(table, {1, 2, 0})->size == 100 + 20 + 10 + 40 - 4);
  // The reader's own pruning and its narrowed input compound: 16 x (1 - 0.5); and layer 2 loses 16.
  const ObjectiveValues v = *Evaluate(table, {1, 1, 0});
  CHECK(v.size == 100 + 20 + 20 + 40 - 8 - 16);
  CHECK(v.peak_memory == v.size);  // no activations: the peak is the narrowed size
  absl::StatusOr<PlanConversions> conversions = ConversionsOf(table, {1, 1, 0});
  REQUIRE(conversions.ok());
  CHECK(conversions->narrowed_bytes == std::vector<double>{0, 8, 16});
  // No plan is smaller than the ideal point says, nor larger than the default reference.
  const SearchSpec spec = Spec({Objective::kSize, Objective::kError});
  const testing::BruteForce all = testing::BruteForceFront(table, spec);
  REQUIRE_FALSE(all.points.empty());
  CHECK(IdealPoint(table, spec)[0] <= all.points.front()[0]);
  CHECK(IdealPoint(table, spec)[0] > 0);
  CHECK(DefaultReference(table, spec)[0] == 100 + 120);
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
  bad = NarrowingChain(3);
  bad.layers[0].options[1].bytes_credit = -1;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = NarrowingChain(3);
  bad.layers[1].options[0].narrowable_bytes = std::numeric_limits<double>::quiet_NaN();
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  // More narrowable bytes than bytes: a narrowed plan would store less than nothing for the layer.
  bad = NarrowingChain(3);
  bad.layers[1].options[2].narrowable_bytes = 10.5;
  const absl::Status status = ValidateOptionTable(bad);
  CHECK(absl::IsInvalidArgument(status));
  CHECK_THAT(std::string(status.message()), Catch::Matchers::Contains("narrowable bytes"));
  bad.layers[1].options[2].narrowable_bytes = 10;  // all of them may narrow away
  CHECK(ValidateOptionTable(bad).ok());
}

TEST_CASE("Strategies report exact values and reach the front the credits only estimate", "[narrowing]") {
  const OptionTable table = NarrowingChain(6);
  REQUIRE(NeedsPolish(table));
  CheckStrategiesReachTheFront(table, 150);
}

TEST_CASE("Strategies reach the front of narrowed sizes the credits only estimate", "[narrowing]") {
  const OptionTable table = NarrowingChain(6);
  SECTION("size and error") { CheckStrategiesReachTheFront(table, 150, Spec({Objective::kSize, Objective::kError})); }
  SECTION("latency and size") {
    CheckStrategiesReachTheFront(table, 150, Spec({Objective::kLatency, Objective::kSize}));
  }
  SECTION("size and error under a latency limit") {
    Constraints limit;
    limit.max_latency = 30;
    CheckStrategiesReachTheFront(table, 150, Spec({Objective::kSize, Objective::kError}, limit));
  }
  SECTION("latency and error under a size limit") {
    Constraints limit;
    limit.max_size = 160;
    CheckStrategiesReachTheFront(table, 150, Spec({Objective::kLatency, Objective::kError}, limit));
  }
}

TEST_CASE("An option smaller whole but larger narrowed is kept for the plans that narrow it", "[narrowing]") {
  // Layer 0 may drop half its channels, which layer 1 reads. Layer 1's "dense" stores 10 bytes, all
  // of them per input channel; its "packed" 9, none of them: smaller alone, larger narrowed (9
  // against 5). Planning credits the pruning with the dense reader.
  OptionTable table;
  table.fixed.bytes = 1;
  LayerOption whole{"fp32", 1, 100, 0, 0}, pruned{"fp32 channel 50%", 1, 50, 1, 0};
  pruned.removed_channels = 0.5;
  pruned.bytes_credit = 0.5 * 10;
  table.layers.push_back(Layer{"pruner", {whole, pruned}});
  LayerOption dense{"dense", 1, 10, 0, 0}, packed{"packed", 1, 9, 0, 0};
  dense.narrowable_bytes = 10;
  table.layers.push_back(Layer{"reader", {dense, packed}});
  table.narrowings.push_back({0, 1, 1.0});
  REQUIRE(ValidateOptionTable(table).ok());
  CHECK(Evaluate(table, {1, 0})->size == 1 + 50 + 10 - 5);
  CHECK(Evaluate(table, {1, 1})->size == 1 + 50 + 9);
  const SearchSpec spec = Spec({Objective::kSize, Objective::kError});
  CHECK(testing::BruteForceFront(table, spec).points == PointSet{{56, 1}, {110, 0}});
  CheckStrategiesReachTheFront(table, 20, spec);
}

TEST_CASE("A size limit met only thanks to narrowed inputs is met", "[narrowing]") {
  // Every layer pruned in int8: 100 + 6 x 5 - 5 x 0.5 x 4 = 120, below the 100 + 6 x 5 = 130 the
  // options alone sum to at their smallest. A limit between the two keeps only plans that prune.
  const OptionTable table = NarrowingChain(6);
  REQUIRE(Evaluate(table, {3, 3, 3, 3, 3, 3})->size == 120);
  testing::CheckSizeLimitIsMet(table, 125);
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
    for (LayerOption& o : layer.options) o.removed_channels = o.narrowing_credit = o.bytes_credit = 0;
  }
  CHECK_FALSE(NeedsPolish(table));
}

}  // namespace
}  // namespace squeeze::search
