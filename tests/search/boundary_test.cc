// Boundary conversions between activation domains (OptionTable::boundaries): exact values, what
// the strategies plan with, and the brute-force oracle.
#include <catch2/catch.hpp>

#include "tests/search/strategy_checks.h"

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

using testing::CheckStrategiesReachTheFront;
using testing::LatencyError;

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

// Chain(n) on a device whose integer layers run in another layout: each tensor carries the layout
// of the layer before it (the input and the last output the float layout), and reaches the next.
OptionTable LayoutChain(int n, double transpose) {
  OptionTable table = Chain(n);
  for (int i = 0; i <= n; ++i) {
    ActivationBoundary& b = table.boundaries[i];
    b.layout_producer = i - 1;
    if (i < n) b.layout_readers = {i};
    b.float_layout_reader = i == n;
    b.transpose_latency = transpose;
  }
  const std::vector<double> bound = BoundaryBounds(table);
  for (size_t i = 0; i < table.layers.size(); ++i) table.layers[i].options[1].boundary_latency = bound[i];
  return table;
}

TEST_CASE("A layout transpose is paid once where integer and float layouts meet", "[boundary]") {
  constexpr double kTranspose = 0.5;
  const OptionTable table = LayoutChain(4, kTranspose);
  REQUIRE(ValidateOptionTable(table).ok());
  // Float throughout: no conversion, no transpose.
  CHECK(Evaluate(table, {0, 0, 0, 0})->latency == Approx(1 + 40));
  // All integer: into the integer layout at the input, back at the output, none between.
  CHECK(Evaluate(table, {1, 1, 1, 1})->latency == Approx(1 + 16 + kQuantize + kDequantize + 2 * kTranspose));
  // Where it goes: the input and the output tensor pay, the ones between do not.
  absl::StatusOr<PlanConversions> where = ConversionsOf(table, {1, 1, 1, 1});
  REQUIRE(where.ok());
  CHECK(where->runs_integer == std::vector<bool>(4, true));
  CHECK(where->boundary_latency == std::vector<double>{kQuantize + kTranspose, 0, 0, 0, kDequantize + kTranspose});
  CHECK(absl::IsInvalidArgument(ConversionsOf(table, {1, 1}).status()));
  // Two islands of integer layers: two transposes each.
  CHECK(Evaluate(table, {1, 0, 1, 0})->latency == Approx(1 + 28 + 2 * (kQuantize + kDequantize) + 4 * kTranspose));
  // A tensor reaching a float layer through layout-neutral ops (not as its quantized reader):
  // the integer producer's output is transposed back though nothing dequantizes it as a reader.
  OptionTable through = table;
  through.boundaries[2].layout_readers = {2, 3};
  CHECK(Evaluate(through, {1, 1, 1, 0})->latency == Approx(Evaluate(table, {1, 1, 1, 0})->latency + kTranspose));
  // Every option's bound covers its transposes: what the exact strategy plans with.
  const std::vector<double> bound = BoundaryBounds(table);
  CHECK(bound[0] == Approx(kQuantize + kDequantize + 2 * kTranspose));
  // A tensor whose layout comes from a layer upstream of the quantized one (through neutral ops)
  // is transposed on the way into an integer reader only when that layer runs float.
  OptionTable upstream = table;
  upstream.boundaries[2].producer = -1;
  upstream.boundaries[2].layout_producer = 0;
  REQUIRE(ValidateOptionTable(upstream).ok());
  CHECK(Evaluate(upstream, {0, 0, 1, 0})->latency - Evaluate(upstream, {0, 0, 0, 0})->latency ==
        Approx(4 - 10 + kQuantize + kDequantize + 2 * kTranspose));
  CHECK(Evaluate(upstream, {1, 0, 1, 0})->latency - Evaluate(upstream, {1, 0, 0, 0})->latency ==
        Approx(4 - 10 + kQuantize + kDequantize + kTranspose));
}

