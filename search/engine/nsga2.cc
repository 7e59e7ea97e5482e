#include "search/engine/nsga2.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "search/engine/internal/archive.h"
#include "search/engine/internal/evaluation.h"
#include "search/engine/internal/front_builder.h"
#include "search/engine/internal/nondominated_sort.h"
#include "search/engine/internal/pruned_table.h"
#include "search/engine/internal/rng.h"
#include "search/engine/internal/run_monitor.h"
#include "search/engine/internal/weighted_sum.h"
#include "search/engine/pareto.h"

namespace squeeze::search {
namespace {

using internal::PrunedTable;
using internal::Rng;

constexpr int kCompactEvery = 10;
constexpr double kArchiveParent = 0.5;

// Individuals in slots; genes are kept indices.
struct Population {
  size_t layers = 0;
  std::vector<uint16_t> genes;
  std::vector<ObjectiveValues> values;
  PointSet points;
  std::vector<double> violation;
  std::vector<int> rank;
  std::vector<double> crowding;

  size_t size() const { return values.size(); }
  void Resize(size_t n) {
    genes.resize(n * layers);
    values.resize(n);
    points.resize(n);
    violation.resize(n);
    rank.assign(n, 0);
    crowding.assign(n, 0);
  }
  uint16_t* Genes(size_t i) { return genes.data() + i * layers; }
  const uint16_t* Genes(size_t i) const { return genes.data() + i * layers; }
};

void EvaluateSlot(const PrunedTable& table, const SearchSpec& spec, Population& p, size_t i) {
  p.values[i] = table.Evaluate(p.Genes(i));
  p.points[i] = internal::ObjectivePoint(p.values[i], spec);
  p.violation[i] = internal::Violation(p.values[i], spec.constraints);
}

bool ConstraintDominates(const Population& p, size_t i, size_t j) {
  const double vi = p.violation[i], vj = p.violation[j];
  if (vi == 0 && vj > 0) return true;
  if (vi > 0 && vj == 0) return false;
  if (vi > 0 && vj > 0) return vi < vj;
  return Dominates(p.points[i], p.points[j]);
}

// Environmental selection: the best `n` of `from` by (front, crowding), with ranks and crowding
// distances filled in.
Population Select(const Population& from, size_t n) {
  const auto fronts =
      internal::SortByDominance(from.size(), [&](size_t i, size_t j) { return ConstraintDominates(from, i, j); });
  Population to;
  to.layers = from.layers;
  std::vector<size_t> chosen;
  std::vector<int> rank;
  std::vector<double> crowding;
  for (size_t f = 0; f < fronts.size() && chosen.size() < n; ++f) {
    std::vector<double> distance = CrowdingDistances(from.points, fronts[f]);
    std::vector<size_t> order(fronts[f].size());
    std::iota(order.begin(), order.end(), 0);
    if (chosen.size() + fronts[f].size() > n) {
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return distance[a] > distance[b]; });
      order.resize(n - chosen.size());
      std::sort(order.begin(), order.end());
    }
    for (size_t o : order) {
      chosen.push_back(fronts[f][o]);
      rank.push_back(static_cast<int>(f));
      crowding.push_back(distance[o]);
    }
  }
  to.Resize(chosen.size());
  for (size_t k = 0; k < chosen.size(); ++k) {
    const size_t i = chosen[k];
    std::copy_n(from.Genes(i), from.layers, to.Genes(k));
    to.values[k] = from.values[i];
    to.points[k] = from.points[i];
    to.violation[k] = from.violation[i];
    to.rank[k] = rank[k];
    to.crowding[k] = crowding[k];
  }
  return to;
}

size_t Tournament(const Population& p, Rng& rng) {
  const size_t a = rng.Uniform(static_cast<uint32_t>(p.size()));
  const size_t b = rng.Uniform(static_cast<uint32_t>(p.size()));
  if (p.rank[a] != p.rank[b]) return p.rank[a] < p.rank[b] ? a : b;
  if (p.crowding[a] != p.crowding[b]) return p.crowding[a] > p.crowding[b] ? a : b;
  return std::min(a, b);
}

void Mutate(const PrunedTable& table, double rate, Rng& rng, uint16_t* genes) {
  for (size_t i = 0; i < table.layers(); ++i) {
    const uint32_t count = static_cast<uint32_t>(table.count(i));
    if (count <= 1 || rng.UniformDouble() >= rate) continue;
    if (rng.UniformDouble() < 0.5) {
      // A small step in the layer's error order: the next finer or coarser option.
      const int step = (rng.Uniform(2) == 0 ? 1 : -1) * static_cast<int>(1 + rng.Uniform(2));
      const int moved = std::clamp(static_cast<int>(genes[i]) + step, 0, static_cast<int>(count) - 1);
      genes[i] = static_cast<uint16_t>(moved);
    } else {
      genes[i] = static_cast<uint16_t>(rng.Uniform(count));
    }
  }
}

