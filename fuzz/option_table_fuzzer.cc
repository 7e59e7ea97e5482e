// libFuzzer target: the search engine on any option table and spec. The input is read as a
// table (layers, options with any values — negative, huge, NaN included —, activation boundaries,
// narrowings, fixed costs) and a spec (objectives, limits, thinning). Each must be refused by
// ValidateOptionTable / ValidateSearchSpec with a status or searched: the exact strategy (with its
// polish) and NSGA-II answer a front or a status, never crash; and every candidate of a front
// they answer keeps the limits and is reported with the values Evaluate gives its choice.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/time/time.h"
#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
#include "search/engine/option_table.h"
#include "search/engine/polish.h"
#include "search/engine/search_spec.h"

namespace {

using squeeze::search::Objective;

// Mostly ordinary values, sometimes the edges a table must be refused for.
double Value(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 15)) {
    case 0:
      return -in.ConsumeFloatingPointInRange<double>(0, 10);
    case 1:
      return std::numeric_limits<double>::quiet_NaN();
    case 2:
      return std::numeric_limits<double>::infinity();
    case 3:
      return 0;
    case 4:
      return in.ConsumeFloatingPointInRange<double>(0, 1e12);
    default:
      return in.ConsumeFloatingPointInRange<double>(0, 10);
  }
}

squeeze::search::OptionTable Table(FuzzedDataProvider& in) {
  squeeze::search::OptionTable table;
  const int layers = in.ConsumeIntegralInRange<int>(0, 12);
  for (int l = 0; l < layers; ++l) {
    squeeze::search::Layer layer;
    const int options = in.ConsumeIntegralInRange<int>(0, 6);
    for (int o = 0; o < options; ++o) {
      squeeze::search::LayerOption option;
      option.label = in.ConsumeBool() ? "w8a8" : "fp32";
      option.latency = Value(in);
      option.bytes = Value(in);
      option.error = Value(in);
      option.activation_bytes = Value(in);
      option.integer_activations = in.ConsumeBool();
      option.boundary_latency = Value(in);
      option.fused_latency = in.ConsumeBool() ? -1 : Value(in);
      option.removed_channels = in.ConsumeBool() ? 0 : in.ConsumeFloatingPointInRange<double>(-0.5, 1.5);
      option.narrowing_credit = in.ConsumeBool() ? 0 : Value(in);
      option.narrowable_bytes = in.ConsumeBool() ? 0 : Value(in);
      option.bytes_credit = in.ConsumeBool() ? 0 : Value(in);
      layer.options.push_back(option);
    }
    layer.input_boundary = in.ConsumeIntegralInRange<int32_t>(-1, 4);
    layer.output_boundary = in.ConsumeIntegralInRange<int32_t>(-1, 4);
    table.layers.push_back(std::move(layer));
  }
  const int boundaries = in.ConsumeIntegralInRange<int>(0, 4);
  for (int b = 0; b < boundaries; ++b) {
    squeeze::search::ActivationBoundary boundary;
    boundary.producer = in.ConsumeIntegralInRange<int32_t>(-2, layers);
    for (int r = in.ConsumeIntegralInRange<int>(0, 3); r > 0; --r) {
      boundary.readers.push_back(in.ConsumeIntegralInRange<int32_t>(-1, layers));
    }
    boundary.float_readers = in.ConsumeBool();
    boundary.quantize_latency = Value(in);
    boundary.dequantize_latency = Value(in);
    boundary.layout_producer = in.ConsumeIntegralInRange<int32_t>(-1, layers);
    if (in.ConsumeBool()) boundary.layout_readers.push_back(in.ConsumeIntegralInRange<int32_t>(-1, layers));
    boundary.float_layout_reader = in.ConsumeBool();
    boundary.transpose_latency = Value(in);
    boundary.pool_latency = in.ConsumeBool() ? 0 : Value(in);
    if (in.ConsumeBool()) {
      boundary.narrowed_by.emplace_back(in.ConsumeIntegralInRange<int32_t>(-1, layers),
                                        in.ConsumeFloatingPointInRange<double>(-0.5, 1.5));
    }
    if (in.ConsumeBool()) {
      squeeze::search::ConversionCosts costs;
      costs.kept = in.ConsumeFloatingPointInRange<double>(-0.5, 1.5);
      costs.quantize_latency = Value(in);
      costs.dequantize_latency = Value(in);
      boundary.narrower.push_back(costs);
    }
    table.boundaries.push_back(std::move(boundary));
  }
  for (int n = in.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
    squeeze::search::Narrowing narrowing;
    narrowing.pruner = in.ConsumeIntegralInRange<int32_t>(-1, layers);
    narrowing.reader = in.ConsumeIntegralInRange<int32_t>(-1, layers);
    narrowing.share = in.ConsumeFloatingPointInRange<double>(-0.5, 1.5);
    table.narrowings.push_back(narrowing);
  }
  for (int n = in.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
    squeeze::search::RegionSaving region;
    for (int k = in.ConsumeIntegralInRange<int>(0, 3); k > 0; --k) {
      region.layers.push_back(in.ConsumeIntegralInRange<int32_t>(-1, layers));
    }
    region.saving = in.ConsumeBool() ? -1 : Value(in);
    table.region_savings.push_back(std::move(region));
  }
  table.fixed.latency = Value(in);
  table.fixed.bytes = Value(in);
  table.fixed.activation_bytes = Value(in);
  // Options whose boundary_latency is below what their boundaries can cost, or with more narrowable
  // bytes than bytes, are refused; most inputs raise the one to the bound and cap the other so the
  // search itself is reached.
  if (in.ConsumeBool()) {
    const std::vector<double> bounds = squeeze::search::BoundaryBounds(table);
    for (size_t l = 0; l < table.layers.size() && l < bounds.size(); ++l) {
      for (squeeze::search::LayerOption& o : table.layers[l].options) {
        if (std::isfinite(bounds[l]) && !(o.boundary_latency >= bounds[l])) o.boundary_latency = bounds[l];
        if (o.narrowable_bytes > o.bytes) o.narrowable_bytes = o.bytes;
      }
    }
  }
  return table;
}

