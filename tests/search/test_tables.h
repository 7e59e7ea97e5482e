// Small option tables for the engine's tests, and the brute-force Pareto set they are checked
// against (every configuration enumerated).
#ifndef SQUEEZE_TESTS_SEARCH_TEST_TABLES_H_
#define SQUEEZE_TESTS_SEARCH_TEST_TABLES_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "search/engine/front.h"
#include "search/engine/option_table.h"
#include "search/engine/pareto.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::testing {

// `layers` layers of `options` options with real trade-offs: cheaper options (in latency and
// bytes) have more error, with noise so that no two configurations tie by accident. Labels "o0",
// "o1", ... are shared across layers.
inline OptionTable RandomTable(int layers, int options, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  OptionTable table;
  table.fixed = FixedCost{5.0, 100.0, 50.0};
  for (int i = 0; i < layers; ++i) {
    Layer layer;
    layer.name = "layer" + std::to_string(i);
    const double scale = std::pow(10.0, 2 * u(gen));  // layer costs span two orders of magnitude
    const double sensitivity = 0.1 + u(gen);
    for (int j = 0; j < options; ++j) {
      const double t = (j + 0.5 * u(gen)) / options;  // 0 = cheapest, 1 = most precise
      LayerOption o;
      o.label = "o" + std::to_string(j);
      o.latency = scale * (0.2 + t + 0.3 * u(gen));
      o.bytes = scale * 10 * (0.1 + t * (0.7 + 0.6 * u(gen)));
      o.error = sensitivity * std::pow(1.0 - t, 2) * (0.8 + 0.4 * u(gen));
      o.activation_bytes = scale * 20 * (0.3 + 0.7 * u(gen));
      layer.options.push_back(o);
    }
    table.layers.push_back(std::move(layer));
  }
  return table;
}

struct BruteForce {
  std::vector<Choice> choices;  // the Pareto set, one per distinct objective vector
  PointSet points;              // their objective vectors, lexicographic
};

inline std::vector<double> PointOf(const ObjectiveValues& v, const SearchSpec& spec) {
  std::vector<double> p;
  for (Objective o : spec.objectives) p.push_back(v.Get(o));
  return p;
}

inline bool Meets(const ObjectiveValues& v, const Constraints& c) {
  auto ok = [](double value, const std::optional<double>& limit) {
    return !limit || value <= *limit + 1e-9 * std::abs(*limit);
  };
  return ok(v.latency, c.max_latency) && ok(v.size, c.max_size) && ok(v.error, c.max_error) &&
         ok(v.peak_memory, c.max_peak_memory);
}

// Enumerates every configuration.
inline BruteForce BruteForceFront(const OptionTable& table, const SearchSpec& spec) {
  std::vector<Choice> all;
  PointSet points;
  Choice choice(table.layers.size(), 0);
  while (true) {
    const ObjectiveValues v = Evaluate(table, choice).value();
    if (Meets(v, spec.constraints)) {
      all.push_back(choice);
      points.push_back(PointOf(v, spec));
    }
    size_t i = 0;
    while (i < choice.size() && ++choice[i] == table.layers[i].options.size()) choice[i++] = 0;
    if (i == choice.size()) break;
  }
  BruteForce result;
  for (size_t k : ParetoFilter(points)) {
    result.choices.push_back(all[k]);
    result.points.push_back(points[k]);
  }
  return result;
}

// q ≤ p + slack in every coordinate.
inline bool Covers(const std::vector<double>& q, const std::vector<double>& p, const std::vector<double>& slack) {
  for (size_t k = 0; k < p.size(); ++k) {
    if (q[k] > p[k] + slack[k] + 1e-9 * std::max(1.0, std::abs(p[k]))) return false;
  }
  return true;
}

// Every point of `expected` is covered by some point of `actual` within `slack`.
inline bool CoversAll(const PointSet& actual, const PointSet& expected, const std::vector<double>& slack) {
  for (const auto& p : expected) {
    bool covered = false;
    for (const auto& q : actual) covered = covered || Covers(q, p, slack);
    if (!covered) return false;
  }
  return true;
}

}  // namespace squeeze::search::testing

#endif  // SQUEEZE_TESTS_SEARCH_TEST_TABLES_H_
