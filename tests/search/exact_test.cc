#include "search/engine/exact.h"

#include <atomic>
#include <catch2/catch.hpp>

#include "oneapi/tbb/task_arena.h"
#include "search/engine/pareto.h"
#include "tests/search/test_tables.h"

namespace squeeze::search {
namespace {

using testing::BruteForceFront;
using testing::CoversAll;
using testing::RandomTable;

SearchSpec Spec(std::vector<Objective> objectives, Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = std::move(objectives);
  spec.constraints = constraints;
  return spec;
}

// The front equals the brute-force Pareto set within the stated ε, both ways: every brute-force
// point is covered by a candidate within ε, and no brute-force point beats a candidate by more
// than ε.
void CheckAgainstBruteForce(const OptionTable& table, const SearchSpec& spec, const ExactOptions& options = {}) {
  const auto front = SolveExact(table, spec, options);
  REQUIRE(front.ok());
  const auto expected = BruteForceFront(table, spec);
  REQUIRE(front->epsilon.size() == spec.objectives.size());
  const PointSet actual = front->Points();
  INFO("front " << actual.size() << " brute force " << expected.points.size());
  CHECK(front->stop_reason == StopReason::kCompleted);
  // The promise covers configurations at least the stated margin inside each limit.
  PointSet promised;
  const Constraints& c = spec.constraints;
  const Front::LimitMargins& m = front->limit_margins;
  for (size_t i = 0; i < expected.points.size(); ++i) {
    const ObjectiveValues v = Evaluate(table, expected.choices[i]).value();
    if ((c.max_latency && v.latency > *c.max_latency - m.latency) || (c.max_size && v.size > *c.max_size - m.size) ||
        (c.max_error && v.error > *c.max_error - m.error)) {
      continue;
    }
    promised.push_back(expected.points[i]);
  }
  CHECK(CoversAll(actual, promised, front->epsilon));
  // Soundness: brute-force points shifted down by ε do not dominate a candidate.
  for (const auto& q : actual) {
    for (const auto& p : expected.points) {
      std::vector<double> shifted = p;
      for (size_t k = 0; k < p.size(); ++k) shifted[k] += front->epsilon[k] + 1e-9;
      CHECK_FALSE(Dominates(shifted, q));
    }
  }
  // Every candidate meets the limits, and its values are its choice's, recomputed.
  for (const Candidate& candidate : front->candidates) {
    const ObjectiveValues v = Evaluate(table, candidate.choice).value();
    CHECK(v.latency == candidate.values.latency);
    CHECK(v.error == candidate.values.error);
    CHECK(testing::Meets(v, spec.constraints));
  }
}

// Found by fuzz_option_table: a limit far beyond a tiny span asked for more grid cells than an
// int64 holds, and the cast wrapped the cap round to a negative count (an empty front).
TEST_CASE("exact keeps both ends of a tiny span under a limit far beyond it", "[exact]") {
  OptionTable table;
  Layer layer;
  layer.options.resize(2);
  layer.options[0].latency = 0;
  layer.options[0].error = 1;
  layer.options[1].latency = 1e-200;
  layer.options[1].error = 0;
  table.layers = {layer, layer};
  Constraints limits;
  limits.max_latency = 1e200;
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError}, limits);
  CheckAgainstBruteForce(table, spec);
  absl::StatusOr<Front> front = SolveExact(table, spec);
  REQUIRE(front.ok());
  CHECK(front->candidates.size() == 3);  // latency 0 / error 2, 1e-200 / 1, 2e-200 / 0
}

TEST_CASE("exact matches brute force for two objectives", "[exact]") {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const OptionTable table = RandomTable(5, 6, seed);
    INFO("seed " << seed);
    CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kError}));
    CheckAgainstBruteForce(table, Spec({Objective::kSize, Objective::kError}));
    CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kSize}));
  }
}

TEST_CASE("exact handles a single objective, with and without limits", "[exact]") {
  const OptionTable table = RandomTable(5, 6, 13);
  CheckAgainstBruteForce(table, Spec({Objective::kError}));
  CheckAgainstBruteForce(table, Spec({Objective::kLatency}));
  Constraints latency;
  latency.max_latency = Evaluate(table, Choice(5, 2)).value().latency;
  CheckAgainstBruteForce(table, Spec({Objective::kError}, latency));
  const auto one = SolveExact(table, Spec({Objective::kError}, latency));
  REQUIRE(one.ok());
  CHECK(one->candidates.size() == 1);
  const auto expected = BruteForceFront(table, Spec({Objective::kError}, latency));
  CHECK(one->Point(0) == expected.points.at(0));
}

