// Model-level values and constraint checks, in the one summation order every strategy uses.
#ifndef SQUEEZE_SEARCH_ENGINE_INTERNAL_EVALUATION_H_
#define SQUEEZE_SEARCH_ENGINE_INTERNAL_EVALUATION_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "search/engine/objective.h"
#include "search/engine/option_table.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::internal {

// What boundary `b` costs in a plan (OptionTable::boundaries): `integer(i)` says whether layer i's
// chosen option runs on integer activations, `removed(i)` the share of its output channels it
// removes (LayerOption::removed_channels).
template <typename IsInteger, typename Removed>
double BoundaryCost(const ActivationBoundary& b, IsInteger integer, Removed removed) {
  const bool from_integer = b.producer >= 0 && integer(static_cast<size_t>(b.producer));
  bool integer_reader = false, float_reader = b.float_readers;
  for (int32_t r : b.readers) (integer(static_cast<size_t>(r)) ? integer_reader : float_reader) = true;
  const bool dequantize = from_integer && float_reader, quantize = !from_integer && integer_reader;
  int transposes = 0;
  bool pool = false;
  if (b.transpose_latency > 0 || b.pool_latency > 0) {
    const bool integer_layout = b.layout_producer >= 0 && integer(static_cast<size_t>(b.layout_producer));
    if (!integer_layout && integer_reader) ++transposes, pool = true;
    if (integer_layout && b.producer == b.layout_producer) {
      bool float_layout = b.float_layout_reader;
      for (int32_t r : b.layout_readers) float_layout = float_layout || !integer(static_cast<size_t>(r));
      if (float_layout) ++transposes;
    }
  }
  if (!dequantize && !quantize && transposes == 0 && !pool) return 0;
  double kept = 1;
  for (const auto& [layer, share] : b.narrowed_by) kept -= share * removed(static_cast<size_t>(layer));
  const ConversionCosts c = b.CostsAt(kept);
  return (dequantize ? c.dequantize_latency : 0) + (quantize ? c.quantize_latency : 0) +
         transposes * c.transpose_latency + (pool ? c.pool_latency : 0);
}

// What a plan spends converting tensors between activation domains: Σ BoundaryCost.
template <typename IsInteger, typename Removed>
double BoundaryLatency(const std::vector<ActivationBoundary>& boundaries, IsInteger integer, Removed removed) {
  double total = 0;
  for (const ActivationBoundary& b : boundaries) total += BoundaryCost(b, integer, removed);
  return total;
}

// What narrowing `n` takes off its reader's latency or bytes in a plan: `amount(i)` is layer i's
// latency in the plan (or its option's narrowable bytes), `removed(i)` the share of its output
// channels its chosen option removes.
template <typename Amount, typename Removed>
double NarrowedBy(const Narrowing& n, Amount amount, Removed removed) {
  return n.share * removed(static_cast<size_t>(n.pruner)) * amount(static_cast<size_t>(n.reader));
}

// What a plan's narrowings take off its latency or size (OptionTable::narrowings): Σ NarrowedBy.
template <typename Amount, typename Removed>
double NarrowedTotal(const std::vector<Narrowing>& narrowings, Amount amount, Removed removed) {
  double total = 0;
  for (const Narrowing& n : narrowings) total += NarrowedBy(n, amount, removed);
  return total;
}

// A layer's latency in a plan: its option's, or its fused latency where the plan runs it on integer
// activations though the option does not (RunsInteger).
inline double LatencyInPlan(const LayerOption& o, bool runs_integer) {
  return runs_integer && !o.integer_activations && o.fused_latency >= 0 ? o.fused_latency : o.latency;
}

