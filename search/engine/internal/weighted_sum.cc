#include "search/engine/internal/weighted_sum.h"

#include <algorithm>
#include <limits>
#include <set>

namespace squeeze::search::internal {
namespace {

double Quantity(const KeptOption& o, Objective objective) {
  switch (objective) {
    case Objective::kLatency:
      return o.planned_latency();
    case Objective::kSize:
      return o.planned_bytes();
    case Objective::kError:
      return o.error;
    case Objective::kPeakMemory:
      return o.planned_bytes() + o.activation;
  }
  return 0;
}

// All weight vectors with `dims` non-negative entries summing to `divisions` (then scaled).
void Lattice(size_t dims, int divisions, std::vector<int>& prefix, std::vector<std::vector<double>>& out) {
  if (prefix.size() + 1 == dims) {
    int used = 0;
    for (int p : prefix) used += p;
    std::vector<double> w;
    for (int p : prefix) w.push_back(static_cast<double>(p) / divisions);
    w.push_back(static_cast<double>(divisions - used) / divisions);
    out.push_back(std::move(w));
    return;
  }
  int used = 0;
  for (int p : prefix) used += p;
  for (int p = 0; p <= divisions - used; ++p) {
    prefix.push_back(p);
    Lattice(dims, divisions, prefix, out);
    prefix.pop_back();
  }
}

}  // namespace

std::vector<std::vector<uint16_t>> WeightedSumGenes(const PrunedTable& table, const SearchSpec& spec) {
  const size_t dims = spec.objectives.size();
  const size_t layers = table.layers();
  // Normalize each objective by its total per-layer range so weights are comparable.
  std::vector<double> scale(dims, 0);
  for (size_t d = 0; d < dims; ++d) {
    for (size_t i = 0; i < layers; ++i) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (size_t k = 0; k < table.count(i); ++k) {
        const double q = Quantity(table.option(i, k), spec.objectives[d]);
        lo = std::min(lo, q);
        hi = std::max(hi, q);
      }
      scale[d] += hi - lo;
    }
    if (scale[d] <= 0) scale[d] = 1;
  }
  const int divisions = dims == 1 ? 1 : dims == 2 ? 256 : dims == 3 ? 24 : 10;
  std::vector<std::vector<double>> weights;
  std::vector<int> prefix;
  Lattice(dims, divisions, prefix, weights);

  std::vector<std::vector<uint16_t>> result;
  std::set<std::vector<uint16_t>> seen;
  std::vector<uint16_t> genes(layers);
  for (const std::vector<double>& w : weights) {
    for (size_t i = 0; i < layers; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (size_t k = 0; k < table.count(i); ++k) {
        double cost = 0;
        for (size_t d = 0; d < dims; ++d) {
          cost += w[d] * Quantity(table.option(i, k), spec.objectives[d]) / scale[d];
        }
        if (cost < best) {
          best = cost;
          genes[i] = static_cast<uint16_t>(k);
        }
      }
    }
    if (seen.insert(genes).second) result.push_back(genes);
  }
  return result;
}

}  // namespace squeeze::search::internal
