#include "search/engine/nsga2.h"

#include <atomic>
#include <catch2/catch.hpp>

#include "oneapi/tbb/task_arena.h"
#include "search/engine/exact.h"
#include "search/engine/pareto.h"
#include "search/engine/random_search.h"
#include "tests/search/test_tables.h"

namespace squeeze::search {
namespace {

using testing::BruteForceFront;
using testing::RandomTable;

SearchSpec Spec(std::vector<Objective> objectives, Constraints constraints = {}) {
  SearchSpec spec;
  spec.objectives = std::move(objectives);
  spec.constraints = constraints;
  return spec;
}

// Without the weighted-sum and uniform seeds doing the work: the front is found by evolution.
Nsga2Options Small() {
  Nsga2Options options;
  options.population = 100;
  options.generations = 400;
  options.seed = 42;
  return options;
}

void CheckFindsBruteForce(const OptionTable& table, const SearchSpec& spec, const Nsga2Options& options = Small()) {
  const auto front = SolveNsga2(table, spec, options);
  REQUIRE(front.ok());
  const auto expected = BruteForceFront(table, spec);
  INFO("nsga2 " << front->candidates.size() << " brute force " << expected.points.size());
  REQUIRE(front->candidates.size() == expected.points.size());
  for (size_t i = 0; i < expected.points.size(); ++i) {
    CHECK(front->Point(i) == expected.points[i]);
  }
  for (const Candidate& c : front->candidates) CHECK(testing::Meets(c.values, spec.constraints));
}

TEST_CASE("nsga2 finds the brute-force front", "[nsga2]") {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    const OptionTable table = RandomTable(5, 6, seed);
    CheckFindsBruteForce(table, Spec({Objective::kLatency, Objective::kError}));
    CheckFindsBruteForce(table, Spec({Objective::kLatency, Objective::kSize, Objective::kError}));
  }
}

TEST_CASE("nsga2 finds the brute-force front with peak memory", "[nsga2]") {
  const OptionTable table = RandomTable(5, 6, 9);
  CheckFindsBruteForce(table, Spec({Objective::kPeakMemory, Objective::kError}));
  // A tenth of all configurations are on this front: it takes longer to meet them all.
  Nsga2Options longer = Small();
  longer.generations = 1000;
  CheckFindsBruteForce(table, Spec({Objective::kLatency, Objective::kSize, Objective::kError, Objective::kPeakMemory}),
                       longer);
}

TEST_CASE("nsga2 handles limits by constraint domination", "[nsga2]") {
  const OptionTable table = RandomTable(5, 6, 12);
  const auto unconstrained = BruteForceFront(table, Spec({Objective::kLatency, Objective::kError}));
  Constraints limits;
  limits.max_latency = unconstrained.points[unconstrained.points.size() * 2 / 3][0];
  limits.max_peak_memory = Evaluate(table, Choice(5, 3)).value().peak_memory;
  CheckFindsBruteForce(table, Spec({Objective::kLatency, Objective::kError}, limits));
  CheckFindsBruteForce(table, Spec({Objective::kSize, Objective::kError}, limits));
}

TEST_CASE("nsga2 gives the same front for a seed on 1 and 2 threads", "[nsga2][threads]") {
  // Enough work per generation that the second thread really takes part.
  const OptionTable table = RandomTable(1500, 16, 5);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError, Objective::kPeakMemory});
  Nsga2Options options = Small();
  options.generations = 15;
  absl::StatusOr<Front> one, two, other_seed;
  tbb::task_arena(1).execute([&] { one = SolveNsga2(table, spec, options); });
  tbb::task_arena(2).execute([&] { two = SolveNsga2(table, spec, options); });
  options.seed = 43;
  tbb::task_arena(2).execute([&] { other_seed = SolveNsga2(table, spec, options); });
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  REQUIRE(other_seed.ok());
  REQUIRE(one->candidates.size() == two->candidates.size());
  for (size_t i = 0; i < one->candidates.size(); ++i) {
    CHECK(one->candidates[i].choice == two->candidates[i].choice);
  }
  CHECK(one->hypervolume == two->hypervolume);
  // The seed matters, so the comparison above is not vacuous.
  CHECK(one->hypervolume != other_seed->hypervolume);
}