TEST_CASE("exact with a fine grid finds exactly the brute-force front", "[exact]") {
  const OptionTable table = RandomTable(5, 6, 11);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  const auto front = SolveExact(table, spec);
  REQUIRE(front.ok());
  const auto expected = BruteForceFront(table, spec);
  REQUIRE(front->candidates.size() == expected.points.size());
  for (size_t i = 0; i < expected.points.size(); ++i) {
    CHECK(front->Point(i) == expected.points[i]);
  }
  // ε is small against the front's extent: one cell per layer on the grid, float rounding on error.
  const auto& first = expected.points.front();
  const auto& last = expected.points.back();
  CHECK(front->epsilon[0] < 1e-4 * (last[0] - first[0]));
  CHECK(front->epsilon[0] > 0);
  CHECK(front->epsilon[1] < 1e-5 * (first[1] - last[1]));
}

TEST_CASE("exact matches brute force for three objectives", "[exact]") {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    CheckAgainstBruteForce(RandomTable(5, 6, seed), Spec({Objective::kLatency, Objective::kSize, Objective::kError}));
  }
}

TEST_CASE("exact keeps its ε promise on a coarse grid", "[exact]") {
  // Few cells make the rounding large; the stated ε must still cover it.
  ExactOptions coarse;
  coarse.cells_1d = 8;
  coarse.cells_per_axis_2d = 6;
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    INFO("seed " << seed);
    const OptionTable table = RandomTable(5, 6, seed);
    CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kError}), coarse);
    CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kSize, Objective::kError}), coarse);
    const auto front = SolveExact(table, Spec({Objective::kLatency, Objective::kError}), coarse);
    CHECK(front->epsilon[0] > 0);
  }
}

TEST_CASE("exact's ε is nearly attained on an adversarial table", "[exact]") {
  // Per layer: free and imprecise, one grid cell and exact, or 1% of a cell and nearly exact. With
  // one cell per unit of latency the third option rounds up to a whole cell and loses to the
  // second, so the all-third configuration (latency 0.1, error 1) is only matched by nine
  // second options (latency 9): a gap of 0.89 of the stated ε = 10 · 0.99.
  OptionTable table;
  for (int i = 0; i < 10; ++i) {
    table.layers.push_back(
        Layer{"l" + std::to_string(i), {{"free", 0, 0, 1, 0}, {"cell", 1, 0, 0, 0}, {"hint", 0.01, 0, 0.1, 0}}});
  }
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  ExactOptions options;
  options.cells_1d = 10;
  CheckAgainstBruteForce(table, spec, options);
  const auto front = SolveExact(table, spec, options);
  REQUIRE(front.ok());
  CHECK(front->epsilon[0] == Approx(9.9));
  double best = 1e9;
  for (const Candidate& c : front->candidates) {
    if (c.values.error <= 1 + 1e-9) best = std::min(best, c.values.latency);
  }
  CHECK(best - 0.1 == Approx(8.9));
  CHECK(best - 0.1 > 0.85 * front->epsilon[0]);
}

TEST_CASE("exact honours limits on objectives and on other quantities", "[exact]") {
  const OptionTable table = RandomTable(5, 6, 5);
  const auto unconstrained = BruteForceFront(table, Spec({Objective::kLatency, Objective::kError}));
  const auto& p = unconstrained.points;
  const size_t half = p.size() / 2, third = p.size() / 3;
  const double mid_latency = (p[half][0] + p[half + 1][0]) / 2;
  const double mid_error = (p[third][1] + p[third + 1][1]) / 2;

  Constraints latency;
  latency.max_latency = mid_latency;
  CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kError}, latency));

  Constraints error;
  error.max_error = mid_error;
  CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kError}, error));

  // Size is limited but not an objective: it becomes a hidden axis of the grid.
  Constraints size;
  size.max_size = Evaluate(table, Choice(5, 2)).value().size;
  CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kError}, size));
  const auto hidden = SolveExact(table, Spec({Objective::kLatency, Objective::kError}, size));
  CHECK(hidden->limit_margins.size > 0);

  // Every kind of limit at once, with three objectives.
  Constraints all = latency;
  all.max_size = size.max_size;
  all.max_error = 1.5 * mid_error;
  CheckAgainstBruteForce(table, Spec({Objective::kLatency, Objective::kSize, Objective::kError}, all));

  // A limit that nothing meets gives an empty front, not an error.
  Constraints impossible;
  impossible.max_latency = 1;
  const auto empty = SolveExact(table, Spec({Objective::kLatency, Objective::kError}, impossible));
  REQUIRE(empty.ok());
  CHECK(empty->candidates.empty());
}

TEST_CASE("exact applies a peak-memory limit as a post filter", "[exact]") {
  const OptionTable table = RandomTable(5, 6, 8);
  Constraints peak;
  peak.max_peak_memory = Evaluate(table, Choice(5, 3)).value().peak_memory;
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError}, peak);
  const auto front = SolveExact(table, spec);
  REQUIRE(front.ok());
  REQUIRE_FALSE(front->candidates.empty());
  for (const Candidate& c : front->candidates) {
    CHECK(c.values.peak_memory <= *peak.max_peak_memory * (1 + 1e-9));
  }
  // Whatever it returns is on the brute-force constrained front.
  const auto expected = BruteForceFront(table, spec);
  for (const auto& q : front->Points()) {
    for (const auto& p : expected.points) CHECK_FALSE(Dominates(p, q));
  }
}