// The most narrowings can take off any plan of `table`: each at its pruner's largest removed
// share and the largest `amount(option)` of its reader's options. A valid table is assumed.
template <typename Amount>
double MostNarrowed(const OptionTable& table, Amount amount) {
  double total = 0;
  for (const Narrowing& n : table.narrowings) {
    double removed = 0, most = 0;
    for (const LayerOption& o : table.layers[static_cast<size_t>(n.pruner)].options) {
      removed = std::max(removed, o.removed_channels);
    }
    for (const LayerOption& o : table.layers[static_cast<size_t>(n.reader)].options) most = std::max(most, amount(o));
    total += n.share * removed * most;
  }
  return total;
}

// ... off its latency (at the reader's largest latency, fused or not) and off its size.
inline double MostNarrowedLatency(const OptionTable& table) {
  return MostNarrowed(table, [](const LayerOption& o) { return std::max(o.latency, o.fused_latency); });
}
inline double MostNarrowedBytes(const OptionTable& table) {
  return MostNarrowed(table, [](const LayerOption& o) { return o.narrowable_bytes; });
}

// What region `r` saves a plan: its saving when any of its layers runs integer (`integer(i)`).
template <typename IsInteger>
double RegionSaved(const RegionSaving& r, IsInteger integer) {
  for (int32_t l : r.layers) {
    if (integer(static_cast<size_t>(l))) return r.saving;
  }
  return 0;
}

// What a plan's quantized regions save (OptionTable::region_savings): Σ RegionSaved.
template <typename IsInteger>
double RegionSavedTotal(const std::vector<RegionSaving>& regions, IsInteger integer) {
  double total = 0;
  for (const RegionSaving& r : regions) total += RegionSaved(r, integer);
  return total;
}

// The most quantized regions can take off the size of any plan of `table`: every saving.
inline double MostRegionSaving(const OptionTable& table) {
  double total = 0;
  for (const RegionSaving& r : table.region_savings) total += r.saving;
  return total;
}

// Per layer and option, what additive strategies credit the option for the regions it borders: an
// equal share of each region's saving to every integer option of its layers (a plan earns the
// saving once, whichever of them runs integer). Parallel to table.layers and their options.
inline std::vector<std::vector<double>> RegionCredits(const OptionTable& table) {
  std::vector<std::vector<double>> credit(table.layers.size());
  for (size_t i = 0; i < table.layers.size(); ++i) credit[i].assign(table.layers[i].options.size(), 0);
  for (const RegionSaving& r : table.region_savings) {
    const double share = r.saving / static_cast<double>(r.layers.size());
    for (int32_t l : r.layers) {
      const std::vector<LayerOption>& options = table.layers[static_cast<size_t>(l)].options;
      for (size_t j = 0; j < options.size(); ++j) {
        if (options[j].integer_activations) credit[static_cast<size_t>(l)][j] += share;
      }
    }
  }
  return credit;
}

// Per layer, the largest share of its input channels other layers' pruning can remove in any plan
// of `table` (each narrowing at its pruner's largest removed share), at most 1. A valid table is
// assumed.
inline std::vector<double> MostNarrowedShares(const OptionTable& table) {
  std::vector<double> share(table.layers.size(), 0);
  for (const Narrowing& n : table.narrowings) {
    double removed = 0;
    for (const LayerOption& o : table.layers[static_cast<size_t>(n.pruner)].options) {
      removed = std::max(removed, o.removed_channels);
    }
    double& s = share[static_cast<size_t>(n.reader)];
    s = std::min(1.0, s + n.share * removed);
  }
  return share;
}