// Distinct starting configurations, in a fixed order.
std::vector<std::vector<uint16_t>> Seeds(const OptionTable& table, const PrunedTable& pruned, const SearchSpec& spec,
                                         const Nsga2Options& options) {
  const size_t layers = pruned.layers();
  std::vector<std::vector<uint16_t>> seeds;
  std::set<std::vector<uint16_t>> seen;
  auto add = [&](std::vector<uint16_t> genes) {
    if (seen.insert(genes).second) seeds.push_back(std::move(genes));
  };
  for (const Choice& choice : options.initial) {
    std::vector<uint16_t> genes(layers);
    for (size_t i = 0; i < layers; ++i) genes[i] = pruned.Nearest(i, choice[i]);
    add(std::move(genes));
  }
  // Uniform by label: the same label in every layer that has it.
  std::set<std::string> labels;
  for (const Layer& layer : table.layers) {
    for (const LayerOption& o : layer.options) {
      if (!o.label.empty()) labels.insert(o.label);
    }
  }
  for (const std::string& label : labels) {
    std::vector<uint16_t> genes(layers, 0);
    for (size_t i = 0; i < layers; ++i) {
      const auto& opts = table.layers[i].options;
      for (size_t j = 0; j < opts.size(); ++j) {
        if (opts[j].label == label) {
          genes[i] = pruned.Nearest(i, static_cast<uint16_t>(j));
          break;
        }
      }
    }
    add(std::move(genes));
  }
  // Uniform by rank: the same position in every layer's error order.
  constexpr int kRanks = 11;
  for (int r = 0; r < kRanks; ++r) {
    std::vector<uint16_t> genes(layers);
    for (size_t i = 0; i < layers; ++i) {
      genes[i] = static_cast<uint16_t>(std::lround(static_cast<double>(r) / (kRanks - 1) * (pruned.count(i) - 1)));
    }
    add(std::move(genes));
  }
  for (auto& genes : internal::WeightedSumGenes(pruned, spec)) add(std::move(genes));
  return seeds;
}