TEST_CASE("A max pool between a float layer and an integer one is paid on uint8", "[boundary]") {
  // Layer 1 reads a pooled tensor whose layout comes from layer 0 through the pool.
  constexpr double kTranspose = 0.5, kPool = 2;
  OptionTable table = LayoutChain(4, kTranspose);
  table.boundaries[1].producer = -1;
  table.boundaries[1].layout_producer = 0;
  table.boundaries[1].pool_latency = kPool;
  const std::vector<double> bound = BoundaryBounds(table);
  for (size_t i = 0; i < table.layers.size(); ++i) table.layers[i].options[1].boundary_latency = bound[i];
  REQUIRE(ValidateOptionTable(table).ok());
  CHECK(bound[1] == Approx(kQuantize + kTranspose + kPool + kDequantize + kTranspose));
  // Layer 0 float, layer 1 integer: the pool runs on uint8 in the float layout.
  const double float_before = Evaluate(table, {0, 1, 0, 0})->latency;
  OptionTable no_pool = table;
  no_pool.boundaries[1].pool_latency = 0;
  CHECK(float_before == Approx(Evaluate(no_pool, {0, 1, 0, 0})->latency + kPool));
  // Both integer: the pool runs in the integer layout, at no extra cost; both float: none either.
  CHECK(Evaluate(table, {1, 1, 0, 0})->latency == Approx(Evaluate(no_pool, {1, 1, 0, 0})->latency));
  CHECK(Evaluate(table, {0, 0, 0, 0})->latency == Approx(Evaluate(no_pool, {0, 0, 0, 0})->latency));
  table.boundaries[1].pool_latency = -1;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(table)));
}

TEST_CASE("Pruning a tensor's channels shrinks its conversions, at the costs predicted for that width", "[boundary]") {
  // Layer 0 may drop half its output channels; the tensor after it (read by integer layer 1) is
  // narrowed with it, and its pool is priced at that width: a quarter of the whole, not a half,
  // as a uint8 pool whose input now fits the cache is.
  constexpr double kTranspose = 0.5, kPool = 8;
  OptionTable table = LayoutChain(3, kTranspose);
  LayerOption pruned{"fp32 channel 50%", 6, 20, 0.5, 0};
  pruned.removed_channels = 0.5;
  table.layers[0].options.push_back(pruned);
  ActivationBoundary& b = table.boundaries[1];
  b.producer = -1;
  b.layout_producer = 0;
  b.pool_latency = kPool;
  b.narrowed_by = {{0, 1.0}};
  b.narrower = {ConversionCosts{0.5, kQuantize / 2, kDequantize / 2, kTranspose / 2, kPool / 4}};
  const std::vector<double> bound = BoundaryBounds(table);
  for (size_t i = 0; i < table.layers.size(); ++i) table.layers[i].options[1].boundary_latency = bound[i];
  REQUIRE(ValidateOptionTable(table).ok());
  const double whole = Evaluate(table, {0, 1, 0})->latency;
  const double narrow = Evaluate(table, {2, 1, 0})->latency;
  // Layer 0's own time drops 10 -> 6; the quantization, transpose and pool into layer 1 shrink to
  // the narrower costs; layer 1's output is not narrowed by layer 0 and costs as before.
  CHECK(whole - narrow == Approx(4 + kQuantize / 2 + kTranspose / 2 + kPool * 3 / 4));
  // Between the listed widths the costs are interpolated; below them, scaled down proportionally.
  CHECK(b.CostsAt(0.75).pool_latency == Approx((kPool / 4 + kPool) / 2));
  CHECK(b.CostsAt(0.25).pool_latency == Approx(kPool / 8));
  CHECK(b.CostsAt(1).quantize_latency == Approx(kQuantize));
  // Nothing paid, nothing narrowed: both float.
  CHECK(Evaluate(table, {0, 0, 0})->latency - Evaluate(table, {2, 0, 0})->latency == Approx(4));
  OptionTable bad = table;
  bad.boundaries[1].narrower[0].pool_latency = 2 * kPool;  // above the whole tensor's
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = table;
  bad.boundaries[1].narrowed_by = {{0, 1.5}};
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = table;
  bad.boundaries[1].narrower.push_back(ConversionCosts{0.25, 0, 0, 0, 0});  // not ascending
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = table;
  bad.layers[0].options[2].removed_channels = 1;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
}