TEST_CASE("exact's three-objective front contains the latency-error front", "[exact]") {
  // The latency-error front is part of the three-objective front. The 2-D grid alone resolves it
  // poorly at this size; the slices (μ = 0 is exactly that front) are what recover it.
  const OptionTable table = RandomTable(40, 12, 31);
  const auto two = SolveExact(table, Spec({Objective::kLatency, Objective::kError}));
  REQUIRE(two.ok());
  auto projected = [&](const ExactOptions& options) {
    const auto three = SolveExact(table, Spec({Objective::kLatency, Objective::kSize, Objective::kError}), options);
    REQUIRE(three.ok());
    PointSet points;
    for (const Candidate& c : three->candidates) {
      points.push_back({c.values.latency, c.values.error});
    }
    return points;
  };
  const std::vector<double> slack = {2 * two->epsilon[0], 1e-12};
  ExactOptions options;
  options.cells_per_axis_2d = 64;
  CHECK(CoversAll(projected(options), two->Points(), slack));
  options.size_slices = 0;
  CHECK_FALSE(CoversAll(projected(options), two->Points(), slack));
}

TEST_CASE("exact refuses peak memory as an objective", "[exact]") {
  const auto front = SolveExact(RandomTable(3, 3, 1), Spec({Objective::kPeakMemory, Objective::kError}));
  CHECK(front.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("exact reconstructs the same front through checkpoints", "[exact]") {
  const OptionTable table = RandomTable(12, 10, 21);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kSize, Objective::kError});
  ExactOptions options;
  options.cells_per_axis_2d = 64;
  const auto stored = SolveExact(table, spec, options);
  options.max_backpointer_bytes = 20000;  // forces segments to be recomputed
  const auto recomputed = SolveExact(table, spec, options);
  REQUIRE(stored.ok());
  REQUIRE(recomputed.ok());
  CHECK(stored->stats.checkpoints == 1);
  CHECK(recomputed->stats.checkpoints > 1);
  REQUIRE(stored->candidates.size() == recomputed->candidates.size());
  for (size_t i = 0; i < stored->candidates.size(); ++i) {
    CHECK(stored->candidates[i].choice == recomputed->candidates[i].choice);
  }
}

TEST_CASE("exact gives the same front on 1 and 2 threads", "[exact][threads]") {
  const OptionTable table = RandomTable(40, 12, 7);
  for (const auto& objectives : {std::vector<Objective>{Objective::kLatency, Objective::kError},
                                 std::vector<Objective>{Objective::kLatency, Objective::kSize, Objective::kError}}) {
    ExactOptions options;
    options.cells_1d = 20000;
    options.cells_per_axis_2d = 200;
    absl::StatusOr<Front> one, two;
    tbb::task_arena(1).execute([&] { one = SolveExact(table, Spec(objectives), options); });
    tbb::task_arena(2).execute([&] { two = SolveExact(table, Spec(objectives), options); });
    REQUIRE(one.ok());
    REQUIRE(two.ok());
    REQUIRE(one->candidates.size() == two->candidates.size());
    CHECK(one->candidates.size() > 10);
    for (size_t i = 0; i < one->candidates.size(); ++i) {
      CHECK(one->candidates[i].choice == two->candidates[i].choice);
    }
    CHECK(one->hypervolume == two->hypervolume);
  }
}

TEST_CASE("exact reports progress and stops when cancelled", "[exact][control]") {
  const OptionTable table = RandomTable(30, 10, 4);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  std::vector<double> fractions;
  bool saw_front = false;
  RunControl control;
  control.progress_interval = absl::ZeroDuration();
  control.on_progress = [&](const Progress& p) {
    fractions.push_back(p.fraction);
    saw_front = saw_front || (p.best_so_far != nullptr && !p.best_so_far->candidates.empty());
  };
  REQUIRE(SolveExact(table, spec, {}, control).ok());
  REQUIRE(fractions.size() > 30);
  CHECK(std::is_sorted(fractions.begin(), fractions.end()));
  CHECK(fractions.back() == 1.0);
  CHECK(saw_front);

  std::atomic<bool> cancel{false};
  control.cancel = &cancel;
  int calls = 0;
  control.on_progress = [&](const Progress&) {
    if (++calls == 5) cancel = true;
  };
  CHECK(SolveExact(table, spec, {}, control).status().code() == absl::StatusCode::kCancelled);
  CHECK(calls < 10);
}

TEST_CASE("exact returns the best front so far at its deadline", "[exact][control]") {
  const OptionTable table = RandomTable(30, 10, 4);
  RunControl control;
  control.deadline = absl::Now();
  const auto front = SolveExact(table, Spec({Objective::kLatency, Objective::kError}), {}, control);
  REQUIRE(front.ok());
  CHECK(front->stop_reason == StopReason::kDeadline);
  CHECK(front->candidates.size() >= 2);
  CHECK(front->epsilon.empty());
  CHECK(front->hypervolume > 0);
}

}  // namespace
}  // namespace squeeze::search
