// Constants the exporter quantizes between layers when a layer bordering them runs on integer
// activations (OptionTable::region_savings): exact sizes (an OR over the layers, not a sum), what
// the strategies plan with, validation, and the brute-force oracle.
#include <catch2/catch.hpp>
#include <limits>

#include "tests/search/strategy_checks.h"

namespace squeeze::search {
namespace {

using testing::CheckStrategiesReachTheFront;

// A chain of `n` layers, each with three options: fp32 (10, 40 bytes, error 0), fp16 (6, 20 bytes,
// error 1) and w8a8 (4, 30 bytes, error 0.5, integer activations). Between layers i and i+1 a
// region saves 12 bytes, and before layer 0 one saves 5: the w8a8 option is the larger one alone,
// and a plan of w8a8 layers the smallest.
OptionTable RegionChain(int n) {
  OptionTable table;
  table.fixed.latency = 1;
  table.fixed.bytes = 100;
  for (int i = 0; i < n; ++i) {
    Layer layer;
    layer.name = "layer" + std::to_string(i);
    LayerOption fp32{"fp32", 10, 40, 0, 0}, fp16{"w16a16", 6, 20, 1, 0}, int8{"w8a8", 4, 30, 0.5, 0};
    int8.integer_activations = true;
    layer.options = {fp32, fp16, int8};
    table.layers.push_back(std::move(layer));
    if (i + 1 < n) table.region_savings.push_back({{i, i + 1}, 12});
  }
  table.region_savings.push_back({{0}, 5});
  return table;
}

SearchSpec Spec(std::vector<Objective> objectives, Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = std::move(objectives);
  spec.constraints = constraints;
  return spec;
}

}  // namespace

TEST_CASE("A region saves its bytes once when any layer bordering it runs integer", "[region]") {
  const OptionTable table = RegionChain(3);
  REQUIRE(ValidateOptionTable(table).ok());
  CHECK(Evaluate(table, {0, 0, 0})->size == 100 + 3 * 40);
  CHECK(Evaluate(table, {1, 1, 1})->size == 100 + 3 * 20);
  // Layer 0 integer: the region before it and the one after it.
  CHECK(Evaluate(table, {2, 0, 0})->size == 100 + 30 + 2 * 40 - 5 - 12);
  // Layers 0 and 1 integer: the region between them counts once.
  const ObjectiveValues v = Evaluate(table, {2, 2, 1}).value();
  CHECK(v.size == 100 + 2 * 30 + 20 - 5 - 12 - 12);
  CHECK(v.peak_memory == v.size);
  absl::StatusOr<PlanConversions> conversions = ConversionsOf(table, {2, 2, 1});
  REQUIRE(conversions.ok());
  CHECK(conversions->region_bytes == std::vector<double>{12, 12, 5});
  conversions = ConversionsOf(table, {0, 1, 0});
  REQUIRE(conversions.ok());
  CHECK(conversions->region_bytes == std::vector<double>{0, 0, 0});
}

TEST_CASE("A weight-only option that runs fused earns its regions' savings", "[region]") {
  // Layer 1's w8 option keeps float activations but runs fused when layers 0 and 2 run integer
  // (its input and output are quantized anyway): the region it alone borders is then quantized.
  OptionTable table;
  table.fixed.bytes = 10;
  LayerOption fp32{"fp32", 10, 40, 0, 0}, int8{"w8a8", 4, 10, 0.5, 0}, w8{"w8", 8, 10, 0.2, 0};
  int8.integer_activations = true;
  w8.fused_latency = 5;
  w8.boundary_latency = 0;
  table.layers = {Layer{"a", {fp32, int8}}, Layer{"b", {fp32, w8}}, Layer{"c", {fp32, int8}}};
  ActivationBoundary ab, bc;
  ab.producer = 0;
  ab.readers = {1};
  bc.producer = 1;
  bc.readers = {2};
  table.boundaries = {ab, bc};
  table.layers[1].input_boundary = 0;
  table.layers[1].output_boundary = 1;
  table.region_savings.push_back({{1}, 7});
  REQUIRE(ValidateOptionTable(table).ok());
  CHECK(Evaluate(table, {1, 1, 1})->size == 10 + 30 - 7);
  CHECK(Evaluate(table, {0, 1, 1})->size == 10 + 40 + 20);
  CHECK(Evaluate(table, {1, 0, 1})->size == 10 + 40 + 20);
  REQUIRE(NeedsPolish(table));
  CheckStrategiesReachTheFront(table, 20, Spec({Objective::kSize, Objective::kError}));
}

TEST_CASE("Region savings are validated", "[region]") {
  auto message = [](const OptionTable& t) { return std::string(ValidateOptionTable(t).message()); };
  OptionTable bad = RegionChain(3);
  bad.region_savings.push_back({{}, 1});  // borders no layer
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(message(bad), Catch::Matchers::Contains("region saving 3"));
  bad = RegionChain(3);
  bad.region_savings.push_back({{0, 3}, 1});  // no layer 3
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings.push_back({{-1}, 1});
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings.push_back({{1, 2, 1}, 1});  // layer 1 twice
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings[0].saving = -1;
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings[0].saving = std::numeric_limits<double>::quiet_NaN();
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings[0].saving = std::numeric_limits<double>::infinity();
  CHECK(ValidateOptionTable(bad).code() == absl::StatusCode::kInvalidArgument);
  bad = RegionChain(3);
  bad.region_savings[0].saving = 0;  // a region whose constants save nothing is fine
  CHECK(ValidateOptionTable(bad).ok());
}

TEST_CASE("Strategies reach the front of region savings the credits only estimate", "[region]") {
  const OptionTable table = RegionChain(6);
  REQUIRE(NeedsPolish(table));
  SECTION("latency and error") { CheckStrategiesReachTheFront(table, 150); }
  SECTION("size and error") { CheckStrategiesReachTheFront(table, 150, Spec({Objective::kSize, Objective::kError})); }
  SECTION("latency and size") {
    CheckStrategiesReachTheFront(table, 150, Spec({Objective::kLatency, Objective::kSize}));
  }
  SECTION("latency and error under a size limit") {
    Constraints limit;
    limit.max_size = 250;
    CheckStrategiesReachTheFront(table, 150, Spec({Objective::kLatency, Objective::kError}, limit));
  }
}

TEST_CASE("A size limit met only thanks to region savings is met", "[region]") {
  // Every layer w8a8: 100 + 6 x 30 - 5 - 5 x 12 = 215, below the 100 + 6 x 20 = 220 the options
  // alone sum to at their smallest. A limit between the two keeps only plans with integer layers:
  // the limit pre-checks must count what the regions can save.
  const OptionTable table = RegionChain(6);
  REQUIRE(Evaluate(table, {2, 2, 2, 2, 2, 2})->size == 215);
  testing::CheckSizeLimitIsMet(table, 218);
}

}  // namespace squeeze::search