squeeze::search::SearchSpec Spec(FuzzedDataProvider& in) {
  squeeze::search::SearchSpec spec;
  spec.objectives.clear();
  for (int o = in.ConsumeIntegralInRange<int>(0, 4); o > 0; --o) {
    spec.objectives.push_back(static_cast<Objective>(in.ConsumeIntegralInRange<int>(0, 3)));
  }
  if (in.ConsumeBool()) spec.constraints.max_latency = Value(in);
  if (in.ConsumeBool()) spec.constraints.max_size = Value(in);
  if (in.ConsumeBool()) spec.constraints.max_error = Value(in);
  if (in.ConsumeBool()) spec.constraints.max_peak_memory = Value(in);
  spec.max_candidates = in.ConsumeIntegralInRange<size_t>(0, 300);
  return spec;
}

// A front's candidates keep the limits and carry the values their choices evaluate to.
void CheckFront(const squeeze::search::OptionTable& table, const squeeze::search::SearchSpec& spec,
                const squeeze::search::Front& front) {
  for (const squeeze::search::Candidate& c : front.candidates) {
    absl::StatusOr<squeeze::search::ObjectiveValues> values = squeeze::search::Evaluate(table, c.choice);
    if (!values.ok()) __builtin_trap();
    auto same = [](double a, double b) {
      return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
    };
    if (!same(values->latency, c.values.latency) || !same(values->size, c.values.size) ||
        !same(values->error, c.values.error)) {
      __builtin_trap();
    }
    auto within = [](const std::optional<double>& limit, double v) {
      return !limit || v <= *limit * (1 + 1e-9) + 1e-12;
    };
    if (!within(spec.constraints.max_latency, c.values.latency) || !within(spec.constraints.max_size, c.values.size) ||
        !within(spec.constraints.max_error, c.values.error) ||
        !within(spec.constraints.max_peak_memory, c.values.peak_memory)) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const squeeze::search::OptionTable table = Table(in);
  const squeeze::search::SearchSpec spec = Spec(in);
  const bool valid = squeeze::search::ValidateOptionTable(table).ok() && squeeze::search::ValidateSearchSpec(spec).ok();
  // Small grids and budgets: the fuzzer looks for crashes and wrong answers, not speed.
  squeeze::search::ExactOptions exact;
  exact.cells_1d = 1 << 10;
  exact.cells_per_axis_2d = 64;
  exact.size_slices = 2;
  exact.slice_cells = 1 << 8;
  absl::StatusOr<squeeze::search::Front> front = squeeze::search::SolveExact(table, spec, exact);
  if (front.ok()) {
    if (!valid) __builtin_trap();  // an invalid table or spec must be refused
    CheckFront(table, spec, *front);
    squeeze::search::PolishOptions polish;
    polish.population = 8;
    polish.generations = 3;
    polish.time_budget = absl::Milliseconds(200);
    absl::StatusOr<squeeze::search::Front> polished = squeeze::search::Polish(table, spec, *std::move(front), polish);
    if (polished.ok()) CheckFront(table, spec, *polished);
  }
  squeeze::search::Nsga2Options nsga2;
  nsga2.population = 8;
  nsga2.generations = 3;
  nsga2.time_budget = absl::Milliseconds(200);
  absl::StatusOr<squeeze::search::Front> evolved = squeeze::search::SolveNsga2(table, spec, nsga2);
  if (evolved.ok()) {
    if (!valid) __builtin_trap();
    CheckFront(table, spec, *evolved);
  }
  return 0;
}
