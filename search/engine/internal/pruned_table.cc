#include "search/engine/internal/pruned_table.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include "search/engine/internal/evaluation.h"

namespace squeeze::search::internal {
namespace {

// Which per-option quantities the search looks at.
struct Relevant {
  bool latency = false, bytes = false, error = false, activation = false;
};

Relevant RelevantQuantities(const SearchSpec& spec) {
  Relevant r;
  for (Objective objective : spec.objectives) {
    switch (objective) {
      case Objective::kLatency:
        r.latency = true;
        break;
      case Objective::kSize:
        r.bytes = true;
        break;
      case Objective::kError:
        r.error = true;
        break;
      case Objective::kPeakMemory:
        r.bytes = r.activation = true;
        break;
    }
  }
  const Constraints& c = spec.constraints;
  r.latency = r.latency || c.max_latency.has_value();
  r.bytes = r.bytes || c.max_size.has_value() || c.max_peak_memory.has_value();
  r.error = r.error || c.max_error.has_value();
  r.activation = r.activation || c.max_peak_memory.has_value();
  return r;
}

std::array<double, 4> Quantities(const LayerOption& o) { return {o.latency, o.bytes, o.error, o.activation_bytes}; }

// The least each quantity can be in some plan (a fused option's latency may be lower).
std::array<double, 4> LeastQuantities(const LayerOption& o) {
  return {o.least_latency(), o.bytes, o.error, o.activation_bytes};
}

std::array<bool, 4> Mask(const Relevant& r) { return {r.latency, r.bytes, r.error, r.activation}; }

// a is at least as good as b in every relevant quantity.
bool NoWorse(const std::array<double, 4>& a, const std::array<double, 4>& b, const std::array<bool, 4>& mask) {
  for (int k = 0; k < 4; ++k) {
    if (mask[k] && a[k] > b[k]) return false;
  }
  return true;
}

bool SameRelevant(const std::array<double, 4>& a, const std::array<double, 4>& b, const std::array<bool, 4>& mask) {
  return NoWorse(a, b, mask) && NoWorse(b, a, mask);
}

}  // namespace

PrunedTable PrunedTable::Build(const OptionTable& table, const SearchSpec& spec) {
  PrunedTable result;
  result.fixed_ = table.fixed;
  result.boundaries_ = table.boundaries;
  result.narrowings_ = table.narrowings;
  result.region_savings_ = table.region_savings;
  for (const Layer& layer : table.layers) result.io_.push_back({layer.input_boundary, layer.output_boundary});
  const Relevant relevant = RelevantQuantities(spec);
  const std::array<bool, 4> mask = Mask(relevant);
  const Constraints& c = spec.constraints;
  const size_t n = table.layers.size();

  // Per-layer minima, to test each option against the limits with every other layer cheapest.
  std::vector<std::array<double, 4>> minima(n);
  // Narrowed inputs can take up to MostNarrowedLatency and MostNarrowedBytes off any plan, and
  // quantized regions MostRegionSaving.
  std::array<double, 4> total_min = {table.fixed.latency - MostNarrowedLatency(table),
                                     table.fixed.bytes - MostNarrowedBytes(table) - MostRegionSaving(table), 0, 0};
  const std::vector<std::vector<double>> region_credit = RegionCredits(table);
  // How far any plan narrows each layer: an option's bytes lie between its own and those narrowed
  // that far.
  const std::vector<double> most_narrowed = MostNarrowedShares(table);
  for (size_t i = 0; i < n; ++i) {
    std::array<double, 4> m;
    m.fill(std::numeric_limits<double>::infinity());
    for (const LayerOption& o : table.layers[i].options) {
      const auto q = LeastQuantities(o);
      for (int k = 0; k < 4; ++k) m[k] = std::min(m[k], q[k]);
    }
    minima[i] = m;
    for (int k = 0; k < 3; ++k) total_min[k] += m[k];
  }
  // A relative slack keeps options that are feasible only up to summation-order rounding.
  auto exceeds = [](double value, const std::optional<double>& limit) {
    return limit && value > *limit + 1e-9 * std::abs(*limit);
  };

  result.offsets_.push_back(0);
  result.nearest_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::vector<LayerOption>& options = table.layers[i].options;
    result.options_total_ += static_cast<int64_t>(options.size());
    std::vector<size_t> alive;
    for (size_t j = 0; j < options.size(); ++j) {
      const auto q = LeastQuantities(options[j]);
      const double latency = total_min[0] - minima[i][0] + q[0];
      const double bytes = total_min[1] - minima[i][1] + q[1];
      const double error = total_min[2] - minima[i][2] + q[2];
      // Other layers' activations can only raise the peak.
      const double peak = bytes + std::max(q[3], table.fixed.activation_bytes);
      if (exceeds(latency, c.max_latency) || exceeds(bytes, c.max_size) || exceeds(error, c.max_error) ||
          exceeds(peak, c.max_peak_memory)) {
        continue;
      }
      alive.push_back(j);
    }
    // Drop options another alive option is no worse than (strictly better somewhere, or equal
    // and listed first).
    std::vector<size_t> kept;
    auto narrowed_bytes = [&](const LayerOption& o) { return o.bytes - most_narrowed[i] * o.narrowable_bytes; };
    for (size_t a : alive) {
      const auto qa = Quantities(options[a]);
      const double na = narrowed_bytes(options[a]);
      bool dominated = false;
      for (size_t b : alive) {
        if (b == a) continue;
        const auto qb = Quantities(options[b]);
        if (options[b].integer_activations != options[a].integer_activations) continue;
        // Nor does one that keeps more channels: its tensors' conversions cost more.
        if (options[b].removed_channels < options[a].removed_channels) continue;
        // A fused option runs as an integer one: only a fusable option at least as fast fused
        // stands in for it.
        if ((options[b].fused_latency >= 0) != (options[a].fused_latency >= 0) ||
            options[b].fused_latency > options[a].fused_latency) {
          continue;
        }
        // Bytes are linear in how far a plan narrows the layer: no worse at both ends is no worse.
        const double nb = narrowed_bytes(options[b]);
        if (!NoWorse(qb, qa, mask) || (relevant.bytes && nb > na)) continue;
        if (!SameRelevant(qb, qa, mask) || (relevant.bytes && nb < na) || b < a) {
          dominated = true;
          break;
        }
      }
      if (!dominated) kept.push_back(a);
    }
    std::sort(kept.begin(), kept.end(), [&](size_t a, size_t b) {
      const LayerOption& x = options[a];
      const LayerOption& y = options[b];
      return std::make_tuple(x.error, x.latency, x.bytes, x.activation_bytes, a) <
             std::make_tuple(y.error, y.latency, y.bytes, y.activation_bytes, b);
    });
    if (kept.empty()) result.feasible_ = false;
    result.max_count_ = std::max(result.max_count_, kept.size());
    for (size_t j : kept) {
      const LayerOption& o = options[j];
      result.options_.push_back({o.latency, o.bytes, o.error, o.activation_bytes, o.boundary_latency,
                                 o.integer_activations, o.fused_latency, o.removed_channels, o.narrowing_credit,
                                 o.narrowable_bytes, o.bytes_credit + region_credit[i][j], static_cast<uint16_t>(j)});
    }
    result.offsets_.push_back(result.options_.size());

    // Nearest kept option for every original one.
    std::array<double, 4> scale = {0, 0, 0, 0};
    for (const LayerOption& o : options) {
      const auto q = Quantities(o);
      for (int k = 0; k < 4; ++k) scale[k] = std::max(scale[k], q[k]);
    }
    std::vector<uint16_t>& nearest = result.nearest_[i];
    nearest.assign(options.size(), 0);
    for (size_t j = 0; j < options.size() && !kept.empty(); ++j) {
      const auto q = Quantities(options[j]);
      double best = std::numeric_limits<double>::infinity();
      for (size_t k = 0; k < kept.size(); ++k) {
        const auto qk = Quantities(options[kept[k]]);
        double distance = 0;
        for (int d = 0; d < 4; ++d) {
          if (mask[d] && scale[d] > 0) distance += std::abs(q[d] - qk[d]) / scale[d];
        }
        if (distance < best) {
          best = distance;
          nearest[j] = static_cast<uint16_t>(k);
        }
      }
    }
  }
  return result;
}