TEST_CASE("An option that keeps more channels never stands in for one that keeps fewer", "[boundary]") {
  // Layer 0 is float only; pruning it does not speed it up (10.5 against 10, same size and error),
  // but it narrows the pooled tensor integer layer 1 reads (pool 8 -> 4, quantization 3 -> 1.5).
  // Dropping it as dominated would lose the fastest plan: 1 + 10.5 + 1 + 1.5 + 4 + 2 = 20 against
  // all float's 21.
  constexpr double kPool = 8;
  OptionTable table = LayoutChain(2, 0);
  table.layers[0].options.resize(1);
  LayerOption pruned{"fp32 channel 50%", 10.5, 40, 0, 0};
  pruned.removed_channels = 0.5;
  table.layers[0].options.push_back(pruned);
  table.layers[1].options[1].latency = 1;
  ActivationBoundary& b = table.boundaries[1];
  b.producer = -1;
  b.layout_producer = 0;
  b.pool_latency = kPool;
  b.narrowed_by = {{0, 1.0}};
  const std::vector<double> bound = BoundaryBounds(table);
  table.layers[1].options[1].boundary_latency = bound[1];
  REQUIRE(ValidateOptionTable(table).ok());
  REQUIRE(Evaluate(table, {1, 1})->latency == Approx(20));
  REQUIRE(testing::BruteForceFront(table, LatencyError()).points.front()[0] == Approx(20));
  CheckStrategiesReachTheFront(table, 60);
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

TEST_CASE("With transposes counted, polishing still reaches the exact front", "[boundary]") {
  const OptionTable table = LayoutChain(6, 0.5);
  const SearchSpec spec = LatencyError();
  const testing::BruteForce expected = testing::BruteForceFront(table, spec);
  REQUIRE(expected.points.front()[0] == Approx(1 + 24 + kQuantize + kDequantize + 1.0));
  absl::StatusOr<Front> exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  REQUIRE(NeedsPolish(table));
  absl::StatusOr<Front> polished = Polish(table, spec, *exact);
  REQUIRE(polished.ok());
  CHECK(polished->Points() == expected.points);
}

// Chain(n) whose layers may also keep float activations with int8 weights (latency 12): between
// two tensors its neighbours quantize, the runtime fuses such a layer into an integer kernel (4).
OptionTable FusingChain(int n) {
  OptionTable table = Chain(n);
  const std::vector<double> bound = BoundaryBounds(table);
  for (int i = 0; i < n; ++i) {
    Layer& layer = table.layers[i];
    layer.input_boundary = i;
    layer.output_boundary = i + 1;
    LayerOption weight_only{"w8a32", 12, 10, 0.5, 0};
    weight_only.fused_latency = 4;
    weight_only.boundary_latency = bound[i];
    layer.options.push_back(weight_only);
  }
  return table;
}

TEST_CASE("A weight-only layer between quantized tensors runs fused, as an integer one", "[boundary]") {
  const OptionTable table = FusingChain(3);
  REQUIRE(ValidateOptionTable(table).ok());
  // Between two uint8 layers: fused (4), and no conversion around it.
  CHECK(Evaluate(table, {1, 2, 1})->latency == Approx(1 + 4 + 4 + 4 + kQuantize + kDequantize));
  // A float neighbour leaves one side float: as planned (12), converting where domains differ.
  CHECK(Evaluate(table, {0, 2, 1})->latency == Approx(1 + 10 + 12 + 4 + kQuantize + kDequantize));
  // Two weight-only layers in a row quantize nothing between them: neither fuses.
  const OptionTable four = FusingChain(4);
  CHECK(Evaluate(four, {1, 2, 2, 1})->latency == Approx(1 + 4 + 12 + 12 + 4 + 2 * (kQuantize + kDequantize)));
  // A fused option slower than it is alone must be bounded for it.
  OptionTable slow = table;
  slow.layers[1].options[2].fused_latency = 20;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(slow)));
  slow.layers[1].options[2].boundary_latency += 8;
  CHECK(ValidateOptionTable(slow).ok());
  // A fused layer that is also integer-declared, or a boundary index out of range, is malformed.
  OptionTable bad = table;
  bad.layers[0].options[1].fused_latency = 3;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
  bad = table;
  bad.layers[2].output_boundary = 9;
  CHECK(absl::IsInvalidArgument(ValidateOptionTable(bad)));
}

TEST_CASE("Strategies find the plans that fuse weight-only layers", "[boundary]") {
  CheckStrategiesReachTheFront(FusingChain(5), 150);
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
  for (ActivationBoundary& b : table.boundaries) b.quantize_latency = b.dequantize_latency = b.transpose_latency = 0;
  CHECK_FALSE(NeedsPolish(table));
  table = testing::RandomTable(4, 3, 7);
  CHECK_FALSE(NeedsPolish(table));
}

}  // namespace
}  // namespace squeeze::search
