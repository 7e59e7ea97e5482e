#include "search/engine/option_table.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "search/engine/internal/evaluation.h"

namespace squeeze::search {
namespace {

bool Valid(double value) { return std::isfinite(value) && value >= 0; }

// InvalidArgument unless `choice` has one option index in range per layer.
absl::Status CheckChoice(const OptionTable& table, const Choice& choice) {
  if (choice.size() != table.layers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("choice has ", choice.size(), " entries; the table has ", table.layers.size(), " layers"));
  }
  for (size_t i = 0; i < choice.size(); ++i) {
    if (choice[i] >= table.layers[i].options.size()) {
      return absl::InvalidArgumentError(absl::StrCat("choice for layer ", i, " is ", choice[i], "; the layer has ",
                                                     table.layers[i].options.size(), " options"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

ConversionCosts ActivationBoundary::CostsAt(double kept) const {
  ConversionCosts whole{1, quantize_latency, dequantize_latency, transpose_latency, pool_latency};
  if (kept >= 1) return whole;
  kept = std::max(0.0, kept);
  // The narrower widths bracketing `kept`; the whole tensor above them, nothing at 0.
  ConversionCosts lo{0, 0, 0, 0, 0}, hi = whole;
  for (const ConversionCosts& c : narrower) {
    if (c.kept <= kept) lo = c;
    if (c.kept >= kept) {
      hi = c;
      break;
    }
  }
  if (hi.kept - lo.kept <= 1e-12) return hi;
  const double t = (kept - lo.kept) / (hi.kept - lo.kept);
  auto mix = [t](double a, double b) { return a + t * (b - a); };
  return {kept, mix(lo.quantize_latency, hi.quantize_latency), mix(lo.dequantize_latency, hi.dequantize_latency),
          mix(lo.transpose_latency, hi.transpose_latency), mix(lo.pool_latency, hi.pool_latency)};
}

absl::Status ValidateOptionTable(const OptionTable& table) {
  if (table.layers.empty()) return absl::InvalidArgumentError("option table: no layers");
  const FixedCost& f = table.fixed;
  if (!Valid(f.latency) || !Valid(f.bytes) || !Valid(f.activation_bytes)) {
    return absl::InvalidArgumentError("option table: fixed cost must be finite and >= 0");
  }
  for (size_t i = 0; i < table.layers.size(); ++i) {
    const Layer& layer = table.layers[i];
    if (layer.options.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name, ") has no options"));
    }
    if (layer.options.size() > kMaxOptionsPerLayer) {
      return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name, ") has more than ",
                                                     kMaxOptionsPerLayer, " options"));
    }
    for (size_t j = 0; j < layer.options.size(); ++j) {
      const LayerOption& o = layer.options[j];
      if (!Valid(o.latency) || !Valid(o.bytes) || !Valid(o.error) || !Valid(o.activation_bytes) ||
          !(o.fused_latency == -1 || Valid(o.fused_latency)) || (o.fused_latency >= 0 && o.integer_activations) ||
          !(o.removed_channels >= 0 && o.removed_channels < 1) || !Valid(o.narrowing_credit) ||
          !Valid(o.narrowable_bytes) || !Valid(o.bytes_credit)) {
        return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name, ") option ", j,
                                                       " has a negative or non-finite value"));
      }
      // Narrowing takes at most all of them: no plan stores less than nothing for a layer.
      if (o.narrowable_bytes > o.bytes) {
        return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", layer.name, ") option ", j,
                                                       " has more narrowable bytes than bytes"));
      }
    }
  }
  const int32_t n = static_cast<int32_t>(table.layers.size());
  const int32_t boundaries = static_cast<int32_t>(table.boundaries.size());
  for (size_t i = 0; i < table.layers.size(); ++i) {
    const Layer& layer = table.layers[i];
    for (int32_t b : {layer.input_boundary, layer.output_boundary}) {
      if (b < -1 || b >= boundaries) {
        return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " names no boundary"));
      }
    }
  }
  for (size_t k = 0; k < table.boundaries.size(); ++k) {
    const ActivationBoundary& b = table.boundaries[k];
    if (!Valid(b.quantize_latency) || !Valid(b.dequantize_latency) || !Valid(b.transpose_latency) ||
        !Valid(b.pool_latency) || b.producer < -1 || b.producer >= n || b.layout_producer < -1 ||
        b.layout_producer >= n) {
      return absl::InvalidArgumentError(absl::StrCat("option table: boundary ", k, " is malformed"));
    }
    bool malformed = false;
    for (const auto& [layer, share] : b.narrowed_by) malformed |= layer < 0 || layer >= n || !(share > 0 && share <= 1);
    double previous = 0;
    for (const ConversionCosts& c : b.narrower) {
      malformed |= !(c.kept > previous && c.kept < 1) || !Valid(c.quantize_latency) || !Valid(c.dequantize_latency) ||
                   !Valid(c.transpose_latency) || !Valid(c.pool_latency) || c.quantize_latency > b.quantize_latency ||
                   c.dequantize_latency > b.dequantize_latency || c.transpose_latency > b.transpose_latency ||
                   c.pool_latency > b.pool_latency;
      previous = c.kept;
    }
    if (malformed) return absl::InvalidArgumentError(absl::StrCat("option table: boundary ", k, " is malformed"));
    for (const std::vector<int32_t>* layers : {&b.readers, &b.layout_readers}) {
      for (int32_t r : *layers) {
        if (r < 0 || r >= n)
          return absl::InvalidArgumentError(absl::StrCat("option table: boundary ", k, " names no layer"));
      }
    }
  }
  std::vector<double> narrowed_share(table.layers.size(), 0);
  for (size_t k = 0; k < table.narrowings.size(); ++k) {
    const Narrowing& x = table.narrowings[k];
    if (x.pruner < 0 || x.pruner >= n || x.reader < 0 || x.reader >= n || x.pruner == x.reader ||
        !(x.share > 0 && x.share <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat("option table: narrowing ", k, " is malformed"));
    }
    narrowed_share[static_cast<size_t>(x.reader)] += x.share;
    if (narrowed_share[static_cast<size_t>(x.reader)] > 1 + 1e-9) {
      return absl::InvalidArgumentError(absl::StrCat("option table: layer ", x.reader, " (",
                                                     table.layers[static_cast<size_t>(x.reader)].name,
                                                     ") is narrowed by shares that sum above 1"));
    }
  }
  for (size_t k = 0; k < table.region_savings.size(); ++k) {
    const RegionSaving& r = table.region_savings[k];
    bool malformed = r.layers.empty() || !Valid(r.saving);
    std::vector<char> seen(table.layers.size(), 0);
    for (int32_t l : r.layers) {
      if (l < 0 || l >= n || seen[static_cast<size_t>(l)]) {
        malformed = true;
        break;
      }
      seen[static_cast<size_t>(l)] = 1;
    }
    if (malformed) return absl::InvalidArgumentError(absl::StrCat("option table: region saving ", k, " is malformed"));
  }
  // Each option's bound covers what its boundaries can cost.
  const std::vector<double> bound = BoundaryBounds(table);
  for (size_t i = 0; i < table.layers.size(); ++i) {
    for (const LayerOption& o : table.layers[i].options) {
      if (!Valid(o.boundary_latency)) {
        return absl::InvalidArgumentError(
            absl::StrCat("option table: layer ", i, " has a non-finite boundary latency"));
      }
      // Running fused, an option acts as an integer one, and may be slower than it is alone.
      const double least = o.integer_activations  ? bound[i]
                           : o.fused_latency >= 0 ? bound[i] + std::max(0.0, o.fused_latency - o.latency)
                                                  : 0;
      if (o.boundary_latency < least * (1 - 1e-9)) {
        return absl::InvalidArgumentError(absl::StrCat("option table: layer ", i, " (", table.layers[i].name,
                                                       ") bounds its boundary latency below what they cost"));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<double> BoundaryBounds(const OptionTable& table) {
  std::vector<double> bound(table.layers.size(), 0);
  auto in_range = [&](int32_t i) { return i >= 0 && static_cast<size_t>(i) < bound.size(); };
  for (const ActivationBoundary& b : table.boundaries) {
    if (in_range(b.producer)) {
      bound[b.producer] += b.dequantize_latency + (b.producer == b.layout_producer ? b.transpose_latency : 0);
    }
    for (int32_t r : b.readers) {
      if (in_range(r)) bound[r] += b.quantize_latency + b.transpose_latency + b.pool_latency;
    }
  }
  return bound;
}

absl::StatusOr<PlanConversions> ConversionsOf(const OptionTable& table, const Choice& choice) {
  if (absl::Status valid = CheckChoice(table, choice); !valid.ok()) return valid;
  auto option = [&](size_t i) -> const LayerOption& { return table.layers[i].options[choice[i]]; };
  std::vector<char> runs_integer;
  internal::RunsInteger(
      table.boundaries, table.layers.size(), [&](size_t i) { return option(i).integer_activations; },
      [&](size_t i) { return option(i).fused_latency >= 0; },
      [&](size_t i) {
        return std::array<int32_t, 2>{table.layers[i].input_boundary, table.layers[i].output_boundary};
      },
      &runs_integer);
  PlanConversions out;
  out.runs_integer.assign(runs_integer.begin(), runs_integer.end());
  auto removed = [&](size_t i) { return option(i).removed_channels; };
  for (const ActivationBoundary& b : table.boundaries) {
    out.boundary_latency.push_back(internal::BoundaryCost(
        b, [&](size_t i) { return runs_integer[i] != 0; }, removed));
  }
  out.narrowed_latency.assign(table.layers.size(), 0);
  out.narrowed_bytes.assign(table.layers.size(), 0);
  auto latency = [&](size_t i) { return internal::LatencyInPlan(option(i), runs_integer[i] != 0); };
  auto narrowable = [&](size_t i) { return option(i).narrowable_bytes; };
  for (const Narrowing& x : table.narrowings) {
    out.narrowed_latency[static_cast<size_t>(x.reader)] += internal::NarrowedBy(x, latency, removed);
    out.narrowed_bytes[static_cast<size_t>(x.reader)] += internal::NarrowedBy(x, narrowable, removed);
  }
  for (const RegionSaving& r : table.region_savings) {
    out.region_bytes.push_back(internal::RegionSaved(r, [&](size_t i) { return runs_integer[i] != 0; }));
  }
  return out;
}

absl::StatusOr<ObjectiveValues> Evaluate(const OptionTable& table, const Choice& choice) {
  if (absl::Status valid = CheckChoice(table, choice); !valid.ok()) return valid;
  return internal::EvaluateUnchecked(table, choice.data());
}

}  // namespace squeeze::search