ObjectiveValues PrunedTable::Evaluate(const uint16_t* genes) const {
  auto option = [&](size_t i) -> const KeptOption& { return options_[offsets_[i] + genes[i]]; };
  thread_local std::vector<char> runs_integer;
  const bool fused = RunsInteger(
      boundaries_, layers(), [&](size_t i) { return option(i).integer; },
      [&](size_t i) { return option(i).fused >= 0; }, [&](size_t i) { return io_[i]; }, &runs_integer);
  thread_local std::vector<double> latency;
  latency.resize(layers());
  ObjectiveValues v;
  v.latency = fixed_.latency;
  v.size = fixed_.bytes;
  double activation = fixed_.activation_bytes;
  for (size_t i = 0; i + 1 < offsets_.size(); ++i) {
    const KeptOption& o = option(i);
    latency[i] = fused && runs_integer[i] && !o.integer ? o.fused : o.latency;
    v.latency += latency[i];
    v.size += o.bytes;
    v.error += o.error;
    activation = std::max(activation, o.activation);
  }
  auto removed = [&](size_t i) { return option(i).removed; };
  v.latency += BoundaryLatency(
      boundaries_, [&](size_t i) { return runs_integer[i] != 0; }, removed);
  v.latency -= NarrowedTotal(
      narrowings_, [&](size_t i) { return latency[i]; }, removed);
  v.size -= NarrowedTotal(
      narrowings_, [&](size_t i) { return option(i).narrowable; }, removed);
  v.size -= RegionSavedTotal(region_savings_, [&](size_t i) { return runs_integer[i] != 0; });
  v.peak_memory = v.size + activation;
  return v;
}

Choice PrunedTable::ToChoice(const uint16_t* genes) const {
  Choice choice(layers());
  for (size_t i = 0; i < choice.size(); ++i) choice[i] = option(i, genes[i]).original;
  return choice;
}

}  // namespace squeeze::search::internal
