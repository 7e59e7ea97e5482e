// squeeze-bench-search: the search engine against its anchors on synthetic tables (and on tables
// loaded from files), one case per line: a readable table, or with --json one JSON object per line.
//
//   squeeze-bench-search [--json] [--layers 50,200,1000] [--objectives 2,3] [--seed N]
//                        [--table FILE.csv ...] [--max-error E] [--cells-1d N] [--cells-2d N]
//                        [--slices N] [--slice-cells N] [--population N] [--generations N]
//                        [--write-tables DIR]
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/search/search_bench.h"
#include "bench/search/synthetic_table.h"
#include "oneapi/tbb/info.h"
#include "search/engine/option_table_csv.h"

namespace {

using namespace squeeze::search;

constexpr char kUsage[] =
    "usage: squeeze-bench-search [--json] [--layers 50,200,1000] [--objectives 2,3]\n"
    "                            [--seed N] [--table FILE.csv]... [--max-error E]\n"
    "                            [--cells-1d N] [--cells-2d N] [--slices N] [--slice-cells N]\n"
    "                            [--population N] [--generations N] [--write-tables DIR]\n"
    "  --table adds a case for an option table file (format: search/engine/option_table_csv.h)\n"
    "  --max-error is the error limit of every case (default 0.1, i.e. SQNR >= 10 dB)\n"
    "  --write-tables writes the synthetic tables as CSV into DIR and exits\n"
    "  the others override ExactOptions and Nsga2Options defaults\n";

bool ParseInts(const std::string& text, std::vector<int>& out) {
  out.clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int v;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) return false;
    out.push_back(v);
  }
  return !out.empty();
}

SearchSpec SpecFor(int objectives, double max_error) {
  SearchSpec spec;
  spec.objectives = objectives == 2 ? std::vector<Objective>{Objective::kLatency, Objective::kError}
                                    : std::vector<Objective>{Objective::kLatency, Objective::kSize, Objective::kError};
  spec.constraints.max_error = max_error;
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::vector<int> layer_counts = {50, 200, 1000};
  std::vector<int> objective_counts = {2, 3};
  std::vector<std::string> files;
  std::string write_dir;
  uint64_t seed = 1;
  double max_error = 0.1;
  bench::BenchConfig config;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--json") {
      json = true;
    } else if (arg == "--layers" && has_value && ParseInts(argv[i + 1], layer_counts)) {
      ++i;
    } else if (arg == "--objectives" && has_value && ParseInts(argv[i + 1], objective_counts)) {
      ++i;
    } else if (arg == "--seed" && has_value && absl::SimpleAtoi(argv[i + 1], &seed)) {
      ++i;
    } else if (arg == "--max-error" && has_value && absl::SimpleAtod(argv[i + 1], &max_error)) {
      ++i;
    } else if (arg == "--cells-1d" && has_value && absl::SimpleAtoi(argv[i + 1], &config.exact.cells_1d)) {
      ++i;
    } else if (arg == "--cells-2d" && has_value && absl::SimpleAtoi(argv[i + 1], &config.exact.cells_per_axis_2d)) {
      ++i;
    } else if (arg == "--slices" && has_value && absl::SimpleAtoi(argv[i + 1], &config.exact.size_slices)) {
      ++i;
    } else if (arg == "--slice-cells" && has_value && absl::SimpleAtoi(argv[i + 1], &config.exact.slice_cells)) {
      ++i;
    } else if (arg == "--population" && has_value && absl::SimpleAtoi(argv[i + 1], &config.nsga2.population)) {
      ++i;
    } else if (arg == "--generations" && has_value && absl::SimpleAtoi(argv[i + 1], &config.nsga2.generations)) {
      ++i;
    } else if (arg == "--write-tables" && has_value) {
      write_dir = argv[++i];
    } else if (arg == "--table" && has_value) {
      files.push_back(argv[++i]);
    } else {
      std::fputs(kUsage, stderr);
      return arg == "--help" ? 0 : 2;
    }
  }
  for (int k : objective_counts) {
    if (k != 2 && k != 3) {
      std::fputs("--objectives takes 2 and/or 3\n", stderr);
      return 2;
    }
  }

  if (!write_dir.empty()) {
    for (int layers : layer_counts) {
      const std::string path = absl::StrCat(write_dir, "/synthetic-", layers, "x96.csv");
      std::ofstream out(path);
      out << "# squeeze-bench-search synthetic table, seed " << seed << "\n"
          << FormatOptionTableCsv(bench::SyntheticTable(layers, seed)).value();
      if (!out) {
        std::fprintf(stderr, "%s: cannot write\n", path.c_str());
        return 1;
      }
      std::printf("%s\n", path.c_str());
    }
    return 0;
  }

  std::vector<bench::BenchCase> cases;
  for (const std::string& path : files) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<OptionTable> table = ParseOptionTableCsv(text.str());
    if (!in || !table.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), in ? table.status().ToString().c_str() : "cannot read");
      return 1;
    }
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.find_last_of('.'));
    for (int k : objective_counts) {
      cases.push_back({absl::StrCat(name, "-", k, "obj"), *table, SpecFor(k, max_error)});
    }
  }
  if (files.empty()) {
    for (int layers : layer_counts) {
      const OptionTable table = bench::SyntheticTable(layers, seed);
      for (int k : objective_counts) {
        cases.push_back({absl::StrCat("synthetic-", layers, "x96-", k, "obj"), table, SpecFor(k, max_error)});
      }
    }
  }

  config.nsga2.seed = seed;
  if (!json) {
    std::printf(
        "squeeze-bench-search: %d threads; HV ratios against exact with the reference at "
        "the exact front's nadir + 1%% of its range; max error %g\n\n",
        tbb::info::default_concurrency(), max_error);
    std::fputs(bench::TableHeader().c_str(), stdout);
    std::fflush(stdout);
  }
  int failures = 0;
  for (const bench::BenchCase& c : cases) {
    absl::StatusOr<bench::BenchResult> result = bench::RunCase(c, config);
    if (!result.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), result.status().ToString().c_str());
      ++failures;
      continue;
    }
    std::fputs(json ? (bench::ResultJson(*result) + "\n").c_str() : bench::TableRow(*result).c_str(), stdout);
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : 1;
}
