// One bench case of the search engine, measured side by side: exact, NSGA-II, random search for
// NSGA-II's time, and the HAWQ-V3-style integer program at budgets along the exact front.
#ifndef SQUEEZE_BENCH_SEARCH_SEARCH_BENCH_H_
#define SQUEEZE_BENCH_SEARCH_SEARCH_BENCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "search/engine/exact.h"
#include "search/engine/nsga2.h"
#include "search/engine/option_table.h"
#include "search/engine/search_spec.h"

namespace squeeze::search::bench {

struct BenchCase {
  std::string name;
  OptionTable table;
  SearchSpec spec;
};

struct BenchConfig {
  ExactOptions exact;
  Nsga2Options nsga2;
  int budgets = 10;
  double glpk_time_limit_seconds = 120;
};

struct BenchResult {
  std::string name;
  int layers = 0;
  double options_per_layer = 0;
  std::vector<std::string> objectives;
  double exact_seconds = 0;
  size_t exact_front_size = 0;
  double exact_epsilon_relative = 0;  // largest ε as a share of the front's range
  double nsga2_seconds = 0;
  int nsga2_generations = 0;
  size_t nsga2_front_size = 0;
  double nsga2_hv_ratio = 0;       // hypervolume / exact's, same reference point
  double nsga2_seed_hv_ratio = 0;  // of its initial population alone
  double random_hv_ratio = 0;
  int64_t random_samples = 0;
  size_t random_front_size = 0;      // feasible non-dominated configurations it met
  double glpk_seconds = 0;           // all budgets
  double glpk_max_gap = 0;           // max over budgets of (front error − GLPK error) / GLPK error
  double glpk_min_gap = 0;           // min of the same; below 0 means GLPK missed its optimum
  bool glpk_within_epsilon = false;  // front error at budget + ε ≤ GLPK error, at every budget
  bool glpk_all_optimal = false;
  // The hypervolume reference: the exact front's nadir plus 1% of its range per objective.
  std::vector<double> reference;
};

// InvalidArgument for a case the strategies reject; other errors from the strategies.
absl::StatusOr<BenchResult> RunCase(const BenchCase& c, const BenchConfig& config);

std::string ResultJson(const BenchResult& r);
std::string TableHeader();
std::string TableRow(const BenchResult& r);

}  // namespace squeeze::search::bench

#endif  // SQUEEZE_BENCH_SEARCH_SEARCH_BENCH_H_