// Which layers of a plan run on integer activations: those whose chosen option does, and the
// weight-only integer ones whose input and output boundaries the plan quantizes anyway
// (LayerOption::fused_latency). `integer(i)` and `fusable(i)` describe layer i's chosen option,
// `io(i)` its {input, output} boundary. Returns whether any layer runs fused; `runs_integer` gets
// one flag per layer.
template <typename IsInteger, typename IsFusable, typename Io>
bool RunsInteger(const std::vector<ActivationBoundary>& boundaries, size_t n, IsInteger integer, IsFusable fusable,
                 Io io, std::vector<char>* runs_integer) {
  runs_integer->assign(n, 0);
  bool any_fusable = false;
  for (size_t i = 0; i < n; ++i) {
    (*runs_integer)[i] = integer(i) ? 1 : 0;
    any_fusable = any_fusable || fusable(i);
  }
  if (!any_fusable) return false;
  auto quantized = [&](int32_t b) {
    if (b < 0) return false;
    const ActivationBoundary& x = boundaries[static_cast<size_t>(b)];
    if (x.producer >= 0 && integer(static_cast<size_t>(x.producer))) return true;
    for (int32_t r : x.readers) {
      if (integer(static_cast<size_t>(r))) return true;
    }
    return false;
  };
  bool fused = false;
  for (size_t i = 0; i < n; ++i) {
    if (!fusable(i)) continue;
    const std::array<int32_t, 2> b = io(i);
    if (quantized(b[0]) && quantized(b[1])) (*runs_integer)[i] = 1, fused = true;
  }
  return fused;
}

// `choice` holds one original option index per layer, all in range.
inline ObjectiveValues EvaluateUnchecked(const OptionTable& table, const uint16_t* choice) {
  const size_t n = table.layers.size();
  auto option = [&](size_t i) -> const LayerOption& { return table.layers[i].options[choice[i]]; };
  thread_local std::vector<char> runs_integer;
  const bool fused = RunsInteger(
      table.boundaries, n, [&](size_t i) { return option(i).integer_activations; },
      [&](size_t i) { return option(i).fused_latency >= 0; },
      [&](size_t i) {
        return std::array<int32_t, 2>{table.layers[i].input_boundary, table.layers[i].output_boundary};
      },
      &runs_integer);
  thread_local std::vector<double> latency;
  latency.resize(n);
  ObjectiveValues v;
  v.latency = table.fixed.latency;
  v.size = table.fixed.bytes;
  double activation = table.fixed.activation_bytes;
  for (size_t i = 0; i < n; ++i) {
    const LayerOption& o = option(i);
    latency[i] = LatencyInPlan(o, fused && runs_integer[i]);
    v.latency += latency[i];
    v.size += o.bytes;
    v.error += o.error;
    activation = std::max(activation, o.activation_bytes);
  }
  auto removed = [&](size_t i) { return option(i).removed_channels; };
  v.latency += BoundaryLatency(
      table.boundaries, [&](size_t i) { return runs_integer[i] != 0; }, removed);
  v.latency -= NarrowedTotal(
      table.narrowings, [&](size_t i) { return latency[i]; }, removed);
  v.size -= NarrowedTotal(
      table.narrowings, [&](size_t i) { return option(i).narrowable_bytes; }, removed);
  v.size -= RegionSavedTotal(table.region_savings, [&](size_t i) { return runs_integer[i] != 0; });
  v.peak_memory = v.size + activation;
  return v;
}

inline bool WithinLimit(double value, double limit) { return value <= limit + 1e-9 * std::abs(limit); }

inline bool Feasible(const ObjectiveValues& v, const Constraints& c) {
  return (!c.max_latency || WithinLimit(v.latency, *c.max_latency)) &&
         (!c.max_size || WithinLimit(v.size, *c.max_size)) && (!c.max_error || WithinLimit(v.error, *c.max_error)) &&
         (!c.max_peak_memory || WithinLimit(v.peak_memory, *c.max_peak_memory));
}

// Sum over violated limits of the excess relative to the limit; 0 when feasible.
inline double Violation(const ObjectiveValues& v, const Constraints& c) {
  auto excess = [](double value, const std::optional<double>& limit) {
    if (!limit || WithinLimit(value, *limit)) return 0.0;
    return (value - *limit) / (*limit > 0 ? *limit : 1.0);
  };
  return excess(v.latency, c.max_latency) + excess(v.size, c.max_size) + excess(v.error, c.max_error) +
         excess(v.peak_memory, c.max_peak_memory);
}

}  // namespace squeeze::search::internal

#endif  // SQUEEZE_SEARCH_ENGINE_INTERNAL_EVALUATION_H_