TEST_CASE("nsga2 approaches the exact front on a larger table", "[nsga2]") {
  const OptionTable table = RandomTable(30, 12, 17);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  const auto exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  SearchSpec measured = spec;
  measured.reference = exact->reference;
  Nsga2Options options;
  options.generations = 150;
  const auto nsga2 = SolveNsga2(table, measured, options);
  RandomSearchOptions random;
  random.samples = 30000;
  const auto baseline = SolveRandom(table, measured, random);
  REQUIRE(nsga2.ok());
  REQUIRE(baseline.ok());
  CHECK(nsga2->hypervolume >= 0.99 * exact->hypervolume);
  CHECK(nsga2->hypervolume <= exact->hypervolume * (1 + 1e-6));
  CHECK(baseline->hypervolume < nsga2->hypervolume);
}

TEST_CASE("nsga2 starts from given configurations", "[nsga2]") {
  const OptionTable table = RandomTable(30, 12, 17);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  const auto exact = SolveExact(table, spec);
  REQUIRE(exact.ok());
  Nsga2Options options = Small();
  options.generations = 0;
  for (const Candidate& c : exact->candidates) options.initial.push_back(c.choice);
  const auto seeded = SolveNsga2(table, spec, options);
  REQUIRE(seeded.ok());
  CHECK(seeded->hypervolume == Approx(exact->hypervolume).epsilon(1e-12));
  options.initial = {Choice(3, 0)};
  CHECK(SolveNsga2(table, spec, options).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("nsga2 reports progress, stops when cancelled, returns its archive at a deadline", "[nsga2][control]") {
  const OptionTable table = RandomTable(30, 10, 4);
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError});
  Nsga2Options options = Small();
  std::vector<double> fractions;
  bool saw_front = false;
  RunControl control;
  control.progress_interval = absl::ZeroDuration();
  control.on_progress = [&](const Progress& p) {
    fractions.push_back(p.fraction);
    saw_front = saw_front || (p.best_so_far != nullptr && !p.best_so_far->candidates.empty());
  };
  const auto done = SolveNsga2(table, spec, options, control);
  REQUIRE(done.ok());
  CHECK(done->stats.generations == options.generations);
  CHECK(fractions.size() > 10);  // throttled by what building a best-so-far front costs
  CHECK(std::is_sorted(fractions.begin(), fractions.end()));
  CHECK(fractions.back() == 1.0);
  CHECK(saw_front);

  std::atomic<bool> cancel{false};
  control.cancel = &cancel;
  control.on_progress = [&](const Progress& p) {
    if (p.fraction > 0.1) cancel = true;
  };
  CHECK(SolveNsga2(table, spec, options, control).status().code() == absl::StatusCode::kCancelled);

  RunControl late;
  late.deadline = absl::Now();
  const auto partial = SolveNsga2(table, spec, options, late);
  REQUIRE(partial.ok());
  CHECK(partial->stop_reason == StopReason::kDeadline);
  CHECK(partial->stats.generations == 0);
  CHECK_FALSE(partial->candidates.empty());
}

TEST_CASE("nsga2 stops at its time budget", "[nsga2][control]") {
  const OptionTable table = RandomTable(200, 20, 4);
  Nsga2Options options;
  options.generations = 1000000;
  options.time_budget = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  const auto front = SolveNsga2(table, Spec({Objective::kLatency, Objective::kError}), options);
  REQUIRE(front.ok());
  CHECK(absl::Now() - start < absl::Seconds(2));
  CHECK(front->stop_reason == StopReason::kCompleted);
  CHECK(front->stats.generations < options.generations);
}

TEST_CASE("random search is reproducible and meets the limits", "[random]") {
  const OptionTable table = RandomTable(20, 8, 2);
  Constraints limits;
  limits.max_error = Evaluate(table, Choice(20, 3)).value().error;
  const SearchSpec spec = Spec({Objective::kLatency, Objective::kError}, limits);
  RandomSearchOptions options;
  options.samples = 5000;
  absl::StatusOr<Front> one, two;
  tbb::task_arena(1).execute([&] { one = SolveRandom(table, spec, options); });
  tbb::task_arena(2).execute([&] { two = SolveRandom(table, spec, options); });
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  CHECK(one->stats.evaluations == 5000);
  REQUIRE(one->candidates.size() == two->candidates.size());
  for (size_t i = 0; i < one->candidates.size(); ++i) {
    CHECK(one->candidates[i].choice == two->candidates[i].choice);
    CHECK(one->candidates[i].values.error <= *limits.max_error);
  }
}

}  // namespace
}  // namespace squeeze::search