absl::Status ValidateOptions(const OptionTable& table, const Nsga2Options& options) {
  if (options.population < 4) return absl::InvalidArgumentError("nsga2: population must be >= 4");
  if (options.generations < 0) return absl::InvalidArgumentError("nsga2: generations < 0");
  if (!(options.crossover_probability >= 0 && options.crossover_probability <= 1) ||
      !(options.mutation_rate >= 0 && options.mutation_rate <= 1)) {
    return absl::InvalidArgumentError("nsga2: probabilities must be in [0, 1]");
  }
  if (options.time_budget <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("nsga2: time budget must be positive");
  }
  for (size_t k = 0; k < options.initial.size(); ++k) {
    absl::StatusOr<ObjectiveValues> v = Evaluate(table, options.initial[k]);
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("nsga2: initial configuration ", k, ": ", v.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Front> SolveNsga2(const OptionTable& table, const SearchSpec& spec, const Nsga2Options& options,
                                 const RunControl& control) {
  if (absl::Status s = ValidateOptionTable(table); !s.ok()) return s;
  if (absl::Status s = ValidateSearchSpec(spec); !s.ok()) return s;
  if (absl::Status s = ValidateOptions(table, options); !s.ok()) return s;
  internal::RunMonitor monitor(control);
  const PrunedTable pruned = PrunedTable::Build(table, spec);
  const size_t layers = pruned.layers();
  const size_t n = static_cast<size_t>(options.population);
  const double rate = options.mutation_rate > 0 ? options.mutation_rate : std::min(1.0, 2.0 / layers);
  internal::Archive archive(layers, options.archive_limit);
  int64_t evaluations = 0;
  int generation = 0;

  auto front_of = [&](std::vector<Candidate> candidates) {
    Front front = internal::BuildFront(table, spec, Strategy::kNsga2, std::move(candidates));
    front.stats.options_total = pruned.options_total();
    front.stats.options_kept = pruned.options_kept();
    front.stats.evaluations = evaluations;
    front.stats.generations = generation;
    return front;
  };
  auto finish = [&](StopReason reason) {
    archive.Compact();
    Front front = front_of(archive.Candidates(pruned));
    front.stop_reason = reason;
    front.stats.seconds = monitor.seconds();
    monitor.Report("done", 1, &front, /*force=*/true);
    return front;
  };
  if (!pruned.feasible()) return finish(StopReason::kCompleted);

  // Initial population: seeds, then random configurations.
  const auto seeds = Seeds(table, pruned, spec, options);
  Population population;
  population.layers = layers;
  const size_t initial = std::max(n, seeds.size());
  population.Resize(initial);
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::copy(seeds[i].begin(), seeds[i].end(), population.Genes(i));
  }
  tbb::parallel_for(tbb::blocked_range<size_t>(0, initial, 8), [&](const auto& r) {
    for (size_t i = r.begin(); i < r.end(); ++i) {
      if (i >= seeds.size()) {
        Rng rng(internal::StreamSeed(options.seed, 0, i));
        uint16_t* genes = population.Genes(i);
        for (size_t l = 0; l < layers; ++l) {
          genes[l] = static_cast<uint16_t>(rng.Uniform(static_cast<uint32_t>(pruned.count(l))));
        }
      }
      EvaluateSlot(pruned, spec, population, i);
    }
  });
  evaluations += static_cast<int64_t>(initial);
  for (size_t i = 0; i < initial; ++i) {
    if (population.violation[i] == 0) {
      archive.Add(population.Genes(i), population.points[i], population.values[i]);
    }
  }
  population = Select(population, n);
  archive.Compact();
  size_t elite = archive.size();  // archive entries [0, elite) are non-dominated

  Population offspring;
  offspring.layers = layers;
  StopReason reason = StopReason::kCompleted;
  for (generation = 0; generation < options.generations;) {
    if (monitor.cancelled()) return absl::CancelledError("nsga2: cancelled");
    if (monitor.past_deadline()) {
      reason = StopReason::kDeadline;
      break;
    }
    if (monitor.elapsed() >= options.time_budget) break;
    const int g = generation + 1;
    offspring.Resize(n);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, 4), [&](const auto& r) {
      for (size_t i = r.begin(); i < r.end(); ++i) {
        Rng rng(internal::StreamSeed(options.seed, static_cast<uint64_t>(g), i));
        const uint16_t* a = population.Genes(Tournament(population, rng));
        // Half the time the second parent comes from the archive as of its last compaction, so
        // that offspring explore along the whole front found so far, not only the population.
        const uint16_t* b = elite > 0 && rng.UniformDouble() < kArchiveParent
                                ? archive.Genes(rng.Uniform(static_cast<uint32_t>(elite)))
                                : population.Genes(Tournament(population, rng));
        uint16_t* child = offspring.Genes(i);
        if (rng.UniformDouble() < options.crossover_probability) {
          uint64_t bits = 0;
          for (size_t l = 0; l < layers; ++l) {
            if (l % 64 == 0) bits = rng.Next();
            child[l] = (bits >> (l % 64)) & 1 ? a[l] : b[l];
          }
        } else {
          std::copy_n(a, layers, child);
        }
        Mutate(pruned, rate, rng, child);
        EvaluateSlot(pruned, spec, offspring, i);
      }
    });
    evaluations += static_cast<int64_t>(n);
    for (size_t i = 0; i < n; ++i) {
      if (offspring.violation[i] == 0) {
        archive.Add(offspring.Genes(i), offspring.points[i], offspring.values[i]);
      }
    }
    // Parents and offspring compete for the next population.
    Population merged = population;
    merged.Resize(2 * n);
    std::copy(offspring.genes.begin(), offspring.genes.end(), merged.Genes(n));
    std::copy(offspring.values.begin(), offspring.values.end(), merged.values.begin() + n);
    std::copy(offspring.points.begin(), offspring.points.end(), merged.points.begin() + n);
    std::copy(offspring.violation.begin(), offspring.violation.end(), merged.violation.begin() + n);
    population = Select(merged, n);
    generation = g;
    if (generation % kCompactEvery == 0) {
      archive.Compact();
      elite = archive.size();
    }

    if (monitor.ReportDue()) {
      double fraction = static_cast<double>(generation) / options.generations;
      if (options.time_budget != absl::InfiniteDuration()) {
        fraction = std::max(fraction, absl::FDivDuration(monitor.elapsed(), options.time_budget));
      }
      const absl::Time started = absl::Now();
      const Front best = front_of(archive.CompactedCandidates(pruned));
      monitor.NoteReportCost(absl::Now() - started);
      monitor.Report("evolve", fraction, &best);
    }
  }
  return finish(reason);
}

}  // namespace squeeze::search
